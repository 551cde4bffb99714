package receiver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
)

// deliver POSTs body over real HTTP with a Stripe signature and, when set, a replay marker.
func deliver(t *testing.T, url string, body []byte, replayMarker string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Stripe-Signature", sign(body, secretOld, time.Now()))
	if replayMarker != "" {
		req.Header.Set(sigheader.ReplayHeader, replayMarker)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var got response
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, got.Status
}

// A replay (marked by the operator with the signing secret) reaches the targets again although
// this replica relayed the event before; a forged, stale or copied marker gets the dedup answer.
func TestReplayIsRelayedAgain(t *testing.T) {
	target := &fakeTarget{name: "http"}
	f := newFixture(t, secretOld+"\n", []relay.Target{target})
	srv := httptest.NewServer(f.r.WebhookHandler())
	t.Cleanup(srv.Close)
	url := srv.URL + testPath
	body := goodBody(t, "evt_replayed")
	now := time.Now()

	if code, status := deliver(t, url, body, ""); code != http.StatusOK || status != resultRelayed {
		t.Fatalf("first delivery = %d %s", code, status)
	}
	if code, status := deliver(t, url, body, ""); code != http.StatusOK || status != resultDuplicate {
		t.Fatalf("Stripe's second delivery = %d %s, want duplicate", code, status)
	}
	for name, marker := range map[string]string{
		"forged with another secret": sigheader.SignReplay(secretUnknown, now, body),
		"over another body":          sigheader.SignReplay(secretOld, now, goodBody(t, "evt_other")),
		"stale":                      sigheader.SignReplay(secretOld, now.Add(-SignatureTolerance-time.Minute), body),
		"a copied Stripe-Signature":  sign(body, secretOld, now),
		"garbage":                    "t=x,v1=zz",
	} {
		if code, status := deliver(t, url, body, marker); code != http.StatusOK || status != resultDuplicate {
			t.Errorf("replay marker %s: %d %s, want 200 duplicate", name, code, status)
		}
	}
	if n := len(target.calls()); n != 1 {
		t.Fatalf("target called %d times before the replay, want 1", n)
	}

	if code, status := deliver(t, url, body, sigheader.SignReplay(secretOld, time.Now(), body)); code != http.StatusOK || status != resultRelayed {
		t.Fatalf("replay = %d %s, want 200 relayed", code, status)
	}
	calls := target.calls()
	if len(calls) != 2 || calls[1].Stripe.ID != "evt_replayed" {
		t.Fatalf("target saw %d calls after the replay, want 2 (the replay relayed again)", len(calls))
	}
	// The replay leaves the id remembered once: Stripe's next retry is still a duplicate.
	if code, status := deliver(t, url, body, ""); code != http.StatusOK || status != resultDuplicate {
		t.Errorf("delivery after the replay = %d %s, want duplicate", code, status)
	}
	if n := f.r.dedup.len(); n != 1 {
		t.Errorf("dedup holds %d ids, want 1", n)
	}
}
