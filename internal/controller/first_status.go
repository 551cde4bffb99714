package controller

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// DefaultFirstStatusHold is how long a new integration's first status write may wait for its
// receiver to become available (--first-status-hold).
const DefaultFirstStatusHold = 10 * time.Second

// firstStatusHold reports how much longer this pass should leave a new integration's status
// unwritten; 0 or less for not at all. A new integration whose keys, Stripe account and webhook
// endpoint all check out usually waits only for its receiver's pods, for a few seconds. Writing
// ReceiverProgressing and then Connected costs two status writes and two Events where one of each
// says the same a moment later, so the first write waits, at most FirstStatusHold from the
// creation of the receiver Deployment: the Deployment's own events bring the next pass as soon as
// it is available, and a receiver that takes longer gets its ReceiverProgressing status when the
// hold runs out. Anything else (a key problem, a Stripe error, a failed apply, a change to an
// integration that already has a status) is written at once.
func (r *StripeIntegrationReconciler) firstStatusHold(si *paymentsv1alpha1.StripeIntegration, obs *observation, now time.Time) time.Duration {
	hold := r.FirstStatusHold
	if r.FirstStatusHoldFor != nil {
		if d := r.FirstStatusHoldFor(si); d != 0 {
			hold = d
		}
	}
	if hold <= 0 || !holdable(si, obs) {
		r.holdStarts.forget(si.UID)
		return 0
	}
	// From the receiver's creation, not the integration's: at a cold start of thousands a first
	// pass may come long after the creation, and its receiver needs its seconds all the same.
	// Bounded by the hold itself, in case this clock runs behind the apiserver's. A Deployment
	// the cache does not show yet (applied in this pass) counts from the first pass that held
	// without it, so a cache that never shows it cannot hold the status for ever.
	start := obs.receiverCreated
	if first := r.holdStarts.getOrSet(si.UID, now); start.IsZero() || first.Before(start) {
		start = first
	}
	left := min(start.Add(hold).Sub(now), hold)
	if left <= 0 {
		r.holdStarts.forget(si.UID)
	}
	return left
}

// holdable: a first status whose only news is a receiver still progressing.
func holdable(si *paymentsv1alpha1.StripeIntegration, obs *observation) bool {
	if obs.err != nil || len(si.Status.Conditions) > 0 || obs.Receiver.Reason != paymentsv1alpha1.ReasonReceiverProgressing {
		return false
	}
	for _, c := range []condition{obs.KeysValid, obs.Authenticated, obs.Webhook} {
		if c.Status != metav1.ConditionTrue {
			return false
		}
	}
	return true
}
