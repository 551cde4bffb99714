package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// Deletion policy: the finalizer stays until this object's endpoints are deleted from Stripe. The
// credentials Secret carries CredentialsInUseFinalizer meanwhile, so a Secret deleted first (kubectl
// delete -f, a namespace deletion) is still readable here and deletion proceeds normally; the Secret
// goes once this object is gone (credentials_protection.go). When removal cannot work (keys invalid
// or revoked, permission missing, or a Secret that was never protected is gone) it is tried
// maxPermanentDeleteAttempts times; while Stripe is unavailable or rate limiting, up to
// maxTransientDeleteAttempts times. Attempts are spaced by the controller's exponential backoff
// (1 s doubling by default: 1+2+…+256 s, so about 8.5 minutes of outage is waited out). After that the
// endpoint ids are recorded in a ManualRemovalRequired Event and the finalizer is released, which
// also releases the Secret: a namespace must never hang on Stripe.
const (
	maxPermanentDeleteAttempts = 3
	maxTransientDeleteAttempts = 10
)

// reconcileDelete removes the StripeIntegration's endpoints from Stripe, then releases the
// finalizer; the signing Secret goes with the object through its owner reference, and the
// credentials Secret's protection is lifted once no other integration uses it.
func (r *StripeIntegrationReconciler) reconcileDelete(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(si, Finalizer) {
		return ctrl.Result{}, nil
	}
	log := logf.FromContext(ctx)
	deleted, err := r.deleteEndpoints(ctx, si)
	if err != nil {
		attempts := intAnnotation(si, paymentsv1alpha1.AnnotationDeletionAttempts) + 1
		limit := maxPermanentDeleteAttempts
		if !errors.Is(err, errCredentialsUnusable) && isTransient(err) {
			limit = maxTransientDeleteAttempts
		}
		reason := stripeclient.Redact(err.Error())
		if attempts < limit {
			log.Info("Removing Stripe webhook endpoint failed; will retry", "attempt", attempts, "limit", limit, "reason", reason)
			if perr := r.setDeletionAttempts(ctx, si, attempts); perr != nil {
				return ctrl.Result{}, perr
			}
			return ctrl.Result{}, fmt.Errorf("removing webhook endpoint (attempt %d of %d): %w", attempts, limit, err)
		}
		left := leftBehind(si)
		log.Info("Giving up removing Stripe webhook endpoints; releasing finalizer", "endpoints", left, "reason", reason)
		r.event(si, corev1.EventTypeWarning, paymentsv1alpha1.EventManualRemovalRequired,
			"could not remove webhook endpoint(s) %s after %d attempts (%s); remove them in the Stripe dashboard", left, attempts, reason)
	} else if len(deleted) > 0 {
		r.event(si, corev1.EventTypeNormal, paymentsv1alpha1.EventEndpointDeleted, "deleted webhook endpoint(s) %s from Stripe",
			strings.Join(deleted, ", "))
	}
	if len(si.Status.ManualCleanup) > 0 {
		r.event(si, corev1.EventTypeWarning, paymentsv1alpha1.EventManualRemovalRequired,
			"endpoints on previous accounts still need removal in the Stripe dashboard: %s", strings.Join(si.Status.ManualCleanup, ", "))
	}
	orig := si.DeepCopy()
	controllerutil.RemoveFinalizer(si, Finalizer)
	if err := r.Client.Patch(ctx, si, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("removing finalizer: %w", err))
	}
	r.previousKeys.forget(si.UID)
	r.stripeViews.forget(si.UID)
	r.replayWindows.forget(si.UID)
	r.statusWrites.forget(si.UID)
	r.startConsidered.forget(si.UID)
	r.payoutChecks.forget(si.UID)
	r.holdStarts.forget(si.UID)
	r.ownCreates.forget(si.UID)
	if r.Metrics != nil {
		r.Metrics.LastProbe.DeleteLabelValues(si.Namespace, si.Name)
	}
	return ctrl.Result{}, nil
}

// deleteEndpoints deletes every endpoint tagged with this object's UID in the key's account and
// returns their ids. Endpoints without the tag are never touched.
func (r *StripeIntegrationReconciler) deleteEndpoints(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) ([]string, error) {
	res, err := r.checkKeys(ctx, si)
	if err != nil {
		return nil, err
	}
	if !res.OK() {
		if si.Status.WebhookEndpointID == "" && si.Status.KeyFingerprint == "" {
			return nil, nil // Stripe never accepted a key for this object: nothing can exist there
		}
		return nil, fmt.Errorf("%w: %s", errCredentialsUnusable, res.Message)
	}
	sc := r.Stripe.For(res.Secret.Value, res.Secret.Mode, si.Status.AccountID)
	listed, err := sc.ListWebhookEndpoints(ctx)
	if err != nil {
		return nil, err
	}
	deleted := make([]string, 0, len(listed))
	for _, ep := range listed {
		if !ownedBy(ep, string(si.UID)) {
			continue
		}
		logf.FromContext(ctx).Info("Deleting Stripe webhook endpoint", "endpoint", ep.ID)
		if err := r.deleteOwned(ctx, sc, ep.ID); err != nil {
			return deleted, err
		}
		deleted = append(deleted, ep.ID)
	}
	return deleted, nil
}

// errCredentialsUnusable marks a deletion that cannot work until someone fixes the keys: it gets
// the permanent-failure attempt budget, not the transient one.
var errCredentialsUnusable = errors.New("credentials unusable")

func leftBehind(si *paymentsv1alpha1.StripeIntegration) string {
	if si.Status.WebhookEndpointID == "" {
		return "(none recorded; check the account for endpoints tagged clinicpay_uid=" + string(si.UID) + ")"
	}
	return si.Status.WebhookEndpointID
}

// setDeletionAttempts stores the counter on the object so the bound holds across restarts.
func (r *StripeIntegrationReconciler) setDeletionAttempts(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, n int) error {
	orig := si.DeepCopy()
	if si.Annotations == nil {
		si.Annotations = map[string]string{}
	}
	si.Annotations[paymentsv1alpha1.AnnotationDeletionAttempts] = strconv.Itoa(n)
	if err := r.Client.Patch(ctx, si, client.MergeFrom(orig)); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("recording deletion attempt: %w", err))
	}
	return nil
}
