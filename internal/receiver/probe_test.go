package receiver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
)

// probeBody is the operator's probe event: Stripe's event shape, a type Stripe never sends.
func probeBody(t *testing.T, nonce string, livemode bool) []byte {
	t.Helper()
	return eventBody(t, sigheader.ProbeEventIDPrefix+nonce, sigheader.ProbeEventType, livemode, stripe.APIVersion)
}

// postProbe POSTs body over real HTTP with the given Stripe-Signature and probe marker ("" for
// none) and returns the status code and the raw answer.
func postProbe(t *testing.T, url string, body []byte, stripeSig, marker string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if stripeSig != "" {
		req.Header.Set("Stripe-Signature", stripeSig)
	}
	if marker != "" {
		req.Header.Set(sigheader.ProbeHeader, marker)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func probeServer(t *testing.T) (*fixture, *fakeTarget, string) {
	t.Helper()
	target := &fakeTarget{name: "http"}
	f := newFixture(t, secretOld+"\n", []relay.Target{target})
	srv := httptest.NewServer(f.r.WebhookHandler())
	t.Cleanup(srv.Close)
	return f, target, srv.URL + testPath
}

// A probe signed as Stripe signs, with a valid probe marker, is answered 200 with this clinic's
// ID and the nonce, every time it comes, and reaches no system of record, no dedup memory and no
// event counter.
func TestProbeAnsweredWithNonceNotRelayed(t *testing.T) {
	f, target, url := probeServer(t)
	for range 2 { // a second probe with the same nonce is answered too: probes are not deduplicated
		now := time.Now()
		body := probeBody(t, "n0nce1", false)
		code, raw := postProbe(t, url, body, sign(body, secretOld, now), sigheader.SignProbe(secretOld, now, body))
		var got sigheader.ProbeAnswer
		if err := json.Unmarshal(raw, &got); err != nil || code != http.StatusOK {
			t.Fatalf("probe = %d %q (%v), want 200 with a probe answer", code, raw, err)
		}
		if want := (sigheader.ProbeAnswer{Status: sigheader.ProbeStatus, ClinicID: testClinic, Nonce: "n0nce1"}); got != want {
			t.Fatalf("probe answer = %+v, want %+v", got, want)
		}
	}
	if n := len(target.calls()); n != 0 {
		t.Errorf("the system of record saw %d deliveries, want none", n)
	}
	if n := testutil.CollectAndCount(f.r.metrics.events); n != 0 {
		t.Errorf("stripe_receiver_events_total has %d series after probes only, want none", n)
	}
	if got := counter(t, f.r.metrics.probes.WithLabelValues(probeAnswered)); got != 2 {
		t.Errorf("probes answered = %v, want 2", got)
	}
	// The dedup memory does not hold the probe's id.
	if state, _ := f.r.dedup.begin(sigheader.ProbeEventIDPrefix+"n0nce1", 0); state != claimLeader {
		t.Errorf("dedup state of the probe's id = %v, want unseen (claimLeader)", state)
	}
}

// A probe without a valid Stripe-Signature gets the usual 400, whatever its marker; a probe-typed
// event with a valid Stripe-Signature but no valid probe marker is refused too, and neither
// reaches the system of record nor passes for a probe.
func TestProbeWithoutValidSignaturesIsRejected(t *testing.T) {
	f, target, url := probeServer(t)
	now := time.Now()
	body := probeBody(t, "n2", false)
	goodSig, goodMarker := sign(body, secretOld, now), sigheader.SignProbe(secretOld, now, body)
	for name, tc := range map[string]struct{ sig, marker string }{
		"unsigned":                                {"", goodMarker},
		"Stripe-Signature with another secret":    {sign(body, secretUnknown, now), sigheader.SignProbe(secretUnknown, now, body)},
		"Stripe-Signature over another body":      {sign(probeBody(t, "other", false), secretOld, now), goodMarker},
		"stale Stripe-Signature":                  {sign(body, secretOld, now.Add(-SignatureTolerance-time.Minute)), goodMarker},
		"no probe marker":                         {goodSig, ""},
		"probe marker with another secret":        {goodSig, sigheader.SignProbe(secretUnknown, now, body)},
		"probe marker over another body":          {goodSig, sigheader.SignProbe(secretOld, now, probeBody(t, "other", false))},
		"Stripe-Signature copied as probe marker": {goodSig, goodSig},
		"replay marker as probe marker":           {goodSig, sigheader.SignReplay(secretOld, now, body)},
		"stale probe marker":                      {goodSig, sigheader.SignProbe(secretOld, now.Add(-SignatureTolerance-time.Minute), body)},
	} {
		code, raw := postProbe(t, url, body, tc.sig, tc.marker)
		if code != http.StatusBadRequest {
			t.Errorf("%s: %d %q, want 400", name, code, raw)
		}
		if bytes.Contains(raw, []byte(`"nonce"`)) {
			t.Errorf("%s: answered as a probe: %q", name, raw)
		}
	}
	// A probe in the other mode's livemode is refused like any event of the wrong mode.
	live := probeBody(t, "n3", true)
	if code, raw := postProbe(t, url, live, sign(live, secretOld, now), sigheader.SignProbe(secretOld, now, live)); code != http.StatusBadRequest {
		t.Errorf("live probe to a test receiver: %d %q, want 400", code, raw)
	}
	if n := len(target.calls()); n != 0 {
		t.Errorf("the system of record saw %d deliveries, want none", n)
	}
	if got := counter(t, f.r.metrics.probes.WithLabelValues(probeAnswered)); got != 0 {
		t.Errorf("probes answered = %v, want 0", got)
	}
}

// A probe marker on a real Stripe event, forged or even made with the signing secret, does not
// make it a probe: the event is relayed as usual and the answer carries no nonce.
func TestProbeMarkerOnRealEventIsIgnored(t *testing.T) {
	_, target, url := probeServer(t)
	now := time.Now()
	for i, marker := range []func([]byte) string{
		func(b []byte) string { return sigheader.SignProbe(secretUnknown, now, b) },
		func(b []byte) string { return sigheader.SignProbe(secretOld, now, b) },
	} {
		body := goodBody(t, []string{"evt_real_forged", "evt_real_marked"}[i])
		code, raw := postProbe(t, url, body, sign(body, secretOld, now), marker(body))
		var got response
		if err := json.Unmarshal(raw, &got); err != nil || code != http.StatusOK || got.Status != resultRelayed {
			t.Errorf("real event with a probe marker (%d): %d %q, want 200 relayed", i, code, raw)
		}
		if bytes.Contains(raw, []byte(`"nonce"`)) {
			t.Errorf("real event answered as a probe: %q", raw)
		}
	}
	if n := len(target.calls()); n != 2 {
		t.Errorf("the system of record saw %d deliveries, want the 2 real events", n)
	}
}
