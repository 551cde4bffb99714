package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FinanceSpec opts the clinic into the finance features (docs/finance.md). Both are off unless
// set: each costs Stripe calls, and a restricted key needs read permissions beyond the webhook's.
type FinanceSpec struct {
	// payouts, when enabled, writes each paid automatic payout of the clinic's account, with every
	// balance transaction it settles, to the clinic's system of record once Stripe has reconciled
	// it, and records then any payment of it the system of record never received. Restricted keys
	// need read access to payouts (rak_payout_read) and balance (rak_balance_read).
	// +optional
	Payouts *PayoutsSpec `json:"payouts,omitempty"`

	// anomalies, when enabled, flags refund spikes, payment amounts far outside the clinic's own
	// distribution, bursts of failed payments and every dispute, to the system of record and in
	// metrics. Restricted keys need read access to events (rak_event_read).
	// +optional
	Anomalies *AnomaliesSpec `json:"anomalies,omitempty"`
}

// PayoutsSpec configures payout reconciliation.
type PayoutsSpec struct {
	// enabled turns payout reconciliation on.
	// +required
	Enabled bool `json:"enabled"`
}

// AnomaliesSpec configures the anomaly rules. Unset thresholds take the documented defaults.
type AnomaliesSpec struct {
	// enabled turns anomaly flags on.
	// +required
	Enabled bool `json:"enabled"`

	// refundWindow is the refund spike's window (default 1h); refundBaseline the trailing history
	// its mean is taken over (default 168h, 7 days).
	// +optional
	RefundWindow *metav1.Duration `json:"refundWindow,omitempty"`
	// +optional
	RefundBaseline *metav1.Duration `json:"refundBaseline,omitempty"`

	// refundFactorPercent: refunds in the window above this percentage of the baseline's mean per
	// window (by count or by amount) are a spike (default 400, i.e. four times the usual).
	// +optional
	// +kubebuilder:validation:Minimum=101
	// +kubebuilder:validation:Maximum=100000
	RefundFactorPercent *int32 `json:"refundFactorPercent,omitempty"`

	// refundMinCount: a spike needs at least this many refunds in the window (default 7).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	RefundMinCount *int32 `json:"refundMinCount,omitempty"`

	// outlierDeviationsTenths: a payment further than this many robust deviations (tenths: 50 means 5.0)
	// from the median of the clinic's recent payments in its currency, on the log scale, is an
	// outlier (default 50).
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=1000
	OutlierDeviationsTenths *int32 `json:"outlierDeviationsTenths,omitempty"`

	// outlierMinHistory: outliers are judged once this many payments in the currency are known
	// (default 50).
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=1000
	OutlierMinHistory *int32 `json:"outlierMinHistory,omitempty"`

	// failedBurstCount failed payments within failedBurstWindow are a burst (defaults 10 and 10m).
	// +optional
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=100000
	FailedBurstCount *int32 `json:"failedBurstCount,omitempty"`
	// +optional
	FailedBurstWindow *metav1.Duration `json:"failedBurstWindow,omitempty"`
}

// FinanceStatus reports the finance features' progress.
type FinanceStatus struct {
	// payouts reports payout reconciliation.
	// +optional
	Payouts *PayoutsStatus `json:"payouts,omitempty"`

	// anomalies reports anomaly detection.
	// +optional
	Anomalies *AnomaliesStatus `json:"anomalies,omitempty"`
}

// PayoutsStatus reports what was reconciled last.
type PayoutsStatus struct {
	// lastPayoutID is the newest payout written to the system of record (po_…).
	// +optional
	LastPayoutID string `json:"lastPayoutID,omitempty"`

	// lastArrivalDate is when that payout's deposit arrived (its cursor: payouts arriving earlier
	// were all reconciled).
	// +optional
	LastArrivalDate *metav1.Time `json:"lastArrivalDate,omitempty"`

	// lastItems counts the balance transactions the last payout settled.
	// +optional
	LastItems int32 `json:"lastItems,omitempty"`

	// lastFilled counts the payments of the last payout that the system of record had not
	// received and that were recorded with it; lastFilledIDs names up to 20 of them (pi_… or ch_…).
	// +optional
	LastFilled int32 `json:"lastFilled,omitempty"`
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	LastFilledIDs []string `json:"lastFilledIDs,omitempty"`

	// reconciled and filled count payouts written and payments filled in since reconciliation
	// was enabled.
	// +optional
	Reconciled int64 `json:"reconciled,omitempty"`
	// +optional
	Filled int64 `json:"filled,omitempty"`

	// writtenIDs are the payouts written that arrived within a day of lastArrivalDate. Each check
	// lists a day back from the cursor (payouts of one day, or one paid late, are not missed) and
	// skips these instead of writing them again.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	WrittenIDs []string `json:"writtenIDs,omitempty"`

	// lastReconcileTime is when the operator last finished a payout check.
	// +optional
	LastReconcileTime *metav1.Time `json:"lastReconcileTime,omitempty"`
}

// AnomaliesStatus reports anomaly detection.
type AnomaliesStatus struct {
	// checkedUntil is the cursor: every event created before it was checked.
	// +optional
	CheckedUntil *metav1.Time `json:"checkedUntil,omitempty"`

	// flags counts the flags raised since detection was enabled.
	// +optional
	Flags int64 `json:"flags,omitempty"`

	// lastFlag describes the newest flag: its rule, the event that raised it and why.
	// +optional
	LastFlag *AnomalyFlagStatus `json:"lastFlag,omitempty"`
}

// AnomalyFlagStatus is one flag as status shows it: no personal data, figures only.
type AnomalyFlagStatus struct {
	// rule is RefundSpike, AmountOutlier, FailedPaymentBurst or Dispute.
	// +required
	Rule string `json:"rule"`
	// eventID is the Stripe event that raised the flag (evt_…).
	// +required
	EventID string `json:"eventID"`
	// time is when the event happened.
	// +required
	Time metav1.Time `json:"time"`
	// reason explains the flag with the figure and the threshold it crossed.
	// +optional
	Reason string `json:"reason,omitempty"`
}
