package receiver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

func TestWebhookHandler(t *testing.T) {
	now := time.Now()
	body := goodBody(t, "evt_good")
	for name, tc := range map[string]struct {
		secrets   string // file content; "" leaves the file absent
		noTargets bool
		maxBody   int64
		path      string // default testPath
		body      []byte // default body
		sig       func(body []byte) string
		wantCode  int
		wantState string
		wantCause cause // counted in signature failures when set
		wantMsg   string
		wantRelay int
	}{
		"good signature is relayed": {
			sig:      func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusOK, wantState: resultRelayed, wantRelay: 1,
		},
		"wrong secret": {
			sig:      func(b []byte) string { return sign(b, secretUnknown, now) },
			wantCode: http.StatusBadRequest, wantState: "rejected", wantCause: causeBadSignature,
		},
		"rotation: new secret on the second line": {
			secrets:  secretOld + "\n" + secretNew + "\n",
			sig:      func(b []byte) string { return sign(b, secretNew, now) },
			wantCode: http.StatusOK, wantState: resultRelayed, wantRelay: 1,
		},
		"rotation: old secret still valid": {
			secrets:  secretOld + "\n" + secretNew + "\n",
			sig:      func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusOK, wantState: resultRelayed, wantRelay: 1,
		},
		"header with two v1 values, the second valid": {
			sig: func(b []byte) string {
				forged := sign(b, secretUnknown, now)
				good := sign(b, secretOld, now)
				return forged + "," + good[strings.Index(good, "v1="):]
			},
			wantCode: http.StatusOK, wantState: resultRelayed, wantRelay: 1,
		},
		"stale timestamp": {
			sig:      func(b []byte) string { return sign(b, secretOld, now.Add(-SignatureTolerance-time.Minute)) },
			wantCode: http.StatusBadRequest, wantState: "rejected", wantCause: causeStale,
		},
		"future-dated beyond tolerance": {
			sig:      func(b []byte) string { return sign(b, secretOld, now.Add(SignatureTolerance+time.Minute)) },
			wantCode: http.StatusBadRequest, wantState: "rejected", wantCause: causeFuture,
		},
		"slightly future-dated within tolerance": {
			sig:      func(b []byte) string { return sign(b, secretOld, now.Add(time.Minute)) },
			wantCode: http.StatusOK, wantState: resultRelayed, wantRelay: 1,
		},
		"missing header": {
			sig:      func([]byte) string { return "" },
			wantCode: http.StatusBadRequest, wantState: "rejected", wantCause: causeMissingHeader,
		},
		"garbage header": {
			sig:      func([]byte) string { return "not a signature" },
			wantCode: http.StatusBadRequest, wantState: "rejected", wantCause: causeInvalidHeader,
		},
		"header without v1": {
			sig:      func([]byte) string { return "t=" + time.Now().Format("20060102") },
			wantCode: http.StatusBadRequest, wantState: "rejected", wantCause: causeInvalidHeader,
		},
		"signature over another body": {
			sig:      func([]byte) string { return sign(goodBody(t, "evt_other"), secretOld, now) },
			wantCode: http.StatusBadRequest, wantState: "rejected", wantCause: causeBadSignature,
		},
		"body over the cap": {
			maxBody:  100,
			sig:      func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusRequestEntityTooLarge, wantState: "too_large",
		},
		"malformed JSON": {
			body:     []byte(`{"id":"evt_x","type":`),
			sig:      func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusBadRequest, wantState: "rejected", wantCause: causeMalformed,
		},
		"event without data.object": {
			body:     []byte(`{"id":"evt_x","type":"charge.succeeded","api_version":"` + stripe.APIVersion + `"}`),
			sig:      func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusBadRequest, wantState: "rejected", wantCause: causeMalformed,
		},
		"livemode contradicts Test mode": {
			body:     eventBody(t, "evt_live", "charge.succeeded", true, stripe.APIVersion),
			sig:      func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusBadRequest, wantState: "rejected", wantCause: causeLivemode, wantMsg: "livemode",
		},
		"older API version is relayed": {
			body:     eventBody(t, "evt_old", "charge.succeeded", false, "2020-08-27"),
			sig:      func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusOK, wantState: resultRelayed, wantRelay: 1,
		},
		"newer API version is relayed": {
			body:     eventBody(t, "evt_new", "charge.succeeded", false, "2024-06-20"),
			sig:      func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusOK, wantState: resultRelayed, wantRelay: 1,
		},
		"other clinic": {
			path: TestWebhookPathPrefix + "clinic-b", sig: func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusNotFound, wantState: "not_found",
		},
		"missing clinic id": {
			path: TestWebhookPathPrefix, sig: func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusNotFound, wantState: "not_found",
		},
		"extra path segment": {
			path: testPath + "/extra", sig: func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusNotFound, wantState: "not_found",
		},
		"no targets: acknowledged": {
			noTargets: true,
			sig:       func(b []byte) string { return sign(b, secretOld, now) },
			wantCode:  http.StatusOK, wantState: resultAcknowledged,
		},
		"no secret loaded yet": {
			secrets:  "-",
			sig:      func(b []byte) string { return sign(b, secretOld, now) },
			wantCode: http.StatusServiceUnavailable, wantState: "unavailable",
		},
	} {
		t.Run(name, func(t *testing.T) {
			target := &fakeTarget{name: "fake"}
			var targets []relay.Target
			if !tc.noTargets {
				targets = []relay.Target{target}
			}
			secrets := tc.secrets
			switch secrets {
			case "":
				secrets = secretOld + "\n"
			case "-":
				secrets = ""
			}
			f := newFixture(t, secrets, targets, func(c *Config) { c.MaxBodyBytes = tc.maxBody })
			b, path := body, testPath
			if tc.body != nil {
				b = tc.body
			}
			if tc.path != "" {
				path = tc.path
			}
			rec, resp := post(t, f.r.WebhookHandler(), path, b, tc.sig(b))
			if rec.Code != tc.wantCode || resp.Status != tc.wantState {
				t.Fatalf("got %d %+v, want %d %q", rec.Code, resp, tc.wantCode, tc.wantState)
			}
			if !strings.Contains(resp.Message, tc.wantMsg) {
				t.Errorf("message %q does not mention %q", resp.Message, tc.wantMsg)
			}
			if got := len(target.calls()); got != tc.wantRelay {
				t.Errorf("relayed %d times, want %d", got, tc.wantRelay)
			}
			for _, c := range allCauses() {
				want := 0.0
				if c == tc.wantCause {
					want = 1
				}
				if got := counter(t, f.r.metrics.signatureFailures.WithLabelValues(string(c))); got != want {
					t.Errorf("signature failures{cause=%s} = %v, want %v", c, got, want)
				}
			}
			assertNoSecrets(t, "response", rec.Body.String(), secretOld, secretNew)
			assertNoSecrets(t, "logs", f.logs.String(), secretOld, secretNew)
		})
	}
}

func TestWebhookMethodNotAllowed(t *testing.T) {
	f := newFixture(t, secretOld, nil)
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		f.r.WebhookHandler().ServeHTTP(rec, httptest.NewRequest(method, testPath, nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodPost {
			t.Errorf("%s: got %d Allow=%q", method, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

func TestEventsMetric(t *testing.T) {
	target := &fakeTarget{name: "fake"}
	f := newFixture(t, secretOld, []relay.Target{target})
	h := f.r.WebhookHandler()
	body := goodBody(t, "evt_metric")
	post(t, h, testPath, body, sign(body, secretOld, time.Now()))
	post(t, h, testPath, body, sign(body, secretOld, time.Now()))
	post(t, h, testPath, body, sign(body, secretUnknown, time.Now()))
	weird := eventBody(t, "evt_weird", "Not.A.Stripe.Type", false, stripe.APIVersion)
	post(t, h, testPath, weird, sign(weird, secretOld, time.Now()))

	for _, tc := range []struct {
		typ, result string
		want        float64
	}{
		{"payment_intent.succeeded", resultRelayed, 1},
		{"payment_intent.succeeded", resultDuplicate, 1},
		{typeUnknown, resultRejected, 1},
		{typeOther, resultRelayed, 1},
	} {
		if got := counter(t, f.r.metrics.events.WithLabelValues(tc.typ, tc.result)); got != tc.want {
			t.Errorf("events{type=%s,result=%s} = %v, want %v", tc.typ, tc.result, got, tc.want)
		}
	}
	if got := counter(t, f.r.metrics.duplicates); got != 1 {
		t.Errorf("duplicates = %v, want 1", got)
	}
	if got := histogramCount(t, f.reg, "stripe_receiver_relay_duration_seconds", "target", "fake"); got != 2 {
		t.Errorf("relay duration observations = %d, want 2", got)
	}
	if err := testutil.GatherAndCompare(f.reg, strings.NewReader(`
# HELP stripe_receiver_duplicates_total Deliveries of events this replica had already relayed, answered 200 without relaying.
# TYPE stripe_receiver_duplicates_total counter
stripe_receiver_duplicates_total 1
`), "stripe_receiver_duplicates_total"); err != nil {
		t.Error(err)
	}
}

func TestTypeLabel(t *testing.T) {
	for in, want := range map[string]string{
		"charge.refunded":               "charge.refunded",
		"customer.subscription.updated": "customer.subscription.updated",
		"charge":                        typeOther,
		"Charge.Refunded":               typeOther,
		"charge.refunded; drop":         typeOther,
		"":                              typeOther,
		"a." + strings.Repeat("b", 200): typeOther,
	} {
		if got := typeLabel(in); got != want {
			t.Errorf("typeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadBodyError(t *testing.T) {
	f := newFixture(t, secretOld, nil)
	req := httptest.NewRequest(http.MethodPost, testPath, errReader{})
	rec := httptest.NewRecorder()
	f.r.WebhookHandler().ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || !bytes.Contains(rec.Body.Bytes(), []byte("cannot read body")) {
		t.Errorf("got %d %s", rec.Code, rec.Body.String())
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errDown }
