package receiver

import (
	"fmt"
	"sync"
	"time"

	"github.com/clinicpay/stripe-operator/internal/sigheader"
	"github.com/prometheus/client_golang/prometheus"
)

// Results of one delivery, the result label of stripe_receiver_events_total.
const (
	resultRelayed      = sigheader.ReplayStatusRelayed // the operator's replay reads these two
	resultAcknowledged = sigheader.ReplayStatusAcknowledged
	resultDuplicate    = "duplicate"
	resultRejected     = "rejected"
	resultFailed       = "failed"
)

// Type label values for deliveries whose type cannot be trusted or does not look like Stripe's.
const (
	typeUnknown = "unknown" // not verified: the body's type is attacker-controlled
	typeOther   = "other"   // verified, but not of Stripe's shape
)

// stripeShaped reports whether t has the shape of Stripe's event types, two or more words of
// lower-case letters and underscores joined by dots ("charge.refunded",
// "customer.subscription.updated"): the regular expression ^[a-z_]+(\.[a-z_]+)+$ written out,
// since it runs for every event (TestStripeShapedIsThePattern). Anything else is folded into
// "other" to bound cardinality.
func stripeShaped(t string) bool {
	dots, word := 0, 0
	for i := range len(t) {
		switch c := t[i]; {
		case c >= 'a' && c <= 'z', c == '_':
			word++
		case c == '.' && word > 0:
			dots, word = dots+1, 0
		default:
			return false
		}
	}
	return dots > 0 && word > 0
}

// maxTypeLabelLen bounds a type label; Stripe's longest event types are about 60 characters.
const maxTypeLabelLen = 100

// metrics are the receiver's series. No label ever carries a secret, a payload or a URL.
type metrics struct {
	events            *prometheus.CounterVec
	signatureFailures *prometheus.CounterVec
	relayDuration     *prometheus.HistogramVec
	duplicates        prometheus.Counter
	secretReloads     prometheus.Counter
	// relays counts each target's answers; failingSince is when its current run of failures began
	// (0 while it accepts), so an alert can fire long before Stripe stops retrying.
	relays       *prometheus.CounterVec
	failingSince *prometheus.GaugeVec
	// ledger counts the operator's ledger messages by kind and result (ledger.go).
	ledger *prometheus.CounterVec
	// probes counts the operator's delivery probes (answered, refused), which are never
	// counted in events.
	probes  *prometheus.CounterVec
	mu      sync.Mutex
	failing map[string]bool
}

func newMetrics(reg prometheus.Registerer, targets []string) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripe_receiver_events_total",
			Help: "Webhook deliveries by event type and result (relayed, acknowledged, duplicate, rejected, failed).",
		}, []string{"type", "result"}),
		signatureFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripe_receiver_signature_failures_total",
			Help: "Deliveries rejected with 400 by cause (missing_header, invalid_header, bad_signature, stale, future, malformed, livemode).",
		}, []string{"cause"}),
		relayDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stripe_receiver_relay_duration_seconds",
			Help:    "Time one target took to accept (or fail) an event.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"target"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stripe_receiver_duplicates_total",
			Help: "Deliveries of events this replica had already relayed, answered 200 without relaying.",
		}),
		secretReloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stripe_receiver_signing_secret_reloads_total",
			Help: "Times a changed signing secret file was loaded (the first load included).",
		}),
		relays: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripe_receiver_relays_total",
			Help: "Answers of each system of record (target: http, fhir) by result (accepted, failed).",
		}, []string{"target", "result"}),
		failingSince: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stripe_receiver_relay_failing_since_timestamp_seconds",
			Help: "Unix time at which the target's current run of failed relays began; 0 while it accepts.",
		}, []string{"target"}),
		ledger: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripe_receiver_ledger_messages_total",
			Help: "Ledger messages from the operator by kind (payout.reconciled, anomaly.flagged, unknown) and result " +
				"(written, failed, rejected, unauthorized).",
		}, []string{"kind", "result"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripe_receiver_probes_total",
			Help: "The operator's delivery probes by result (answered, refused); never relayed, never in stripe_receiver_events_total.",
		}, []string{"result"}),
		failing: map[string]bool{},
	}
	for _, c := range []prometheus.Collector{m.events, m.signatureFailures, m.relayDuration, m.duplicates, m.secretReloads, m.relays,
		m.failingSince, m.ledger, m.probes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering receiver metrics: %w", err)
		}
	}
	// Pre-create the failure series so alerts on rate() see a 0 before the first failure.
	for _, c := range allCauses() {
		m.signatureFailures.WithLabelValues(string(c))
	}
	for _, k := range ledgerKinds() {
		for _, res := range ledgerResults() {
			m.ledger.WithLabelValues(k, res)
		}
	}
	for _, t := range targets {
		m.relayDuration.WithLabelValues(t)
		m.relays.WithLabelValues(t, relayAccepted)
		m.relays.WithLabelValues(t, relayFailed)
		m.failingSince.WithLabelValues(t).Set(0)
	}
	return m, nil
}

// Results of one relay to one target, the result label of stripe_receiver_relays_total.
const (
	relayAccepted = "accepted"
	relayFailed   = "failed"
)

// recordRelay counts a target's answer and keeps the start of its current run of failures.
func (m *metrics) recordRelay(target string, err error, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.relays.WithLabelValues(target, relayAccepted).Inc()
		m.failing[target] = false
		m.failingSince.WithLabelValues(target).Set(0)
		return
	}
	m.relays.WithLabelValues(target, relayFailed).Inc()
	if !m.failing[target] {
		m.failing[target] = true
		m.failingSince.WithLabelValues(target).Set(float64(now.Unix()))
	}
}

// typeLabel bounds the cardinality of the type label.
func typeLabel(t string) string {
	if len(t) > maxTypeLabelLen || !stripeShaped(t) {
		return typeOther
	}
	return t
}
