/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package stripefake

import (
	"strings"
)

// Restricted-key permissions the fake enforces. A "_write" permission also
// grants the matching "_read" one, as in Stripe's dashboard.
const (
	PermAccountRead  = "rak_account_read"
	PermWebhookRead  = "rak_webhook_read"
	PermWebhookWrite = "rak_webhook_write"
	PermEventRead    = "rak_event_read"
	// PermPayoutRead reads /v1/payouts and PermBalanceRead
	// /v1/balance_transactions: the Payouts and Balance rows of the
	// dashboard's restricted-key form, as listed in
	// https://docs.stripe.com/keys/permissions-reference.
	PermPayoutRead  = "rak_payout_read"
	PermBalanceRead = "rak_balance_read"
)

// KeyOptions describes an API key registered with AddKey.
type KeyOptions struct {
	// Account is the acct_ id the key belongs to; generated when empty.
	// Register a test and a live key with the same Account to model one
	// account in both modes.
	Account string
	// Permissions lists the rak_ permissions of a restricted key. Nil means
	// full access, as for sk_ keys.
	Permissions []string
}

type keyKind int

const (
	kindUnknown keyKind = iota
	kindSecret
	kindRestricted
	kindPublishable
)

// apiKey is a registered key; raw is only used to build masked messages.
type apiKey struct {
	raw     string
	kind    keyKind
	live    bool
	account string
	perms   map[string]bool
	revoked bool
	expired bool
}

// parseKey derives kind and mode from Stripe's key prefixes.
func parseKey(key string) (keyKind, bool, bool) {
	kinds := []struct {
		prefix string
		kind   keyKind
	}{{"sk_", kindSecret}, {"rk_", kindRestricted}, {"pk_", kindPublishable}}
	for _, k := range kinds {
		rest, ok := strings.CutPrefix(key, k.prefix)
		if !ok {
			continue
		}
		if body, ok := strings.CutPrefix(rest, "test_"); ok && wellFormedBody(body) {
			return k.kind, false, true
		}
		if body, ok := strings.CutPrefix(rest, "live_"); ok && wellFormedBody(body) {
			return k.kind, true, true
		}
	}
	return kindUnknown, false, false
}

func wellFormedBody(body string) bool {
	if body == "" {
		return false
	}
	for _, c := range body {
		isAlnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !isAlnum && c != '_' {
			return false
		}
	}
	return true
}

// maskKey hides a key the way Stripe's error messages do: the type and mode
// prefix stay, every other character becomes '*' except the last four (six
// for restricted keys).
func maskKey(key string) string {
	prefix := ""
	if _, _, ok := parseKey(key); ok {
		prefix = key[:len("sk_test_")]
	}
	rest := key[len(prefix):]
	visible := 4
	if strings.HasPrefix(key, "rk_") {
		visible = 6
	}
	if len(rest) <= visible {
		return prefix + strings.Repeat("*", len(rest))
	}
	return prefix + strings.Repeat("*", len(rest)-visible) + rest[len(rest)-visible:]
}

func (k *apiKey) allows(perm string) bool {
	if k.perms == nil || perm == "" {
		return true
	}
	if k.perms[perm] {
		return true
	}
	if base, ok := strings.CutSuffix(perm, "_read"); ok {
		return k.perms[base+"_write"]
	}
	return false
}

// AddKey registers (or replaces) an API key and returns its account id. The
// mode comes from the sk_/rk_/pk_ test/live prefix; keys without one are
// stored but always rejected as invalid, as Stripe does.
func (s *Server) AddKey(key string, opts KeyOptions) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addKeyLocked(key, opts).account
}

func (s *Server) addKeyLocked(key string, opts KeyOptions) *apiKey {
	kind, live, _ := parseKey(key)
	k := &apiKey{raw: key, kind: kind, live: live, account: opts.Account}
	if opts.Permissions != nil {
		k.perms = make(map[string]bool, len(opts.Permissions))
		for _, p := range opts.Permissions {
			k.perms[p] = true
		}
	}
	if k.account == "" {
		k.account = "acct_" + randomID(16)
	}
	s.ensureAccount(k.account)
	s.keys[key] = k
	return k
}

// RevokeKey makes later calls with key fail with 401 "Invalid API Key
// provided". Revoking an unknown key also stops AcceptAnyKey from accepting it.
func (s *Server) RevokeKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookupOrAdd(key).revoked = true
}

// ExpireKey makes later calls with key fail with 401 "Expired API Key
// provided", as after rolling a key in the dashboard.
func (s *Server) ExpireKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookupOrAdd(key).expired = true
}

func (s *Server) lookupOrAdd(key string) *apiKey {
	if k := s.keys[key]; k != nil {
		return k
	}
	return s.addKeyLocked(key, KeyOptions{})
}

// AccountForKey returns the account of a registered key, or "".
func (s *Server) AccountForKey(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.keys[key]; k != nil {
		return k.account
	}
	return ""
}

// authenticate resolves the caller's key. Callers hold s.mu.
func (s *Server) authenticate(raw string) (*apiKey, *apiError) {
	if raw == "" {
		return nil, errNoKey()
	}
	k := s.keys[raw]
	if k == nil {
		kind, _, ok := parseKey(raw)
		if !ok || !s.cfg.acceptAnyKey {
			return nil, errInvalidKey(raw)
		}
		if kind == kindPublishable {
			return nil, errPublishableKey()
		}
		k = s.addKeyLocked(raw, KeyOptions{})
	}
	switch {
	case k.revoked || k.kind == kindUnknown:
		return nil, errInvalidKey(raw)
	case k.expired:
		return nil, errExpiredKey(raw)
	case k.kind == kindPublishable:
		return nil, errPublishableKey()
	}
	return k, nil
}
