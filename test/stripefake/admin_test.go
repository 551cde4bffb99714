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
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// adminCall sends one admin API request and decodes the JSON answer into out (if not nil).
func adminCall(t *testing.T, baseURL, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, baseURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// sink records signed deliveries.
type sink struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodies = append(s.bodies, b)
	s.sigs = append(s.sigs, r.Header.Get("Stripe-Signature"))
}

func TestAdminTriggerByKeyDeliversSignedSample(t *testing.T) {
	s, base := startFake(t, AcceptAnyKey(), WithAdminAPI())
	rcv := &sink{}
	srv := httptest.NewServer(rcv)
	t.Cleanup(srv.Close)
	key := newKey("sk_test_")
	params := endpointParams(srv.URL+"/hook", "payment_intent.succeeded", "charge.refunded")
	params.APIVersion = stripe.String(stripe.APIVersion)
	we, err := clientsFor(base, key).we.New(params)
	if err != nil {
		t.Fatalf("create endpoint with an any-key: %v", err)
	}

	for _, typ := range []string{"payment_intent.succeeded", "charge.refunded"} {
		var got triggerResponse
		if code := adminCall(t, base, http.MethodPost, "/_fake/events", `{"key":"`+key+`","type":"`+typ+`"}`, &got); code != http.StatusOK {
			t.Fatalf("trigger %s: status %d", typ, code)
		}
		if !strings.HasPrefix(got.ID, "evt_") || got.Account != s.AccountForKey(key) || got.Livemode {
			t.Errorf("trigger %s answered %+v", typ, got)
		}
		if len(got.Deliveries) != 1 || got.Deliveries[0].StatusCode != http.StatusOK || got.Deliveries[0].EndpointID != we.ID {
			t.Errorf("trigger %s deliveries = %+v", typ, got.Deliveries)
		}
		var listed []adminDelivery
		if code := adminCall(t, base, http.MethodGet, "/_fake/deliveries?event="+got.ID, "", &listed); code != http.StatusOK || len(listed) != 1 {
			t.Errorf("deliveries of %s: %d %+v", got.ID, code, listed)
		}
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bodies) != 2 {
		t.Fatalf("receiver got %d deliveries, want 2", len(rcv.bodies))
	}
	pi, err := webhook.ConstructEvent(rcv.bodies[0], rcv.sigs[0], we.Secret)
	if err != nil {
		t.Fatalf("sample delivery does not verify: %v", err)
	}
	if pi.GetObjectValue("object") != "payment_intent" || pi.GetObjectValue("status") != "succeeded" ||
		pi.GetObjectValue("metadata", "patient_id") == "" {
		t.Errorf("payment_intent sample = %s", pi.Data.Raw)
	}
	ch, err := webhook.ConstructEvent(rcv.bodies[1], rcv.sigs[1], we.Secret)
	if err != nil {
		t.Fatalf("sample delivery does not verify: %v", err)
	}
	if ch.GetObjectValue("object") != "charge" || ch.Data.Object["amount_refunded"] != float64(5000) {
		t.Errorf("charge sample = %s", ch.Data.Raw)
	}
	if strings.Contains(string(rcv.bodies[0]), key) {
		t.Error("the event body contains the API key")
	}
}

func TestAdminKeysFaultsAndCalls(t *testing.T) {
	_, base := startFake(t, AcceptAnyKey(), WithAdminAPI())
	key := newKey("sk_test_")
	c := clientsFor(base, key)
	if _, err := c.acct.Get(); err != nil {
		t.Fatalf("any-key first use: %v", err)
	}

	if code := adminCall(t, base, http.MethodPost, "/_fake/faults", `{"key":"`+key+`","status":503,"times":1}`, nil); code != http.StatusOK {
		t.Fatalf("add fault: %d", code)
	}
	wantStripeError(t, func() error { _, err := c.acct.Get(); return err }(), http.StatusServiceUnavailable, "api_error", "", "")
	if _, err := c.acct.Get(); err != nil {
		t.Errorf("fault with times=1 fired twice: %v", err)
	}
	adminCall(t, base, http.MethodPost, "/_fake/faults", `{"pathPrefix":"/v1/account","status":500}`, nil)
	if code := adminCall(t, base, http.MethodDelete, "/_fake/faults", "", nil); code != http.StatusOK {
		t.Fatalf("clear faults: %d", code)
	}
	if _, err := c.acct.Get(); err != nil {
		t.Errorf("faults not cleared: %v", err)
	}

	var calls map[string]int
	adminCall(t, base, http.MethodGet, "/_fake/calls?key="+key, "", &calls)
	if calls["key"] != 4 {
		t.Errorf("calls for key = %v, want 4", calls)
	}
	if code := adminCall(t, base, http.MethodPost, "/_fake/keys/revoke", `{"key":"`+key+`"}`, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	wantStripeError(t, func() error { _, err := c.acct.Get(); return err }(), http.StatusUnauthorized, "invalid_request_error", "", "Invalid API Key")
	other := newKey("sk_test_")
	adminCall(t, base, http.MethodPost, "/_fake/keys/expire", `{"key":"`+other+`"}`, nil)
	wantStripeError(t, func() error { _, err := clientsFor(base, other).acct.Get(); return err }(), http.StatusUnauthorized, "invalid_request_error",
		"api_key_expired", "Expired API Key")
}

func TestAdminBadRequests(t *testing.T) {
	_, base := startFake(t, AcceptAnyKey(), WithAdminAPI())
	unseen := newKey("sk_test_")
	cases := []struct {
		name, method, path, body string
		want                     int
		msg                      string
	}{
		{"unknown route", http.MethodGet, "/_fake/nope", "", http.StatusNotFound, "no admin route"},
		{"wrong method", http.MethodGet, "/_fake/events", "", http.StatusNotFound, "no admin route"},
		{"malformed JSON", http.MethodPost, "/_fake/events", "{", http.StatusBadRequest, "invalid JSON"},
		{"unknown field", http.MethodPost, "/_fake/events", `{"typo":1}`, http.StatusBadRequest, "unknown field"},
		{"no type", http.MethodPost, "/_fake/events", `{"key":"` + unseen + `"}`, http.StatusBadRequest, `"type" is required`},
		{"no key or account", http.MethodPost, "/_fake/events", `{"type":"payment_intent.succeeded"}`, http.StatusBadRequest, `"key" or "account"`},
		{"malformed key", http.MethodPost, "/_fake/events", `{"key":"nope","type":"payment_intent.succeeded"}`, http.StatusBadRequest,
			"must be a Stripe API key"},
		{"key never used", http.MethodPost, "/_fake/events", `{"key":"` + unseen + `","type":"payment_intent.succeeded"}`, http.StatusNotFound,
			"no account for that key"},
		{"unknown account", http.MethodPost, "/_fake/events", `{"account":"acct_none","type":"payment_intent.succeeded"}`, http.StatusNotFound,
			"not found"},
		{"no sample", http.MethodPost, "/_fake/events", `{"account":"acct_none","type":"customer.created"}`, http.StatusBadRequest, `"object" is required`},
		{"fault without effect", http.MethodPost, "/_fake/faults", `{"key":"x"}`, http.StatusBadRequest, "needs"},
		{"fault status 200", http.MethodPost, "/_fake/faults", `{"status":200}`, http.StatusBadRequest, "4xx or 5xx"},
		{"fault latency", http.MethodPost, "/_fake/faults", `{"latency":"soon"}`, http.StatusBadRequest, "duration"},
		{"revoke garbage", http.MethodPost, "/_fake/keys/revoke", `{"key":"hello"}`, http.StatusBadRequest, "must be a Stripe API key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got adminError
			if code := adminCall(t, base, tc.method, tc.path, tc.body, &got); code != tc.want || !strings.Contains(got.Error, tc.msg) {
				t.Errorf("got %d %q, want %d containing %q", code, got.Error, tc.want, tc.msg)
			}
			if strings.Contains(got.Error, unseen) {
				t.Error("the error echoes the key")
			}
		})
	}
}

func TestAdminAPIOffByDefault(t *testing.T) {
	_, base := startFake(t, AcceptAnyKey())
	resp, err := http.Post(base+"/_fake/faults", "application/json", strings.NewReader(`{"status":500}`))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin route without WithAdminAPI: %d, want Stripe's 404", resp.StatusCode)
	}
}
