package stripeclient

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// Distinctive fake keys; the masked tail "QQZZ" is what Stripe's 401 would echo.
const (
	testKeyBody = "51TESTkeyBODYa1b2c3d4e5f6g7QQZZ"
	liveKeyBody = "51LIVEkeyBODYh8i9j0k1l2m3n4QQZZ"
	rakKeyBody  = "51RAKkeyBODYo5p6q7r8s9t0u1v2QQZZ"
	whsecBody   = "WHSECbodyx9y8z7w6v5u4t3s2r1"
	maskedTail  = "QQZZ"

	skTest = "sk_test_" + testKeyBody
	skLive = "sk_live_" + liveKeyBody
	rkTest = "rk_test_" + rakKeyBody
)

var keyBodies = []string{testKeyBody, liveKeyBody, rakKeyBody, whsecBody, maskedTail}

// assertNoKeyMaterial fails when s holds any part of a fake key beyond its prefix.
func assertNoKeyMaterial(t *testing.T, what, s string) {
	t.Helper()
	for _, b := range keyBodies {
		if strings.Contains(s, b) || (len(b) > 12 && strings.Contains(s, b[:12])) {
			t.Errorf("%s contains key material %q: %s", what, b, s)
		}
	}
}

// seen is one request as the fake Stripe received it.
type seen struct {
	Method, Path, Auth, Version string
	Limit, StartingAfter        string
}

// recorder collects requests from handlers running on server goroutines.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (r *recorder) add(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := req.URL.Query()
	r.reqs = append(r.reqs, seen{
		Method: req.Method, Path: req.URL.Path,
		Auth: req.Header.Get("Authorization"), Version: req.Header.Get("Stripe-Version"),
		Limit: q.Get("limit"), StartingAfter: q.Get("starting_after"),
	})
}

func (r *recorder) all() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

// newServer starts a fake Stripe on 127.0.0.1 that records requests, closed at cleanup.
func newServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

// testFactory points a Factory at srv with fast settings: no retries, generous rate.
func testFactory(t *testing.T, url string, mutate ...func(*Config)) *Factory {
	t.Helper()
	cfg := Config{BaseURL: url, CallTimeout: 2 * time.Second, MaxNetworkRetries: -1, TestRate: 1000, LiveRate: 1000, Burst: 100}
	for _, m := range mutate {
		m(&cfg)
	}
	return NewFactory(cfg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_test123")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeStripeError answers with Stripe's error envelope.
func writeStripeError(w http.ResponseWriter, status int, typ, code, msg, param string) {
	body := map[string]string{"type": typ, "message": msg}
	if code != "" {
		body["code"] = code
	}
	if param != "" {
		body["param"] = param
	}
	writeJSON(w, status, map[string]any{"error": body})
}

func endpointJSON(i int, livemode bool) map[string]any {
	return map[string]any{
		"id":             fmt.Sprintf("we_%03d", i),
		"object":         "webhook_endpoint",
		"url":            fmt.Sprintf("https://hooks.example.com/stripe/webhook/clinic-%d", i),
		"description":    fmt.Sprintf("clinic %d", i),
		"status":         "enabled",
		"api_version":    "2023-10-16",
		"enabled_events": []string{"payment_intent.succeeded", "charge.refunded"},
		"metadata":       map[string]string{"clinicID": fmt.Sprintf("clinic-%d", i)},
		"livemode":       livemode,
		"created":        1700000000,
	}
}

func listJSON(data []map[string]any, hasMore bool) map[string]any {
	return map[string]any{"object": "list", "url": "/v1/webhook_endpoints", "has_more": hasMore, "data": data}
}

// newFake starts the stateful Stripe fake on a loopback port, closed at cleanup.
func newFake(t *testing.T, opts ...stripefake.Option) (*stripefake.Server, string) {
	t.Helper()
	fake := stripefake.New(opts...)
	url, err := fake.Start()
	if err != nil {
		t.Fatalf("starting the Stripe fake: %v", err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	return fake, url
}

// operatorSpec is an endpoint shaped like the controller's: its events, a description and the
// five ownership tags.
func operatorSpec(clinic string) EndpointSpec {
	return EndpointSpec{
		URL: "https://hooks.example.com/stripe/webhook/" + clinic,
		EnabledEvents: []string{"payment_intent.succeeded", "payment_intent.payment_failed", "charge.succeeded",
			"charge.refunded", "invoice.payment_succeeded", "customer.created", "customer.updated"},
		Description: "stripe-operator: clinic " + clinic,
		Metadata: map[string]string{
			"clinicpay_managed_by": "stripe-operator", "clinicpay_namespace": "clinics", "clinicpay_name": clinic,
			"clinicpay_uid": "3f0c6a52-7d1e-4a8e-9a51-" + clinic, "clinicpay_clinic_id": clinic,
		},
		APIVersion: APIVersion,
	}
}

// idemKey is an Idempotency-Key shaped like the controller's.
func idemKey(attempt int) string {
	return fmt.Sprintf("stripe-operator/clinic-1/webhook-endpoint/%d", attempt)
}

// wantKind fails unless err classifies as kind.
func wantKind(t *testing.T, err error, kind ErrorKind) {
	t.Helper()
	_ = gotKind(t, err, kind) // the check is the point here; tests that look at the *Error call gotKind
}

// gotKind fails unless err classifies as kind, and returns the *Error.
func gotKind(t *testing.T, err error, kind ErrorKind) *Error {
	t.Helper()
	se := Classify(err)
	if se == nil || se.Kind != kind {
		t.Fatalf("error = %v, want kind %s", err, kind)
	}
	return se
}
