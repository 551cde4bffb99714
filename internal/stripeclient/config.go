package stripeclient

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	stripe "github.com/stripe/stripe-go/v76"
	"golang.org/x/time/rate"
)

// Defaults applied by NewFactory to zero Config fields.
const (
	// DefaultCallTimeout bounds each Stripe request.
	DefaultCallTimeout = 10 * time.Second
	// DefaultTestRate and DefaultLiveRate leave headroom under Stripe's per-account limits of
	// 25 (test) and 100 (live) requests per second, which clinics' own apps share with us.
	DefaultTestRate rate.Limit = 20
	DefaultLiveRate rate.Limit = 80
	// DefaultEventListRate is how many event-list pages (100 events each) per second one
	// account's replays may request, in either mode: a fifth of Stripe's test-mode limit, a
	// twentieth of live mode's, so a replay of the whole 30-day log never crowds out the clinic's
	// own apps or the operator's other calls (which share DefaultTestRate/DefaultLiveRate).
	DefaultEventListRate rate.Limit = 5
	// DefaultBurst lets a reconcile make a few calls back to back.
	DefaultBurst = 5
	// DefaultMaxNetworkRetries is how often stripe-go retries a request that failed in a way
	// known to be safe to retry; the controller's own backoff handles the rest.
	DefaultMaxNetworkRetries int64 = 1
)

// Bounds of the Factory's caches, so key rotation and deleted integrations do not leak.
const (
	cacheIdleTTL    = time.Hour
	cacheMaxEntries = 4096
)

// Config configures a Factory. The zero value is usable: every field has a default.
type Config struct {
	// BaseURL is the Stripe API URL (--stripe-api-url); default stripe.APIURL.
	BaseURL string
	// HTTPClient is the shared transport; default one with dial, TLS and header timeouts.
	HTTPClient *http.Client
	// CallTimeout bounds each Stripe request (each page of a list); default 10s.
	CallTimeout time.Duration
	// Logger receives one line per Stripe request and stripe-go's warnings and errors, without
	// bodies or payloads; the zero value discards them.
	Logger logr.Logger
	// TestRate and LiveRate are the per-account request rates by key mode; Burst is shared.
	TestRate, LiveRate rate.Limit
	Burst              int
	// EventListRate paces event-list pages (replays) per account, within the rate above; burst 1.
	EventListRate rate.Limit
	// MaxNetworkRetries is passed to stripe-go; 0 means the default (1), a negative value
	// disables retries.
	MaxNetworkRetries int64
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = stripe.APIURL
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.HTTPClient == nil {
		c.HTTPClient = defaultHTTPClient(c.CallTimeout)
	}
	if c.TestRate <= 0 {
		c.TestRate = DefaultTestRate
	}
	if c.LiveRate <= 0 {
		c.LiveRate = DefaultLiveRate
	}
	if c.EventListRate <= 0 {
		c.EventListRate = DefaultEventListRate
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	switch {
	case c.MaxNetworkRetries == 0:
		c.MaxNetworkRetries = DefaultMaxNetworkRetries
	case c.MaxNetworkRetries < 0:
		c.MaxNetworkRetries = 0
	}
	return c
}

// defaultHTTPClient bounds every phase of a request; the overall timeout is only a backstop
// behind the per-call context deadline.
func defaultHTTPClient(callTimeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: 2 * callTimeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: callTimeout,
			ExpectContinueTimeout: time.Second,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   20,
			IdleConnTimeout:       90 * time.Second,
		},
	}
}
