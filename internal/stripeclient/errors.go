package stripeclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	stripe "github.com/stripe/stripe-go/v76"
)

// ErrorKind classifies a failed Stripe call by what the controller should do about it.
type ErrorKind string

const (
	// KindInvalidKey: HTTP 401, the key is invalid, revoked or expired.
	KindInvalidKey ErrorKind = "InvalidKey"
	// KindPermissionDenied: HTTP 403, a restricted key lacks a permission (see Error.Permission).
	KindPermissionDenied ErrorKind = "PermissionDenied"
	// KindRateLimited: HTTP 429, or the operator's own per-account limiter refused to wait.
	KindRateLimited ErrorKind = "RateLimited"
	// KindUnavailable: HTTP 5xx, network errors, timeouts, connection refused.
	KindUnavailable ErrorKind = "Unavailable"
	// KindNotFound: HTTP 404 (resource_missing).
	KindNotFound ErrorKind = "NotFound"
	// KindInvalidRequest: any other HTTP 4xx; Message and Param are Stripe's.
	KindInvalidRequest ErrorKind = "InvalidRequest"
	// KindLimitReached: HTTP 400 because the account already has as many webhook endpoints as
	// Stripe allows (16 per mode); someone has to delete one.
	KindLimitReached ErrorKind = "LimitReached"
	// KindIdempotencyConflict: an idempotency_error, the Idempotency-Key was first used with
	// other parameters (or another endpoint); retrying the same request cannot succeed.
	KindIdempotencyConflict ErrorKind = "IdempotencyConflict"
	// KindConflict: HTTP 409, e.g. idempotency_key_in_use while a request with the same key is
	// still running. Transient.
	KindConflict ErrorKind = "Conflict"
	// KindOther: anything unexpected.
	KindOther ErrorKind = "Other"
)

var (
	// permissionPattern finds the permission in Stripe's 403 message: "... Having the
	// 'rak_webhook_write' permission would allow this request to continue."
	permissionPattern = regexp.MustCompile(`'(rak_[a-z0-9_]+)'`)
	anyPermission     = regexp.MustCompile(`\brak_[a-z0-9_]+`)
	// undecodablePattern recovers the status stripe-go puts into its error when a response
	// body is not JSON, as a proxy's or load balancer's error page is.
	undecodablePattern = regexp.MustCompile(`Couldn't deserialize JSON \(response status: (\d{3})`)
	// limitReachedPattern recognises Stripe's 400 for one endpoint too many ("You have reached
	// the maximum of 16 test webhook endpoints."). Stripe sends no code for it, so the wording
	// is all there is; the pattern tolerates rephrasing around "maximum"/"limit".
	limitReachedPattern = regexp.MustCompile(
		`(?i)\b(maximum|max|limits?)\b.*\bwebhook[ _-]?endpoints?\b|\bwebhook[ _-]?endpoints?\b.*\b(maximum|max|limits?)\b`)
)

// Error is a failed Stripe call. Message is redacted, and so is Error(); Err is the cause,
// redacted too: a *stripe.Error is replaced by a redacted copy, anything else is wrapped so
// that its message is redacted while errors.Is still sees the original.
type Error struct {
	Kind       ErrorKind
	HTTPStatus int
	// Code and Param are Stripe's error code and offending parameter, when given.
	Code  string
	Param string
	// Permission is the missing permission (rak_…) of a KindPermissionDenied, when Stripe named it.
	Permission string
	Message    string
	// Answered: Stripe itself answered with an error body (not a timeout, a dropped connection or
	// a proxy's page). Stripe saves such an answer under the request's Idempotency-Key.
	Answered bool
	Err      error
}

// Error renders kind, status, code, param and message, redacted.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("stripe ")
	b.WriteString(string(e.Kind))
	var details []string
	if e.HTTPStatus != 0 {
		details = append(details, "HTTP "+strconv.Itoa(e.HTTPStatus))
	}
	if e.Code != "" {
		details = append(details, "code "+e.Code)
	}
	if e.Param != "" {
		details = append(details, "param "+e.Param)
	}
	if len(details) > 0 {
		b.WriteString(" (" + strings.Join(details, ", ") + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return Redact(b.String())
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error {
	return e.Err
}

// Transient reports whether retrying later may succeed without anyone changing anything.
func (e *Error) Transient() bool {
	return e != nil && (e.Kind == KindRateLimited || e.Kind == KindUnavailable || e.Kind == KindConflict)
}

// Classify turns any error from a Stripe call into an *Error: an *Error (possibly wrapped) is
// returned as is, a *stripe.Error is classified by HTTP status, context and network errors
// are KindUnavailable. It returns nil for nil.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var own *Error
	if errors.As(err, &own) {
		return own
	}
	var se *stripe.Error
	if errors.As(err, &se) {
		return fromStripeError(se)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: KindUnavailable, Message: "no answer from Stripe in time: " + Redact(err.Error()), Err: redacted{err}}
	case errors.Is(err, context.Canceled):
		return &Error{Kind: KindUnavailable, Message: "request to Stripe canceled: " + Redact(err.Error()), Err: redacted{err}}
	}
	if m := undecodablePattern.FindStringSubmatch(err.Error()); m != nil {
		status, _ := strconv.Atoi(m[1])
		// The body sample may hold anything; keep it out of the message.
		return &Error{Kind: kindForStatus(status), HTTPStatus: status,
			Message: fmt.Sprintf("Stripe answered HTTP %d with a body that is not a Stripe response", status),
			Err:     errors.New(Redact(err.Error()))}
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return &Error{Kind: KindUnavailable, Message: "could not reach Stripe: " + Redact(err.Error()), Err: redacted{err}}
	}
	return &Error{Kind: KindOther, Message: Redact(err.Error()), Err: redacted{err}}
}

// redacted hides the message of a cause that may echo key material (a url.Error's text,
// a proxy's body) while keeping it reachable for errors.Is and errors.As.
type redacted struct {
	err error
}

func (r redacted) Error() string { return Redact(r.err.Error()) }

func (r redacted) Unwrap() error { return r.err }

// fromStripeError classifies an error response from Stripe.
func fromStripeError(se *stripe.Error) *Error {
	e := &Error{
		Kind:       kindForStatus(se.HTTPStatusCode),
		HTTPStatus: se.HTTPStatusCode,
		Code:       string(se.Code),
		Param:      se.Param,
		Message:    Redact(se.Msg),
		Answered:   true,
		Err:        redactedStripeError(se),
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("Stripe answered HTTP %d %s", se.HTTPStatusCode, http.StatusText(se.HTTPStatusCode))
	}
	switch e.Kind {
	case KindPermissionDenied:
		e.Permission = parsePermission(se.Msg)
	case KindInvalidRequest:
		e.Kind = refineInvalidRequest(se)
	}
	return e
}

// refineInvalidRequest picks out the 4xx answers the controller handles differently from a
// plain bad request.
func refineInvalidRequest(se *stripe.Error) ErrorKind {
	switch {
	case se.Type == stripe.ErrorTypeIdempotency:
		return KindIdempotencyConflict
	case se.HTTPStatusCode == http.StatusBadRequest && limitReachedPattern.MatchString(se.Msg):
		return KindLimitReached
	default:
		return KindInvalidRequest
	}
}

// kindForStatus maps an HTTP status of a Stripe error response to a kind.
func kindForStatus(status int) ErrorKind {
	switch {
	case status == http.StatusUnauthorized:
		return KindInvalidKey
	case status == http.StatusForbidden:
		return KindPermissionDenied
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusTooManyRequests:
		return KindRateLimited
	case status == http.StatusConflict:
		// Another request with the same Idempotency-Key is in flight (two reconciles of one
		// object), or an object lock: both resolve by retrying later.
		return KindConflict
	case status >= 500:
		return KindUnavailable
	case status >= 400:
		return KindInvalidRequest
	default:
		return KindOther
	}
}

func parsePermission(msg string) string {
	if m := permissionPattern.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return anyPermission.FindString(msg)
}

// redactedStripeError copies the fields worth keeping; the original's raw response and its
// typed sub-error would still hold the masked key Stripe echoes.
func redactedStripeError(se *stripe.Error) *stripe.Error {
	return &stripe.Error{
		Code:           se.Code,
		DocURL:         se.DocURL,
		HTTPStatusCode: se.HTTPStatusCode,
		Msg:            Redact(se.Msg),
		Param:          se.Param,
		RequestID:      se.RequestID,
		Type:           se.Type,
	}
}
