package fhirrelay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

const testToken = "fhir-tok-6f1d0c9a2b7e4f58a3c1d2e3f4a5b6c7"

// writeToken writes a token file the way a hand-made Secret often is: with a newline.
func writeToken(t *testing.T, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func newDeliverTarget(t *testing.T, f *fakeFHIR, cfg Config) *Target {
	t.Helper()
	cfg.BaseURL = f.baseURL()
	if cfg.TokenFile == "" && f.token != "" {
		cfg.TokenFile = writeToken(t, f.token)
	}
	return newTestTarget(t, cfg)
}

func TestDeliverConditionalCreate(t *testing.T) {
	f := newFakeFHIR(t, testToken)
	target := newDeliverTarget(t, f, Config{})
	if err := target.Deliver(context.Background(), loadEvent(t, "payment_intent.succeeded", nil)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	reqs := f.requestLog()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	eq(t, "method", r.method, http.MethodPost)
	eq(t, "path", r.path, "/r4/PaymentNotice")
	eq(t, "status", r.status, http.StatusCreated)
	eq(t, "Content-Type", r.header.Get("Content-Type"), "application/fhir+json")
	eq(t, "Accept", r.header.Get("Accept"), "application/fhir+json")
	eq(t, "Authorization", r.header.Get("Authorization"), "Bearer "+testToken)
	eq(t, "If-None-Exist", r.header.Get("If-None-Exist"),
		"identifier=https://stripe.com/payment_intents|pi_3OjK2pLq8sTuVwXy1HiJkLmN")
	eq(t, "stored PaymentNotices", f.count("PaymentNotice"), 1)
}

func TestDeliverWithoutTokenFileSendsNoAuthorization(t *testing.T) {
	f := newFakeFHIR(t, "")
	target := newDeliverTarget(t, f, Config{})
	if err := target.Deliver(context.Background(), loadEvent(t, "customer.created", nil)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if auth, ok := f.requestLog()[0].header["Authorization"]; ok {
		t.Errorf("Authorization sent without a token file: %q", auth)
	}
}

// Every default event type, delivered twice: the second round creates nothing and is still
// accepted (200). The three events of one payment write one PaymentNotice between them.
func TestDeliverRedeliveryCreatesNothingNew(t *testing.T) {
	f := newFakeFHIR(t, testToken)
	target := newDeliverTarget(t, f, Config{})
	secondRefund := func(e, o map[string]any) {
		e["id"] = "evt_3OjLq9Lq8sTuVwXy1RfNdEv2"
		o["amount_refunded"], o["refunded"] = 12550, true
		e["data"].(map[string]any)["previous_attributes"] = map[string]any{"amount_refunded": 5000}
	}
	events := []relay.Event{
		loadEvent(t, "customer.created", nil),
		loadEvent(t, "customer.updated", nil),
		loadEvent(t, "payment_intent.payment_failed", nil),
		loadEvent(t, "payment_intent.succeeded", nil),
		loadEvent(t, "charge.succeeded", nil),
		loadEvent(t, "invoice.payment_succeeded", nil),
		loadEvent(t, "charge.refunded", nil),
		loadEvent(t, "charge.refunded", secondRefund),
		loadEvent(t, "payout.paid", nil),
	}
	deliverAll := func(round string) {
		for _, ev := range events {
			if err := target.Deliver(context.Background(), ev); err != nil {
				t.Fatalf("%s delivery of %s: %v", round, ev.Stripe.Type, err)
			}
		}
	}
	deliverAll("first")
	eq(t, "Accounts", f.count("Account"), 1)
	eq(t, "PaymentNotices (one PaymentIntent, one invoice)", f.count("PaymentNotice"), 2)
	eq(t, "refund PaymentReconciliations", f.count("PaymentReconciliation"), 2)
	firstRound := len(f.requestLog())

	deliverAll("second")
	eq(t, "resources after redelivery", f.total(), 5)
	for _, r := range f.requestLog()[firstRound:] {
		if r.status != http.StatusOK {
			t.Errorf("redelivered %s answered %d, want 200 (found, nothing created)", r.path, r.status)
		}
	}
}

func TestDeliverAcknowledgesWithoutWriting(t *testing.T) {
	f := newFakeFHIR(t, testToken)
	target := newDeliverTarget(t, f, Config{})
	for _, fixture := range []string{"payment_intent.payment_failed", "payout.paid", "charge.succeeded"} {
		if err := target.Deliver(context.Background(), loadEvent(t, fixture, nil)); err != nil {
			t.Errorf("%s: %v", fixture, err)
		}
	}
	eq(t, "requests", len(f.requestLog()), 0)
}

func TestDeliverMalformedEventIsAnErrorWithoutRequest(t *testing.T) {
	f := newFakeFHIR(t, testToken)
	target := newDeliverTarget(t, f, Config{})
	ev := loadEvent(t, "payment_intent.succeeded", func(_, o map[string]any) { o["currency"] = "" })
	if err := target.Deliver(context.Background(), ev); err == nil {
		t.Fatal("Deliver accepted a payment without currency")
	}
	eq(t, "requests", len(f.requestLog()), 0)
}

// Refused writes are errors (the receiver answers 5xx and Stripe retries), and no error
// carries the token, even when the server echoes it back.
func TestDeliverErrors(t *testing.T) {
	cases := map[string]struct {
		setup func(f *fakeFHIR)
		cfg   func(t *testing.T) Config
		want  string
	}{
		"500": {setup: answer(http.StatusInternalServerError, "exception", "database unavailable"),
			want: "500 Internal Server Error: error exception: database unavailable"},
		"503 from a proxy": {setup: func(f *fakeFHIR) {
			f.override = func(w http.ResponseWriter, _ *http.Request) bool {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("<html>upstream down " + testToken + "</html>"))
				return true
			}
		}, want: "503 Service Unavailable"},
		"412 duplicates": {setup: func(f *fakeFHIR) {
			dup := map[string]any{"resourceType": "PaymentNotice", "identifier": []any{
				map[string]any{"system": SystemStripePaymentIntent, "value": "pi_3OjK2pLq8sTuVwXy1HiJkLmN"}}}
			f.seed("PaymentNotice", dup)
			f.seed("PaymentNotice", dup)
		}, want: "412 Precondition Failed: several resources match"},
		"401 wrong token, echoed": {cfg: func(t *testing.T) Config {
			return Config{TokenFile: writeToken(t, "stale-"+testToken)}
		}, want: "401 Unauthorized"},
		"400 echoing the Authorization header": {setup: func(f *fakeFHIR) {
			f.override = func(w http.ResponseWriter, r *http.Request) bool {
				outcome(w, http.StatusBadRequest, "invalid", "rejected request with "+r.Header.Get("Authorization"))
				return true
			}
		}, want: "400 Bad Request: error invalid: rejected request with Bearer [redacted]"},
		"redirect not followed": {setup: func(f *fakeFHIR) {
			f.override = func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path == "/r4/PaymentNotice" {
					http.Redirect(w, r, "/r4/PaymentNotice?identifier=x", http.StatusSeeOther)
					return true
				}
				return false
			}
		}, want: "303 See Other"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeFHIR(t, testToken)
			if tc.setup != nil {
				tc.setup(f)
			}
			cfg := Config{}
			if tc.cfg != nil {
				cfg = tc.cfg(t)
			}
			target := newDeliverTarget(t, f, cfg)
			err := target.Deliver(context.Background(), loadEvent(t, "payment_intent.succeeded", nil))
			if err == nil {
				t.Fatal("Deliver succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			assertNoToken(t, err)
			if n := len(f.requestLog()); n != 1 {
				t.Errorf("%d requests, want exactly 1 (no retry inside Deliver, no redirect)", n)
			}
		})
	}
}

func answer(status int, code, diagnostics string) func(f *fakeFHIR) {
	return func(f *fakeFHIR) {
		f.override = func(w http.ResponseWriter, _ *http.Request) bool {
			outcome(w, status, code, diagnostics)
			return true
		}
	}
}

func assertNoToken(t *testing.T, err error) {
	t.Helper()
	if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), testToken[:16]) {
		t.Errorf("error leaks the token: %q", err)
	}
}

func TestDeliverTimeout(t *testing.T) {
	f := newFakeFHIR(t, testToken)
	f.override = func(w http.ResponseWriter, r *http.Request) bool {
		// Hang until the client gives up, bounded so the test server always shuts down. The
		// body is read first: only then does net/http notice the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return true
	}
	target := newDeliverTarget(t, f, Config{Timeout: 100 * time.Millisecond})
	start := time.Now()
	err := target.Deliver(context.Background(), loadEvent(t, "payment_intent.succeeded", nil))
	if err == nil {
		t.Fatal("Deliver succeeded against a hanging server")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v is not a deadline", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Deliver took %s with a 100ms timeout", elapsed)
	}
	assertNoToken(t, err)
}

func TestDeliverNetworkError(t *testing.T) {
	f := newFakeFHIR(t, testToken)
	target := newDeliverTarget(t, f, Config{})
	f.srv.Close()
	err := target.Deliver(context.Background(), loadEvent(t, "payment_intent.succeeded", nil))
	if err == nil {
		t.Fatal("Deliver succeeded with the server gone")
	}
	assertNoToken(t, err)
}

func TestDeliverHonoursCallerCancellation(t *testing.T) {
	f := newFakeFHIR(t, testToken)
	target := newDeliverTarget(t, f, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := target.Deliver(ctx, loadEvent(t, "payment_intent.succeeded", nil))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver with a cancelled context = %v, want context.Canceled", err)
	}
}

// A rotated token file is picked up without a restart, once the one-second cache expires.
func TestDeliverTokenRotation(t *testing.T) {
	f := newFakeFHIR(t, "")
	path := writeToken(t, "token-one")
	target := newDeliverTarget(t, f, Config{TokenFile: path})
	now := time.Unix(1705312345, 0)
	target.token.now = func() time.Time { return now }
	deliver := func() string {
		t.Helper()
		if err := target.Deliver(context.Background(), loadEvent(t, "customer.created", nil)); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		reqs := f.requestLog()
		return reqs[len(reqs)-1].header.Get("Authorization")
	}
	eq(t, "first token", deliver(), "Bearer token-one")

	// Rotate in place the way the kubelet does: write aside, rename over.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte("token-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	now = now.Add(500 * time.Millisecond)
	eq(t, "within the second", deliver(), "Bearer token-one")
	now = now.Add(600 * time.Millisecond)
	eq(t, "after the second", deliver(), "Bearer token-two")
}

// A token file that vanishes (or empties) keeps the last good token, as every secret file does
// (package secretfile): the kubelet's swap never shows that state, and the FHIR server, not a
// broken mount, decides whether the token is still good. The error is logged, once.
func TestDeliverTokenFileGoneKeepsLastToken(t *testing.T) {
	f := newFakeFHIR(t, testToken)
	path := writeToken(t, testToken)
	var logs strings.Builder
	target := newDeliverTarget(t, f, Config{TokenFile: path, Log: funcr.New(func(prefix, args string) {
		logs.WriteString(args + "\n")
	}, funcr.Options{})})
	now := time.Now()
	target.token.now = func() time.Time { return now }
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		now = now.Add(2 * time.Second)
		if err := target.Deliver(context.Background(), loadEvent(t, "payment_intent.succeeded", nil)); err != nil {
			t.Fatalf("Deliver = %v, want the last good token used", err)
		}
	}
	reqs := f.requestLog()
	eq(t, "requests", len(reqs), 2)
	eq(t, "Authorization", reqs[1].header.Get("Authorization"), "Bearer "+testToken)
	if n := strings.Count(logs.String(), "Cannot load FHIR token"); n != 1 || !strings.Contains(logs.String(), "token file") {
		t.Errorf("the vanished file was logged %d times, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), testToken[:16]) {
		t.Errorf("logs leak the token:\n%s", logs.String())
	}
}
