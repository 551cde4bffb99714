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

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// maxViewAge caps how long a Stripe view is reused, whatever the resync period.
const maxViewAge = 30 * time.Second

// stripeView is what the last fully successful Stripe pass of one integration saw. A pass
// triggered shortly after by something that cannot change Stripe's side (the receiver Deployment
// becoming available, the signing Secret the operator just wrote, its own status write) reuses it
// instead of probing Stripe again: connecting a clinic then costs three Stripe calls, not four
// or five. Anything that could change the answer makes the view unusable: other
// keys, another Stripe-facing spec (mode, webhook, credentials reference, suspend), other
// annotations (replay, create attempts), a lost signing Secret, age, or a failed pass. Edits that
// Stripe never sees (the invoice footer, the receiver) do not cost a Stripe call.
// The view lives in memory only. After a start, a view is built from a status that proves a
// successful Stripe pass (viewFromStatus), valid until the integration's Stripe pass is due, so a
// restarted manager does not probe every integration at once.
type stripeView struct {
	at time.Time
	// until is when the view stops being reused; deferred marks a view built from status after a
	// start, whose expiry is the integration's scheduled Stripe pass.
	until    time.Time
	deferred bool
	// stoodIn: a delivery check already took this view's Stripe part in place of a list
	// (deliveryCheckStandsIn); a view stands in once.
	stoodIn     bool
	stripeSpec  string
	fingerprint string
	annotations map[string]string
	endpointID  string

	authenticated, webhook                        condition
	accountID, endpointIDPtr, webhookURL, signing *string
}

// viewAge is how long a view may be reused: half the resync period, at most maxViewAge, so the
// periodic resync always probes.
func (r *StripeIntegrationReconciler) viewAge() time.Duration {
	return min(r.resyncPeriod()/2, maxViewAge)
}

// recordView keeps what a Stripe pass saw, if it fully succeeded.
func (r *StripeIntegrationReconciler) recordView(si *paymentsv1alpha1.StripeIntegration, obs *observation) {
	if obs.err != nil || obs.KeyFingerprint == "" || obs.EndpointID == nil ||
		obs.Authenticated.Status != metav1.ConditionTrue || obs.Webhook.Status != metav1.ConditionTrue {
		r.stripeViews.forget(si.UID)
		return
	}
	now := r.now()
	r.stripeViews.set(si.UID, stripeView{
		at: now, until: now.Add(r.viewAge()), stripeSpec: stripeFacingSpec(si), fingerprint: obs.KeyFingerprint, annotations: maps.Clone(si.Annotations),
		endpointID: *obs.EndpointID, authenticated: obs.Authenticated, webhook: obs.Webhook,
		accountID: ownString(obs.AccountID), endpointIDPtr: ownString(obs.EndpointID), webhookURL: ownString(obs.WebhookURL),
		signing: ownString(obs.SigningSecretName),
	})
}

// ownString is a pointer to a copy of *p, nil for nil. A view outlives its pass, and the pass's
// pointers point into what it decoded (the account, the listed endpoint, the webhook phase's state
// and through it the StripeIntegration as the status write's answer left it): keeping one would
// keep that whole object alive for as long as the view, which at 10,000 integrations was tens of MB.
func ownString(p *string) *string {
	if p == nil {
		return nil
	}
	s := strings.Clone(*p)
	return &s
}

// reuseView fills the Stripe part of obs from a fresh view and reports whether it did. Only when
// everything else allows it does it read the signing Secret: a lost or replaced one needs Stripe.
func (r *StripeIntegrationReconciler) reuseView(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, obs *observation) bool {
	v, ok := r.stripeViews.get(si.UID)
	if !ok || !r.now().Before(v.until) {
		return false
	}
	return r.reuseViewOf(ctx, si, obs, v)
}

// reuseViewOf fills the Stripe part of obs from v, whatever its age, if nothing the Stripe pass
// depends on changed since it was recorded.
func (r *StripeIntegrationReconciler) reuseViewOf(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, obs *observation,
	v stripeView) bool {
	if v.stripeSpec != stripeFacingSpec(si) || v.fingerprint != obs.KeyFingerprint || !maps.Equal(v.annotations, si.Annotations) {
		return false
	}
	if _, replay := si.Annotations[paymentsv1alpha1.AnnotationReplaySince]; replay {
		return false // a replay needs a Stripe client, and its retries must reach Stripe
	}
	if gapPending(si) {
		return false // a replacement's re-delivery needs a Stripe client
	}
	if stored, err := r.readSigningSecret(ctx, si); err != nil || stored.endpointID != v.endpointID || stored.value == "" ||
		stored.retiring.id != "" {
		return false // a retiring endpoint is checked on Stripe every pass
	}
	fillFromView(v, obs)
	return true
}

// fillFromView gives obs the Stripe part of a view that may be reused.
func fillFromView(v stripeView, obs *observation) {
	obs.Authenticated, obs.Webhook = v.authenticated, v.webhook
	obs.KeysAccepted = true // the view was recorded for these keys (the fingerprint was checked)
	obs.AccountID, obs.EndpointID, obs.WebhookURL, obs.SigningSecretName = v.accountID, v.endpointIDPtr, v.webhookURL, v.signing
	if !v.at.IsZero() {
		// The view reports its probe: a status first written from it (a first status held for
		// the receiver) records when that probe ran, and the next resync's probe writes nothing.
		obs.Probed, obs.ProbedAt = true, v.at
	}
	if v.deferred {
		obs.stripeDue = v.until
	}
}

// stripeFacingSpec is the spec a Stripe pass depends on, as a comparable string: the whole spec
// except the fields Stripe never sees, which stripeBlind clears. A field added to the spec is
// therefore in the key until someone decides it is Stripe-blind: forgetting costs a Stripe call,
// never a stale view (TestStripeFacingSpecCoversEveryField checks both directions).
func stripeFacingSpec(si *paymentsv1alpha1.StripeIntegration) string {
	spec := *si.Spec.DeepCopy()
	stripeBlind(&spec)
	b, _ := json.Marshal(spec) // the spec is plain data: it always marshals
	return string(b)
}

// stripeBlind clears the spec fields no Stripe call reads: the invoice footer (shown to payers by
// the clinic's system) and the receiver's Deployment settings. Edits to them reuse the view.
func stripeBlind(spec *paymentsv1alpha1.StripeIntegrationSpec) {
	spec.InvoiceFooterDisclaimer = ""
	spec.Receiver = nil
}
