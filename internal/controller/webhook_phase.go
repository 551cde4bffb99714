package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// endpointPass carries one pass of the webhook phase.
type endpointPass struct {
	si      *paymentsv1alpha1.StripeIntegration
	sc      stripeclient.Client
	desired stripeclient.EndpointSpec
	listed  []stripeclient.Endpoint
	stored  storedSecret
	rotated bool // the signing secret changed deliberately in this pass
}

// reconcileEndpoint makes Stripe hold exactly one endpoint tagged with this object, shaped as the
// spec says, whose signing secret is stored. listed is the probe's list of the account's endpoints.
func (r *StripeIntegrationReconciler) reconcileEndpoint(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, sc stripeclient.Client, listed []stripeclient.Endpoint, obs *observation) {
	const ct = paymentsv1alpha1.ConditionWebhookEndpointReady
	desired := desiredEndpoint(si, r.WebhookBaseURL, stripeclient.APIVersion)
	if desired.URL == "" {
		obs.webhook = falseCond(ct, paymentsv1alpha1.ReasonNoWebhookURL,
			"no webhook URL: set spec.webhook.baseURL or spec.webhook.url, or start the operator with --webhook-base-url")
		return
	}
	if r.urlConflict(ctx, si, desired.URL, obs) {
		return
	}
	stored, err := r.readSigningSecret(ctx, si)
	if err != nil {
		obs.webhook = unknown(ct, paymentsv1alpha1.ReasonEndpointFailed, "reading the signing Secret failed; retrying")
		obs.err = err
		return
	}
	if stored.foreign {
		obs.webhook = signingSecretConflictCondition(si)
		return
	}
	p := &endpointPass{si: si, sc: sc, desired: desired, listed: listed, stored: stored}
	keeper, err := r.ensureEndpoint(ctx, p)
	if errors.Is(err, errSigningSecretConflict) {
		obs.webhook = signingSecretConflictCondition(si)
		return
	}
	if err != nil {
		obs.webhook = endpointErrorCondition(err)
		if isTransient(err) {
			obs.err = err
		}
		return
	}
	if keeper.Livemode != (si.Spec.Mode == paymentsv1alpha1.ModeLive) {
		obs.webhook = falseCond(ct, paymentsv1alpha1.ReasonEndpointModeMismatch,
			fmt.Sprintf("endpoint %s has livemode=%t but spec.mode is %s", keeper.ID, keeper.Livemode, si.Spec.Mode))
		return
	}
	obs.endpointID, obs.webhookURL, obs.signingSecretName = &keeper.ID, &keeper.URL, &p.stored.name
	if p.rotated || rotationStillNews(si, keeper.ID) {
		obs.webhook = trueCond(ct, paymentsv1alpha1.ReasonSigningSecretRotated,
			fmt.Sprintf("endpoint %s re-created with a new signing secret (the stored one was lost; Stripe shows it only once)", keeper.ID))
		return
	}
	obs.webhook = trueCond(ct, paymentsv1alpha1.ReasonEndpointReady,
		fmt.Sprintf("endpoint %s delivers %d event types to %s", keeper.ID, len(keeper.EnabledEvents), keeper.URL))
}

func signingSecretConflictCondition(si *paymentsv1alpha1.StripeIntegration) condition {
	return falseCond(paymentsv1alpha1.ConditionWebhookEndpointReady, paymentsv1alpha1.ReasonSigningSecretNameConflict, fmt.Sprintf(
		"Secret %q exists but was not created by the operator for this StripeIntegration; it is left untouched and no endpoint is registered until it is renamed or removed",
		signingSecretName(si.Name)))
}

// rotationStillNews keeps a rotation visible in the condition until the spec changes or the
// endpoint does, rather than for the single pass in which it happened.
func rotationStillNews(si *paymentsv1alpha1.StripeIntegration, endpointID string) bool {
	c := meta.FindStatusCondition(si.Status.Conditions, paymentsv1alpha1.ConditionWebhookEndpointReady)
	return c != nil && c.Reason == paymentsv1alpha1.ReasonSigningSecretRotated &&
		c.ObservedGeneration == si.Generation && si.Status.WebhookEndpointID == endpointID
}

// ensureEndpoint finds (or creates) the one endpoint to keep, makes sure its secret is stored,
// repairs drift and removes duplicates. It returns the endpoint as Stripe now holds it.
func (r *StripeIntegrationReconciler) ensureEndpoint(ctx context.Context, p *endpointPass) (stripeclient.Endpoint, error) {
	owned := slices.DeleteFunc(slices.Clone(p.listed), func(e stripeclient.Endpoint) bool { return !ownedBy(e, string(p.si.UID)) })
	if len(owned) == 0 {
		// Nothing of ours in this account: first creation, or the recorded endpoint was deleted in
		// the dashboard, or the key now belongs to another account.
		ep, err := r.createEndpoint(ctx, p, p.si.Status.WebhookEndpointID)
		if err != nil {
			return ep, err
		}
		if lost := p.si.Status.WebhookEndpointID; lost != "" {
			r.event(p.si, corev1.EventTypeWarning, paymentsv1alpha1.EventEndpointRecreated,
				"endpoint %s is gone from the account (deleted in the dashboard or another account's key); created %s", lost, ep.ID)
		} else {
			r.event(p.si, corev1.EventTypeNormal, paymentsv1alpha1.EventEndpointCreated, "created webhook endpoint %s for %s", ep.ID, ep.URL)
		}
		return ep, nil
	}
	k := pickKeeper(owned, p.stored.endpointID, p.si.Status.WebhookEndpointID, p.desired.APIVersion)
	keeper := owned[k]
	others := slices.Delete(slices.Clone(owned), k, k+1)
	var err error
	switch {
	case keeper.APIVersion != p.desired.APIVersion:
		old := keeper
		if keeper, err = r.replaceEndpoint(ctx, p, old); err != nil {
			return keeper, err
		}
		r.event(p.si, corev1.EventTypeWarning, paymentsv1alpha1.EventEndpointRecreated,
			"endpoint %s had API version %s; replaced by %s on %s (the version can only change by re-creating)", old.ID, old.APIVersion, keeper.ID, p.desired.APIVersion)
	case p.stored.endpointID != keeper.ID:
		if keeper, err = r.recoverSecret(ctx, p, keeper); err != nil {
			return keeper, err
		}
	}
	if keeper, err = r.repairDrift(ctx, p, keeper); err != nil {
		return keeper, err
	}
	for _, dup := range others {
		if dup.ID == keeper.ID {
			continue
		}
		if err := r.deleteOwned(ctx, p.sc, dup.ID); err != nil {
			return keeper, err
		}
		r.event(p.si, corev1.EventTypeWarning, paymentsv1alpha1.EventDuplicateEndpointDelete,
			"deleted duplicate endpoint %s tagged with this StripeIntegration; kept %s", dup.ID, keeper.ID)
	}
	return keeper, nil
}

// createEndpoint creates the endpoint under the attempt key for replacing lost ("" for the first
// one) and stores its secret before anything else.
func (r *StripeIntegrationReconciler) createEndpoint(ctx context.Context, p *endpointPass, lost string) (stripeclient.Endpoint, error) {
	attempt, err := r.attemptFor(ctx, p.si, lost)
	if err != nil {
		return stripeclient.Endpoint{}, err
	}
	logf.FromContext(ctx).Info("Creating Stripe webhook endpoint", "url", p.desired.URL, "attempt", attempt)
	ep, secret, err := p.sc.CreateWebhookEndpoint(ctx, p.desired, idempotencyKey(string(p.si.UID), attempt))
	if err != nil {
		r.spendAttemptOn5xx(ctx, p.si, attempt, err)
		return ep, err
	}
	if err := r.writeSigningSecret(ctx, p.si, ep.ID, secret); err != nil {
		return ep, err
	}
	p.stored.endpointID = ep.ID
	return ep, nil
}

// replaceEndpoint creates a successor under a fresh attempt key, stores its secret, then deletes old.
func (r *StripeIntegrationReconciler) replaceEndpoint(ctx context.Context, p *endpointPass, old stripeclient.Endpoint) (stripeclient.Endpoint, error) {
	ep, err := r.createEndpoint(ctx, p, old.ID)
	if err != nil {
		return ep, err
	}
	if ep.ID != old.ID {
		if err := r.deleteOwned(ctx, p.sc, old.ID); err != nil {
			return ep, err
		}
	}
	return ep, nil
}

// recoverSecret gets the signing secret of an endpoint whose secret is not stored. Replaying the
// create that made it (same Idempotency-Key, same parameters) returns the same endpoint with its
// secret while Stripe keeps the key (24 h). Otherwise the endpoint is replaced, loudly.
func (r *StripeIntegrationReconciler) recoverSecret(ctx context.Context, p *endpointPass, keeper stripeclient.Endpoint) (stripeclient.Endpoint, error) {
	attempt := createAttempt(p.si)
	ep, secret, err := p.sc.CreateWebhookEndpoint(ctx, p.desired, idempotencyKey(string(p.si.UID), attempt))
	var se *stripeclient.Error
	switch {
	case err == nil && ep.ID == keeper.ID:
		if err := r.writeSigningSecret(ctx, p.si, ep.ID, secret); err != nil {
			return keeper, err
		}
		p.stored.endpointID = ep.ID
		r.event(p.si, corev1.EventTypeNormal, paymentsv1alpha1.EventSigningSecretRecovered,
			"stored the signing secret of endpoint %s (recovered by replaying its create)", ep.ID)
		return keeper, nil
	case err == nil:
		// The key was no longer known to Stripe, so the replay made a new endpoint: keep that one.
		if err := r.writeSigningSecret(ctx, p.si, ep.ID, secret); err != nil {
			return ep, err
		}
		p.stored.endpointID = ep.ID
	case errors.As(err, &se) && se.Kind == stripeclient.KindIdempotencyConflict:
		if ep, err = r.createEndpoint(ctx, p, keeper.ID); err != nil {
			return ep, err
		}
	default:
		r.spendAttemptOn5xx(ctx, p.si, attempt, err)
		return keeper, err
	}
	if err := r.deleteOwned(ctx, p.sc, keeper.ID); err != nil {
		return ep, err
	}
	p.rotated = true
	r.event(p.si, corev1.EventTypeWarning, paymentsv1alpha1.ReasonSigningSecretRotated,
		"signing secret of endpoint %s was lost and Stripe shows it only at creation; replaced it by %s with a new secret", keeper.ID, ep.ID)
	return ep, nil
}

// repairDrift updates the endpoint back to the spec when someone changed it.
func (r *StripeIntegrationReconciler) repairDrift(ctx context.Context, p *endpointPass, keeper stripeclient.Endpoint) (stripeclient.Endpoint, error) {
	u, changed := endpointDrift(keeper, p.desired)
	if len(changed) == 0 {
		return keeper, nil
	}
	logf.FromContext(ctx).Info("Repairing Stripe webhook endpoint", "endpoint", keeper.ID, "fields", changed)
	ep, err := p.sc.UpdateWebhookEndpoint(ctx, keeper.ID, u)
	if err != nil {
		return keeper, err
	}
	r.event(p.si, corev1.EventTypeNormal, paymentsv1alpha1.EventEndpointRepaired,
		"updated endpoint %s back to the spec: %s", keeper.ID, strings.Join(changed, ", "))
	return ep, nil
}

// deleteOwned deletes an endpoint; one that is already gone counts as deleted.
func (r *StripeIntegrationReconciler) deleteOwned(ctx context.Context, sc stripeclient.Client, id string) error {
	err := sc.DeleteWebhookEndpoint(ctx, id)
	var se *stripeclient.Error
	if errors.As(err, &se) && se.Kind == stripeclient.KindNotFound {
		return nil
	}
	return err
}

// attemptFor returns the attempt number to create under. A first creation uses the stored number
// (0 when absent). Replacing a lost or superseded endpoint takes the next number exactly once per
// lost endpoint: the bump and the lost id are written together with an optimistic lock, so every
// reconcile that sees the same loss, even concurrently, ends up with the same key.
func (r *StripeIntegrationReconciler) attemptFor(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, lost string) (int, error) {
	n := createAttempt(si)
	if lost == "" || si.Annotations[paymentsv1alpha1.AnnotationReplacedEndpoint] == lost {
		return n, nil
	}
	orig := si.DeepCopy()
	if si.Annotations == nil {
		si.Annotations = map[string]string{}
	}
	si.Annotations[paymentsv1alpha1.AnnotationCreateAttempt] = strconv.Itoa(n + 1)
	si.Annotations[paymentsv1alpha1.AnnotationReplacedEndpoint] = lost
	if err := r.Client.Patch(ctx, si, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return 0, fmt.Errorf("recording create attempt %d: %w", n+1, err)
	}
	return n + 1, nil
}

// spendAttemptOn5xx moves the create attempt past one whose create Stripe answered with a 5xx.
// Stripe saves a create's answer once execution began, 500s included, and replays it for 24 h
// (https://docs.stripe.com/error-low-level#idempotency), so retrying that key cannot connect the
// clinic for a day. Moving on cannot make a second endpoint, because the fresh key is used only
// after the next pass's list (the probe), taken after this answer:
//   - Stripe answered, so no execution under the old key is still running (a concurrent one gets
//     409), and whatever it did is in that list;
//   - nothing of ours listed: the old key created nothing (a 500 before commit, or a 5xx before
//     execution, saved nowhere), and the fresh key makes the only endpoint;
//   - ours listed without its secret (Stripe committed, then answered 500): no replay of the old
//     key will ever return the secret, so recoverSecret replays the fresh key, which replaces it.
//
// A lost answer (timeout, dropped connection, a proxy's page) is no 5xx from Stripe: the key
// keeps whatever Stripe saved, and replaying it returns the endpoint with its secret. The move
// is recorded with the optimistic lock and only from the failed number, so concurrent passes
// agree on one fresh key; a failed write leaves the old number for the next pass to retry.
func (r *StripeIntegrationReconciler) spendAttemptOn5xx(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, attempt int, err error) {
	var answered *stripeclient.Error
	if !errors.As(err, &answered) || !answered.Answered || answered.HTTPStatus < http.StatusInternalServerError || createAttempt(si) != attempt {
		return
	}
	log := logf.FromContext(ctx)
	log.Info("Stripe answered the create with a server error, which it keeps for its key; moving to a fresh attempt",
		"attempt", attempt, "httpStatus", answered.HTTPStatus)
	orig := si.DeepCopy()
	if si.Annotations == nil {
		si.Annotations = map[string]string{}
	}
	si.Annotations[paymentsv1alpha1.AnnotationCreateAttempt] = strconv.Itoa(attempt + 1)
	if perr := r.Client.Patch(ctx, si, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); perr != nil {
		si.Annotations = orig.Annotations
		log.Info("Recording the fresh create attempt failed; the next pass retries", "attempt", attempt+1, "error", perr.Error())
	}
}

// endpointErrorCondition maps a Stripe error from the webhook phase to WebhookEndpointReady.
func endpointErrorCondition(err error) condition {
	const ct = paymentsv1alpha1.ConditionWebhookEndpointReady
	var se *stripeclient.Error
	if !errors.As(err, &se) {
		return unknown(ct, paymentsv1alpha1.ReasonEndpointFailed, "updating cluster objects failed; retrying: "+stripeclient.Redact(err.Error()))
	}
	switch se.Kind {
	case stripeclient.KindLimitReached:
		return falseCond(ct, paymentsv1alpha1.ReasonEndpointLimitReached,
			"the Stripe account already has the maximum number of webhook endpoints (16); delete unused ones in the dashboard: "+se.Message)
	case stripeclient.KindInvalidRequest:
		msg := "Stripe rejected the endpoint: " + se.Message
		if se.Param != "" {
			msg += " (parameter " + se.Param + ")"
		}
		return falseCond(ct, paymentsv1alpha1.ReasonInvalidWebhookConfig, msg)
	case stripeclient.KindPermissionDenied:
		perm := se.Permission
		if perm == "" {
			perm = "rak_webhook_write"
		}
		return falseCond(ct, paymentsv1alpha1.ReasonPermissionDenied,
			fmt.Sprintf("the restricted key lacks %s; grant it in the Stripe dashboard or use another key", perm))
	case stripeclient.KindRateLimited:
		return falseCond(ct, paymentsv1alpha1.ReasonRateLimited, "Stripe rate limit reached; retrying with backoff")
	case stripeclient.KindUnavailable:
		return falseCond(ct, paymentsv1alpha1.ReasonStripeUnavailable, "Stripe unavailable; retrying with backoff: "+se.Message)
	default:
		return falseCond(ct, paymentsv1alpha1.ReasonEndpointFailed, se.Message)
	}
}

// event records an Event on the StripeIntegration. Notes never carry key material or secrets.
func (r *StripeIntegrationReconciler) event(si *paymentsv1alpha1.StripeIntegration, eventType, reason, format string, args ...any) {
	r.Recorder.Eventf(si, nil, eventType, reason, "ReconcileWebhookEndpoint", format, args...)
}
