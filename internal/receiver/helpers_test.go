package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

const (
	testClinic    = "clinic-a"
	testPath      = TestWebhookPathPrefix + testClinic
	secretOld     = "whsec_oldOLDold0123456789abcdefABCDEF"
	secretNew     = "whsec_newNEWnew0123456789abcdefABCDEF"
	secretUnknown = "whsec_forgedFORGED0123456789abcdefAB"
)

// fakeTarget records deliveries; fail decides each call's error, gate (if set) blocks calls
// until closed.
type fakeTarget struct {
	name string
	mu   sync.Mutex
	got  []relay.Event
	fail func(call int) error
	gate chan struct{}
}

func (f *fakeTarget) Name() string { return f.name }

func (f *fakeTarget) Deliver(ctx context.Context, ev relay.Event) error {
	f.mu.Lock()
	call := len(f.got)
	f.got = append(f.got, ev)
	fail, gate := f.fail, f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail(call)
	}
	return nil
}

func (f *fakeTarget) calls() []relay.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]relay.Event(nil), f.got...)
}

// logBuffer collects log lines so tests can assert that no secret ever reaches them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) logger() logr.Logger {
	return funcr.NewJSON(func(obj string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.buf.WriteString(obj + "\n")
	}, funcr.Options{Verbosity: 1})
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// fixture is a receiver with a secret file in a temp dir and its registry and logs.
type fixture struct {
	r          *Receiver
	reg        *prometheus.Registry
	logs       *logBuffer
	secretFile string
}

func newFixture(t testing.TB, secrets string, targets []relay.Target, mutate ...func(*Config)) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), logs: &logBuffer{},
		secretFile: filepath.Join(t.TempDir(), "signingSecret")}
	if secrets != "" {
		writeFile(t, f.secretFile, secrets)
	}
	cfg := Config{ClinicID: testClinic, Mode: ModeTest, SigningSecretFile: f.secretFile}
	for _, m := range mutate {
		m(&cfg)
	}
	r, err := New(cfg, targets, f.logs.logger(), f.reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.r = r
	return f
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// eventBody renders a Stripe-like event, pretty-printed as Stripe sends them.
func eventBody(t testing.TB, id, typ string, livemode bool, apiVersion string) []byte {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{
		"id": id, "object": "event", "api_version": apiVersion, "created": 1700000000,
		"livemode": livemode, "type": typ, "pending_webhooks": 1,
		"data": map[string]any{"object": map[string]any{
			"id": "pi_123", "object": "payment_intent", "amount": 1234, "currency": "usd",
			"metadata": map[string]string{"patient_id": "p-1"},
		}},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func goodBody(t testing.TB, id string) []byte {
	return eventBody(t, id, "payment_intent.succeeded", false, stripe.APIVersion)
}

// sign returns a Stripe-Signature header for body signed with secret at ts.
func sign(body []byte, secret string, ts time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: ts}).Header
}

// post sends one delivery through the handler and decodes the answer.
func post(t testing.TB, h http.Handler, path string, body []byte, sig string) (*httptest.ResponseRecorder, response) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if sig != "" {
		req.Header.Set("Stripe-Signature", sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("answer %d is not JSON: %q", rec.Code, rec.Body.String())
	}
	return rec, resp
}

func counter(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// histogramCount returns how many observations a histogram series holds.
func histogramCount(t testing.TB, reg *prometheus.Registry, name, label, value string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// eventually polls cond every 5 ms for up to 5 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var errDown = errors.New("downstream unavailable")

// assertNoSecrets fails if any known secret appears in s.
func assertNoSecrets(t testing.TB, where, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains a secret", where)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
