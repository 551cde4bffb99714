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
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
)

func TestMaskKey(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"sk_test_1234567890abcd", "sk_test_**********abcd"},
		{"sk_live_1234567890abcd", "sk_live_**********abcd"},
		{"rk_test_1234567890abcdef", "rk_test_**********abcdef"},
		{"pk_test_abc", "pk_test_***"},
		{"garbage-key-wxyz", "************wxyz"},
	} {
		if got := maskKey(tc.key); got != tc.want {
			t.Errorf("maskKey(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestAuthErrors(t *testing.T) {
	s, baseURL := startFake(t)
	revoked, _ := addKey(s, "sk_test_", KeyOptions{})
	s.RevokeKey(revoked)
	expired, _ := addKey(s, "rk_live_", KeyOptions{})
	s.ExpireKey(expired)
	publishable, _ := addKey(s, "pk_test_", KeyOptions{})
	malformed, _ := addKey(s, "whsec_", KeyOptions{})
	unknown := newKey("sk_test_")

	for _, tc := range []struct {
		name   string
		key    string
		status int
		code   stripe.ErrorCode
		msg    string
	}{
		{"unknown", unknown, http.StatusUnauthorized, "", "Invalid API Key provided: sk_test_****"},
		{"revoked", revoked, http.StatusUnauthorized, "", "Invalid API Key provided: sk_test_****"},
		{"expired", expired, http.StatusUnauthorized, stripe.ErrorCodeAPIKeyExpired, "Expired API Key provided: rk_live_****"},
		{"malformed", malformed, http.StatusUnauthorized, "", "Invalid API Key provided: "},
		// Stripe answers publishable keys on secret endpoints with 403.
		{"publishable", publishable, http.StatusForbidden, stripe.ErrorCodeSecretKeyRequired, "cannot be made with a publishable API key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := clientsFor(baseURL, tc.key).acct.Get()
			se := gotStripeError(t, err, tc.status, stripe.ErrorTypeInvalidRequest, tc.code, tc.msg)
			if strings.Contains(se.Msg, tc.key[8:len(tc.key)-6]) {
				t.Errorf("message leaks the key: %q", se.Msg)
			}
			if tc.status == http.StatusUnauthorized && !strings.HasSuffix(se.Msg, tc.key[len(tc.key)-4:]) {
				t.Errorf("message %q does not end with the key's last 4 characters", se.Msg)
			}
		})
	}
}

func TestMissingAuthorization(t *testing.T) {
	_, baseURL := startFake(t)
	resp, err := http.Get(baseURL + PathAccount)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var env errorEnvelope
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(env.Error.Message, "You did not provide an API key") {
		t.Errorf("got %d %s", resp.StatusCode, body)
	}
}

func TestRestrictedKeyPermissions(t *testing.T) {
	s, baseURL := startFake(t)
	readOnly, acct := addKey(s, "rk_test_", KeyOptions{Permissions: []string{PermWebhookRead}})
	writer, _ := addKey(s, "rk_test_", KeyOptions{Account: acct, Permissions: []string{PermWebhookWrite, PermAccountRead}})
	none, _ := addKey(s, "rk_test_", KeyOptions{Account: acct, Permissions: []string{}})

	type call func(c clients) error
	list := func(c clients) error {
		it := c.we.List(nil)
		it.Next()
		return it.Err()
	}
	create := func(c clients) error {
		_, err := c.we.New(endpointParams("https://example.com/h"))
		return err
	}
	getAccount := func(c clients) error {
		_, err := c.acct.Get()
		return err
	}
	listEvents := func(c clients) error {
		it := c.ev.List(nil)
		it.Next()
		return it.Err()
	}
	for _, tc := range []struct {
		name     string
		key      string
		call     call
		wantPerm string // "" = allowed
	}{
		{"read key lists", readOnly, list, ""},
		{"read key cannot create", readOnly, create, PermWebhookWrite},
		{"read key cannot read account", readOnly, getAccount, PermAccountRead},
		{"write key creates", writer, create, ""},
		{"write implies read", writer, list, ""},
		{"write key reads account", writer, getAccount, ""},
		{"write key cannot read events", writer, listEvents, PermEventRead},
		{"empty key cannot list", none, list, PermWebhookRead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(clientsFor(baseURL, tc.key))
			if tc.wantPerm == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			se := gotStripeError(t, err, http.StatusForbidden, stripe.ErrorTypeInvalidRequest, "", "'"+tc.wantPerm+"'")
			for _, part := range []string{"rk_test_***", tc.key[len(tc.key)-6:], "account '" + acct + "'"} {
				if !strings.Contains(se.Msg, part) {
					t.Errorf("message %q lacks %q", se.Msg, part)
				}
			}
		})
	}
}

func TestAcceptAnyKey(t *testing.T) {
	s, baseURL := startFake(t, AcceptAnyKey())
	k1, k2 := newKey("sk_test_"), newKey("rk_live_")
	a1, err := clientsFor(baseURL, k1).acct.Get()
	if err != nil {
		t.Fatal(err)
	}
	a2, err := clientsFor(baseURL, k2).acct.Get()
	if err != nil {
		t.Fatal(err)
	}
	if a1.ID == "" || a1.ID == a2.ID || s.AccountForKey(k1) != a1.ID || a1.Object != "account" {
		t.Errorf("accounts %q and %q; want distinct registered ids", a1.ID, a2.ID)
	}
	we, err := clientsFor(baseURL, k2).we.New(endpointParams("https://example.com/h"))
	if err != nil || !we.Livemode {
		t.Errorf("live create with auto key: %+v, %v", we, err)
	}
	_, err = clientsFor(baseURL, "not_a_key").acct.Get()
	wantStripeError(t, err, http.StatusUnauthorized, stripe.ErrorTypeInvalidRequest, "", "Invalid API Key")
	_, err = clientsFor(baseURL, newKey("pk_test_")).acct.Get()
	wantStripeError(t, err, http.StatusForbidden, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeSecretKeyRequired, "publishable")

	revoked := newKey("sk_test_")
	s.RevokeKey(revoked)
	_, err = clientsFor(baseURL, revoked).acct.Get()
	wantStripeError(t, err, http.StatusUnauthorized, stripe.ErrorTypeInvalidRequest, "", "Invalid API Key")
}

func TestUnknownRoute(t *testing.T) {
	s, baseURL := startFake(t)
	key, _ := addKey(s, "sk_test_", KeyOptions{})
	b := newBackend(baseURL)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/v1/customers"},
		{http.MethodPut, "/v1/webhook_endpoints"},
		{http.MethodDelete, "/v1/events/evt_1"},
	} {
		err := b.Call(tc.method, tc.path, key, nil, &stripe.Account{})
		wantStripeError(t, err, http.StatusNotFound, stripe.ErrorTypeInvalidRequest, "",
			"Unrecognized request URL ("+tc.method+": "+tc.path+")")
		if got := s.CallsTo(key, tc.method, tc.path); got != 1 {
			t.Errorf("CallsTo(%s %s) = %d, want 1", tc.method, tc.path, got)
		}
	}
}

func TestAccount(t *testing.T) {
	s, baseURL := startFake(t)
	key, acct := addKey(s, "sk_live_", KeyOptions{Account: "acct_fixed123"})
	a, err := clientsFor(baseURL, key).acct.Get()
	if err != nil {
		t.Fatal(err)
	}
	if acct != "acct_fixed123" || a.ID != acct || a.Object != "account" || !a.ChargesEnabled || a.Country == "" {
		t.Errorf("account = %+v", a)
	}
	// Connect requests are only accepted for the key's own account.
	for stripeAccount, wantErr := range map[string]bool{acct: false, "acct_someoneelse": true} {
		p := &stripe.WebhookEndpointListParams{}
		p.SetStripeAccount(stripeAccount)
		it := clientsFor(baseURL, key).we.List(p)
		it.Next()
		if wantErr {
			wantStripeError(t, it.Err(), http.StatusForbidden, stripe.ErrorTypeInvalidRequest, "", "does not have access to account")
		} else if it.Err() != nil {
			t.Errorf("Stripe-Account of own account: %v", it.Err())
		}
	}
}
