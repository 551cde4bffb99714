package receiver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhookendpoint"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/relay/fhirrelay"
	"github.com/clinicpay/stripe-operator/internal/relay/httprelay"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// countingSink counts every POST by Idempotency-Key and always accepts.
type countingSink struct {
	mu    sync.Mutex
	posts map[string]int
}

func (s *countingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts[r.Header.Get("Idempotency-Key")]++
}

func (s *countingSink) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts[id]
}

// flakyFHIR answers its first failFirst POSTs 503, then honours conditional creates.
type flakyFHIR struct {
	mu        sync.Mutex
	failFirst int
	posts     int
	created   map[string]int // "<type> <If-None-Exist>" → creates
}

func (s *flakyFHIR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var res struct{ ResourceType string }
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts++
	if s.posts <= s.failFirst {
		http.Error(w, "database restarting", http.StatusServiceUnavailable)
		return
	}
	if json.Unmarshal(body, &res) != nil || res.ResourceType == "" {
		http.Error(w, "bad resource", http.StatusBadRequest)
		return
	}
	key := res.ResourceType + " " + strings.TrimPrefix(r.Header.Get("If-None-Exist"), "identifier=")
	w.Header().Set("Content-Type", "application/fhir+json")
	if s.created[key] > 0 {
		w.WriteHeader(http.StatusOK)
	} else {
		s.created[key]++
		w.WriteHeader(http.StatusCreated)
	}
	_, _ = w.Write(body)
}

func (s *flakyFHIR) snapshot() (int, map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.created {
		out[k] = v
	}
	return s.posts, out
}

// TestRetryGoesOnlyWhereItFailed: with an HTTP and a FHIR system of record, FHIR fails the first
// delivery while HTTP accepts it; the receiver answers 503, Stripe (the fake, retrying like
// Stripe) delivers again, and the retry reaches FHIR only. The HTTP sink sees the event once.
func TestRetryGoesOnlyWhereItFailed(t *testing.T) {
	fake := stripefake.New(stripefake.WithAsyncDelivery(),
		stripefake.WithDeliveryRetries([]time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}))
	baseURL, err := fake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	const apiKey = "sk_test_perTarget0123456789abcdef"
	acct := fake.AddKey(apiKey, stripefake.KeyOptions{})
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: stripe.String(baseURL),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}, MaxNetworkRetries: stripe.Int64(0)})
	webhookLn, opsLn := listen(t), listen(t)
	we, err := (&webhookendpoint.Client{B: backend, Key: apiKey}).New(&stripe.WebhookEndpointParams{
		URL:           stripe.String("http://" + webhookLn.Addr().String() + testPath),
		EnabledEvents: stripe.StringSlice([]string{"payment_intent.succeeded"}),
		APIVersion:    stripe.String(stripe.APIVersion),
	})
	if err != nil {
		t.Fatal(err)
	}

	httpSink := &countingSink{posts: map[string]int{}}
	fhirSink := &flakyFHIR{failFirst: 1, created: map[string]int{}}
	hsrv, fsrv := httptest.NewServer(httpSink), httptest.NewServer(fhirSink)
	t.Cleanup(hsrv.Close)
	t.Cleanup(fsrv.Close)
	ht, err := httprelay.New(httprelay.Config{URL: hsrv.URL + "/events", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ft, err := fhirrelay.New(fhirrelay.Config{BaseURL: fsrv.URL + "/r4", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, we.Secret+"\n", []relay.Target{ht, ft})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.r.Serve(ctx, webhookLn, opsLn) }()
	t.Cleanup(func() { cancel(); <-served })

	id, err := fake.TriggerEvent(acct, false, "payment_intent.succeeded", map[string]any{"id": "pi_pt_1",
		"object": "payment_intent", "amount": 4200, "amount_received": 4200, "currency": "usd", "status": "succeeded"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := fake.WaitForDeliveries(wctx); err != nil {
		t.Fatalf("deliveries still pending: %v", err)
	}

	var codes []int
	for _, d := range fake.Deliveries() {
		if d.EventID == id {
			codes = append(codes, d.StatusCode)
		}
	}
	if len(codes) != 2 || codes[0] != http.StatusServiceUnavailable || codes[1] != http.StatusOK {
		t.Fatalf("Stripe's attempts were answered %v, want [503 200]", codes)
	}
	if n := httpSink.count(id); n != 1 {
		t.Errorf("the HTTP system of record received the event %d times, want exactly once", n)
	}
	posts, created := fhirSink.snapshot()
	if posts != 2 || created["PaymentNotice https://stripe.com/payment_intents|pi_pt_1"] != 1 || len(created) != 1 {
		t.Errorf("FHIR got %d POSTs and created %v, want 2 POSTs (503, then the retry) and one PaymentNotice", posts, created)
	}
}
