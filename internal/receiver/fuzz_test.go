package receiver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// FuzzHandler feeds arbitrary bodies, signature headers and clinic path segments to the
// handler. When sign is true the body is validly signed at the current time (with the fuzzed
// header appended), so the fuzzer also explores what happens after verification. Properties:
// it never panics, always answers one of the documented codes with a JSON body, and never
// relays an event unless the signature is valid for the configured secret, the path is this
// clinic's and the event is a test-mode event with an id (of any API version). Seeds live in
// testdata/fuzz/FuzzHandler and run with every `go test`.
func FuzzHandler(f *testing.F) {
	f.Add([]byte(`{}`), "", false, testClinic)
	target := &fakeTarget{name: "fuzz"}
	fx := newFixture(f, secretOld, []relay.Target{target}, func(c *Config) { c.MaxBodyBytes = 4096 })
	fx.r.log = logr.Discard() // millions of executions would fill the test's log buffer
	h := fx.r.WebhookHandler()

	f.Fuzz(func(t *testing.T, body []byte, header string, signIt bool, clinic string) {
		if signIt {
			header = sign(body, secretOld, time.Now()) + header
		}
		req := httptest.NewRequest(http.MethodPost, testPath, bytes.NewReader(body))
		req.URL.Path = TestWebhookPathPrefix + clinic
		if header != "" {
			req.Header.Set("Stripe-Signature", header)
		}
		before := len(target.calls())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
		default:
			t.Fatalf("unexpected status %d", rec.Code)
		}
		var resp response
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Status == "" {
			t.Fatalf("answer is not the JSON envelope: %q", rec.Body.String())
		}
		relayed := len(target.calls()) > before
		if rec.Code != http.StatusOK && relayed && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("relayed but answered %d", rec.Code)
		}
		if !relayed && rec.Code != http.StatusOK {
			return
		}
		// Answered 200 or relayed: everything must have checked out.
		if clinic != testClinic {
			t.Fatalf("accepted a delivery for clinic %q", clinic)
		}
		if err := webhook.ValidatePayloadWithTolerance(body, header, secretOld, SignatureTolerance); err != nil {
			t.Fatalf("accepted an invalid signature (%v), header %q", err, header)
		}
		var ev stripe.Event
		if err := json.Unmarshal(body, &ev); err != nil || ev.Livemode || ev.ID == "" {
			t.Fatalf("accepted an unusable event (err %v): %q", err, body)
		}
	})
}
