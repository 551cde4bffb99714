// Package metrics holds the operator's Prometheus metrics. They are created by New and
// registered on the registry main passes in; nothing registers at init time.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the operator's own series. Labels never carry key material.
type Metrics struct {
	// ProbeTotal counts Stripe probes by Authenticated reason.
	ProbeTotal *prometheus.CounterVec
	// LastProbe is the Unix time of the last completed probe per integration. Probe freshness lives
	// here, not in status, so that a resync that changes nothing writes nothing to the apiserver.
	LastProbe *prometheus.GaugeVec
	// StatusWrites counts status patches, to prove steady state writes nothing.
	StatusWrites prometheus.Counter
	// FailingSince is the Unix time the current run of transient Stripe failures (429, 5xx,
	// timeouts) of an integration began; the series exists only while the run lasts, so the
	// failures show here even while the grace keeps the integration's conditions True.
	FailingSince *prometheus.GaugeVec
	// PayoutsReconciled counts payouts written to systems of record, PaymentsFilled the payments
	// of them that a system of record had not had, and PayoutChecks the payout checks by outcome
	// (the PayoutsReconciled condition's reason). Labels are mode (and reason) only: no per-clinic
	// series, so thousands of clinics do not grow /metrics.
	PayoutsReconciled *prometheus.CounterVec
	PaymentsFilled    *prometheus.CounterVec
	PayoutChecks      *prometheus.CounterVec
	// DeliveryChecks counts delivery checks (the DeliveriesArriving condition) by mode and
	// reason; no per-integration labels: the condition names the clinic.
	DeliveryChecks *prometheus.CounterVec
	// AnomalyFlags counts the anomaly flags raised per integration and rule; an integration has
	// series only once it was flagged, so an alert on it names the clinic.
	AnomalyFlags *prometheus.CounterVec
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		ProbeTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripe_operator_probe_total",
			Help: "Stripe authentication probes by outcome (the Authenticated condition reason).",
		}, []string{"mode", "reason"}),
		LastProbe: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stripe_operator_last_probe_timestamp_seconds",
			Help: "Unix time of the last completed Stripe probe per StripeIntegration.",
		}, []string{"namespace", "name"}),
		StatusWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stripe_operator_status_writes_total",
			Help: "Status patches sent to the apiserver.",
		}),
		FailingSince: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stripe_operator_transient_failure_since_timestamp_seconds",
			Help: "Unix time the current run of transient Stripe failures (429, 5xx, timeouts) of a StripeIntegration began; absent when its last Stripe " +
				"pass succeeded.",
		}, []string{"namespace", "name"}),
		PayoutsReconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripe_operator_payouts_reconciled_total",
			Help: "Paid automatic payouts written, with every balance transaction they settle, to the clinics' systems of record.",
		}, []string{"mode"}),
		PaymentsFilled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripe_operator_payout_payments_filled_total",
			Help: "Payments of reconciled payouts that a system of record had not received and that were recorded with the payout.",
		}, []string{"mode"}),
		PayoutChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripe_operator_payout_checks_total",
			Help: "Payout checks by outcome (the PayoutsReconciled condition reason; transient Stripe failures as RateLimited or StripeUnavailable).",
		}, []string{"mode", "reason"}),
		DeliveryChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripe_operator_delivery_checks_total",
			Help: "Delivery checks (a signed probe through the public URL, and Stripe's undelivered events) by mode and outcome " +
				"(the DeliveriesArriving reason).",
		}, []string{"mode", "reason"}),
		AnomalyFlags: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stripe_operator_anomaly_flags_total",
			Help: "Anomaly flags raised on a StripeIntegration's events, by rule (RefundSpike, AmountOutlier, FailedPaymentBurst, Dispute).",
		}, []string{"namespace", "name", "rule"}),
	}
	for _, c := range []prometheus.Collector{m.ProbeTotal, m.LastProbe, m.StatusWrites, m.FailingSince, m.PayoutsReconciled, m.PaymentsFilled,
		m.PayoutChecks, m.DeliveryChecks, m.AnomalyFlags} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
