package stripeclient

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	stripe "github.com/stripe/stripe-go/v76"
)

// Verbosity of the Stripe client's lines in logr. Each HTTP exchange is one line at V(1);
// stripe-go's warnings (retries) and errors (failed requests) stay visible at V(0). Errors are
// logged as Info with stripeLevel=error because the controller reports and retries them; a
// logr Error here would double-report every rejected key.
const infoVerbosity = 1

// No line of this package carries a Stripe response body, a query string or a header: replayed
// /v1/events pages hold customers' names and e-mail addresses, and error bodies may echo them.
// Lines say what was called and how it went (method, path, status, request id, Stripe's error
// type and code), never what came back.

// leveledLogger adapts logr to stripe.LeveledLoggerInterface. stripe-go formats its lines
// itself, some with a response body in them, so this logger matches stripe-go's format strings
// and keeps only the safe parts of each; any other line is withheld (a stripe-go upgrade can
// cost detail, never leak data).
type leveledLogger struct {
	log logr.Logger
}

var _ stripe.LeveledLoggerInterface = leveledLogger{}

// NewLeveledLogger returns a stripe-go logger that writes to log without bodies or payloads.
func NewLeveledLogger(log logr.Logger) stripe.LeveledLoggerInterface {
	return leveledLogger{log: log}
}

// Debugf drops the line: stripe-go's only debug line is a full response body.
func (l leveledLogger) Debugf(string, ...interface{}) {}

// Infof drops request chatter (the transport logs each exchange) and keeps 402 answers at V(1).
func (l leveledLogger) Infof(format string, v ...interface{}) {
	if format == fmtUserError {
		l.emit(infoVerbosity, "info", format, v)
	}
}

// Warnf logs at V(0): stripe-go warns when it retries a request.
func (l leveledLogger) Warnf(format string, v ...interface{}) {
	l.emit(0, "warn", format, v)
}

// Errorf logs at V(0) with stripeLevel=error.
func (l leveledLogger) Errorf(format string, v ...interface{}) {
	l.emit(0, "error", format, v)
}

// stripe-go v76's format strings that carry something worth keeping (stripe.go).
const (
	fmtRetry         = "Initiating retry %v for request %v %v%v after sleeping %v"
	fmtStripeError   = "Request error from Stripe (status %v): %v"
	fmtUserError     = "User-compelled request error from Stripe (status %v): %v"
	fmtRequestFailed = "Request failed with error: %v"
	fmtUndecodable   = "Error decoding error from Stripe: %v"
	fmtVerboseJSON   = "%s" // UnmarshalJSONVerbose: a sample of a body that is not JSON
	fmtNewRequest    = "Cannot create Stripe request: %v"
)

func (l leveledLogger) emit(verbosity int, level, format string, v []interface{}) {
	log := l.log.V(verbosity)
	if !log.Enabled() {
		return
	}
	msg, kv := safeLine(format, v)
	log.Info(msg, append(kv, "stripeLevel", level)...)
}

// safeLine turns one stripe-go line into a fixed message and the safe key/values of its arguments.
func safeLine(format string, v []interface{}) (string, []any) {
	arg := func(i int) any {
		if i < len(v) {
			return v[i]
		}
		return nil
	}
	switch format {
	case fmtRetry:
		return "Retrying Stripe request", []any{"retry", arg(0), "method", arg(1), "path", arg(3), "sleep", arg(4)}
	case fmtStripeError, fmtUserError:
		return "Stripe answered with an error", stripeErrorValues(arg(0), arg(1))
	case fmtRequestFailed, fmtNewRequest:
		return "Stripe request failed", []any{"error", safeError(arg(0))}
	case fmtUndecodable:
		return "Stripe error response could not be decoded", nil
	case fmtVerboseJSON:
		kv := []any{}
		if s, ok := arg(0).(string); ok {
			if m := undecodablePattern.FindStringSubmatch(s); m != nil {
				status, _ := strconv.Atoi(m[1]) // three digits by the pattern
				kv = append(kv, "status", status)
			}
		}
		return "Stripe response is not JSON", kv
	default:
		return "Stripe client line withheld", []any{"format", format}
	}
}

// stripeErrorValues keeps status, type, code, param and request id of a Stripe error: its
// message may quote what the request or the account holds.
func stripeErrorValues(status, err any) []any {
	kv := []any{"status", status}
	var se *stripe.Error
	if e, ok := err.(error); ok && errors.As(e, &se) {
		for _, f := range [][2]string{{"type", string(se.Type)}, {"code", string(se.Code)}, {"param", se.Param}, {"requestId", se.RequestID}} {
			if f[1] != "" {
				kv = append(kv, f[0], f[1])
			}
		}
	}
	return kv
}

// safeError renders a transport error without the request URL's query string, redacted.
func safeError(v any) string {
	err, ok := v.(error)
	if !ok {
		return "unknown"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return Redact(ue.Op + " " + stripQuery(ue.URL) + ": " + ue.Err.Error())
	}
	return Redact(err.Error())
}

func stripQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// logTransport logs one line per HTTP exchange with Stripe at V(1): method, path, status,
// Stripe's request id and duration. Never a body, a query string or a header.
type logTransport struct {
	base http.RoundTripper
	log  logr.Logger
}

func (t logTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	log := t.log.V(infoVerbosity)
	if !log.Enabled() {
		return resp, err
	}
	kv := []any{"method", req.Method, "path", req.URL.Path, "durationMs", time.Since(start).Milliseconds()}
	if err != nil {
		log.Info("Stripe request failed", append(kv, "error", Redact(err.Error()))...)
		return resp, err
	}
	log.Info("Stripe request", append(kv, "status", resp.StatusCode, "requestId", resp.Header.Get("Request-Id"))...)
	return resp, err
}

// withLogTransport returns a shallow copy of hc whose transport logs each exchange to log; the
// copy shares hc's connection pool.
func withLogTransport(hc *http.Client, log logr.Logger) *http.Client {
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = logTransport{base: base, log: log}
	return &c
}
