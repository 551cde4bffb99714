package sigheader

import "time"

// ReplayHeader marks a delivery as the operator's deliberate re-send (replay-since): the
// receiver relays such an event again even if this replica relayed it before. Its value is in
// the Replay scheme, keyed with the endpoint's signing secret, so only a holder of that secret
// (Stripe does not send it; the operator does) can mark a replay.
const ReplayHeader = "Clinicpay-Replay-Signature"

// Replay is the replay marker's scheme. Its domain keeps a Stripe-Signature value, computed
// with the same secret over "<t>.<body>", from ever being copied into ReplayHeader.
var Replay = Scheme{Domain: "clinicpay-replay."}

// SignReplay returns the ReplayHeader value for body re-sent at t with the signing secret.
func SignReplay(secret string, t time.Time, body []byte) string {
	return Replay.Sign([]byte(secret), t, body)
}

// VerifyReplay reports whether header marks body as a replay signed with one of secrets, its
// timestamp within tolerance of now either side (a captured marker expires like a Stripe
// delivery).
func VerifyReplay(header string, body []byte, secrets []string, tolerance time.Duration, now time.Time) bool {
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		keys[i] = []byte(s)
	}
	return Replay.Verify(header, body, tolerance, now, keys...) == nil
}

// The receiver answers every delivery with {"status": ..., "message": ...}. To a replay, only
// these two statuses say the event went through: relayed to every system of record, or verified
// with none configured. Any other 2xx ("duplicate") means the receiver did not take the marker
// (clocks further apart than the tolerance, or a receiver that predates replays), and the
// operator counts the event as not delivered rather than report a replay that did nothing.
const (
	ReplayStatusRelayed      = "relayed"
	ReplayStatusAcknowledged = "acknowledged"
)
