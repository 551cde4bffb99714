package receiver

import (
	"net/http"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// TestWebhookPathPerMode: each mode has its own path, so a clinic's Test and Live endpoints never
// share a URL; a Test receiver keeps serving the pre-split path for endpoints not yet moved, and
// verifies deliveries there like anywhere else.
func TestWebhookPathPerMode(t *testing.T) {
	if got := WebhookPath(ModeLive, "clinic-a"); got != "/stripe/webhook/clinic-a" {
		t.Errorf("Live path = %q", got)
	}
	if got := WebhookPath(ModeTest, "clinic-a"); got != "/stripe/webhook-test/clinic-a" {
		t.Errorf("Test path = %q", got)
	}
	now := time.Now()
	cases := map[string]struct {
		mode     Mode
		path     string
		secret   string
		wantCode int
	}{
		"Test: own path":                       {ModeTest, "/stripe/webhook-test/" + testClinic, secretOld, http.StatusOK},
		"Test: legacy path during the upgrade": {ModeTest, "/stripe/webhook/" + testClinic, secretOld, http.StatusOK},
		"Test: legacy path, forged signature":  {ModeTest, "/stripe/webhook/" + testClinic, secretUnknown, http.StatusBadRequest},
		"Test: another clinic's path":          {ModeTest, "/stripe/webhook-test/clinic-b", secretOld, http.StatusNotFound},
		"Test: another clinic's legacy path":   {ModeTest, "/stripe/webhook/clinic-b", secretOld, http.StatusNotFound},
		"Live: own path":                       {ModeLive, "/stripe/webhook/" + testClinic, secretOld, http.StatusOK},
		"Live: the Test path is not served":    {ModeLive, "/stripe/webhook-test/" + testClinic, secretOld, http.StatusNotFound},
		"Live: prefix without clinic":          {ModeLive, "/stripe/webhook/", secretOld, http.StatusNotFound},
		"Test: path with trailing slash":       {ModeTest, "/stripe/webhook-test/" + testClinic + "/", secretOld, http.StatusNotFound},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			target := &fakeTarget{name: "emr"}
			f := newFixture(t, secretOld, []relay.Target{target}, func(c *Config) { c.Mode = tc.mode })
			body := eventBody(t, "evt_path", "payment_intent.succeeded", tc.mode == ModeLive, stripe.APIVersion)
			rec, resp := post(t, f.r.WebhookHandler(), tc.path, body, sign(body, tc.secret, now))
			if rec.Code != tc.wantCode {
				t.Fatalf("POST %s to a %s receiver: %d %+v, want %d", tc.path, tc.mode, rec.Code, resp, tc.wantCode)
			}
			if relayed := len(target.calls()); (tc.wantCode == http.StatusOK) != (relayed == 1) {
				t.Errorf("%d relays for answer %d", relayed, rec.Code)
			}
		})
	}
}
