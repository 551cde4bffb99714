package stripeclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

func TestListEvents(t *testing.T) {
	fake, url := newFake(t)
	key := "sk_test_eventsListing0000000000"
	acct := fake.AddKey(key, stripefake.KeyOptions{})
	types := []string{"charge.succeeded", "payment_intent.succeeded", "customer.created"}
	ids := make([]string, 0, 250)
	for i := range 250 {
		id, err := fake.TriggerEvent(acct, false, types[i%3], map[string]any{"id": "obj_" + string(rune('a'+i%26)), "object": "charge"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	c := NewFactory(Config{BaseURL: url}).For(key, v1alpha1.ModeTest, "")

	cases := map[string]struct {
		types []string
		limit int
		want  int
	}{
		"all types, across pages": {types: nil, limit: 1000, want: 250},
		"wildcard":                {types: []string{"*"}, limit: 1000, want: 250},
		"filtered":                {types: []string{"charge.succeeded"}, limit: 1000, want: 84},
		"two types":               {types: []string{"charge.succeeded", "customer.created"}, limit: 1000, want: 167},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := c.ListEvents(context.Background(), EventWindow{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute), Types: tc.types,
				Max: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Fatalf("%d events, want %d", len(got), tc.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Created < got[i-1].Created {
					t.Fatal("events not oldest first")
				}
			}
			var ev struct {
				ID     string `json:"id"`
				Object string `json:"object"`
			}
			if err := json.Unmarshal(got[0].JSON, &ev); err != nil || ev.ID != got[0].ID || ev.Object != "event" {
				t.Errorf("raw JSON %s does not hold the event", got[0].JSON)
			}
		})
	}
	if got, err := c.ListEvents(context.Background(), EventWindow{From: time.Now().Add(time.Hour), To: time.Now().Add(2 * time.Hour)}); err != nil ||
		len(got) != 0 {
		t.Errorf("future window: %d events, %v", len(got), err)
	}
	if _, err := c.ListEvents(context.Background(), EventWindow{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute),
		Max: 120}); !errors.Is(err, ErrTooManyEvents) {
		t.Errorf("250 events with Max 120: err = %v, want ErrTooManyEvents", err)
	}
	_ = ids
}

// TestListEventsWindow lists a window of past events: exactly those created in [From, To),
// oldest first, across pages; and the pages are paced by EventListRate.
func TestListEventsWindow(t *testing.T) {
	fake, url := newFake(t)
	key := "sk_test_eventsWindow00000000000"
	acct := fake.AddKey(key, stripefake.KeyOptions{})
	now := time.Now().Truncate(time.Second)
	var inside []string
	for i := range 300 { // one event a minute, recorded newest first
		at := now.Add(-time.Duration(i+1) * time.Minute)
		id, err := fake.RecordPastEvent(acct, false, "charge.succeeded", "", at, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i >= 49 && i < 260 { // created in [now-260m, now-50m]
			inside = append(inside, id)
		}
	}
	slices.Reverse(inside)
	const rate = 10
	c := NewFactory(Config{BaseURL: url, EventListRate: rate}).For(key, v1alpha1.ModeTest, "")
	start := time.Now()
	got, err := c.ListEvents(context.Background(), EventWindow{From: now.Add(-260 * time.Minute), To: now.Add(-50*time.Minute + time.Second), Max: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(got))
	for _, ev := range got {
		ids = append(ids, ev.ID)
	}
	if !slices.Equal(ids, inside) {
		t.Fatalf("window holds %d events, want the %d created in it, oldest first", len(ids), len(inside))
	}
	// Three pages at 10 a second with a burst of one: at least 0.2 s.
	if took := time.Since(start); took < 2*time.Second/rate {
		t.Errorf("3 pages took %s: not paced at %d a second", took, rate)
	}
}

func TestListEventsNeedsPermission(t *testing.T) {
	fake, url := newFake(t)
	key := "rk_test_noEventRead000000000000"
	fake.AddKey(key, stripefake.KeyOptions{Permissions: []string{stripefake.PermWebhookRead}})
	_, err := NewFactory(Config{BaseURL: url}).For(key, v1alpha1.ModeTest, "").ListEvents(context.Background(),
		EventWindow{From: time.Now().Add(-time.Hour), To: time.Now()})
	var se *Error
	if !errors.As(err, &se) || se.Kind != KindPermissionDenied || se.Permission != stripefake.PermEventRead {
		t.Fatalf("err = %v, want PermissionDenied naming %s", err, stripefake.PermEventRead)
	}
}

// TestUndeliveredEvents: delivery_success=false finds the events an endpoint has not acknowledged
// (https://docs.stripe.com/api/events/list), in one request for HasUndeliveredEvents, and no more
// once they are delivered.
func TestUndeliveredEvents(t *testing.T) {
	fake, url := newFake(t)
	key := "sk_test_eventsUndelivered000000"
	acct := fake.AddKey(key, stripefake.KeyOptions{})
	var down atomic.Bool
	down.Store(true)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(sink.Close)
	c := NewFactory(Config{BaseURL: url}).For(key, v1alpha1.ModeTest, "")
	if _, _, err := c.CreateWebhookEndpoint(context.Background(), EndpointSpec{URL: sink.URL, EnabledEvents: []string{"charge.succeeded"}},
		"undelivered-1"); err != nil {
		t.Fatal(err)
	}
	undelivered, err := fake.TriggerEvent(acct, false, "charge.succeeded", map[string]any{"id": "ch_1", "object": "charge"})
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Hour)
	calls := fake.Calls(key)
	if pending, err := c.HasUndeliveredEvents(context.Background(), since, []string{"charge.succeeded"}); err != nil || !pending {
		t.Fatalf("pending = %t, %v; want true", pending, err)
	}
	if n := fake.Calls(key) - calls; n != 1 {
		t.Errorf("HasUndeliveredEvents made %d calls, want 1", n)
	}
	if pending, err := c.HasUndeliveredEvents(context.Background(), since, []string{"customer.created"}); err != nil || pending {
		t.Errorf("other types: pending = %t, %v; want false", pending, err)
	}
	got, err := c.ListEvents(context.Background(), EventWindow{From: since, To: time.Now().Add(time.Minute), Undelivered: true})
	if err != nil || len(got) != 1 || got[0].ID != undelivered {
		t.Fatalf("undelivered list = %d events, %v", len(got), err)
	}
	down.Store(false)
	if err := fake.Redeliver(undelivered); err != nil {
		t.Fatal(err)
	}
	if pending, err := c.HasUndeliveredEvents(context.Background(), since, nil); err != nil || pending {
		t.Errorf("after delivery: pending = %t, %v; want false", pending, err)
	}
	if got, err := c.ListEvents(context.Background(), EventWindow{From: since, To: time.Now().Add(time.Minute), Undelivered: true}); err != nil ||
		len(got) != 0 {
		t.Errorf("after delivery: %d undelivered, %v", len(got), err)
	}
}
