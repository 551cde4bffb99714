package stripeclient

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripefake"
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
		"limit caps":              {types: nil, limit: 30, want: 30},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := c.ListEvents(context.Background(), time.Now().Add(-time.Hour), tc.types, tc.limit)
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
	if _, err := c.ListEvents(context.Background(), time.Now().Add(time.Hour), nil, 10); err != nil {
		t.Errorf("future since: %v", err)
	}
	_ = ids
}

func TestListEventsNeedsPermission(t *testing.T) {
	fake, url := newFake(t)
	key := "rk_test_noEventRead000000000000"
	fake.AddKey(key, stripefake.KeyOptions{Permissions: []string{stripefake.PermWebhookRead}})
	_, err := NewFactory(Config{BaseURL: url}).For(key, v1alpha1.ModeTest, "").ListEvents(context.Background(), time.Now().Add(-time.Hour), nil, 10)
	var se *Error
	if !errors.As(err, &se) || se.Kind != KindPermissionDenied || se.Permission != stripefake.PermEventRead {
		t.Fatalf("err = %v, want PermissionDenied naming %s", err, stripefake.PermEventRead)
	}
}
