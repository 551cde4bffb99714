package stripeclient

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// captureLogger returns a logr.Logger at verbosity 2 and a function returning what it wrote.
func captureLogger() (logr.Logger, func() string) {
	var mu sync.Mutex
	var b strings.Builder
	log := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		b.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 2})
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
	for _, want := range []string{`"stripeLevel"="error"`, "status 401", "sk_test_…", "whsec_…", `"key"="sk_test_…"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
	assertNoKeyMaterial(t, "log output", out)
}

func TestLeveledLoggerLevels(t *testing.T) {
	tests := map[string]struct {
		call      string
		verbosity int
		wantLevel string
	}{
		"debug": {call: "Debugf", verbosity: 2, wantLevel: "debug"},
		"info":  {call: "Infof", verbosity: 1, wantLevel: "info"},
		"warn":  {call: "Warnf", verbosity: 0, wantLevel: "warn"},
		"error": {call: "Errorf", verbosity: 0, wantLevel: "error"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// One verbosity below the level must stay silent; V(0) is always on.
			for _, v := range []int{max(tc.verbosity-1, 0), tc.verbosity} {
				var got []string
				log := funcr.New(func(prefix, args string) { got = append(got, args) }, funcr.Options{Verbosity: v})
				l := NewLeveledLogger(log)
				fns := map[string]func(string, ...interface{}){"Debugf": l.Debugf, "Infof": l.Infof, "Warnf": l.Warnf, "Errorf": l.Errorf}
				fns[tc.call]("using %s with %s", skTest, "Bearer "+testKeyBody)
				if v < tc.verbosity && tc.verbosity > 0 {
					if len(got) != 0 {
						t.Errorf("logged at verbosity %d: %v", v, got)
					}
					continue
				}
				if len(got) != 1 || !strings.Contains(got[0], `"stripeLevel"="`+tc.wantLevel+`"`) ||
					!strings.Contains(got[0], "using sk_test_… with Bearer …") {
					t.Errorf("got %v", got)
				}
				assertNoKeyMaterial(t, "log line", strings.Join(got, "\n"))
			}
		})
	}
}
