package httprelay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-logr/logr"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/secretfile"
)

// Config configures the HTTP target.
type Config struct {
	// URL is the clinic's endpoint: absolute http(s), without user info (credentials belong in
	// files, not in flags that show up in the Pod spec).
	URL string
	// SigningKeyFile holds the HMAC key for Clinicpay-Signature; empty sends no signature.
	SigningKeyFile string
	// Timeout bounds one POST on top of the caller's context; zero adds no bound.
	Timeout time.Duration
	// HTTPClient sends the requests; nil uses a new client. Redirects are never followed.
	HTTPClient *http.Client
	// Now is the signing clock; nil uses time.Now.
	Now func() time.Time
	// KeyCheckInterval is the minimum time between stats of SigningKeyFile; zero means 1 s.
	KeyCheckInterval time.Duration
	// Log reports loads of SigningKeyFile and errors reading it; the zero Logger discards.
	Log logr.Logger
}

// Target POSTs signed envelopes to a clinic's URL. It implements relay.Target.
type Target struct {
	url     string
	safeURL string // without query, for errors that end up in logs
	timeout time.Duration
	client  *http.Client
	now     func() time.Time
	key     *secretfile.File[[]byte] // nil: unsigned
}

var _ relay.Target = &Target{}

// New validates cfg and, when a key file is set, reads the key once so a bad mount fails at
// start-up rather than on the first event.
func New(cfg Config) (*Target, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("http target URL: %w", err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, fmt.Errorf("http target URL %q must be an absolute http or https URL", u.Redacted())
	case u.User != nil:
		return nil, errors.New("http target URL must not contain user info; authenticate the receiver with the signing key instead")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("http target timeout %s must not be negative", cfg.Timeout)
	}
	t := &Target{url: u.String(), safeURL: (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(),
		timeout: cfg.Timeout, now: cfg.Now}
	if t.now == nil {
		t.now = time.Now
	}
	client := &http.Client{}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		client = &c
	}
	// A redirect would resend the body and its signature to wherever the redirect points.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t.client = client
	if cfg.SigningKeyFile != "" {
		if t.key, err = newKeyFile(cfg.SigningKeyFile, cfg.KeyCheckInterval, t.now, cfg.Log); err != nil {
			return nil, fmt.Errorf("http target: %w", err)
		}
	}
	return t, nil
}

// Name implements relay.Target.
func (t *Target) Name() string { return "http" }

// StatusError is a non-2xx answer from the clinic's endpoint.
type StatusError struct {
	// StatusCode is the HTTP status the endpoint answered.
	StatusCode int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("clinic endpoint answered HTTP %d", e.StatusCode)
}

// Header values every envelope carries; shared by all requests and never modified.
var (
	contentTypeJSON = []string{"application/json"}
	userAgent       = []string{"clinicpay-stripe-receiver"}

	canonicalWebhookID        = http.CanonicalHeaderKey(HeaderWebhookID)
	canonicalWebhookTimestamp = http.CanonicalHeaderKey(HeaderWebhookTimestamp)
	canonicalWebhookSignature = http.CanonicalHeaderKey(HeaderWebhookSignature)
)

// Deliver implements relay.Target: one POST, accepted on 2xx. The clinic deduplicates on
// Idempotency-Key, which is why redelivering the same event is safe.
func (t *Target) Deliver(ctx context.Context, ev relay.Event) error {
	env, err := NewEnvelope(ev)
	if err != nil {
		return fmt.Errorf("building envelope: %w", err)
	}
	body, err := jsonMarshal(env)
	if err != nil {
		return fmt.Errorf("encoding envelope: %w", err)
	}
	return t.post(ctx, env.ID, body)
}

// post sends one signed envelope body whose deduplication key (Idempotency-Key, webhook-id) is
// key, and returns nil on a 2xx answer.
func (t *Target) post(ctx context.Context, key string, body []byte) error {
	// A caller whose own deadline comes first (the receiver bounds every delivery with the same
	// forward timeout) needs no second one: it would only add a context, and a timer to set and
	// stop, to every event.
	if dl, bounded := ctx.Deadline(); t.timeout > 0 && (!bounded || time.Until(dl) > t.timeout) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	// Built whole rather than Set one by one: the constant values are shared (nothing writes to
	// a request's header once it is sent), so each event allocates only its own values.
	req.Header = http.Header{"Content-Type": contentTypeJSON, "Idempotency-Key": {key}, "User-Agent": userAgent}
	if t.key != nil {
		secret, now := t.key.Current(), t.now()
		// Standard Webhooks, and the Stripe-style header it replaces (kept for one release; see
		// the package documentation, "Clinicpay-Signature"). Canonical keys, as Set would make.
		req.Header[canonicalWebhookID] = []string{key}
		req.Header[canonicalWebhookTimestamp] = []string{strconv.FormatInt(now.Unix(), 10)}
		req.Header[canonicalWebhookSignature] = []string{SignStandard(secret, key, now, body)}
		req.Header[SignatureHeader] = []string{Sign(secret, now, body)}
	}
	resp, err := t.client.Do(req)
	if err != nil {
		// *url.Error repeats the full URL, query included; keep only the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fmt.Errorf("POST %s: %w", t.safeURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	// Drain a bounded amount so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &StatusError{StatusCode: resp.StatusCode}
	}
	return nil
}
