package httprelay

import (
	"time"

	"github.com/clinicpay/stripe-operator/internal/sigheader"
)

// SignatureHeader is the header carrying the envelope's signature, in Stripe's scheme
// (package sigheader).
const SignatureHeader = "Clinicpay-Signature"

// DefaultTolerance is how far a signature timestamp may be from the verifier's clock.
const DefaultTolerance = sigheader.DefaultTolerance

// Errors returned by VerifySignature; match them with errors.Is.
var (
	// ErrNoSignature: the header is empty.
	ErrNoSignature = sigheader.ErrNoHeader
	// ErrInvalidSignatureHeader: the header is not "t=<unix>,v1=<hex>[,v1=<hex>…]".
	ErrInvalidSignatureHeader = sigheader.ErrInvalidHeader
	// ErrSignatureMismatch: no v1 value matches the body and key (tampered body or wrong key).
	ErrSignatureMismatch = sigheader.ErrMismatch
	// ErrTimestampOutOfTolerance: the signature is too old (a replay) or too far in the future.
	ErrTimestampOutOfTolerance = sigheader.ErrOutOfTolerance
)

// Sign returns the Clinicpay-Signature value for body sent at t.
func Sign(key []byte, t time.Time, body []byte) string {
	return sigheader.Sign(key, t, body)
}

// VerifySignature checks a Clinicpay-Signature header against the raw body and key, and that
// its timestamp lies within tolerance of now (either side); tolerance <= 0 means
// DefaultTolerance. Any one matching v1 value is enough.
func VerifySignature(header string, body []byte, key []byte, tolerance time.Duration, now time.Time) error {
	return sigheader.Verify(header, body, tolerance, now, key)
}
