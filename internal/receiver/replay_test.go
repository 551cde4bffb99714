package receiver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
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

// replayDuring starts a Stripe delivery of body (no marker) whose relay holds at gate, then a
// replay of it once that relay is in flight, and returns both answers after gate opens.
func replayDuring(t *testing.T, url string, body []byte, gate chan struct{}, inFlight func() bool) (stripeCode, replayCode int) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() { stripeCode, _ = deliver(t, url, body, "") })
	eventually(t, "Stripe's delivery to be relayed", inFlight)
	wg.Go(func() { replayCode, _ = deliver(t, url, body, sigheader.SignReplay(secretOld, time.Now(), body)) })
	time.Sleep(100 * time.Millisecond) // the replay reaches dedup and waits on the relay in flight
	close(gate)
	wg.Wait()
	return stripeCode, replayCode
}

// A replay that arrives while Stripe's delivery of the same event is being relayed waits for that
// relay and takes its outcome, success or failure, instead of relaying a second time alongside it.
func TestReplayJoinsRelayInFlight(t *testing.T) {
	for _, fails := range []bool{false, true} {
		t.Run(fmt.Sprintf("relay fails %v", fails), func(t *testing.T) {
			gate := make(chan struct{})
			target := &fakeTarget{name: "http", gate: gate}
			if fails {
				target.fail = func(int) error { return errDown }
			}
			f := newFixture(t, secretOld+"\n", []relay.Target{target})
			srv := httptest.NewServer(f.r.WebhookHandler())
			t.Cleanup(srv.Close)
			stripeCode, replayCode := replayDuring(t, srv.URL+testPath, goodBody(t, "evt_in_flight"), gate,
				func() bool { return len(target.calls()) == 1 })
			want := http.StatusOK
			if fails {
				want = http.StatusServiceUnavailable
			}
			if stripeCode != want || replayCode != want {
				t.Errorf("Stripe's delivery answered %d, the replay %d; want both %d", stripeCode, replayCode, want)
			}
			if n := len(target.calls()); n != 1 {
				t.Errorf("target called %d times, want 1: the replay joins the relay in flight", n)
			}
		})
	}
}

// Stripe's retry relays only to the targets that failed before. A replay joining it must still
// reach the others (the clinic asked for a re-send because a system of record lost data): after
// the retry's relay ends, the replay relays to the targets the retry left out, and only to them.
func TestReplayJoiningARetryReachesTheTargetsItSkips(t *testing.T) {
	httpT := &fakeTarget{name: "http"}
	fhirT := &fakeTarget{name: "fhir", fail: func(call int) error {
		if call == 0 {
			return errDown
		}
		return nil
	}}
	f := newFixture(t, secretOld+"\n", []relay.Target{httpT, fhirT})
	srv := httptest.NewServer(f.r.WebhookHandler())
	t.Cleanup(srv.Close)
	url, body := srv.URL+testPath, goodBody(t, "evt_partial")
	if code, status := deliver(t, url, body, ""); code != http.StatusServiceUnavailable {
		t.Fatalf("first delivery (FHIR down) = %d %s, want 503", code, status)
	}
	gate := make(chan struct{})
	fhirT.mu.Lock()
	fhirT.gate = gate
	fhirT.mu.Unlock()
	stripeCode, replayCode := replayDuring(t, url, body, gate, func() bool { return len(fhirT.calls()) == 2 })
	if stripeCode != http.StatusOK || replayCode != http.StatusOK {
		t.Errorf("Stripe's retry answered %d, the replay %d; want both 200", stripeCode, replayCode)
	}
	if n := len(httpT.calls()); n != 2 {
		t.Errorf("HTTP target called %d times, want 2 (the first delivery and the replay)", n)
	}
	if n := len(fhirT.calls()); n != 2 {
		t.Errorf("FHIR target called %d times, want 2 (the failed delivery and the retry the replay joined)", n)
	}
}
