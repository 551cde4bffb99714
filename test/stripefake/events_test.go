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
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// receiver is a webhook target on loopback that records what it gets.
type receiver struct {
	mu      sync.Mutex
	status  int
	bodies  [][]byte
	headers []string
	gate    chan struct{}
	srv     *httptest.Server
}

func newReceiver(t *testing.T, status int) *receiver {
	t.Helper()
	r := &receiver{status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.headers = append(r.headers, req.Header.Get("Stripe-Signature"))
		status, gate := r.status, r.gate
		r.mu.Unlock()
		if gate != nil {
			<-gate
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setStatus(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = code
}

func (r *receiver) received() ([][]byte, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies), slices.Clone(r.headers)
}

// listEventIDs lists events with the given params and returns their ids.
func listEventIDs(t *testing.T, c clients, p *stripe.EventListParams) []string {
	t.Helper()
	it := c.ev.List(p)
	var ids []string
	for it.Next() {
		ids = append(ids, it.Event().ID)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("list events: %v", err)
	}
	return ids
}

// deliveryFixture is an account with four endpoints: one healthy receiver
// for payment_intent.succeeded, one failing receiver for "*", one for another
// type and one disabled, all at stripe-go's API version.
type deliveryFixture struct {
	s               *Server
	c               clients
	acct            string
	ok, failing     *receiver
	weOK, weFailing *stripe.WebhookEndpoint
}

func newDeliveryFixture(t *testing.T) *deliveryFixture {
	t.Helper()
	s, baseURL := startFake(t)
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	f := &deliveryFixture{s: s, c: clientsFor(baseURL, key), acct: acct,
		ok: newReceiver(t, http.StatusOK), failing: newReceiver(t, http.StatusInternalServerError)}
	mk := func(url string, events ...string) *stripe.WebhookEndpoint {
		p := endpointParams(url, events...)
		p.APIVersion = stripe.String(stripe.APIVersion)
		we, err := f.c.we.New(p)
		if err != nil {
			t.Fatal(err)
		}
		return we
	}
	f.weOK = mk(f.ok.srv.URL, "payment_intent.succeeded")
	f.weFailing = mk(f.failing.srv.URL, "*")
	mk(f.ok.srv.URL+"/other", "charge.refunded")
	disabled := mk(f.ok.srv.URL+"/disabled", "*")
	if _, err := f.c.we.Update(disabled.ID, &stripe.WebhookEndpointParams{Disabled: stripe.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *deliveryFixture) trigger(t *testing.T) string {
	t.Helper()
	id, err := f.s.TriggerEvent(f.acct, false, "payment_intent.succeeded",
		map[string]any{"id": "pi_123", "object": "payment_intent", "amount": 1000})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestEventDeliverySigned(t *testing.T) {
	f := newDeliveryFixture(t)
	evtID := f.trigger(t)
	bodies, sigs := f.ok.received()
	if len(bodies) != 1 {
		t.Fatalf("ok receiver got %d deliveries, want 1", len(bodies))
	}
	ev, err := webhook.ConstructEvent(bodies[0], sigs[0], f.weOK.Secret)
	if err != nil {
		t.Fatalf("ConstructEvent rejected the delivery: %v", err)
	}
	if ev.ID != evtID || ev.Type != "payment_intent.succeeded" || ev.Livemode || ev.GetObjectValue("id") != "pi_123" {
		t.Errorf("event = %+v", ev)
	}
	if _, err := webhook.ConstructEvent(bodies[0], sigs[0], f.weFailing.Secret); err == nil {
		t.Error("signature verified with another endpoint's secret")
	}

	deliveries := f.s.Deliveries()
	if len(deliveries) != 2 {
		t.Fatalf("Deliveries = %+v, want 2 attempts (disabled and unsubscribed endpoints skipped)", deliveries)
	}
	byEndpoint := map[string]Delivery{}
	for _, d := range deliveries {
		byEndpoint[d.EndpointID] = d
	}
	if d := byEndpoint[f.weOK.ID]; !d.Succeeded() || d.EventID != evtID {
		t.Errorf("ok delivery = %+v", d)
	}
	if d := byEndpoint[f.weFailing.ID]; d.Succeeded() || d.StatusCode != http.StatusInternalServerError {
		t.Errorf("failing delivery = %+v", d)
	}
}

func TestEventRedeliverAndDeliveryFilter(t *testing.T) {
	f := newDeliveryFixture(t)
	evtID := f.trigger(t)
	undelivered := listEventIDs(t, f.c, &stripe.EventListParams{DeliverySuccess: stripe.Bool(false)})
	delivered := listEventIDs(t, f.c, &stripe.EventListParams{DeliverySuccess: stripe.Bool(true)})
	if !slices.Equal(undelivered, []string{evtID}) || len(delivered) != 0 {
		t.Errorf("delivery_success=false %v, =true %v", undelivered, delivered)
	}
	got, err := f.c.ev.Get(evtID, nil)
	if err != nil || got.PendingWebhooks != 1 {
		t.Fatalf("get event: %+v, %v", got, err)
	}

	f.failing.setStatus(http.StatusOK)
	if err := f.s.Redeliver(evtID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Redeliver(evtID); err != nil { // nothing left to send
		t.Fatal(err)
	}
	bodies, sigs := f.failing.received()
	if len(bodies) != 2 {
		t.Fatalf("failing receiver got %d deliveries, want 2", len(bodies))
	}
	if _, err := webhook.ConstructEvent(bodies[1], sigs[1], f.weFailing.Secret); err != nil {
		t.Errorf("redelivery signature: %v", err)
	}
	delivered = listEventIDs(t, f.c, &stripe.EventListParams{DeliverySuccess: stripe.Bool(true)})
	if !slices.Equal(delivered, []string{evtID}) || len(f.s.Deliveries()) != 3 {
		t.Errorf("after redelivery: delivered %v, %d attempts", delivered, len(f.s.Deliveries()))
	}
	if err := f.s.Redeliver("evt_missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Redeliver(unknown) = %v", err)
	}
}

func TestEventRenderedAtEndpointVersion(t *testing.T) {
	clock := newFakeClock(time.Unix(1_700_000_000, 0))
	s, baseURL := startFake(t, WithClock(clock.Now))
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	rcv := newReceiver(t, http.StatusNoContent)
	we, err := clientsFor(baseURL, key).we.New(endpointParams(rcv.srv.URL, "customer.created"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TriggerEvent(acct, false, "customer.created", map[string]any{"id": "cus_1"}); err != nil {
		t.Fatal(err)
	}
	bodies, sigs := rcv.received()
	if len(bodies) != 1 {
		t.Fatalf("got %d deliveries", len(bodies))
	}
	if !strings.HasPrefix(sigs[0], "t=1700000000,v1=") {
		t.Errorf("signature header %q does not use the fake clock", sigs[0])
	}
	// The endpoint kept the account default version, which stripe-go refuses
	// unless told to ignore the mismatch, exactly as with real Stripe.
	if _, err := webhook.ConstructEventWithOptions(bodies[0], sigs[0], we.Secret,
		webhook.ConstructEventOptions{IgnoreTolerance: true}); err == nil || !strings.Contains(err.Error(), "API version") {
		t.Errorf("want API version mismatch, got %v", err)
	}
	ev, err := webhook.ConstructEventWithOptions(bodies[0], sigs[0], we.Secret,
		webhook.ConstructEventOptions{IgnoreTolerance: true, IgnoreAPIVersionMismatch: true})
	if err != nil || ev.APIVersion != DefaultAPIVersion || ev.Created != 1_700_000_000 {
		t.Errorf("event %+v, err %v", ev, err)
	}
	if d := s.Deliveries(); len(d) != 1 || !d[0].Succeeded() {
		t.Errorf("204 should count as delivered: %+v", d)
	}
}

func TestEventsList(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	clock := newFakeClock(start)
	s, baseURL := startFake(t, WithClock(clock.Now))
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	liveKey, _ := addKey(s, "sk_live_", KeyOptions{Account: acct})
	c := clientsFor(baseURL, key)

	types := []string{"charge.succeeded", "charge.refunded", "customer.created", "invoice.paid", "charge.failed"}
	ids := make([]string, 0, len(types))
	for _, typ := range types {
		id, err := s.TriggerEvent(acct, false, typ, map[string]any{"object": strings.Split(typ, ".")[0]})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		clock.Advance(time.Hour)
	}
	if _, err := s.TriggerEvent(acct, true, "charge.succeeded", nil); err != nil {
		t.Fatal(err)
	}
	rev := func(in ...string) []string { out := slices.Clone(in); slices.Reverse(out); return out }

	for _, tc := range []struct {
		name   string
		params *stripe.EventListParams
		want   []string
	}{
		{"all newest first", &stripe.EventListParams{}, rev(ids...)},
		{"paged", &stripe.EventListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(2)}}, rev(ids...)},
		{"type", &stripe.EventListParams{Type: stripe.String("invoice.paid")}, []string{ids[3]}},
		{"type wildcard", &stripe.EventListParams{Type: stripe.String("charge.*")}, []string{ids[4], ids[1], ids[0]}},
		{"types", &stripe.EventListParams{Types: stripe.StringSlice([]string{"customer.created", "charge.failed"})}, []string{ids[4], ids[2]}},
		{"created range", &stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{
			GreaterThanOrEqual: start.Add(time.Hour).Unix(), LesserThanOrEqual: start.Add(3 * time.Hour).Unix()}}, rev(ids[1:4]...)},
		{"created exact", &stripe.EventListParams{Created: stripe.Int64(start.Unix())}, []string{ids[0]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := listEventIDs(t, c, tc.params); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// An API read renders the event in the version it was created in, not the request's
	// Stripe-Version (stripe-go sends its pinned one), like Stripe.
	ev, err := c.ev.Get(ids[2], nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "customer.created" || ev.Object != "event" || ev.APIVersion != DefaultAPIVersion ||
		ev.Created != start.Add(2*time.Hour).Unix() || ev.Data.Object["object"] != "customer" || ev.PendingWebhooks != 0 {
		t.Errorf("event = %+v", ev)
	}
	if live := listEventIDs(t, clientsFor(baseURL, liveKey), nil); len(live) != 1 || slices.Contains(ids, live[0]) {
		t.Errorf("live events = %v", live)
	}

	clock.Advance(31 * 24 * time.Hour)
	if got := listEventIDs(t, c, nil); len(got) != 0 {
		t.Errorf("events older than 30 days listed: %v", got)
	}
	_, err = c.ev.Get(ids[0], nil)
	wantStripeError(t, err, http.StatusNotFound, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "No such event")
}

// TestEventsKeepTheirAPIVersion: each event is listed in the API version of its creation,
// whatever the Stripe-Version header, while a webhook uses the endpoint's version.
func TestEventsKeepTheirAPIVersion(t *testing.T) {
	s, baseURL := startFake(t)
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	c := clientsFor(baseURL, key)
	want := map[string]string{}
	for _, v := range []string{"2020-08-27", "2024-06-20", ""} {
		id, err := s.TriggerEventVersion(acct, false, "charge.succeeded", v, map[string]any{"object": "charge"})
		if err != nil {
			t.Fatal(err)
		}
		if v == "" {
			v = DefaultAPIVersion
		}
		want[id] = v
	}
	it := c.ev.List(&stripe.EventListParams{})
	got := map[string]string{}
	for it.Next() {
		got[it.Event().ID] = it.Event().APIVersion
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("listed versions = %v, want %v", got, want)
	}
	if _, err := s.TriggerEventVersion(acct, false, "charge.succeeded", "latest", nil); err == nil {
		t.Error("an invalid API version was accepted")
	}
}

func TestTriggerEventErrors(t *testing.T) {
	s := New()
	t.Cleanup(func() { _ = s.Close() })
	acct := s.AddKey(newKey("sk_test_"), KeyOptions{})
	if _, err := s.TriggerEvent(acct, false, "charge.exploded", nil); err == nil {
		t.Error("unknown event type accepted")
	}
	if _, err := s.TriggerEvent("acct_nope", false, "charge.succeeded", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
	if _, err := s.TriggerEvent(acct, false, "charge.succeeded", map[string]any{"bad": make(chan int)}); err == nil {
		t.Error("unencodable object accepted")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TriggerEvent(acct, false, "charge.succeeded", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestAsyncDelivery(t *testing.T) {
	s, baseURL := startFake(t, WithAsyncDelivery())
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	rcv := newReceiver(t, http.StatusOK)
	gate := make(chan struct{})
	rcv.mu.Lock()
	rcv.gate = gate
	rcv.mu.Unlock()
	if _, err := clientsFor(baseURL, key).we.New(endpointParams(rcv.srv.URL, "*")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TriggerEvent(acct, false, "refund.created", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := s.WaitForDeliveries(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitForDeliveries while blocked = %v", err)
	}
	close(gate)
	if err := s.WaitForDeliveries(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := s.Deliveries(); len(d) != 1 || !d[0].Succeeded() {
		t.Errorf("deliveries = %+v", d)
	}
}

// TestRecordPastEventListsByCreated records events out of time order: lists are newest first
// by created time whatever the recording order, pages follow that order, and a created[gte] +
// created[lt] window holds exactly the events of [from, to).
func TestRecordPastEventListsByCreated(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := newFakeClock(now)
	s, baseURL := startFake(t, WithClock(clock.Now))
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	c := clientsFor(baseURL, key)

	live, err := s.TriggerEvent(acct, false, "charge.succeeded", nil) // created now
	if err != nil {
		t.Fatal(err)
	}
	byHour := map[int]string{}
	for _, h := range []int{5, 1, 3, 2, 4} { // hours ago, recorded out of order
		id, err := s.RecordPastEvent(acct, false, "charge.succeeded", "", now.Add(-time.Duration(h)*time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		byHour[h] = id
	}
	want := []string{live, byHour[1], byHour[2], byHour[3], byHour[4], byHour[5]}
	if got := listEventIDs(t, c, &stripe.EventListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(2)}}); !slices.Equal(got, want) {
		t.Errorf("paged list = %v, want newest first by created %v", got, want)
	}
	window := &stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{
		GreaterThanOrEqual: now.Add(-4 * time.Hour).Unix(), LesserThan: now.Add(-time.Hour).Unix()}}
	if got := listEventIDs(t, c, window); !slices.Equal(got, []string{byHour[2], byHour[3], byHour[4]}) {
		t.Errorf("window [-4h, -1h) = %v, want the events 2, 3 and 4 hours ago", got)
	}
	if _, err := s.RecordPastEvent(acct, false, "charge.succeeded", "", now.Add(-31*24*time.Hour), nil); err == nil {
		t.Error("an event older than the 30-day log was recorded")
	}
	if _, err := s.RecordPastEvent(acct, false, "charge.succeeded", "", now.Add(time.Hour), nil); err == nil {
		t.Error("an event in the future was recorded")
	}
}
