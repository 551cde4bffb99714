package receiver

import (
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Mode is the Stripe environment the receiver accepts events from.
type Mode string

const (
	// ModeTest accepts only test-mode events (livemode false).
	ModeTest Mode = "Test"
	// ModeLive accepts only live-mode events (livemode true).
	ModeLive Mode = "Live"
)

// Defaults for Config fields left zero.
const (
	// DefaultMaxBodyBytes caps webhook bodies; Stripe events are far smaller.
	DefaultMaxBodyBytes int64 = 256 << 10
	// DefaultDedupCapacity is how many relayed event ids each replica remembers.
	DefaultDedupCapacity = 10000
	// MaxDedupCapacity bounds the dedup memory (about 130 bytes per id): 10 million ids are
	// about 1.3 GB, beyond any receiver's memory limit.
	MaxDedupCapacity = 10_000_000
	// DefaultForwardTimeout bounds one target's Deliver call.
	DefaultForwardTimeout = 10 * time.Second
	// DefaultSecretCheckInterval is how often the signing secret file is stat'ed for changes.
	DefaultSecretCheckInterval = time.Second
	// DefaultReadHeaderTimeout bounds how long a client may take to send the request headers
	// (slowloris).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds how long a client may take to send the whole request, body
	// included.
	DefaultReadTimeout = 30 * time.Second
	// SignatureTolerance is how far a Stripe-Signature timestamp may lie in the past (or the
	// future) of the receiver's clock; Stripe documents 300 s.
	SignatureTolerance = 300 * time.Second
)

// clinicIDPattern is the StripeIntegration's clinicID rule (a DNS-1123 label).
var clinicIDPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Config configures a Receiver. Zero numeric fields take the defaults above.
type Config struct {
	// ClinicID is the clinic this receiver serves; only WebhookPath(Mode, ClinicID) is answered
	// (and, in Test mode, the legacy /stripe/webhook/<ClinicID>).
	ClinicID string
	// Mode is Test or Live; events whose livemode contradicts it are rejected.
	Mode Mode
	// SigningSecretFile holds the endpoint's whsec_ signing secret, or several, one per line,
	// while a secret is rolled.
	SigningSecretFile string
	// WebhookBindAddress is where Stripe's deliveries are served, e.g. ":8080".
	WebhookBindAddress string
	// OpsBindAddress serves /metrics, /healthz and /readyz, e.g. ":9090".
	OpsBindAddress string
	// MaxBodyBytes caps the webhook body; larger bodies get 413.
	MaxBodyBytes int64
	// DedupCapacity bounds the per-replica set of relayed event ids.
	DedupCapacity int
	// ForwardTimeout bounds each target's Deliver call.
	ForwardTimeout time.Duration
	// SecretCheckInterval is the minimum time between two stats of SigningSecretFile.
	SecretCheckInterval time.Duration
	// ShutdownTimeout bounds how long Run waits for in-flight requests after its context ends;
	// zero means ForwardTimeout plus 5 s, enough for a relay that just started.
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout and ReadTimeout are the webhook server's bounds on reading a request's
	// headers and the whole request; zero means DefaultReadHeaderTimeout and DefaultReadTimeout.
	ReadHeaderTimeout, ReadTimeout time.Duration
}

// withDefaults returns a copy of c with zero fields defaulted.
func (c Config) withDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.DedupCapacity == 0 {
		c.DedupCapacity = DefaultDedupCapacity
	}
	if c.ForwardTimeout == 0 {
		c.ForwardTimeout = DefaultForwardTimeout
	}
	if c.SecretCheckInterval == 0 {
		c.SecretCheckInterval = DefaultSecretCheckInterval
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = c.ForwardTimeout + 5*time.Second
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	return c
}

// ValidateClinicID checks a clinic ID against StripeIntegration's rule: a DNS-1123 label, which
// is also safe as a URL path segment.
func ValidateClinicID(id string) error {
	if !clinicIDPattern.MatchString(id) || len(id) > 63 {
		return fmt.Errorf("clinic ID %q must be a DNS-1123 label (lower-case alphanumerics and '-', at most 63 characters)", id)
	}
	return nil
}

// Validate reports every invalid field at once so a misconfigured Deployment is fixed in one go.
func (c Config) Validate() error {
	var errs []error
	if err := ValidateClinicID(c.ClinicID); err != nil {
		errs = append(errs, err)
	}
	if c.Mode != ModeTest && c.Mode != ModeLive {
		errs = append(errs, fmt.Errorf("mode %q must be %q or %q", c.Mode, ModeTest, ModeLive))
	}
	if c.SigningSecretFile == "" {
		errs = append(errs, errors.New("signing secret file must be set"))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max body bytes %d must be positive", c.MaxBodyBytes))
	}
	if c.DedupCapacity < 0 || c.DedupCapacity > MaxDedupCapacity {
		errs = append(errs, fmt.Errorf("dedup capacity %d must be positive and at most %d", c.DedupCapacity, MaxDedupCapacity))
	}
	if c.ForwardTimeout < 0 || c.SecretCheckInterval < 0 || c.ShutdownTimeout < 0 ||
		c.ReadHeaderTimeout < 0 || c.ReadTimeout < 0 {
		errs = append(errs, errors.New("timeouts and intervals must not be negative"))
	}
	return errors.Join(errs...)
}

// ParseMode parses the --mode flag value; it is case-sensitive like StripeIntegration's spec.mode.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeTest, ModeLive:
		return m, nil
	default:
		return "", fmt.Errorf("mode %q must be %q or %q", s, ModeTest, ModeLive)
	}
}
