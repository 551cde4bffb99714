package fhirrelay

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// Defaults for the Config fields left empty.
const (
	DefaultPatientMetadataKey = "patient_id"
	DefaultClaimMetadataKey   = "claim_id"
	DefaultInvoiceMetadataKey = "invoice_id"
	DefaultTimeout            = 10 * time.Second
)

// Config configures the FHIR target of one clinic's receiver.
type Config struct {
	// BaseURL is the FHIR R4 REST base, e.g. https://fhir.clinic.example/r4.
	BaseURL string
	// TokenFile holds the bearer token (a trailing newline is trimmed). It is checked at most
	// once per second, so a rotated Secret takes effect without a restart; a file that vanishes
	// or empties keeps the last good token (package secretfile). Empty means no Authorization
	// header.
	TokenFile string
	// PatientMetadataKey, ClaimMetadataKey and InvoiceMetadataKey name the Stripe metadata
	// keys whose values are FHIR Patient, Claim and Invoice ids; defaults "patient_id",
	// "claim_id" and "invoice_id".
	PatientMetadataKey, ClaimMetadataKey, InvoiceMetadataKey string
	// Timeout bounds each FHIR request; default 10s.
	Timeout time.Duration
	// HTTPClient sends the requests; default a client with Go's default transport. Redirects
	// are never followed, whatever the client says (see New).
	HTTPClient *http.Client
	// Log reports loads of TokenFile and errors reading it; the zero Logger discards.
	Log logr.Logger
}

// Target writes Stripe events to a FHIR R4 server. It implements relay.Target and is safe
// for concurrent use.
type Target struct {
	base    string
	keys    metadataKeys
	timeout time.Duration
	client  *http.Client
	token   *tokenSource
	// payouts remembers, per payout being written, the notices already settled, so a retry
	// resumes (ledger.go).
	payouts payoutProgress
}

var _ relay.Target = (*Target)(nil)

// New checks cfg, fills its defaults and reads the token file once, so a missing or empty
// token fails at startup rather than on the first payment.
func New(cfg Config) (*Target, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("fhir: timeout %s is negative", cfg.Timeout)
	}
	t := &Target{
		base:    base,
		keys:    newMetadataKeys(cfg),
		timeout: cfg.Timeout,
		token:   newTokenSource(cfg.TokenFile, cfg.Log),
	}
	if t.timeout == 0 {
		t.timeout = DefaultTimeout
	}
	if err := t.token.load(); err != nil {
		return nil, err
	}
	// A shallow copy shares the caller's transport without changing the caller's client.
	// Redirects are refused: following a 301/302/303 turns the POST into a GET, whose 200
	// would look like an accepted create.
	client := http.Client{}
	if cfg.HTTPClient != nil {
		client = *cfg.HTTPClient
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	t.client = &client
	return t, nil
}

// Name identifies the target in metrics and logs.
func (t *Target) Name() string { return "fhir" }

// parseBaseURL accepts an absolute http(s) URL without query or fragment and returns it
// without a trailing slash, ready for "/<Type>".
func parseBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("fhir: base URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("fhir: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("fhir: base URL %q is not an absolute http(s) URL", raw)
	}
	// Credentials belong in the token file; the URL appears in errors and logs. Not echoed.
	if u.User != nil {
		return "", errors.New("fhir: base URL must not carry user info; use the token file")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("fhir: base URL %q must not carry a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}
