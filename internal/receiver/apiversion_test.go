package receiver

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/relay/httprelay"
)

// envelopeSink is a clinic's HTTP system of record that keeps the envelopes it accepted.
type envelopeSink struct {
	mu  sync.Mutex
	got []httprelay.Envelope
}

func (s *envelopeSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var env httprelay.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, env)
}

func (s *envelopeSink) envelopes() []httprelay.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]httprelay.Envelope(nil), s.got...)
}

// TestRelaysEveryAPIVersion: replayed events come in the API version of their creation, older
// or newer than stripe-go's; the receiver verifies and relays them, and the envelope names the
// version and carries the same amount.
func TestRelaysEveryAPIVersion(t *testing.T) {
	sink := &envelopeSink{}
	clinic := httptest.NewServer(sink)
	t.Cleanup(clinic.Close)
	target, err := httprelay.New(httprelay.Config{URL: clinic.URL + "/events", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, secretOld+"\n", []relay.Target{target})
	srv := httptest.NewServer(f.r.WebhookHandler())
	t.Cleanup(srv.Close)

	versions := []string{"2020-08-27", "2024-06-20"}
	for _, v := range versions {
		body := eventBody(t, "evt_v"+v, "payment_intent.succeeded", false, v)
		if code, status := deliver(t, srv.URL+testPath, body, ""); code != http.StatusOK || status != resultRelayed {
			t.Fatalf("event at %s: %d %s, want 200 relayed", v, code, status)
		}
	}
	got := sink.envelopes()
	if len(got) != len(versions) {
		t.Fatalf("clinic received %d envelopes, want %d", len(got), len(versions))
	}
	for i, env := range got {
		if env.ID != "evt_v"+versions[i] || env.APIVersion != versions[i] || env.Object.Amount == nil ||
			*env.Object.Amount != 1234 || env.Object.AmountDecimal != "12.34" {
			t.Errorf("envelope %d = %+v", i, env)
		}
	}
}
