package controller

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/receiver"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// verifyingSink stands in for the receiver where only the signature matters: it accepts what
// stripe-go's webhook package verifies with the clinic's signing secret (signature, 300 s
// tolerance), in any API version, as the receiver does.
type verifyingSink struct {
	mu       sync.Mutex
	secret   string
	received map[string]string // event id → type
	rejected int
}

func (s *verifyingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), s.secret,
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		s.rejected++
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.received[ev.ID] = string(ev.Type)
	answerRelayed(w)
}

// answerRelayed answers a replayed delivery as the receiver does when its systems of record took it.
func answerRelayed(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"`+sigheader.ReplayStatusRelayed+`","message":"accepted by every system of record"}`)
}

// replayEvent is one event the test puts in the clinic's Stripe event log.
type replayEvent struct {
	typ, apiVersion string
	object          map[string]any
}

// TestReplayRedeliversSignedEvents replays through the real receiver (HTTP and FHIR relays) into
// sinks that count what they accept: every enabled event arrives whatever API version Stripe
// renders it in, and a second replay, after the receiver already relayed them, brings each one
// again (the clinic asked for a re-send).
func TestReplayRedeliversSignedEvents(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-rp")
	markAvailable(t, ns, receiverName(si))
	si = waitCondition(t, ns, "clinic-rp", v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
	hs := startReplayReceiver(t, si)

	acct := fake.AccountForKey(k.secret)
	var enabled []string
	// Stripe lists each event in the API version in force when it was created: a mix, older
	// and newer than the operator's pinned one.
	for _, ev := range []replayEvent{
		{"charge.succeeded", "2020-08-27", map[string]any{"id": "ch_0", "object": "charge", "amount": 1000, "currency": "usd"}},
		{"charge.succeeded", "2023-10-16", map[string]any{"id": "ch_1", "object": "charge", "amount": 1000, "currency": "usd"}},
		{"charge.succeeded", "2024-06-20", map[string]any{"id": "ch_2", "object": "charge", "amount": 1000, "currency": "usd"}},
		{"customer.created", "2020-08-27", map[string]any{"id": "cus_3", "object": "customer"}},
		{"customer.created", "2024-06-20", map[string]any{"id": "cus_4", "object": "customer"}},
		{"charge.updated", "2024-06-20", map[string]any{"id": "ch_5", "object": "charge", "amount": 1000, "currency": "usd"}},
	} {
		id, err := fake.TriggerEventVersion(acct, false, ev.typ, ev.apiVersion, ev.object)
		must(t, err)
		if ev.typ != "charge.updated" { // not among the endpoint's enabled events
			enabled = append(enabled, id)
		}
	}
	since := time.Now().Add(-time.Hour).UTC().Truncate(time.Minute)
	annotate(t, si, since.Format(time.RFC3339))
	got := waitReplay(t, ns, "clinic-rp", since.Format(time.RFC3339))
	if got.Phase != v1.ReplaySucceeded || got.Delivered != 5 || got.Failed != 0 {
		t.Fatalf("replay = %+v, want Succeeded with 5 delivered (charge.updated is not enabled)", got)
	}
	wantEachTimes(t, hs, enabled, 1)
	waitEvent(t, ns, "clinic-rp", v1.EventReplayCompleted)

	// The same request does not run twice.
	time.Sleep(testResync + time.Second)
	wantEachTimes(t, hs, enabled, 1)

	// The clinic lost them again: a new request re-sends every event through the receiver, which
	// relayed them already and would answer "duplicate" without the replay marker.
	again := since.Add(-time.Minute).Format(time.RFC3339)
	annotate(t, getSI(t, ns, "clinic-rp"), again)
	got = waitReplay(t, ns, "clinic-rp", again)
	if got.Phase != v1.ReplaySucceeded || got.Delivered != 5 {
		t.Fatalf("second replay = %+v, want Succeeded with 5 delivered", got)
	}
	wantEachTimes(t, hs, enabled, 2)

	// A malformed request fails with a message, and is not retried.
	annotate(t, getSI(t, ns, "clinic-rp"), "yesterday")
	got = waitReplay(t, ns, "clinic-rp", "yesterday")
	if got.Phase != v1.ReplayFailed {
		t.Errorf("invalid request: %+v", got)
	}
}

// startReplayReceiver runs the clinic's receiver in-process with its signing secret, relaying to
// an HTTP and a FHIR sink, and points the operator's replays at it.
func startReplayReceiver(t *testing.T, si *v1.StripeIntegration) *httpSink {
	t.Helper()
	hs := &httpSink{byKey: map[string]int{}}
	fs := &fhirSink{resources: map[string]int{}}
	hsrv, fsrv := httptest.NewServer(hs), httptest.NewServer(fs)
	t.Cleanup(hsrv.Close)
	t.Cleanup(fsrv.Close)
	webhookLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	secretFile := filepath.Join(t.TempDir(), v1.SigningSecretKey)
	must(t, os.WriteFile(secretFile, signingSecret(t, si).Data[v1.SigningSecretKey], 0o600))
	startReceiver(t, si, secretFile, hsrv.URL+"/stripe-events", fsrv.URL+"/r4", webhookLn, opsLn)
	clinic := si.Spec.ClinicID
	replayTargets.Store(clinic, "http://"+webhookLn.Addr().String()+receiver.WebhookPath(receiver.ModeTest, clinic))
	t.Cleanup(func() { replayTargets.Delete(clinic) })
	return hs
}

// waitReplay waits for the outcome of the replay request since.
func waitReplay(t *testing.T, ns, name, since string) *v1.ReplayStatus {
	t.Helper()
	var got *v1.ReplayStatus
	eventually(t, waitShort, "replay of "+since+" finished", func() (bool, string) {
		got = getSI(t, ns, name).Status.Replay
		return got != nil && got.Since == since && got.Phase != v1.ReplayRunning, fmt.Sprintf("%+v", got)
	})
	return got
}

// wantEachTimes checks that the HTTP sink accepted each id exactly n times and nothing else.
func wantEachTimes(t *testing.T, hs *httpSink, ids []string, n int) {
	t.Helper()
	got, _ := hs.snapshot()
	if len(got) != len(ids) {
		t.Fatalf("HTTP sink holds %d event ids, want %d: %v", len(got), len(ids), got)
	}
	for _, id := range ids {
		if got[id] != n {
			t.Errorf("HTTP sink accepted %s %d times, want %d", id, got[id], n)
		}
	}
}

func annotate(t *testing.T, si *v1.StripeIntegration, since string) {
	t.Helper()
	fresh := getSI(t, si.Namespace, si.Name)
	if fresh.Annotations == nil {
		fresh.Annotations = map[string]string{}
	}
	fresh.Annotations[v1.AnnotationReplaySince] = since
	must(t, k8sClient.Update(context.Background(), fresh))
}

// TestReplayCountsOnlyWhatTheReceiverRelayed: a receiver that answers a replay with "duplicate"
// (it did not take the replay marker: clocks apart, or an old receiver) relayed nothing, so the
// event counts as failed, not delivered; so do answers that are not the receiver's JSON.
func TestReplayCountsOnlyWhatTheReceiverRelayed(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		code    int
		body    string
		wantErr string
	}{
		"relayed":      {code: 200, body: `{"status":"relayed","message":"ok"}`},
		"acknowledged": {code: 200, body: `{"status":"acknowledged","message":"no system of record"}`},
		"duplicate":    {code: 200, body: `{"status":"duplicate","message":"already relayed"}`, wantErr: "did not take the replay marker"},
		"not JSON":     {code: 200, body: `ok`, wantErr: "without its JSON status"},
		"empty":        {code: 204, wantErr: "without its JSON status"},
		"failed":       {code: 503, body: `{"status":"failed"}`, wantErr: "HTTP 503"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.code)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			r := &StripeIntegrationReconciler{}
			err := r.deliverOne(context.Background(), srv.Client(), srv.URL, "whsec_test", stripeclient.RawEvent{ID: "evt_1", JSON: []byte(`{"id":"evt_1"}`)})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("deliverOne: %v, want delivered", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("deliverOne: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
