/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

// After a start (a restart, an upgrade, a new leader), the first pass of every integration comes
// at once, from the informers' initial lists. Probing Stripe in each of them would send every
// clinic's Stripe call in the same minute, the burst a resync period exists to avoid. When the
// stored status proves a successful Stripe pass for the same generation, keys and webhook URL,
// that pass checks the Kubernetes side only and defers the Stripe pass to a time spread over one
// resync period, the same for each integration on every start.

import (
	"context"
	"hash/fnv"
	"maps"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// deferAfterStart fills the Stripe part of obs from the stored status, without Stripe calls, in
// the integration's first pass since this process started, when status proves a Stripe pass that
// still holds. It reports whether it did; the Stripe pass is then due at the view's expiry, the
// integration's place in the period (startSlot).
func (r *StripeIntegrationReconciler) deferAfterStart(ctx context.Context, si *paymentsv1alpha1.StripeIntegration,
	obs *observation) bool {
	if r.started.IsZero() {
		return false
	}
	if _, considered := r.startConsidered.get(si.UID); considered {
		return false // only an integration's first pass since the start defers
	}
	r.startConsidered.set(si.UID, struct{}{})
	due := startSlot(r.started, r.now(), startOffset(si.UID, r.resyncPeriod()), r.resyncPeriod())
	if !statusProvesStripePass(si, obs.KeyFingerprint, obs.Mode, WebhookURL(si, r.WebhookBaseURL)) {
		return false
	}
	// A lost or replaced signing Secret, or a retiring endpoint, needs Stripe now.
	if stored, err := r.readSigningSecret(ctx, si); err != nil || stored.endpointID != si.Status.WebhookEndpointID ||
		stored.value == "" || stored.retiring.id != "" {
		return false
	}
	v := viewFromStatus(si, obs.KeyFingerprint)
	v.at, v.until, v.deferred = r.now(), due, true
	r.stripeViews.set(si.UID, v)
	fillFromView(v, obs)
	return true
}

// statusProvesStripePass reports whether the stored status records a successful Stripe pass that
// the current object would repeat: the spec generation it was made for, the same keys and mode,
// the webhook URL the operator would register now, Authenticated and WebhookEndpointReady True
// for that generation and not merely within a transient-failure grace, and no replay or
// re-delivery waiting (they need a Stripe client). What status cannot show (an endpoint deleted
// in the dashboard, a new pinned API version after an upgrade) is found by the deferred pass, at
// most one resync period later, as the periodic resync would find it.
func statusProvesStripePass(si *paymentsv1alpha1.StripeIntegration, fingerprint string, mode paymentsv1alpha1.Mode,
	wantURL string) bool {
	st := &si.Status
	if st.ObservedGeneration != si.Generation || st.KeyFingerprint == "" || st.KeyFingerprint != fingerprint ||
		st.Mode != mode || st.WebhookEndpointID == "" || st.SigningSecretName == "" || wantURL == "" || st.WebhookURL != wantURL {
		return false
	}
	if _, replay := si.Annotations[paymentsv1alpha1.AnnotationReplaySince]; replay || gapPending(si) {
		return false
	}
	for _, t := range []string{paymentsv1alpha1.ConditionAuthenticated, paymentsv1alpha1.ConditionWebhookEndpointReady} {
		c := meta.FindStatusCondition(st.Conditions, t)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != si.Generation ||
			strings.HasPrefix(c.Message, failingMessage) {
			return false
		}
	}
	return true
}

// viewFromStatus is the view a Stripe pass that produced the stored status would have recorded.
func viewFromStatus(si *paymentsv1alpha1.StripeIntegration, fingerprint string) stripeView {
	st := si.Status.DeepCopy()
	cond := func(t string) condition {
		c := meta.FindStatusCondition(st.Conditions, t)
		return condition{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message}
	}
	return stripeView{
		stripeSpec: stripeFacingSpec(si), fingerprint: fingerprint, annotations: maps.Clone(si.Annotations),
		endpointID:    st.WebhookEndpointID,
		authenticated: cond(paymentsv1alpha1.ConditionAuthenticated), webhook: cond(paymentsv1alpha1.ConditionWebhookEndpointReady),
		accountID: ownString(&st.AccountID), endpointIDPtr: ownString(&st.WebhookEndpointID), webhookURL: ownString(&st.WebhookURL),
		signing: ownString(&st.SigningSecretName),
	}
}

// startOffset places an integration's first Stripe pass after a start in [0, period): a hash of
// its UID, so the passes spread evenly over the period, and each integration has the same place on
// every start, which makes the schedule reproducible.
func startOffset(uid types.UID, period time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(uid)) // a hash.Hash never fails to write
	frac := float64(h.Sum64()>>11) / (1 << 53)
	return time.Duration(frac * float64(period))
}

// startSlot is when an integration's deferred Stripe pass is due: its offset into the first
// resync period after the start or, when its first pass comes later than that (the first passes
// of 10,000 integrations take minutes on a busy apiserver), the same offset in the next period.
// Probing at once instead would make the Stripe calls follow the pace of the first passes and
// bunch where they run fastest; this way they keep the even spread of the offsets, and no
// integration waits more than one period from its first pass.
func startSlot(started, now time.Time, offset, period time.Duration) time.Time {
	due := started.Add(offset)
	if period <= 0 {
		return due
	}
	if now.Before(due) {
		return due
	}
	return due.Add((now.Sub(due)/period + 1) * period)
}
