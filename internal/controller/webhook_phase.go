package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

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
	// retiredNow: an endpoint started retiring in this pass; its check waits for the next one.
	retiredNow bool
	// followUp asks for the next pass within followUpInterval (a retirement still waits).
	followUp bool
	// retiringUnlisted: the retiring endpoint was not in this account's list; after a key change
	// to another account it is removed there like the previous current endpoint.
	retiringUnlisted string
	// notes are appended to the WebhookEndpointReady message: what a replacement did or waits for.
	notes []string
}

// reconcileEndpoint makes Stripe hold exactly one endpoint tagged with this object, shaped as the
// spec says, whose signing secret is stored. listed is the probe's list of the account's endpoints.
func (r *StripeIntegrationReconciler) reconcileEndpoint(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, sc stripeclient.Client,
	listed []stripeclient.Endpoint, obs *observation) {
	const ct = paymentsv1alpha1.ConditionWebhookEndpointReady
	desired := desiredEndpoint(si, r.WebhookBaseURL, stripeclient.APIVersion)
	if desired.URL == "" {
		obs.Webhook = falseCond(ct, paymentsv1alpha1.ReasonNoWebhookURL,
			"no webhook URL: set spec.webhook.baseURL or spec.webhook.url, or start the operator with --webhook-base-url")
		return
	}
	if r.urlConflict(ctx, si, desired.URL, obs) {
		return
	}
	stored, err := r.readSigningSecret(ctx, si)
	if err != nil {
		obs.Webhook = unknown(ct, paymentsv1alpha1.ReasonEndpointFailed, "reading the signing Secret failed; retrying")
		obs.err = err
		return
	}
	if stored.foreign {
		obs.Webhook = signingSecretConflictCondition(si)
		return
	}
	p := &endpointPass{si: si, sc: sc, desired: desired, listed: listed, stored: stored}
	keeper, err := r.ensureEndpoint(ctx, p)
	if errors.Is(err, errSigningSecretConflict) {
		obs.Webhook = signingSecretConflictCondition(si)
		return
	}
	if err != nil {
		obs.Webhook = endpointErrorCondition(err)
		if isTransient(err) {
			obs.err = err
		}
		return
	}
	if keeper.Livemode != (si.Spec.Mode == paymentsv1alpha1.ModeLive) {
		obs.Webhook = falseCond(ct, paymentsv1alpha1.ReasonEndpointModeMismatch,
			fmt.Sprintf("endpoint %s has livemode=%t but spec.mode is %s", keeper.ID, keeper.Livemode, si.Spec.Mode))
		return
	}
	obs.EndpointID, obs.WebhookURL, obs.SigningSecretName = &keeper.ID, &keeper.URL, &p.stored.name
	obs.followUp = obs.followUp || p.followUp
	obs.retiringUnlisted = p.retiringUnlisted
	obs.endpointCreated = keeper.Created
	if gapPending(si) {
		p.notes = append(p.notes, "re-delivering through the replay path the events the replaced endpoint could not deliver")
	}
	suffix := ""
	if len(p.notes) > 0 {
		suffix = "; " + strings.Join(p.notes, "; ")
	}
	if p.rotated || rotationStillNews(si, keeper.ID) {
		obs.Webhook = trueCond(ct, paymentsv1alpha1.ReasonSigningSecretRotated,
			fmt.Sprintf("endpoint %s re-created with a new signing secret (the stored one was lost; Stripe shows it only once)%s", keeper.ID, suffix))
		return
	}
	obs.Webhook = trueCond(ct, paymentsv1alpha1.ReasonEndpointReady,
		fmt.Sprintf("endpoint %s delivers %d event types to %s%s", keeper.ID, len(keeper.EnabledEvents), keeper.URL, suffix))
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
	// A retiring endpoint is neither a keeper candidate nor a duplicate: retire() handles it.
	retiring := p.stored.retiring.id
	owned := slices.DeleteFunc(slices.Clone(p.listed), func(e stripeclient.Endpoint) bool {
		return !ownedBy(e, string(p.si.UID)) || (retiring != "" && e.ID == retiring)
	})
	if len(owned) == 0 {
		// Nothing of ours in this account: first creation, or the recorded endpoint was deleted in
		// the dashboard, or the key now belongs to another account. A retiring endpoint still
		// listed keeps its place in the new Secret.
		keep := retiringEndpoint{}
		if retiring != "" && slices.ContainsFunc(p.listed, func(e stripeclient.Endpoint) bool { return e.ID == retiring }) {
			keep = p.stored.retiring
		} else if retiring != "" {
			p.retiringUnlisted = retiring // perhaps in the previous account: see cleanupPreviousAccount
		}
		ep, err := r.createEndpoint(ctx, p, p.si.Status.WebhookEndpointID, keep)
		if err != nil {
			return ep, err
		}
		// The first endpoint gets no Event of its own: this pass's status write turns
		// WebhookEndpointReady True (or False, naming the endpoint) and its one Event says so, with
		// the endpoint's id and URL. A second Event would cost every new integration a write.
		if lost := p.si.Status.WebhookEndpointID; lost != "" {
			r.event(p.si, corev1.EventTypeWarning, paymentsv1alpha1.EventEndpointRecreated,
				"endpoint %s is gone from the account (deleted in the dashboard or another account's key); created %s", lost, ep.ID)
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
			"endpoint %s had API version %s; replaced by %s on %s (the version can only change by re-creating)", old.ID, old.APIVersion, keeper.ID,
			p.desired.APIVersion)
	case p.stored.endpointID != keeper.ID:
		if keeper, err = r.recoverSecret(ctx, p, keeper); err != nil {
			return keeper, err
		}
	}
	if keeper, err = r.repairDrift(ctx, p, keeper); err != nil {
		return keeper, err
	}
	if err := r.retire(ctx, p, keeper); err != nil {
		return keeper, err
	}
	for _, dup := range others {
		if dup.ID == keeper.ID || dup.ID == p.stored.retiring.id {
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
// one) and stores its secret before anything else, with the retiring endpoint's (if any) after it.
func (r *StripeIntegrationReconciler) createEndpoint(ctx context.Context, p *endpointPass, lost string,
	retiring retiringEndpoint) (stripeclient.Endpoint, error) {
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
	return ep, r.storeSecret(ctx, p, ep.ID, secret, retiring)
}

// storeSecret writes the signing Secret and keeps the pass's view of it in step.
func (r *StripeIntegrationReconciler) storeSecret(ctx context.Context, p *endpointPass, endpointID, secret string, retiring retiringEndpoint) error {
	write := r.writeSigningSecret
	if p.stored.absent {
		write = r.createSigningSecret
	}
	if err := write(ctx, p.si, endpointID, secret, retiring); err != nil {
		return err
	}
	p.stored.endpointID, p.stored.value, p.stored.retiring, p.stored.absent = endpointID, secret, retiring, false
	return nil
}

// replaceEndpoint creates a successor under a fresh attempt key. Make-before-break: when old's
// secret is the stored one, the Secret gets the successor's secret first and old's after it (the
// receiver accepts both), and old is kept, retiring, so that Stripe's retries of what it failed
// to deliver still arrive; retire() deletes it once Stripe has nothing pending. Stripe stops
// retrying a deleted endpoint (https://docs.stripe.com/webhooks#retries), so deleting it at once
// would lose those events. When old's secret is not known its deliveries cannot be verified
// anyway: it is deleted at once and the undelivered events are re-delivered through the replay
// path (gap_redelivery.go). At Stripe's 16-endpoint cap the successor cannot exist beside old:
// see replaceAtLimit.
func (r *StripeIntegrationReconciler) replaceEndpoint(ctx context.Context, p *endpointPass,
	old stripeclient.Endpoint) (stripeclient.Endpoint, error) {
	known := p.stored.endpointID == old.ID && p.stored.value != ""
	retiring := retiringEndpoint{}
	if known {
		if prev := p.stored.retiring; prev.id != "" && prev.id != old.ID {
			// Replaced again while its predecessor still retires: never three live endpoints.
			// The older one goes now; what it still had pending is re-delivered.
			if err := r.requestRedelivery(ctx, p.si, prev.since.Add(-retryWindow(p.si)), time.Time{}); err != nil {
				return old, err
			}
			if err := r.deleteOwned(ctx, p.sc, prev.id); err != nil {
				return old, err
			}
			r.event(p.si, corev1.EventTypeNormal, paymentsv1alpha1.EventRetiredEndpointDeleted,
				"deleted retiring endpoint %s early: %s is replaced in turn; its undelivered events are re-delivered through the replay path", prev.id, old.ID)
			p.stored.retiring = retiringEndpoint{}
		}
		retiring = retiringEndpoint{id: old.ID, since: r.now().Truncate(time.Second), secret: p.stored.value}
	}
	ep, err := r.createEndpoint(ctx, p, old.ID, retiring)
	if isLimitReached(err) {
		return r.replaceAtLimit(ctx, p, old, !known, createAttempt(p.si))
	}
	if err != nil || ep.ID == old.ID {
		return ep, err
	}
	if !known {
		return ep, r.breakOld(ctx, p, old.ID)
	}
	p.retiredNow, p.followUp = true, true
	window := retryWindow(p.si)
	p.notes = append(p.notes, retiringNote(old.ID, retiring.since, window))
	r.event(p.si, corev1.EventTypeNormal, paymentsv1alpha1.EventEndpointRetiring,
		"endpoint %s is kept, its signing secret still accepted, until Stripe has no pending deliveries for it (at the latest until %s, Stripe's retry "+
			"window after the replacement by %s)",
		old.ID, retiring.since.Add(window).UTC().Format(time.RFC3339), ep.ID)
	return ep, nil
}

func retiringNote(id string, since time.Time, window time.Duration) string {
	return fmt.Sprintf("replaced endpoint %s is kept until Stripe has no pending deliveries for it (at the latest until %s)",
		id, since.Add(window).UTC().Format(time.RFC3339))
}

// breakOld deletes an endpoint replaced without its secret, after asking for the events Stripe
// has not delivered within its retry window to be re-delivered with the new secret: the request
// is recorded first, so a crash between the two cannot lose the gap.
func (r *StripeIntegrationReconciler) breakOld(ctx context.Context, p *endpointPass, old string) error {
	if err := r.requestRedelivery(ctx, p.si, r.now().Add(-retryWindow(p.si)), time.Time{}); err != nil {
		return err
	}
	return r.deleteOwned(ctx, p.sc, old)
}

// replaceAtLimit replaces old when the account is at Stripe's endpoint cap (16), where creating
// the successor first fails for as long as old exists: break-before-make. It records the
// re-delivery of what old had pending and of every event created from now on (until the
// successor exists Stripe delivers them nowhere), deletes old, then creates the successor. The
// replay path re-delivers both once the receiver holds the new secret; the systems of record
// deduplicate by event id, so events the successor also gets do no harm.
//
// The successor is created under a fresh attempt key, moved before old is deleted: whether Stripe
// saves a cap refusal under its Idempotency-Key is not documented (it saves results "if an API
// endpoint started executing", https://docs.stripe.com/api/idempotent_requests), and a saved one
// would refuse the successor for 24 h; refused is the attempt whose create Stripe refused at
// the cap, never the successor's. lostSecret says old was replaced because its secret was
// lost, which the condition then reports as a rotation.
func (r *StripeIntegrationReconciler) replaceAtLimit(ctx context.Context, p *endpointPass, old stripeclient.Endpoint,
	lostSecret bool, refused int) (stripeclient.Endpoint, error) {
	deleted := r.now().Truncate(time.Second)
	if err := r.requestRedelivery(ctx, p.si, deleted.Add(-retryWindow(p.si)), deleted); err != nil {
		return old, err
	}
	if attempt, err := r.attemptFor(ctx, p.si, old.ID); err != nil {
		return old, err
	} else if attempt == refused {
		if err := r.moveAttempt(ctx, p.si, attempt); err != nil {
			return old, err
		}
	}
	logf.FromContext(ctx).Info("Account at Stripe's endpoint cap: deleting the endpoint before creating its successor", "endpoint", old.ID)
	if err := r.deleteOwned(ctx, p.sc, old.ID); err != nil {
		return old, err
	}
	if p.stored.retiring.id == old.ID {
		p.stored.retiring = retiringEndpoint{}
	}
	ep, err := r.createEndpoint(ctx, p, old.ID, retiringEndpoint{})
	if err != nil {
		return ep, err
	}
	p.rotated = p.rotated || lostSecret
	p.notes = append(p.notes, fmt.Sprintf(
		"the account was at Stripe's 16-endpoint cap, so %s was deleted before %s could be created (break-before-make)", old.ID, ep.ID))
	r.event(p.si, corev1.EventTypeWarning, paymentsv1alpha1.EventEndpointReplacedAtLimit,
		"the account is at Stripe's 16-endpoint cap: deleted endpoint %s before creating %s; the events it had pending and those created since %s are "+
			"re-delivered through the replay path",
		old.ID, ep.ID, deleted.UTC().Format(time.RFC3339))
	return ep, nil
}

func isLimitReached(err error) bool {
	var se *stripeclient.Error
	return errors.As(err, &se) && se.Kind == stripeclient.KindLimitReached
}

// retire deletes the retiring endpoint once Stripe has no pending deliveries left for it, or
// at the latest once Stripe's retry window has passed since it was replaced, and then drops its
// secret from the Secret. Whether deliveries are pending costs one call, GET /v1/events?
// delivery_success=false&created[gte]=<replacement minus the retry window>&limit=1: Stripe
// lists there the events "still pending or [that] have failed all delivery attempts to a webhook
// endpoint" (https://docs.stripe.com/api/events/list), for any endpoint of the account, so the
// check is conservative; events the endpoint never got are not in the window's past. The check
// runs on the passes after the replacement, at least every followUpInterval.
func (r *StripeIntegrationReconciler) retire(ctx context.Context, p *endpointPass, keeper stripeclient.Endpoint) error {
	ret := p.stored.retiring
	if ret.id == "" || p.retiredNow {
		return nil
	}
	listed := slices.ContainsFunc(p.listed, func(e stripeclient.Endpoint) bool { return e.ID == ret.id && ownedBy(e, string(p.si.UID)) })
	window := retryWindow(p.si)
	var why string
	switch {
	case !listed:
		why = "it is gone from the account"
		p.retiringUnlisted = ret.id
	case !r.now().Before(ret.since.Add(window)):
		why = fmt.Sprintf("Stripe's retry window (%s) has passed since it was replaced", window)
	default:
		pending, err := p.sc.HasUndeliveredEvents(ctx, ret.since.Add(-window), p.desired.EnabledEvents)
		if err != nil {
			// Not fatal to the endpoint: the window bounds the wait whatever the check says.
			logf.FromContext(ctx).Info("Checking for pending deliveries failed; keeping the retiring endpoint",
				"endpoint", ret.id, "reason", stripeclient.Redact(err.Error()))
		}
		if err != nil || pending {
			p.followUp = true
			p.notes = append(p.notes, retiringNote(ret.id, ret.since, window))
			return nil
		}
		why = "Stripe has no pending deliveries left"
	}
	if listed {
		if err := r.deleteOwned(ctx, p.sc, ret.id); err != nil {
			return err
		}
	}
	if err := r.storeSecret(ctx, p, keeper.ID, p.stored.value, retiringEndpoint{}); err != nil {
		return err
	}
	r.event(p.si, corev1.EventTypeNormal, paymentsv1alpha1.EventRetiredEndpointDeleted,
		"deleted retiring endpoint %s (replaced by %s): %s; its signing secret is no longer accepted", ret.id, keeper.ID, why)
	return nil
}

// recoverSecret gets the signing secret of an endpoint whose secret is not stored. Replaying the
// create that made it (same Idempotency-Key, same parameters) returns the same endpoint with its
// secret while Stripe keeps the key (24 h). Otherwise the endpoint is replaced, loudly.
func (r *StripeIntegrationReconciler) recoverSecret(ctx context.Context, p *endpointPass,
	keeper stripeclient.Endpoint) (stripeclient.Endpoint, error) {
	attempt := createAttempt(p.si)
	ep, secret, err := p.sc.CreateWebhookEndpoint(ctx, p.desired, idempotencyKey(string(p.si.UID), attempt))
	var se *stripeclient.Error
	switch {
	case err == nil && ep.ID == keeper.ID:
		if err := r.storeSecret(ctx, p, ep.ID, secret, p.stored.retiring); err != nil {
			return keeper, err
		}
		r.event(p.si, corev1.EventTypeNormal, paymentsv1alpha1.EventSigningSecretRecovered,
			"stored the signing secret of endpoint %s (recovered by replaying its create)", ep.ID)
		return keeper, nil
	case err == nil:
		// The key was no longer known to Stripe, so the replay made a new endpoint: keep that one.
		if err := r.storeSecret(ctx, p, ep.ID, secret, retiringEndpoint{}); err != nil {
			return ep, err
		}
	case errors.As(err, &se) && se.Kind == stripeclient.KindIdempotencyConflict:
		ep, err = r.createEndpoint(ctx, p, keeper.ID, retiringEndpoint{})
		if isLimitReached(err) {
			return r.replaceAtLimit(ctx, p, keeper, true, createAttempt(p.si))
		}
		if err != nil {
			return ep, err
		}
	case isLimitReached(err):
		// The replayed key made nothing and a new endpoint does not fit beside the old one.
		return r.replaceAtLimit(ctx, p, keeper, true, attempt)
	default:
		r.spendAttemptOn5xx(ctx, p.si, attempt, err)
		return keeper, err
	}
	// The old endpoint's secret is lost, so its retries could not be verified: delete it now and
	// re-deliver what Stripe has not delivered through the replay path, with the new secret.
	if err := r.breakOld(ctx, p, keeper.ID); err != nil {
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
	if err := r.patchAnnotations(ctx, si, func(a map[string]string) {
		a[paymentsv1alpha1.AnnotationCreateAttempt] = strconv.Itoa(n + 1)
		a[paymentsv1alpha1.AnnotationReplacedEndpoint] = lost
	}); err != nil {
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
	if perr := r.moveAttempt(ctx, si, attempt); perr != nil {
		log.Info("Recording the fresh create attempt failed; the next pass retries", "attempt", attempt+1, "error", perr.Error())
	}
}

// moveAttempt records attempt+1 as the create attempt.
func (r *StripeIntegrationReconciler) moveAttempt(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, attempt int) error {
	if err := r.patchAnnotations(ctx, si, func(a map[string]string) {
		a[paymentsv1alpha1.AnnotationCreateAttempt] = strconv.Itoa(attempt + 1)
	}); err != nil {
		return fmt.Errorf("recording create attempt %d: %w", attempt+1, err)
	}
	return nil
}

// patchAnnotations changes the operator's bookkeeping annotations on si with the optimistic lock,
// so that concurrent passes never both act on what each read. When the write fails, si keeps the
// annotations as stored: the pass must not act on a record that was not made.
func (r *StripeIntegrationReconciler) patchAnnotations(ctx context.Context, si *paymentsv1alpha1.StripeIntegration,
	change func(map[string]string)) error {
	orig := si.DeepCopy()
	if si.Annotations == nil {
		si.Annotations = map[string]string{}
	}
	change(si.Annotations)
	if err := r.Client.Patch(ctx, si, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		si.Annotations = orig.Annotations
		return err
	}
	return nil
}

// event records an Event on the StripeIntegration. Notes never carry key material or secrets.
func (r *StripeIntegrationReconciler) event(si *paymentsv1alpha1.StripeIntegration, eventType, reason, format string, args ...any) {
	r.Recorder.Eventf(si, nil, eventType, reason, "ReconcileWebhookEndpoint", format, args...)
}
