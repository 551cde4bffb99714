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

package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/event"
	"github.com/stripe/stripe-go/v76/webhookendpoint"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/relay/h1"
	"github.com/clinicpay/stripe-operator/internal/relay/httprelay"
	"github.com/clinicpay/stripe-operator/test/stripefake"
	"github.com/clinicpay/stripe-operator/test/testreport"
)

// flakySink is the clinic's system of record for TestNothingLost: while down it answers 503;
// while up it verifies the Clinicpay-Signature and stores each envelope once per
// Idempotency-Key, answering 200 without storing again when a key it already holds comes back
// (the idempotency the relay contract requires of targets).
type flakySink struct {
	up  atomic.Bool
	srv *httptest.Server

	mu       sync.Mutex
	posts    int             // every POST
	refused  int             // answered 503 while down
	downIDs  map[string]bool // Idempotency-Keys refused while down
	invalid  []string        // requests that failed verification (reported by the test)
	stored   map[string]int  // id -> times stored: 1 by construction of the idempotent store
	answered map[string]int  // id -> 2xx answers: >1 means the pipeline re-sent an accepted event
}

func newFlakySink(t *testing.T) *flakySink {
	s := &flakySink{stored: map[string]int{}, answered: map[string]int{}, downIDs: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *flakySink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts++
	if !s.up.Load() {
		s.refused++
		s.downIDs[r.Header.Get("Idempotency-Key")] = true
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	var env httprelay.Envelope
	switch {
	case err != nil:
		s.invalid = append(s.invalid, "unreadable body: "+err.Error())
	case sinkWebhook.Verify(body, r.Header) != nil:
		s.invalid = append(s.invalid, "bad Standard Webhooks signature for "+key)
	case httprelay.VerifySignature(r.Header.Get(httprelay.SignatureHeader), body, []byte(sinkKey), 0, time.Now()) != nil:
		s.invalid = append(s.invalid, "bad Clinicpay-Signature for "+key)
	case json.Unmarshal(body, &env) != nil || key == "" || env.ID != key || env.ClinicID != testClinic:
		s.invalid = append(s.invalid, fmt.Sprintf("envelope %.200q does not match Idempotency-Key %q", body, key))
	default:
		s.answered[key]++
		if s.stored[key] > 0 {
			w.WriteHeader(http.StatusOK) // already held: acknowledged, not stored again
			return
		}
		s.stored[key]++
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.WriteHeader(http.StatusBadRequest)
}

// nothingLostObject is the i-th triggered object, alternating two event types.
func nothingLostObject(i int) (string, map[string]any) {
	meta := map[string]string{"patient_id": fmt.Sprintf("p-%d", i)}
	if i%2 == 0 {
		return "payment_intent.succeeded", map[string]any{"id": fmt.Sprintf("pi_nl_%d", i), "object": "payment_intent",
			"amount": 1000 + i, "amount_received": 1000 + i, "currency": "usd", "status": "succeeded", "metadata": meta}
	}
	return "invoice.paid", map[string]any{"id": fmt.Sprintf("in_nl_%d", i), "object": "invoice", "amount_due": 700,
		"amount_paid": 700, "amount_remaining": 0, "currency": "usd", "status": "paid", "metadata": meta}
}

// TestNothingLost takes the clinic's system of record down while 1,000 events are triggered:
// Stripe (the fake, with a compressed retry schedule) delivers each to the real receiver, which
// answers 503 while the relay fails; once the sink is back, every event is downstream exactly
// once. RELIABILITY_FULL=1 triggers 5,000 events with a 3 s outage.
func TestNothingLost(t *testing.T) {
	events, downFor, waitFor := 1000, 1500*time.Millisecond, 30*time.Second
	if reliabilityFull() {
		events, downFor, waitFor = 5000, 3*time.Second, 2*time.Minute
	}
	schedule := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
		400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond}

	// Stripe's side: its own connection pool, at most 128 connections to the endpoint (the
	// fake would otherwise open one per event: with the receiver's and the sink's ends, 4 file
	// descriptors per event in this one process) and all of them kept for reuse.
	stripeTransport := http.DefaultTransport.(*http.Transport).Clone()
	stripeTransport.MaxConnsPerHost = 128
	stripeTransport.MaxIdleConnsPerHost = 128
	t.Cleanup(stripeTransport.CloseIdleConnections)
	fake := stripefake.New(
		stripefake.WithAsyncDelivery(),
		stripefake.WithDeliveryRetries(schedule),
		stripefake.WithDeliveryLogLimit(20*events),
		stripefake.WithHTTPClient(&http.Client{Timeout: 10 * time.Second, Transport: stripeTransport}),
	)
	baseURL, err := fake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	const apiKey = "sk_test_nothingLost0123456789abcdef"
	acct := fake.AddKey(apiKey, stripefake.KeyOptions{})
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(baseURL),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		MaxNetworkRetries: stripe.Int64(0),
	})

	// The receiver's listener first: the endpoint needs its URL, the receiver the endpoint's secret.
	webhookLn, opsLn := listen(t), listen(t)
	we, err := (&webhookendpoint.Client{B: backend, Key: apiKey}).New(&stripe.WebhookEndpointParams{
		URL:           stripe.String("http://" + webhookLn.Addr().String() + testPath),
		EnabledEvents: stripe.StringSlice([]string{"payment_intent.succeeded", "invoice.paid"}),
		APIVersion:    stripe.String(stripe.APIVersion),
	})
	if err != nil {
		t.Fatal(err)
	}

	sink := newFlakySink(t)
	keyFile := filepath.Join(t.TempDir(), "hmacKey")
	writeFile(t, keyFile, sinkKey+"\n")
	// The receiver's HTTP client as cmd/receiver builds it when no proxy applies: its own h1
	// transport, at most 64 connections to the system of record.
	relayTransport := h1.New(h1.Config{MaxConns: 64})
	t.Cleanup(relayTransport.CloseIdleConnections)
	target, err := httprelay.New(httprelay.Config{URL: sink.srv.URL, SigningKeyFile: keyFile, Timeout: 5 * time.Second,
		HTTPClient: &http.Client{Transport: relayTransport}})
	if err != nil {
		t.Fatal(err)
	}
	// net/http's Shutdown counts a connection that has not sent its first request as busy for
	// 5 s (golang/go#22682), and the fake's transport can leave one such connection in its pool
	// when a dial loses the race to a freed connection: a drain bound of 5 s failed on exactly
	// that. The production default (ForwardTimeout + 5 s) is above it; so is this one.
	f := newFixture(t, we.Secret+"\n", []relay.Target{target}, func(c *Config) { c.ShutdownTimeout = 10 * time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.r.Serve(ctx, webhookLn, opsLn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return within 20 s of its context ending")
		}
	})

	// The outage: every event is triggered while the sink is down, which it stays for downFor
	// and at least until it has refused every event once (triggering can take longer than
	// downFor on a loaded machine or under -race).
	start := time.Now()
	ids := make([]string, 0, events)
	for i := range events {
		typ, obj := nothingLostObject(i)
		id, err := fake.TriggerEvent(acct, false, typ, obj)
		if err != nil {
			t.Fatalf("triggering event %d: %v", i, err)
		}
		ids = append(ids, id)
	}
	triggered := time.Since(start)
	time.Sleep(time.Until(start.Add(downFor)))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		sink.mu.Lock()
		refusedIDs := len(sink.downIDs)
		sink.mu.Unlock()
		if refusedIDs == events {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d events reached the sink while it was down", refusedIDs, events)
		}
	}
	sink.mu.Lock()
	refusedWhileDown, storedWhileDown := sink.refused, len(sink.stored)
	sink.up.Store(true)
	sink.mu.Unlock()
	recovered := time.Now()
	outage := recovered.Sub(start)

	wctx, wcancel := context.WithTimeout(context.Background(), waitFor)
	defer wcancel()
	if err := fake.WaitForDeliveries(wctx); err != nil {
		t.Fatalf("deliveries still pending %s after the sink recovered: %v", time.Since(recovered), err)
	}
	drained := time.Since(recovered)

	// Downstream: every triggered id stored once, nothing else, and nothing re-sent after the
	// sink accepted it.
	sink.mu.Lock()
	stored, answered, invalid := maps.Clone(sink.stored), maps.Clone(sink.answered), slices.Clone(sink.invalid)
	posts := sink.posts
	sink.mu.Unlock()
	if storedWhileDown != 0 || refusedWhileDown == 0 {
		t.Errorf("during the outage the sink stored %d events and refused %d requests; want 0 stored and some refused",
			storedWhileDown, refusedWhileDown)
	}
	for _, msg := range invalid[:min(len(invalid), 5)] {
		t.Errorf("sink: %s", msg)
	}
	if len(invalid) > 5 {
		t.Errorf("sink: %d more invalid requests", len(invalid)-5)
	}
	missing, resent := 0, 0
	for _, id := range ids {
		switch n := stored[id]; {
		case n == 0:
			missing++
		case n > 1:
			t.Errorf("event %s stored %d times", id, n)
		}
		if answered[id] > 1 {
			resent++
		}
	}
	if missing > 0 || len(stored) != events {
		t.Errorf("sink holds %d distinct events, want %d; %d triggered events missing", len(stored), events, missing)
	}
	// The receiver answers 2xx only after the sink's 2xx and the fake stops retrying after a
	// 2xx, so no accepted event is POSTed again here. (In production one can be: a receiver
	// whose relay timed out after the clinic accepted, or another replica, relays it again,
	// and the Idempotency-Key keeps it to one stored copy.)
	if resent > 0 {
		t.Errorf("%d events reached the sink again after it had accepted them", resent)
	}

	// Stripe's side: each event delivered exactly once, after failed attempts during the outage.
	deliveries := fake.Deliveries()
	succeeded := map[string]int{}
	attempts := map[string]int{}
	status503, transportErrs, otherStatus := 0, 0, 0
	for _, d := range deliveries {
		attempts[d.EventID]++
		switch {
		case d.Succeeded():
			succeeded[d.EventID]++
		case d.Err != nil:
			transportErrs++
		case d.StatusCode == http.StatusServiceUnavailable:
			status503++
		default:
			otherStatus++
		}
	}
	maxAttempts := 0
	for _, id := range ids {
		if succeeded[id] != 1 {
			t.Errorf("the fake recorded %d successful deliveries of %s, want 1", succeeded[id], id)
		}
		maxAttempts = max(maxAttempts, attempts[id])
	}
	failedOnce := 0
	for _, id := range ids {
		if attempts[id] > succeeded[id] {
			failedOnce++
		}
	}
	if failedOnce != events || status503 < events {
		t.Errorf("%d of %d events had a failed delivery (%d answered 503): the outage was not exercised", failedOnce, events, status503)
	}
	if otherStatus > 0 {
		t.Errorf("%d deliveries got a status other than 2xx or 503", otherStatus)
	}
	if len(deliveries) != status503+transportErrs+otherStatus+events {
		t.Errorf("delivery log holds %d attempts, want %d (it may have been truncated)", len(deliveries), status503+transportErrs+otherStatus+events)
	}
	undelivered := countEvents(t, backend, apiKey, false)
	if undelivered != 0 {
		t.Errorf("Stripe lists %d events with delivery_success=false", undelivered)
	}

	// The receiver's own account of it.
	var relayed, failed float64
	for _, typ := range []string{"payment_intent.succeeded", "invoice.paid"} {
		relayed += counter(t, f.r.metrics.events.WithLabelValues(typ, resultRelayed))
		failed += counter(t, f.r.metrics.events.WithLabelValues(typ, resultFailed))
	}
	if int(relayed) != events || int(failed) != status503 {
		t.Errorf("receiver metrics: %v relayed, %v failed; want %d and %d", relayed, failed, events, status503)
	}
	if got := counter(t, f.r.metrics.duplicates); got != 0 {
		t.Errorf("receiver answered %v duplicates, want 0", got)
	}
	assertNoSecrets(t, "logs", f.logs.String(), we.Secret, sinkKey)

	testreport.Report(t, "%d events triggered in %s; sink down %s (refused %d relays). %d delivery attempts = %d first + %d retries "+
		"(%d answered 503 by the receiver, %d transport errors), at most %d attempts for one event; "+
		"all delivered %s after recovery (%s in total); sink saw %d POSTs, stored %d distinct events, %d re-sent after acceptance",
		events, triggered.Round(time.Millisecond), outage.Round(time.Millisecond), refusedWhileDown, len(deliveries), events, len(deliveries)-events,
		status503, transportErrs, maxAttempts, drained.Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
		posts, len(stored), resent)
}

// countEvents lists the account's events with the given delivery_success through stripe-go.
func countEvents(t *testing.T, backend stripe.Backend, apiKey string, deliverySuccess bool) int {
	t.Helper()
	it := (&event.Client{B: backend, Key: apiKey}).List(&stripe.EventListParams{DeliverySuccess: stripe.Bool(deliverySuccess)})
	n := 0
	for it.Next() {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatalf("listing events: %v", err)
	}
	return n
}
