package receiver

import (
	"encoding/json"
	"net/http"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/sigheader"
)

// Results of a delivery probe, the result label of stripe_receiver_probes_total.
const (
	probeAnswered = "answered" // verified: answered with the nonce, not relayed
	probeRefused  = "refused"  // validly signed probe-typed event without a valid probe marker
)

// answerProbe handles the operator's delivery probe (sigheader.ProbeHeader): an event that
// passed Stripe's signature check, the livemode check and checkEvent. It reports whether it
// answered the request; false means an ordinary event, relayed as usual.
//
// A probe is an event of sigheader.ProbeEventType whose probe marker verifies with a loaded
// signing secret. It is answered 200 with the clinic ID and the probe's nonce, and is never
// relayed, dedup-stored or counted in stripe_receiver_events_total: it exists only to prove the
// path from the public URL to this receiver. An event of the probe type without a valid marker
// is refused with 400: Stripe never sends that type, so only someone holding the signing secret
// without the marker made it, and it must not reach a system of record. A probe marker on an
// event of any other type is ignored: that event is what it says, and goes the usual way.
func (r *Receiver) answerProbe(w http.ResponseWriter, req *http.Request, body []byte, ev stripe.Event) bool {
	if string(ev.Type) != sigheader.ProbeEventType {
		return false
	}
	nonce, isProbeID := sigheader.ProbeNonce(ev.ID)
	if !isProbeID || !sigheader.VerifyProbe(req.Header.Get(sigheader.ProbeHeader), body, r.secrets.Value(), SignatureTolerance, time.Now()) {
		r.metrics.probes.WithLabelValues(probeRefused).Inc()
		r.log.Info("Refused a delivery probe without a valid probe marker")
		writeJSON(w, http.StatusBadRequest, "rejected", "delivery probe without a valid probe marker")
		return true
	}
	r.metrics.probes.WithLabelValues(probeAnswered).Inc()
	r.log.V(1).Info("Answered a delivery probe", "nonce", nonce)
	b, _ := json.Marshal(sigheader.ProbeAnswer{Status: sigheader.ProbeStatus, ClinicID: r.cfg.ClinicID, Nonce: nonce}) // strings only
	writeAnswer(w, http.StatusOK, append(b, '\n'))
	return true
}
