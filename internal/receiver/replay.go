package receiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// ReplaySignatureHeader marks a delivery as the operator's deliberate re-send (replay-since):
// such an event is relayed again even if this replica relayed it before. Its value is
// "t=<unix>,v1=<hex HMAC-SHA256>" keyed with the endpoint's signing secret, so only a holder of
// that secret (Stripe does not send it; the operator does) can mark a replay.
const ReplaySignatureHeader = "Clinicpay-Replay-Signature"

// replayDomain prefixes the MACed bytes so that a Stripe-Signature value, computed with the
// same secret over "<t>.<body>", can never be copied into the replay header.
const replayDomain = "clinicpay-replay."

// SignReplay returns the ReplaySignatureHeader value for body re-sent at t with secret.
func SignReplay(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(replayMAC(secret, ts, body))
}

func replayMAC(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(replayDomain))
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// verifyReplay reports whether header marks body as a replay signed with one of secrets, its
// timestamp within SignatureTolerance of now either side (a captured replay expires like a
// Stripe delivery).
func verifyReplay(header string, body []byte, secrets []string, now time.Time) bool {
	ts, sigs := parseReplayHeader(header)
	if ts == "" || len(sigs) == 0 {
		return false
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(n, 0)); d > SignatureTolerance || d < -SignatureTolerance {
		return false
	}
	for _, secret := range secrets {
		want := replayMAC(secret, ts, body)
		for _, sig := range sigs {
			if hmac.Equal(want, sig) {
				return true
			}
		}
	}
	return false
}

// parseReplayHeader returns t and the decodable v1 values; anything else is ignored.
func parseReplayHeader(header string) (string, [][]byte) {
	var ts string
	var sigs [][]byte
	for pair := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	return ts, sigs
}
