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
	"net/http"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

func TestIdempotentReplay(t *testing.T) {
	clock := newFakeClock(time.Now())
	s, baseURL := startFake(t, WithClock(clock.Now))
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	c := clientsFor(baseURL, key)

	create := func(url, idem string) (*stripe.WebhookEndpoint, error) {
		p := endpointParams(url)
		p.SetIdempotencyKey(idem)
		return c.we.New(p)
	}
	first, err := create("https://example.com/a", "idem-1")
	if err != nil {
		t.Fatal(err)
	}
	second, err := create("https://example.com/a", "idem-1")
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID || second.Secret != first.Secret {
		t.Errorf("replay returned %s, want %s", second.ID, first.ID)
	}
	if got := second.LastResponse.Header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("Idempotent-Replayed = %q", got)
	}
	if first.LastResponse.Header.Get("Idempotent-Replayed") != "" {
		t.Error("first response marked as replayed")
	}
	if n := len(s.Endpoints(acct, false)); n != 1 {
		t.Errorf("%d endpoints after replay, want 1", n)
	}
	if n := s.CallsTo(key, http.MethodPost, PathWebhookEndpoints); n != 2 {
		t.Errorf("CallsTo = %d, want 2 (replays are counted)", n)
	}

	_, err = create("https://example.com/other", "idem-1")
	wantStripeError(t, err, http.StatusBadRequest, stripe.ErrorTypeIdempotency, "", "same parameters")

	p := &stripe.WebhookEndpointParams{Description: stripe.String("x")}
	p.SetIdempotencyKey("idem-1")
	_, err = c.we.Update(first.ID, p)
	wantStripeError(t, err, http.StatusBadRequest, stripe.ErrorTypeIdempotency, "", "same endpoint")

	// Keys are scoped per account: another account may reuse the value.
	otherKey, otherAcct := addKey(s, "sk_test_", KeyOptions{})
	op := endpointParams("https://example.com/a")
	op.SetIdempotencyKey("idem-1")
	if _, err := clientsFor(baseURL, otherKey).we.New(op); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Endpoints(otherAcct, false)); n != 1 {
		t.Errorf("other account has %d endpoints, want 1", n)
	}

	// Failed requests are not stored, so a corrected retry may reuse the key.
	if _, err := create("ftp://bad", "idem-2"); err == nil {
		t.Fatal("invalid create succeeded")
	}
	if _, err := create("https://example.com/fixed", "idem-2"); err != nil {
		t.Errorf("corrected retry: %v", err)
	}

	// After 24 hours the key is forgotten and executes again.
	clock.Advance(25 * time.Hour)
	third, err := create("https://example.com/a", "idem-1")
	if err != nil {
		t.Fatal(err)
	}
	if third.ID == first.ID {
		t.Error("key replayed after 24h")
	}
}

func TestIdempotencyStoreBounded(t *testing.T) {
	st := newIdempotencyStore(3)
	now := time.Now()
	sc := scope{account: "acct_1"}
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		st.put(idemKey{sc: sc, key: k}, &idemEntry{at: now}, now)
	}
	if len(st.entries) != 3 {
		t.Fatalf("store holds %d entries, want 3", len(st.entries))
	}
	for k, want := range map[string]bool{"a": false, "b": false, "c": true, "e": true} {
		if _, ok := st.get(idemKey{sc: sc, key: k}, now); ok != want {
			t.Errorf("key %s present = %v, want %v", k, ok, want)
		}
	}
}
