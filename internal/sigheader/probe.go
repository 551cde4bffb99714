package sigheader

import (
	"strings"
	"time"
)

// ProbeHeader marks a delivery as the operator's delivery probe: a Stripe-shaped event that the
// operator posts through the clinic's registered public URL, signed in Stripe-Signature like any
// Stripe delivery, to prove that what Stripe posts there reaches this clinic's receiver. Its
// value is in the Probe scheme, keyed with the endpoint's signing secret, so a valid
// Stripe-Signature alone never makes a delivery a probe, and a probe marker copied onto another
// body does not verify. The receiver answers a probe itself (ProbeAnswer) and never relays it.
const ProbeHeader = "Clinicpay-Probe-Signature"

// Probe is the probe marker's scheme. Its domain keeps a Stripe-Signature, replay or ledger
// value, computed with the same secret, from passing for a probe marker.
var Probe = Scheme{Domain: "clinicpay-probe."}

// The probe event's shape. Stripe never sends an event of ProbeEventType (Stripe's types are
// the ones listed at https://docs.stripe.com/api/events/types, none under "clinicpay."), and
// its id carries the nonce the receiver echoes: ProbeEventIDPrefix + nonce.
const (
	ProbeEventType     = "clinicpay.delivery_probe"
	ProbeEventIDPrefix = "evt_clinicpay_probe_"
	// ProbeStatus is the status of the receiver's answer to a verified probe.
	ProbeStatus = "probe"
)

// ProbeAnswer is the receiver's 200 answer to a verified probe: the clinic it serves and the
// probe's nonce, so the operator knows the answer came from this clinic's receiver and not from
// whatever else a misrouted URL reaches.
type ProbeAnswer struct {
	Status   string `json:"status"`
	ClinicID string `json:"clinicID"`
	Nonce    string `json:"nonce"`
}

// SignProbe returns the ProbeHeader value for body sent at t with the signing secret.
func SignProbe(secret string, t time.Time, body []byte) string {
	return Probe.Sign([]byte(secret), t, body)
}

// VerifyProbe reports whether header marks body as a probe signed with one of secrets, its
// timestamp within tolerance of now either side.
func VerifyProbe(header string, body []byte, secrets []string, tolerance time.Duration, now time.Time) bool {
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		keys[i] = []byte(s)
	}
	return Probe.Verify(header, body, tolerance, now, keys...) == nil
}

// ProbeNonce returns the nonce in a probe event id, and whether the id is a probe's.
func ProbeNonce(eventID string) (string, bool) {
	nonce, ok := strings.CutPrefix(eventID, ProbeEventIDPrefix)
	return nonce, ok && nonce != ""
}
