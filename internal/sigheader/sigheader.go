// Package sigheader signs and verifies Stripe's signature header format,
//
//	t=<unix seconds>,v1=<lower-case hex HMAC-SHA256 of "<t>.<body>">[,v1=…]
//
// the one format behind Stripe-Signature (which the operator writes when it replays events),
// Clinicpay-Signature on the HTTP relay's envelopes and Clinicpay-Replay-Signature, the
// operator's replay marker. A Scheme's Domain, MACed before "<t>.", keeps a value made for one
// use from passing for another's under the same key. The receiver verifies Stripe's own
// deliveries with stripe-go's webhook package, which implements the same format.
package sigheader

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is Stripe's: how far a signature's timestamp may be from the verifier's
// clock, either side, when Verify is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify; match them with errors.Is.
var (
	// ErrNoHeader: the header is empty.
	ErrNoHeader = errors.New("no signature header")
	// ErrInvalidHeader: the header is not "t=<unix>,v1=<hex>[,v1=<hex>…]".
	ErrInvalidHeader = errors.New("invalid signature header")
	// ErrMismatch: no v1 value matches the body and key (tampered body or wrong key).
	ErrMismatch = errors.New("signature does not match the body")
	// ErrOutOfTolerance: the signature is too old (a replay) or too far in the future.
	ErrOutOfTolerance = errors.New("signature timestamp outside tolerance")
)

// Scheme is one use of the header format.
type Scheme struct {
	// Domain is MACed before "<t>.<body>"; empty for Stripe's own scheme.
	Domain string
}

// Stripe is Stripe's scheme, HMAC over "<t>.<body>": Stripe-Signature and Clinicpay-Signature.
var Stripe = Scheme{}

// Sign returns the header value for body sent at t, keyed with key, in Stripe's scheme.
func Sign(key []byte, t time.Time, body []byte) string { return Stripe.Sign(key, t, body) }

// Verify checks a header in Stripe's scheme; see Scheme.Verify.
func Verify(header string, body []byte, tolerance time.Duration, now time.Time, keys ...[]byte) error {
	return Stripe.Verify(header, body, tolerance, now, keys...)
}

// Sign returns the header value for body sent at t, keyed with key.
func (s Scheme) Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(s.mac(key, ts, body))
}

func (s Scheme) mac(key []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s.Domain))
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// Verify checks header against the raw body: some v1 value must match the HMAC under one of
// keys (several while a key is rolled), and the timestamp must lie within tolerance of now,
// either side; tolerance <= 0 means DefaultTolerance. A mismatch is reported before the
// timestamp, so a stale header with a wrong key says "mismatch".
func (s Scheme) Verify(header string, body []byte, tolerance time.Duration, now time.Time, keys ...[]byte) error {
	if header == "" {
		return ErrNoHeader
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, sigs, err := parse(header)
	if err != nil {
		return err
	}
	if !s.matches(ts, sigs, body, keys) {
		return ErrMismatch
	}
	unix, _ := strconv.ParseInt(ts, 10, 64) // parse checked it
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %d, %s from now", ErrOutOfTolerance, unix, d.Round(time.Second))
	}
	return nil
}

func (s Scheme) matches(ts string, sigs [][]byte, body []byte, keys [][]byte) bool {
	for _, key := range keys {
		want := s.mac(key, ts, body)
		for _, sig := range sigs {
			if hmac.Equal(want, sig) {
				return true
			}
		}
	}
	return false
}

// parse returns the timestamp, exactly as signed, and the decoded v1 values. Other schemes'
// pairs (Stripe sends v0 in test mode) are ignored; a malformed pair is an error.
func parse(header string) (string, [][]byte, error) {
	var ts string
	var sigs [][]byte
	for pair := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return "", nil, ErrInvalidHeader
		}
		switch k {
		case "t":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil || ts != "" {
				return "", nil, ErrInvalidHeader
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return "", nil, ErrInvalidHeader
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return "", nil, ErrInvalidHeader
	}
	return ts, sigs, nil
}
