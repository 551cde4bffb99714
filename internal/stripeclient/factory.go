package stripeclient

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"golang.org/x/time/rate"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// keyPrefixPattern extracts the non-secret prefix of a key for log context.
var keyPrefixPattern = regexp.MustCompile(`^(sk|rk|pk)_(test|live)_`)

// Factory builds Clients. It caches one stripe-go backend per key and one rate limiter per
// Stripe account and mode, both bounded in size and idle time. It is safe for concurrent use.
type Factory struct {
	cfg      Config
	backends *lru[stripe.Backend]
	limiters *lru[*rate.Limiter]
	// eventLimiters pace event-list pages per account and mode (Config.EventListRate).
	eventLimiters *lru[*rate.Limiter]
}

// NewFactory returns a Factory; zero Config fields take their defaults.
func NewFactory(cfg Config) *Factory {
	return newFactory(cfg, time.Now, cacheMaxEntries)
}

// newFactory lets tests control the caches' clock and size.
func newFactory(cfg Config, now func() time.Time, maxEntries int) *Factory {
	return &Factory{
		cfg:      cfg.withDefaults(),
		backends: newLRU[stripe.Backend](maxEntries, cacheIdleTTL, now),
		limiters: newLRU[*rate.Limiter](maxEntries, cacheIdleTTL, now),

		eventLimiters: newLRU[*rate.Limiter](maxEntries, cacheIdleTTL, now),
	}
}

// For returns a client for this key. limiterKey identifies the Stripe account for rate
// limiting (the account id when known, else pass ""; then the key's fingerprint is used), so
// all keys of one account share one limiter per mode. mode picks the rate.
func (f *Factory) For(secretKey string, mode v1alpha1.Mode, limiterKey string) Client {
	kh := keyHash(secretKey)
	backend := f.backends.getOrCreate(kh, func() stripe.Backend {
		return f.newBackend(secretKey)
	})
	if limiterKey == "" {
		limiterKey = "key:" + kh
	}
	limiter := f.limiters.getOrCreate(string(mode)+"/"+limiterKey, func() *rate.Limiter {
		return rate.NewLimiter(f.rateFor(mode), f.cfg.Burst)
	})
	eventLimiter := f.eventLimiters.getOrCreate(string(mode)+"/"+limiterKey, func() *rate.Limiter {
		return rate.NewLimiter(f.cfg.EventListRate, 1)
	})
	return &client{backend: backend, key: secretKey, limiter: limiter, eventLimiter: eventLimiter, timeout: f.cfg.CallTimeout}
}

// newBackend builds a backend of the key's own, logging with the key's prefix and never a body
// (see logger.go). GetBackendWithConfig does not register it as stripe-go's global backend.
// Telemetry is off: request metrics of clinics' accounts are not ours to send.
func (f *Factory) newBackend(secretKey string) stripe.Backend {
	log := f.cfg.Logger.WithName("stripe-go").WithValues("key", keyPrefix(secretKey))
	return stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(f.cfg.BaseURL),
		HTTPClient:        withLogTransport(f.cfg.HTTPClient, log),
		LeveledLogger:     NewLeveledLogger(log),
		MaxNetworkRetries: stripe.Int64(f.cfg.MaxNetworkRetries),
		EnableTelemetry:   stripe.Bool(false),
	})
}

func (f *Factory) rateFor(mode v1alpha1.Mode) rate.Limit {
	if mode == v1alpha1.ModeLive {
		return f.cfg.LiveRate
	}
	return f.cfg.TestRate
}

// keyHash identifies a key in caches without keeping the key as a map key.
func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// keyPrefix is what logs may show of a key.
func keyPrefix(key string) string {
	if p := keyPrefixPattern.FindString(key); p != "" {
		return p + "…"
	}
	return "(unrecognised key)"
}
