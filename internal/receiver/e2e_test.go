package receiver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhookendpoint"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/relay/httprelay"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

const sinkKey = "clinic-hmac-key-0123456789"

// sinkWebhook verifies envelopes with the Standard Webhooks reference library, configured with
// the secret the clinic is told to use for a plain key file.
var sinkWebhook = func() *standardwebhooks.Webhook {
	wh, err := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte(sinkKey)))
	if err != nil {
		panic(err)
	}
	return wh
}()

// sink is the clinic's system of record: it verifies the Clinicpay-Signature and records the
// envelopes it accepted by Idempotency-Key, answering 503 to its first failFirst requests.
type sink struct {
	t         *testing.T
	mu        sync.Mutex
	failFirst int
	requests  int
	accepted  map[string][]httprelay.Envelope
	srv       *httptest.Server
}

func newSink(t *testing.T) *sink {
	s := &sink{t: t, accepted: map[string][]httprelay.Envelope{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	// The clinic verifies as a clinic would: with the Standard Webhooks library, given
	// "whsec_" + base64 of the plain key, and the deprecated header with our own verifier.
	if err := sinkWebhook.Verify(body, r.Header); err != nil {
		s.t.Errorf("sink: bad Standard Webhooks signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := httprelay.VerifySignature(r.Header.Get(httprelay.SignatureHeader), body, []byte(sinkKey), 0, time.Now()); err != nil {
		s.t.Errorf("sink: bad Clinicpay-Signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var env httprelay.Envelope
	if err := json.Unmarshal(body, &env); err != nil || env.ID != r.Header.Get("Idempotency-Key") {
		s.t.Errorf("sink: envelope %q (err %v) does not match Idempotency-Key %q", body, err, r.Header.Get("Idempotency-Key"))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.requests <= s.failFirst {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	s.accepted[env.ID] = append(s.accepted[env.ID], env)
	w.WriteHeader(http.StatusAccepted)
}

func (s *sink) failNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failFirst = s.requests + n
}

func (s *sink) snapshot() map[string][]httprelay.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]httprelay.Envelope, len(s.accepted))
	for k, v := range s.accepted {
		out[k] = append([]httprelay.Envelope(nil), v...)
	}
	return out
}

// e2eObject returns the i-th test event: a mix of the types a clinic subscribes to.
func e2eObject(i int) (string, map[string]any) {
	meta := map[string]string{"patient_id": fmt.Sprintf("p-%d", i)}
	switch i % 4 {
	case 0:
		return "payment_intent.succeeded", map[string]any{"id": fmt.Sprintf("pi_%d", i), "object": "payment_intent",
			"amount": 1000 + i, "amount_received": 1000 + i, "currency": "usd", "status": "succeeded", "customer": "cus_1", "metadata": meta}
	case 1:
		return "charge.refunded", map[string]any{"id": fmt.Sprintf("ch_%d", i), "object": "charge", "amount": 5000,
			"amount_refunded": 1500, "refunded": false, "currency": "eur", "status": "succeeded", "payment_intent": "pi_0", "metadata": meta}
	case 2:
		return "invoice.paid", map[string]any{"id": fmt.Sprintf("in_%d", i), "object": "invoice", "amount_due": 700,
			"amount_paid": 700, "amount_remaining": 0, "currency": "usd", "status": "paid", "customer": "cus_1", "metadata": meta}
	default:
		return "customer.created", map[string]any{"id": fmt.Sprintf("cus_%d", i), "object": "customer",
			"email": "patient@example.com", "name": "A Patient", "metadata": meta}
	}
}

// TestEndToEnd runs Stripe (the fake, with retries) -> receiver -> httprelay -> clinic sink,
// all on loopback, with the endpoint and its secret created through stripe-go.
func TestEndToEnd(t *testing.T) {
	fake := stripefake.New(stripefake.WithDeliveryRetries([]time.Duration{
		20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond,
		320 * time.Millisecond, 640 * time.Millisecond, 1280 * time.Millisecond,
	}))
	baseURL, err := fake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	const apiKey = "sk_test_e2eKey0123456789abcdefghij"
	acct := fake.AddKey(apiKey, stripefake.KeyOptions{})
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(baseURL),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		MaxNetworkRetries: stripe.Int64(0),
	})
	endpoints := webhookendpoint.Client{B: backend, Key: apiKey}

	// The receiver's address must be known to create the endpoint, whose secret it then needs.
	rcvSrv := httptest.NewUnstartedServer(nil)
	t.Cleanup(rcvSrv.Close)
	we, err := endpoints.New(&stripe.WebhookEndpointParams{
		URL:           stripe.String("http://" + rcvSrv.Listener.Addr().String() + testPath),
		EnabledEvents: stripe.StringSlice([]string{"payment_intent.succeeded", "charge.refunded", "invoice.paid", "customer.created"}),
		APIVersion:    stripe.String(stripe.APIVersion),
	})
	if err != nil {
		t.Fatal(err)
	}
	clinic := newSink(t)
	keyFile := filepath.Join(t.TempDir(), "hmacKey")
	writeFile(t, keyFile, sinkKey+"\n")
	target, err := httprelay.New(httprelay.Config{URL: clinic.srv.URL, SigningKeyFile: keyFile, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, we.Secret+"\n", []relay.Target{target})
	rcvSrv.Config.Handler = f.r.WebhookHandler()
	rcvSrv.Start()

	trigger := func(from, to int) []string {
		var ids []string
		for i := from; i < to; i++ {
			typ, obj := e2eObject(i)
			id, err := fake.TriggerEvent(acct, false, typ, obj)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := fake.WaitForDeliveries(ctx); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	checkExactlyOnce := func(ids []string, wantTotal int) {
		t.Helper()
		got := clinic.snapshot()
		if len(got) != wantTotal {
			t.Errorf("sink holds %d events, want %d", len(got), wantTotal)
		}
		for _, id := range ids {
			if n := len(got[id]); n != 1 {
				t.Errorf("event %s accepted %d times, want exactly once", id, n)
			}
		}
	}

	phase1 := trigger(0, 20)
	checkExactlyOnce(phase1, 20)
	checkEnvelopes(t, clinic.snapshot(), phase1)

	// The clinic goes down for its next 15 requests: the receiver answers 503, the fake
	// retries, and once the clinic recovers every event is there once.
	clinic.failNext(15)
	phase2 := trigger(20, 30)
	checkExactlyOnce(append(phase1, phase2...), 30)

	failedAttempts := 0
	delivered := map[string]bool{}
	for _, d := range fake.Deliveries() {
		if d.Succeeded() {
			delivered[d.EventID] = true
		} else if d.StatusCode == http.StatusServiceUnavailable {
			failedAttempts++
		}
	}
	if failedAttempts != 15 || len(delivered) != 30 {
		t.Errorf("fake saw %d failed attempts (want 15) and %d delivered events (want 30)", failedAttempts, len(delivered))
	}
	if got := counter(t, f.r.metrics.events.WithLabelValues("charge.refunded", resultRelayed)) +
		counter(t, f.r.metrics.events.WithLabelValues("payment_intent.succeeded", resultRelayed)) +
		counter(t, f.r.metrics.events.WithLabelValues("invoice.paid", resultRelayed)) +
		counter(t, f.r.metrics.events.WithLabelValues("customer.created", resultRelayed)); got != 30 {
		t.Errorf("relayed events metric = %v, want 30", got)
	}
	assertNoSecrets(t, "logs", f.logs.String(), we.Secret, sinkKey)
}

// checkEnvelopes spot-checks the compact envelope the clinic received for each type.
func checkEnvelopes(t *testing.T, got map[string][]httprelay.Envelope, ids []string) {
	t.Helper()
	for i, id := range ids {
		env := got[id][0]
		typ, obj := e2eObject(i)
		if env.Type != typ || env.ClinicID != testClinic || env.Livemode || env.Object.ID != obj["id"] ||
			env.Object.Metadata["patient_id"] != fmt.Sprintf("p-%d", i) {
			t.Errorf("event %d envelope = %+v", i, env)
		}
		switch typ {
		case "charge.refunded":
			if env.Object.AmountRefunded == nil || *env.Object.AmountRefunded != 1500 || env.Object.AmountDecimal != "50.00" {
				t.Errorf("charge envelope = %+v", env.Object)
			}
		case "customer.created":
			if env.Object.Status != "" || env.Object.Amount != nil {
				t.Errorf("customer envelope carries more than id and metadata: %+v", env.Object)
			}
		}
	}
}
