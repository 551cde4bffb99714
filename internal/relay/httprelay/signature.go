package httprelay

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

// SignatureHeader is the header carrying the envelope's signature.
const SignatureHeader = "Clinicpay-Signature"

// DefaultTolerance is how far a signature timestamp may be from the verifier's clock.
const DefaultTolerance = 5 * time.Minute

// Errors returned by VerifySignature; match them with errors.Is.
var (
	// ErrNoSignature: the header is empty.
	ErrNoSignature = errors.New("no Clinicpay-Signature header")
	// ErrInvalidSignatureHeader: the header is not "t=<unix>,v1=<hex>[,v1=<hex>…]".
	ErrInvalidSignatureHeader = errors.New("invalid Clinicpay-Signature header")
	// ErrSignatureMismatch: no v1 value matches the body and key (tampered body or wrong key).
	ErrSignatureMismatch = errors.New("signature does not match the body")
	// ErrTimestampOutOfTolerance: the signature is too old (a replay) or too far in the future.
	ErrTimestampOutOfTolerance = errors.New("signature timestamp outside tolerance")
)

// Sign returns the Clinicpay-Signature value for body sent at t.
func Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, body))
}

func mac(key []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// VerifySignature checks a Clinicpay-Signature header against the raw body and key, and that
// its timestamp lies within tolerance of now (either side); tolerance <= 0 means
// DefaultTolerance. Any one matching v1 value is enough.
func VerifySignature(header string, body []byte, key []byte, tolerance time.Duration, now time.Time) error {
	if header == "" {
		return ErrNoSignature
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, sigs, err := parseSignature(header)
	if err != nil {
		return err
	}
	want := mac(key, ts, body)
	matched := false
	for _, sig := range sigs {
		if hmac.Equal(want, sig) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	unix, _ := strconv.ParseInt(ts, 10, 64) // parseSignature checked it
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %d, %s from now", ErrTimestampOutOfTolerance, unix, d.Round(time.Second))
	}
	return nil
}

// parseSignature returns the timestamp, exactly as signed, and the decoded v1 values.
func parseSignature(header string) (string, [][]byte, error) {
	var ts string
	var sigs [][]byte
	for pair := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return "", nil, ErrInvalidSignatureHeader
		}
		switch k {
		case "t":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil || ts != "" {
				return "", nil, ErrInvalidSignatureHeader
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return "", nil, ErrInvalidSignatureHeader
			}
			sigs = append(sigs, sig)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return "", nil, ErrInvalidSignatureHeader
	}
	return ts, sigs, nil
}
