package httprelay

import (
	"context"
	"encoding/json"
	"errors"
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

	stripe "github.com/stripe/stripe-go/v76"
)

// clinic records requests and answers with status.
type clinic struct {
	mu      sync.Mutex
	status  int
	delay   time.Duration
	bodies  [][]byte
	headers []http.Header
	srv     *httptest.Server
}

func newClinic(t *testing.T, status int) *clinic {
	t.Helper()
	c := &clinic{status: status}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.bodies = append(c.bodies, body)
		c.headers = append(c.headers, r.Header.Clone())
		status, delay := c.status, c.delay
		c.mu.Unlock()
		time.Sleep(delay)
		if status == http.StatusFound {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", status)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *clinic) last(t *testing.T) ([]byte, http.Header) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bodies) == 0 {
		t.Fatal("the clinic received nothing")
	}
	return c.bodies[len(c.bodies)-1], c.headers[len(c.headers)-1]
}

func keyFileWith(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeliverSignedEnvelope(t *testing.T) {
	c := newClinic(t, http.StatusNoContent)
	now := time.Unix(1_700_000_100, 0)
	target, err := New(Config{URL: c.srv.URL + "/stripe-events?tenant=a", SigningKeyFile: keyFileWith(t, "s3cret\n"),
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if target.Name() != "http" {
		t.Errorf("Name = %q", target.Name())
	}
	ev := stripeEvent(t, "payment_intent.succeeded", `{"id":"pi_1","object":"payment_intent","amount":1234,"currency":"usd"}`)
	if err := target.Deliver(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	body, h := c.last(t)
	if h.Get("Content-Type") != "application/json" || h.Get("Idempotency-Key") != "evt_1" {
		t.Errorf("headers = %v", h)
	}
	if err := VerifySignature(h.Get(SignatureHeader), body, []byte("s3cret"), 0, now); err != nil {
		t.Errorf("signature with the trimmed key: %v", err)
	}
	if err := VerifySignature(h.Get(SignatureHeader), body, []byte("s3cret\n"), 0, now); err == nil {
		t.Error("the trailing newline was part of the key")
	}
	want := `{"id":"evt_1","type":"payment_intent.succeeded","created":1700000000,"livemode":false,` +
		`"clinicID":"clinic-a","apiVersion":"` + stripe.APIVersion + `",` +
		`"object":{"id":"pi_1","object":"payment_intent","amount":1234,"amountDecimal":"12.34","currency":"usd"}}`
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
}

func TestDeliverUnsignedWithoutKeyFile(t *testing.T) {
	c := newClinic(t, http.StatusOK)
	target, err := New(Config{URL: c.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := target.Deliver(context.Background(), stripeEvent(t, "customer.created", `{"id":"cus_1"}`)); err != nil {
		t.Fatal(err)
	}
	if _, h := c.last(t); h.Get(SignatureHeader) != "" {
		t.Errorf("signature sent without a key: %q", h.Get(SignatureHeader))
	}
}

func TestDeliverFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		status  int
		delay   time.Duration
		timeout time.Duration
		url     func(c *clinic) string
		check   func(t *testing.T, err error)
	}{
		"500":                      {status: http.StatusInternalServerError, check: wantStatus(500)},
		"409":                      {status: http.StatusConflict, check: wantStatus(409)},
		"redirect is not followed": {status: http.StatusFound, check: wantStatus(302)},
		"timeout": {status: http.StatusOK, delay: 500 * time.Millisecond, timeout: 50 * time.Millisecond,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want a deadline", err)
				}
			}},
		"connection refused keeps query out of the error": {
			url: func(*clinic) string {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				_ = ln.Close()
				return "http://" + ln.Addr().String() + "/hook?token=abc"
			},
			check: func(t *testing.T, err error) {
				if err == nil || strings.Contains(err.Error(), "token=abc") {
					t.Errorf("err = %v, want a connection error without the query", err)
				}
			}},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClinic(t, tc.status)
			c.delay = tc.delay
			url := c.srv.URL
			if tc.url != nil {
				url = tc.url(c)
			}
			target, err := New(Config{URL: url, Timeout: tc.timeout})
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, target.Deliver(context.Background(), stripeEvent(t, "charge.succeeded", `{"id":"ch_1"}`)))
		})
	}
}

func wantStatus(code int) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		se, ok := errors.AsType[*StatusError](err)
		if !ok || se.StatusCode != code {
			t.Errorf("err = %v, want StatusError %d", err, code)
		}
	}
}

func TestNewValidation(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"relative URL":    {cfg: Config{URL: "/events"}, want: "absolute"},
		"ftp URL":         {cfg: Config{URL: "ftp://x.example/"}, want: "absolute"},
		"user info":       {cfg: Config{URL: "https://u:p@x.example/"}, want: "user info"},
		"missing key":     {cfg: Config{URL: "https://x.example/", SigningKeyFile: "/nonexistent/key"}, want: "signing key file"},
		"negative":        {cfg: Config{URL: "https://x.example/", Timeout: -1}, want: "negative"},
		"empty key file":  {cfg: Config{URL: "https://x.example/", SigningKeyFile: "EMPTY"}, want: "empty"},
		"unparsable URL":  {cfg: Config{URL: "http://[::1"}, want: "URL"},
		"host-less https": {cfg: Config{URL: "https:///path"}, want: "absolute"},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.cfg.SigningKeyFile == "EMPTY" {
				tc.cfg.SigningKeyFile = keyFileWith(t, "\n")
			}
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error mentioning %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), ":p@") {
				t.Errorf("error leaks the URL password: %v", err)
			}
		})
	}
}

func TestKeyRotationPickedUp(t *testing.T) {
	c := newClinic(t, http.StatusOK)
	path := keyFileWith(t, "old-key")
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	target, err := New(Config{URL: c.srv.URL, SigningKeyFile: path, Now: clock, KeyCheckInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	send := func() ([]byte, string) {
		if err := target.Deliver(context.Background(), stripeEvent(t, "charge.succeeded", `{"id":"ch_1"}`)); err != nil {
			t.Fatal(err)
		}
		body, h := c.last(t)
		return body, h.Get(SignatureHeader)
	}
	// Kubernetes swaps a symlink; a rename of a new file over the path is the same to a stat.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte("new-key\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if body, sig := send(); VerifySignature(sig, body, []byte("old-key"), 0, now) != nil {
		t.Error("the key was re-read before the check interval")
	}
	now = now.Add(2 * time.Second)
	if body, sig := send(); VerifySignature(sig, body, []byte("new-key"), 0, now) != nil {
		t.Error("the rotated key was not picked up")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	if body, sig := send(); VerifySignature(sig, body, []byte("new-key"), 0, now) != nil {
		t.Error("a vanished key file dropped the last good key")
	}
}

func TestEnvelopeJSONHasNoNulls(t *testing.T) {
	env, err := NewEnvelope(stripeEvent(t, "invoice.created", `{"id":"in_1","customer":null,"amount_due":null,"metadata":null}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "null") {
		t.Errorf("envelope has nulls: %s", b)
	}
}
