package stripeclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// maxVerbosity is above every V level the operator or its libraries use.
const maxVerbosity = 10

// captureLogger returns a logr.Logger at the highest verbosity and a function returning what it wrote.
func captureLogger() (logr.Logger, func() string) {
	var mu sync.Mutex
	var b strings.Builder
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		b.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: maxVerbosity})
	return log, func() string {
		mu.Lock()
		defer mu.Unlock()
		return b.String()
	}
}

// TestLoggerNeverEmitsKeyMaterial makes stripe-go log a 401 that echoes the masked key and a
// response body holding a webhook secret, and checks what reaches logr.
func TestLoggerNeverEmitsKeyMaterial(t *testing.T) {
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/account" {
			writeStripeError(w, http.StatusUnauthorized, "invalid_request_error", "",
				"Invalid API Key provided: sk_test_************************"+maskedTail, "")
			return
		}
		ep := endpointJSON(1, false)
		ep["secret"] = "whsec_" + whsecBody
		writeJSON(w, http.StatusOK, listJSON([]map[string]any{ep}, false))
	})
	log, output := captureLogger()
	c := testFactory(t, srv.URL, func(c *Config) { c.Logger = log }).For(skTest, v1alpha1.ModeTest, "")

	if _, err := c.GetAccount(context.Background()); err == nil {
		t.Fatal("GetAccount() succeeded against a 401")
	}
	if _, err := c.ListWebhookEndpoints(context.Background()); err != nil {
		t.Fatal(err)
	}

	out := output()
	for _, want := range []string{`"stripeLevel"="error"`, `"status"=401`, `"key"="sk_test_…"`, `"requestId"="req_test123"`,
		`"msg"="Stripe request"`, `"path"="/v1/webhook_endpoints"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
	assertNoKeyMaterial(t, "log output", out)
	if strings.Contains(out, "whsec_") || strings.Contains(out, "Invalid API Key") {
		t.Errorf("a response body or Stripe's error message reached the log:\n%s", out)
	}
}

// Sentinel personal data, as a clinic's customers put it into Stripe.
const (
	sentinelName  = "Zyxwvut Sentinelname"
	sentinelEmail = "zyxwvut.sentinel@patients.example"
)

// TestLoggerNeverEmitsBodies lists events whose customers carry sentinel personal data from the
// Stripe fake, gets a Stripe error that quotes it and a non-JSON answer that holds it, all with
// the logger at its highest verbosity, and finds the sentinels in no log line.
func TestLoggerNeverEmitsBodies(t *testing.T) {
	fake, fakeURL := newFake(t)
	fake.AddKey(skTest, stripefake.KeyOptions{})
	acct := fake.AccountForKey(skTest)
	for i, typ := range []string{"customer.created", "customer.updated", "charge.succeeded"} {
		obj := map[string]any{"id": fmt.Sprintf("cus_%d", i), "object": "customer", "name": sentinelName, "email": sentinelEmail,
			"billing_details": map[string]any{"name": sentinelName, "email": sentinelEmail}}
		if _, err := fake.TriggerEvent(acct, false, typ, obj); err != nil {
			t.Fatal(err)
		}
	}
	log, output := captureLogger()
	c := testFactory(t, fakeURL, func(c *Config) { c.Logger = log }).For(skTest, v1alpha1.ModeTest, "")
	events, err := c.ListEvents(context.Background(), EventWindow{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute)})
	if err != nil || len(events) != 3 || !strings.Contains(string(events[0].JSON), sentinelEmail) {
		t.Fatalf("ListEvents = %d events, %v; want the 3 sentinel events", len(events), err)
	}

	// A Stripe error that quotes the data, and a proxy's page that is not JSON, both logged at V(0).
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/account" {
			w.Header().Set("Request-Id", "req_html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, "<html>upstream said: "+sentinelName+" "+sentinelEmail+"</html>")
			return
		}
		writeStripeError(w, http.StatusBadRequest, "invalid_request_error", "email_invalid", "Invalid email: "+sentinelEmail, "email")
	})
	other := testFactory(t, srv.URL, func(c *Config) { c.Logger = log }).For(skTest, v1alpha1.ModeTest, "")
	if _, err := other.GetWebhookEndpoint(context.Background(), "we_1"); err == nil {
		t.Fatal("GetWebhookEndpoint succeeded against a 400")
	}
	if _, err := other.GetAccount(context.Background()); err == nil {
		t.Fatal("GetAccount succeeded against a 502 HTML page")
	}

	out := output()
	for _, want := range []string{`"path"="/v1/events"`, `"status"=200`, `"code"="email_invalid"`, `"msg"="Stripe response is not JSON"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q, so the scan proves less than it claims:\n%s", want, out)
		}
	}
	for _, s := range []string{sentinelName, "Zyxwvut", sentinelEmail, "patients.example"} {
		if strings.Contains(out, s) {
			t.Errorf("personal data %q reached the log:\n%s", s, out)
		}
	}
}

// TestLeveledLoggerLines feeds the leveled logger stripe-go's own lines (format and arguments as
// stripe-go v76 passes them) and checks the level of what comes out, and that it carries no body,
// Stripe message, query string or key material.
func TestLeveledLoggerLines(t *testing.T) {
	const secret = "SENTINEL-" + sentinelEmail
	stripeErr := &stripe.Error{HTTPStatusCode: 400, Type: "invalid_request_error", Code: "parameter_invalid",
		Msg: "Invalid value " + secret + " for " + skTest, RequestID: "req_42"}
	tests := map[string]struct {
		level     string // Debugf, Infof, Warnf or Errorf
		format    string
		args      []any
		verbosity int    // the lowest at which the line appears; -1: never
		want      string // in the line
	}{
		"response body":     {"Debugf", "Response: %s", []any{`{"data":[{"email":"` + secret + `"}]}`}, -1, ""},
		"request line":      {"Infof", "Requesting %v %v%v", []any{"GET", "api.stripe.com", "/v1/events"}, -1, ""},
		"completed":         {"Infof", "Request completed in %v (retry: %v)", []any{time.Second, 0}, -1, ""},
		"402":               {"Infof", fmtUserError, []any{402, stripeErr}, 1, `"code"="parameter_invalid"`},
		"retry":             {"Warnf", fmtRetry, []any{1, "GET", "api.stripe.com", "/v1/events", time.Second}, 0, `"path"="/v1/events"`},
		"stripe error":      {"Errorf", fmtStripeError, []any{400, stripeErr}, 0, `"requestId"="req_42"`},
		"undecodable error": {"Errorf", fmtUndecodable, []any{errors.New("bad body " + secret)}, 0, "could not be decoded"},
		"body sample": {"Errorf", "%s", []any{"Couldn't deserialize JSON (response status: 502, body sample: '" + secret + "'): x"}, 0,
			`"status"=502`},
		"network error": {"Errorf", fmtRequestFailed, []any{&url.Error{Op: "Get", URL: "https://api.stripe.com/v1/events?email=" + secret,
			Err: errors.New("connection refused")}}, 0, "connection refused"},
		"unknown future line": {"Errorf", "Something new: %v", []any{secret}, 0, `"format"="Something new: %v"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for v := 0; v <= maxVerbosity; v++ {
				var got []string
				log := funcr.New(func(prefix, args string) { got = append(got, args) }, funcr.Options{Verbosity: v})
				l := NewLeveledLogger(log)
				fns := map[string]func(string, ...interface{}){"Debugf": l.Debugf, "Infof": l.Infof, "Warnf": l.Warnf, "Errorf": l.Errorf}
				fns[tc.level](tc.format, tc.args...)
				out := strings.Join(got, "\n")
				if strings.Contains(out, secret) || strings.Contains(out, "patients.example") {
					t.Fatalf("verbosity %d: data reached the log: %s", v, out)
				}
				assertNoKeyMaterial(t, "log line", out)
				wantLine := tc.verbosity >= 0 && v >= tc.verbosity
				if wantLine != (len(got) == 1) || (wantLine && !strings.Contains(out, tc.want)) {
					t.Errorf("verbosity %d: got %q, want a line: %t (with %q)", v, got, wantLine, tc.want)
				}
			}
		})
	}
}
