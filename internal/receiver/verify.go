package receiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// cause is why a delivery was rejected with 400, the cause label of
// stripe_receiver_signature_failures_total.
type cause string

const (
	causeMissingHeader cause = "missing_header" // no Stripe-Signature header
	causeInvalidHeader cause = "invalid_header" // unparsable header, no t= or no v1=
	causeBadSignature  cause = "bad_signature"  // no v1 matches any loaded secret
	causeStale         cause = "stale"          // t= older than the tolerance
	causeFuture        cause = "future"         // t= further ahead than the tolerance
	causeMalformed     cause = "malformed"      // signed body is not a usable Stripe event
	causeLivemode      cause = "livemode"       // signed event's livemode contradicts the mode
)

func allCauses() []cause {
	return []cause{causeMissingHeader, causeInvalidHeader, causeBadSignature, causeStale,
		causeFuture, causeMalformed, causeLivemode}
}

// rejection is a 400 answer: its cause for metrics and a message safe to send and log (it never
// holds the secret or the payload).
type rejection struct {
	cause   cause
	message string
	// eventID and eventType are set only when the signature checked out: before that they are
	// whatever the sender wrote and must not reach logs or labels.
	eventID, eventType string
}

func reject(c cause, format string, args ...any) *rejection {
	return &rejection{cause: c, message: fmt.Sprintf(format, args...)}
}

// signed attaches the verified event's identity to a rejection.
func (r *rejection) signed(id, typ string) *rejection {
	r.eventID, r.eventType = id, typ
	return r
}

// verifyEvent checks header against each secret with stripe-go and returns the parsed event.
// stripe-go checks the tolerance only for the past, so the future bound is checked here.
//
// Events of every API version are accepted: Stripe renders a listed (replayed) event in the
// version in force when it was created, whatever the endpoint's or the client's version, so a
// pinned-version check would refuse every replay of an older account. The signature covers the
// raw body either way; the relays read only fields whose meaning they know across versions and
// pass the event's api_version on.
func verifyEvent(payload []byte, header string, secrets []string, now time.Time) (stripe.Event, *rejection) {
	if rej := precheckHeader(header, now); rej != nil {
		return stripe.Event{}, rej
	}
	err := webhook.ErrNoValidSignature // the answer when no secret is loaded
	for _, secret := range secrets {
		// What webhook.ConstructEventWithOptions does with IgnoreAPIVersionMismatch, in two
		// steps, so that the decode can leave out the map of data.object (decodeEvent).
		if err = webhook.ValidatePayloadWithTolerance(payload, header, secret, SignatureTolerance); err != nil {
			if !errors.Is(err, webhook.ErrNoValidSignature) {
				break // not secret-specific: stale or unparsable
			}
			continue
		}
		var ev stripe.Event
		if ev, err = decodeEvent(payload); err == nil {
			if !utf8.Valid(payload) {
				// encoding/json would silently turn the bad bytes into U+FFFD and relay an
				// event that differs from what was signed; JSON must be UTF-8 (RFC 8259).
				return stripe.Event{}, reject(causeMalformed, "event body is not valid UTF-8").signed(ev.ID, string(ev.Type))
			}
			return ev, checkEvent(ev)
		}
		break // signed but unusable
	}
	return stripe.Event{}, classify(err, payload)
}

// precheckHeader rejects what stripe-go would misreport: a header without t= (stripe-go reads
// it as the Unix epoch, "too old"), without v1= (reported as a bad signature), or from the
// future, which stripe-go accepts whatever the tolerance.
func precheckHeader(header string, now time.Time) *rejection {
	if header == "" {
		return reject(causeMissingHeader, "missing Stripe-Signature header")
	}
	var ts int64
	hasT, hasV1 := false, false
	for pair := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return reject(causeInvalidHeader, "invalid Stripe-Signature header")
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return reject(causeInvalidHeader, "invalid Stripe-Signature timestamp")
			}
			ts, hasT = n, true
		case "v1":
			hasV1 = true
		}
	}
	if !hasT || !hasV1 {
		return reject(causeInvalidHeader, "Stripe-Signature header needs t= and v1=")
	}
	if time.Unix(ts, 0).Sub(now) > SignatureTolerance {
		return reject(causeFuture, "Stripe-Signature timestamp is in the future beyond %s", SignatureTolerance)
	}
	return nil
}

// classify maps stripe-go's errors to causes. Any other error is stripe-go's plain-string JSON
// error, which means the signature was valid: the body's id and type are then trusted labels.
func classify(err error, payload []byte) *rejection {
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		return reject(causeMissingHeader, "missing Stripe-Signature header")
	case errors.Is(err, webhook.ErrInvalidHeader):
		return reject(causeInvalidHeader, "invalid Stripe-Signature header")
	case errors.Is(err, webhook.ErrNoValidSignature):
		return reject(causeBadSignature, "no valid signature for this endpoint's signing secret")
	case errors.Is(err, webhook.ErrTooOld):
		return reject(causeStale, "Stripe-Signature timestamp is older than %s", SignatureTolerance)
	}
	var probe struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	_ = json.Unmarshal(payload, &probe) // best effort: labels only
	return reject(causeMalformed, "malformed event JSON").signed(probe.ID, probe.Type)
}

// checkEvent rejects signed events the relay cannot use.
func checkEvent(ev stripe.Event) *rejection {
	if ev.ID == "" || ev.Type == "" || ev.Data == nil || len(ev.Data.Raw) == 0 {
		return reject(causeMalformed, "event lacks id, type or data.object").signed(ev.ID, string(ev.Type))
	}
	return nil
}

// checkMode rejects an event whose livemode contradicts the receiver's mode: a test endpoint's
// secret must never let a test event reach a live system of record, nor the reverse.
func checkMode(ev stripe.Event, mode Mode) *rejection {
	if ev.Livemode != (mode == ModeLive) {
		return reject(causeLivemode, "event livemode=%t contradicts the receiver's %s mode", ev.Livemode, mode).
			signed(ev.ID, string(ev.Type))
	}
	return nil
}
