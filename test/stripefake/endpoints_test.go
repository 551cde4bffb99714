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
	"fmt"
	"net/http"
	"slices"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
)

func TestEndpointRoundTrip(t *testing.T) {
	s, baseURL := startFake(t)
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	c := clientsFor(baseURL, key)

	params := endpointParams("https://example.com/hook", "payment_intent.succeeded", "charge.refunded")
	params.Description = stripe.String("operator")
	params.APIVersion = stripe.String(stripe.APIVersion)
	params.AddMetadata("owner", "ops")
	params.AddMetadata("team", "billing")
	created, err := c.we.New(params)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.Secret == "" || created.Secret[:6] != "whsec_" {
		t.Errorf("create secret = %q, want whsec_…", created.Secret)
	}
	if created.ID[:3] != "we_" || created.Object != "webhook_endpoint" || created.Livemode ||
		created.Status != "enabled" || created.APIVersion != stripe.APIVersion || created.Description != "operator" ||
		created.Metadata["owner"] != "ops" || !slices.Equal(created.EnabledEvents, []string{"payment_intent.succeeded", "charge.refunded"}) {
		t.Errorf("unexpected created endpoint: %+v", created)
	}

	got, err := c.we.Get(created.ID, nil)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Secret != "" || got.URL != created.URL || got.Created != created.Created {
		t.Errorf("get = %+v, want same endpoint without secret", got)
	}

	it := c.we.List(&stripe.WebhookEndpointListParams{})
	var listed []*stripe.WebhookEndpoint
	for it.Next() {
		listed = append(listed, it.WebhookEndpoint())
	}
	if err := it.Err(); err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(listed) != 1 || listed[0].ID != created.ID || listed[0].Secret != "" {
		t.Errorf("list = %+v", listed)
	}

	up := &stripe.WebhookEndpointParams{
		URL:           stripe.String("https://example.com/hook2"),
		EnabledEvents: stripe.StringSlice([]string{"*"}),
		Disabled:      stripe.Bool(true),
		Description:   stripe.String(""),
	}
	up.AddMetadata("owner", "")
	updated, err := c.we.Update(created.ID, up)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.Status != "disabled" || updated.URL != "https://example.com/hook2" || updated.Secret != "" ||
		updated.Description != "" || !slices.Equal(updated.EnabledEvents, []string{"*"}) {
		t.Errorf("updated = %+v", updated)
	}
	if _, ok := updated.Metadata["owner"]; ok || updated.Metadata["team"] != "billing" {
		t.Errorf("metadata after unset = %v, want only team", updated.Metadata)
	}
	reenabled, err := c.we.Update(created.ID, &stripe.WebhookEndpointParams{Disabled: stripe.Bool(false)})
	if err != nil || reenabled.Status != "enabled" {
		t.Fatalf("re-enable: %v, status %q", err, reenabled.Status)
	}

	del, err := c.we.Del(created.ID, nil)
	if err != nil || !del.Deleted || del.ID != created.ID {
		t.Fatalf("delete = %+v, %v", del, err)
	}
	_, err = c.we.Get(created.ID, nil)
	se := gotStripeError(t, err, http.StatusNotFound, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing,
		fmt.Sprintf("No such webhook endpoint: '%s'", created.ID))
	if se.Param != "id" {
		t.Errorf("param = %q, want id", se.Param)
	}
	if n := len(s.Endpoints(acct, false)); n != 0 {
		t.Errorf("state has %d endpoints after delete", n)
	}
}

func TestEndpointDefaultAPIVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"default", nil, DefaultAPIVersion},
		{"configured", []Option{WithDefaultAPIVersion("2022-11-15")}, "2022-11-15"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, baseURL := startFake(t, tc.opts...)
			key, _ := addKey(s, "sk_test_", KeyOptions{})
			we, err := clientsFor(baseURL, key).we.New(endpointParams("https://example.com/h"))
			if err != nil {
				t.Fatal(err)
			}
			if we.APIVersion != tc.want {
				t.Errorf("api_version = %q, want %q", we.APIVersion, tc.want)
			}
		})
	}
}

func TestEndpointPagination(t *testing.T) {
	s, baseURL := startFake(t, WithEndpointLimit(30))
	key, _ := addKey(s, "sk_test_", KeyOptions{})
	c := clientsFor(baseURL, key)
	ids := make([]string, 0, 25)
	for i := range 25 {
		we, err := c.we.New(endpointParams(fmt.Sprintf("https://example.com/%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, we.ID)
	}
	newestFirst := slices.Clone(ids)
	slices.Reverse(newestFirst)

	collect := func(p *stripe.WebhookEndpointListParams) ([]string, bool) {
		t.Helper()
		it := c.we.List(p)
		var got []string
		for it.Next() {
			got = append(got, it.WebhookEndpoint().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return got, it.Meta().HasMore
	}
	all, _ := collect(&stripe.WebhookEndpointListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(10)}})
	if !slices.Equal(all, newestFirst) {
		t.Errorf("auto-paged list = %v, want %v", all, newestFirst)
	}
	page, more := collect(&stripe.WebhookEndpointListParams{ListParams: stripe.ListParams{
		Limit: stripe.Int64(5), StartingAfter: stripe.String(newestFirst[4]), Single: true}})
	if !slices.Equal(page, newestFirst[5:10]) || !more {
		t.Errorf("starting_after page = %v (more %v), want %v", page, more, newestFirst[5:10])
	}
	page, more = collect(&stripe.WebhookEndpointListParams{ListParams: stripe.ListParams{
		Limit: stripe.Int64(3), EndingBefore: stripe.String(newestFirst[5]), Single: true}})
	want := slices.Clone(newestFirst[2:5])
	slices.Reverse(want) // the iterator walks backwards
	if !slices.Equal(page, want) || !more {
		t.Errorf("ending_before page = %v (more %v), want %v", page, more, want)
	}
	page, more = collect(&stripe.WebhookEndpointListParams{ListParams: stripe.ListParams{Single: true}})
	if len(page) != 10 || !more {
		t.Errorf("default limit page has %d items (more %v), want 10", len(page), more)
	}

	// List-then-delete loops must keep paging even though the cursor is gone.
	it := c.we.List(&stripe.WebhookEndpointListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(4)}})
	deleted := 0
	for it.Next() {
		if _, err := c.we.Del(it.WebhookEndpoint().ID, nil); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if err := it.Err(); err != nil || deleted != 25 {
		t.Errorf("deleted %d endpoints while iterating, err %v", deleted, err)
	}

	for _, limit := range []int64{0, 101} {
		it := c.we.List(&stripe.WebhookEndpointListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(limit)}})
		it.Next()
		se := gotStripeError(t, it.Err(), http.StatusBadRequest, stripe.ErrorTypeInvalidRequest, "", "This value must be")
		if se.Param != "limit" {
			t.Errorf("limit %d: param = %q", limit, se.Param)
		}
	}
}

func TestModeSeparation(t *testing.T) {
	s, baseURL := startFake(t)
	testKey, acct := addKey(s, "sk_test_", KeyOptions{})
	liveKey, _ := addKey(s, "sk_live_", KeyOptions{Account: acct})
	test, live := clientsFor(baseURL, testKey), clientsFor(baseURL, liveKey)

	liveWE, err := live.we.New(endpointParams("https://example.com/live"))
	if err != nil {
		t.Fatal(err)
	}
	if !liveWE.Livemode {
		t.Error("endpoint created with a live key is not livemode")
	}
	testWE, err := test.we.New(endpointParams("http://localhost:8080/test"))
	if err != nil {
		t.Fatal(err)
	}
	if testWE.Livemode {
		t.Error("endpoint created with a test key is livemode")
	}
	if _, err := test.we.Get(liveWE.ID, nil); err == nil {
		t.Error("test key can read a live endpoint")
	}
	if _, err := live.we.Del(testWE.ID, nil); err == nil {
		t.Error("live key can delete a test endpoint")
	}
	if got := s.Endpoints(acct, true); len(got) != 1 || got[0].ID != liveWE.ID {
		t.Errorf("live endpoints = %+v", got)
	}
	if got := s.Endpoints(acct, false); len(got) != 1 || got[0].ID != testWE.ID {
		t.Errorf("test endpoints = %+v", got)
	}
}

func TestMetadataClearAll(t *testing.T) {
	s, baseURL := startFake(t)
	key, _ := addKey(s, "sk_test_", KeyOptions{})
	c := clientsFor(baseURL, key)
	p := endpointParams("https://example.com/h")
	p.AddMetadata("a", "1")
	p.AddMetadata("b", "2")
	we, err := c.we.New(p)
	if err != nil {
		t.Fatal(err)
	}
	clear := &stripe.WebhookEndpointParams{}
	clear.AddExtra("metadata", "")
	got, err := c.we.Update(we.ID, clear)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Metadata) != 0 {
		t.Errorf("metadata after metadata= is %v, want empty", got.Metadata)
	}
}

func TestEndpointCap(t *testing.T) {
	s, baseURL := startFake(t)
	testKey, acct := addKey(s, "sk_test_", KeyOptions{})
	liveKey, _ := addKey(s, "sk_live_", KeyOptions{Account: acct})
	test := clientsFor(baseURL, testKey)
	for i := range DefaultEndpointLimit {
		if _, err := test.we.New(endpointParams(fmt.Sprintf("https://example.com/%d", i))); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	_, err := test.we.New(endpointParams("https://example.com/17"))
	wantStripeError(t, err, http.StatusBadRequest, stripe.ErrorTypeInvalidRequest, "",
		"You have reached the maximum of 16 test webhook endpoints.")
	if _, err := clientsFor(baseURL, liveKey).we.New(endpointParams("https://example.com/live")); err != nil {
		t.Errorf("live mode has its own cap, but create failed: %v", err)
	}
}

func TestEndpointValidation(t *testing.T) {
	s, baseURL := startFake(t)
	testKey, acct := addKey(s, "sk_test_", KeyOptions{})
	liveKey, _ := addKey(s, "sk_live_", KeyOptions{Account: acct})
	withExtra := func(p *stripe.WebhookEndpointParams, k, v string) *stripe.WebhookEndpointParams {
		p.AddExtra(k, v)
		return p
	}
	for _, tc := range []struct {
		name   string
		key    string
		params *stripe.WebhookEndpointParams
		param  string
		code   stripe.ErrorCode
		msg    string
	}{
		{"missing url", testKey, &stripe.WebhookEndpointParams{EnabledEvents: stripe.StringSlice([]string{"*"})},
			"url", stripe.ErrorCodeParameterMissing, "Missing required param: url."},
		{"missing events", testKey, &stripe.WebhookEndpointParams{URL: stripe.String("https://example.com")},
			"enabled_events", stripe.ErrorCodeParameterMissing, "Missing required param: enabled_events."},
		{"relative url", testKey, endpointParams("/hook"), "url", stripe.ErrorCodeURLInvalid, "Invalid URL"},
		{"ftp url", testKey, endpointParams("ftp://example.com/hook"), "url", stripe.ErrorCodeURLInvalid, "Invalid URL"},
		{"http in live mode", liveKey, endpointParams("http://example.com/hook"), "url", stripe.ErrorCodeURLInvalid, "HTTPS"},
		{"unknown event", testKey, endpointParams("https://example.com", "charge.succeeded", "charge.exploded"),
			"enabled_events[1]", "", "Invalid enabled_events[1]: must be one of *, account.updated"},
		{"unknown param", testKey, withExtra(endpointParams("https://example.com"), "colour", "blue"),
			"colour", stripe.ErrorCodeParameterUnknown, "Received unknown parameter: colour"},
		{"bad api version", testKey, withExtra(endpointParams("https://example.com"), "api_version", "latest"),
			"api_version", "", "Invalid api_version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := clientsFor(baseURL, tc.key).we.New(tc.params)
			se := gotStripeError(t, err, http.StatusBadRequest, stripe.ErrorTypeInvalidRequest, tc.code, tc.msg)
			if se.Param != tc.param {
				t.Errorf("param = %q, want %q", se.Param, tc.param)
			}
		})
	}
	if n := len(s.Endpoints(acct, false)) + len(s.Endpoints(acct, true)); n != 0 {
		t.Errorf("%d endpoints created by invalid requests", n)
	}
}

func TestDashboardHelpers(t *testing.T) {
	s, baseURL := startFake(t)
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	if got := s.AccountForKey(key); got != acct {
		t.Errorf("AccountForKey = %q, want %q", got, acct)
	}
	c := clientsFor(baseURL, key)
	we, err := c.we.New(endpointParams("https://example.com/h"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Endpoints(acct, false); len(got) != 1 || got[0].Secret != we.Secret {
		t.Fatalf("Endpoints = %+v", got)
	}
	if err := s.DisableEndpoint(we.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.we.Get(we.ID, nil); got.Status != "disabled" {
		t.Errorf("status after DisableEndpoint = %q", got.Status)
	}
	err = s.UpdateEndpoint(we.ID, func(e *stripe.WebhookEndpoint) {
		e.URL = "https://example.com/moved"
		e.Metadata["drift"] = "yes"
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.we.Get(we.ID, nil); got.URL != "https://example.com/moved" || got.Metadata["drift"] != "yes" {
		t.Errorf("after UpdateEndpoint: %+v", got)
	}
	if err := s.DeleteEndpoint(we.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.we.Get(we.ID, nil); err == nil {
		t.Error("endpoint still readable after DeleteEndpoint")
	}
	for name, err := range map[string]error{
		"disable": s.DisableEndpoint("we_missing"),
		"delete":  s.DeleteEndpoint("we_missing"),
	} {
		if err == nil {
			t.Errorf("%s of unknown endpoint succeeded", name)
		}
	}
}
