package controller

import (
	"context"
	"encoding/json"
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

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/receiver"
	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/relay/fhirrelay"
	"github.com/clinicpay/stripe-operator/internal/relay/httprelay"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// httpSink is the clinic's plain HTTP system of record. It can refuse its next requests with 503.
type httpSink struct {
	mu       sync.Mutex
	byKey    map[string]int // Idempotency-Key (event id) → times accepted
	failNext int
	refused  int
}

func (s *httpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		s.refused++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	s.byKey[r.Header.Get("Idempotency-Key")]++
}

func (s *httpSink) snapshot() (map[string]int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.byKey {
		out[k] = v
	}
	return out, s.refused
}

// fhirSink is a FHIR server that honours conditional create (If-None-Exist: identifier=…).
type fhirSink struct {
	mu        sync.Mutex
	resources map[string]int // "<type> <identifier>" → times created
}

func (s *fhirSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var res struct{ ResourceType string }
	if r.Method != http.MethodPost || json.Unmarshal(body, &res) != nil || res.ResourceType == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	cond := strings.TrimPrefix(r.Header.Get("If-None-Exist"), "identifier=")
	key := res.ResourceType + " " + cond
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+json")
	if cond != "" && s.resources[key] > 0 {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
		return
	}
	s.resources[key]++
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(body)
}

func (s *fhirSink) created() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.resources {
		out[k] = v
	}
	return out
}

// TestEndToEndNothingLost runs the whole path without a kubelet: the operator registers the
// endpoint and writes the signing Secret; the test plays the kubelet, mounting that Secret for a
// receiver running in-process with the real HTTP and FHIR relays; the Stripe fake delivers signed
// events to it and retries failures like Stripe.
func TestEndToEndNothingLost(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	hs := &httpSink{byKey: map[string]int{}}
	fs := &fhirSink{resources: map[string]int{}}
	hsrv, fsrv := httptest.NewServer(hs), httptest.NewServer(fs)
	t.Cleanup(hsrv.Close)
	t.Cleanup(fsrv.Close)
	webhookLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)

	const clinic = "clinic-e2e"
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	si := integration(ns, clinic, clinic, v1.ModeTest, "keys")
	si.Spec.Webhook = &v1.WebhookSpec{URL: fmt.Sprintf("http://%s/stripe/webhook-test/%s", webhookLn.Addr(), clinic)}
	si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{
		HTTP: &v1.HTTPTarget{URL: hsrv.URL + "/stripe-events"},
		FHIR: &v1.FHIRTarget{BaseURL: fsrv.URL + "/r4"},
	}}
	mustCreate(t, credentialsSecret(ns, "keys", k), si)
	si = waitCondition(t, ns, clinic, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)

	// The kubelet's part: mount the signing Secret the operator wrote, run the receiver with the
	// arguments the operator put in the Deployment, and report the Deployment available.
	dir := t.TempDir()
	secretFile := filepath.Join(dir, v1.SigningSecretKey)
	must(t, os.WriteFile(secretFile, signingSecret(t, si).Data[v1.SigningSecretKey], 0o600))
	startReceiver(t, si, secretFile, hsrv.URL+"/stripe-events", fsrv.URL+"/r4", webhookLn, opsLn)
	markAvailable(t, ns, receiverName(si))
	waitCondition(t, ns, clinic, v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)

	acct := fake.AccountForKey(k.secret)
	var ids []string
	trigger := func(n int) {
		for range n {
			id, err := fake.TriggerEvent(acct, false, "payment_intent.succeeded", paymentIntent(len(ids)))
			must(t, err)
			ids = append(ids, id)
		}
	}
	trigger(10)
	eventually(t, waitShort, "10 events relayed once each", func() (bool, string) {
		got, _ := hs.snapshot()
		return exactlyOnce(got, ids), fmt.Sprint(len(got))
	})

	// The clinic's system goes down for a while: Stripe (the fake) retries, nothing is lost.
	hs.mu.Lock()
	hs.failNext = 8
	hs.mu.Unlock()
	trigger(10)
	eventually(t, 20*time.Second, "all 20 events present exactly once after the outage", func() (bool, string) {
		got, refused := hs.snapshot()
		return exactlyOnce(got, ids) && refused == 8, fmt.Sprintf("%d events, %d refused", len(got), refused)
	})
	// FHIR writes are conditional creates: one PaymentNotice per payment, none twice. The HTTP
	// sink counts an event before the receiver's FHIR write for it returns, so wait here too.
	eventually(t, waitShort, "20 PaymentNotices", func() (bool, string) {
		notices, dup := 0, ""
		for key, n := range fs.created() {
			if n != 1 {
				dup = key
			}
			if strings.HasPrefix(key, "PaymentNotice ") {
				notices++
			}
		}
		if dup != "" {
			t.Fatalf("FHIR resource %s created more than once", dup)
		}
		return notices == 20, fmt.Sprintf("%d PaymentNotices", notices)
	})
}

func exactlyOnce(got map[string]int, ids []string) bool {
	if len(got) != len(ids) {
		return false
	}
	for _, id := range ids {
		if got[id] != 1 {
			return false
		}
	}
	return true
}

func paymentIntent(i int) map[string]any {
	return map[string]any{
		"id": fmt.Sprintf("pi_e2e%04d", i), "object": "payment_intent", "amount": 2500 + i, "amount_received": 2500 + i,
		"currency": "usd", "status": "succeeded", "customer": "cus_e2e", "created": time.Now().Unix(),
		"metadata": map[string]any{"patient_id": "pat-1", "claim_id": fmt.Sprintf("claim-%d", i)},
	}
}

// startReceiver runs the receiver as cmd/receiver wires it, on the given listeners.
func startReceiver(t *testing.T, si *v1.StripeIntegration, secretFile, httpURL, fhirURL string, webhookLn, opsLn net.Listener) {
	t.Helper()
	startReceiverLogging(t, si, secretFile, httpURL, fhirURL, webhookLn, opsLn, logr.Discard())
}

// startReceiverLogging is startReceiver with the receiver's log going to log.
func startReceiverLogging(t *testing.T, si *v1.StripeIntegration, secretFile, httpURL, fhirURL string, webhookLn, opsLn net.Listener,
	log logr.Logger) {
	t.Helper()
	ht, err := httprelay.New(httprelay.Config{URL: httpURL, Timeout: 5 * time.Second})
	must(t, err)
	ft, err := fhirrelay.New(fhirrelay.Config{BaseURL: fhirURL, Timeout: 5 * time.Second})
	must(t, err)
	serveReceiver(t, si, secretFile, []relay.Target{ht, ft}, webhookLn, opsLn, log)
}

// serveReceiver runs the receiver for si, as cmd/receiver wires it, with the given targets on the
// given listeners until the test ends, and waits until it is ready.
func serveReceiver(t *testing.T, si *v1.StripeIntegration, secretFile string, targets []relay.Target, webhookLn, opsLn net.Listener,
	log logr.Logger) {
	t.Helper()
	mode, err := receiver.ParseMode(string(si.Spec.Mode))
	must(t, err)
	rcv, err := receiver.New(receiver.Config{
		ClinicID: si.Spec.ClinicID, Mode: mode, SigningSecretFile: secretFile,
		WebhookBindAddress: webhookLn.Addr().String(), OpsBindAddress: opsLn.Addr().String(),
	}, targets, log, prometheus.NewRegistry())
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rcv.Serve(ctx, webhookLn, opsLn)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	eventually(t, waitShort, "receiver ready", func() (bool, string) { return rcv.Ready(), "not ready" })
}
