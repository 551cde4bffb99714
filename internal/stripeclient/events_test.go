package stripeclient

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
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
	var ids []string
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
			got, err := c.ListEvents(context.Background(), EventWindow{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute), Types: tc.types, Max: tc.limit})
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
	if got, err := c.ListEvents(context.Background(), EventWindow{From: time.Now().Add(time.Hour), To: time.Now().Add(2 * time.Hour)}); err != nil || len(got) != 0 {
		t.Errorf("future window: %d events, %v", len(got), err)
	}
	if _, err := c.ListEvents(context.Background(), EventWindow{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute), Max: 120}); !errors.Is(err, ErrTooManyEvents) {
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
	var ids []string
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
	_, err := NewFactory(Config{BaseURL: url}).For(key, v1alpha1.ModeTest, "").ListEvents(context.Background(), EventWindow{From: time.Now().Add(-time.Hour), To: time.Now()})
	var se *Error
	if !errors.As(err, &se) || se.Kind != KindPermissionDenied || se.Permission != stripefake.PermEventRead {
		t.Fatalf("err = %v, want PermissionDenied naming %s", err, stripefake.PermEventRead)
	}
}
