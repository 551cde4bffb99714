package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

const (
	// liveRetryWindow is how long Stripe retries a failed live-mode delivery: "up to three days
	// with an exponential back off" (https://docs.stripe.com/webhooks#retries).
	liveRetryWindow = 72 * time.Hour
	// testRetryWindow bounds test mode, where Stripe "retries three times over a few hours"
	// (same page); a day leaves room for "a few".
	testRetryWindow = 24 * time.Hour
	// followUpInterval bounds the wait for the next pass while an endpoint retires or a gap waits
	// to be re-delivered (the resync, when shorter, still applies).
	followUpInterval = time.Minute
	// gapGiveUp is how long after the newest requested time a failing re-delivery is retried
	// before the operator stops and asks for a manual replay.
	gapGiveUp = 24 * time.Hour
)

// retryWindow is how long Stripe keeps retrying a failed delivery in the integration's mode.
func retryWindow(si *paymentsv1alpha1.StripeIntegration) time.Duration {
	if si.Spec.Mode == paymentsv1alpha1.ModeLive {
		return liveRetryWindow
	}
	return testRetryWindow
}

// gapPending reports whether a replacement's re-delivery is still to be done.
func gapPending(si *paymentsv1alpha1.StripeIntegration) bool {
	return si.Annotations[paymentsv1alpha1.AnnotationRedeliverUndeliveredSince] != "" ||
		si.Annotations[paymentsv1alpha1.AnnotationRedeliverAllSince] != ""
}

// requestRedelivery records on the object, before the old endpoint is deleted, that the events
// Stripe has not delivered since undelivered (and, unless zero, every event since all) are to be
// re-delivered through the replay path. An earlier request still pending keeps the earlier time.
func (r *StripeIntegrationReconciler) requestRedelivery(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, undelivered,
	all time.Time) error {
	if err := r.patchAnnotations(ctx, si, func(a map[string]string) {
		set := func(key string, t time.Time) {
			if t.IsZero() {
				return
			}
			t = t.UTC().Truncate(time.Second)
			if prev, err := time.Parse(time.RFC3339, a[key]); err == nil && prev.Before(t) {
				return
			}
			a[key] = t.Format(time.RFC3339)
		}
		set(paymentsv1alpha1.AnnotationRedeliverUndeliveredSince, undelivered)
		set(paymentsv1alpha1.AnnotationRedeliverAllSince, all)
	}); err != nil {
		return fmt.Errorf("recording the re-delivery of the replaced endpoint's events: %w", err)
	}
	return nil
}

// reconcileGapRedelivery re-delivers the events a replacement could not hand over from the old
// endpoint (see requestRedelivery): the events created since the undelivered time that Stripe
// lists with delivery_success=false, and every event created since the all time until the
// current endpoint was created. They go through the replay path (redeliver: signed with the
// current secret and the replay marker, oldest first), so the receiver relays them even if it
// saw them before, and the systems of record deduplicate by event id. It runs once the endpoint
// and the receiver are ready; while the receiver refuses some (it may not hold the new secret
// yet: the kubelet updates mounted Secrets with a delay) it is retried every followUpInterval,
// for gapGiveUp. Each pass costs one or two event lists.
func (r *StripeIntegrationReconciler) reconcileGapRedelivery(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, sc stripeclient.Client,
	obs *observation) {
	if !gapPending(si) {
		return
	}
	now := r.now()
	parse := func(key string) time.Time {
		t, err := time.Parse(time.RFC3339, si.Annotations[key])
		if err != nil {
			return time.Time{}
		}
		if oldest := now.Add(-eventLogRetention).Truncate(time.Second).Add(time.Second); t.Before(oldest) {
			t = oldest
		}
		return t
	}
	undelivered, all := parse(paymentsv1alpha1.AnnotationRedeliverUndeliveredSince), parse(paymentsv1alpha1.AnnotationRedeliverAllSince)
	stored, err := r.readSigningSecret(ctx, si)
	if err != nil || stored.value == "" {
		obs.followUp = true
		return
	}
	types := desiredEndpoint(si, r.WebhookBaseURL, stripeclient.APIVersion).EnabledEvents
	until := now.Truncate(time.Second).Add(time.Second)
	var events []stripeclient.RawEvent
	seen := map[string]bool{}
	list := func(w stripeclient.EventWindow) error {
		evs, err := sc.ListEvents(ctx, w)
		for _, ev := range evs {
			if !seen[ev.ID] {
				seen[ev.ID] = true
				events = append(events, ev)
			}
		}
		return err
	}
	if !undelivered.IsZero() {
		err = list(stripeclient.EventWindow{From: undelivered, To: until, Types: types, Undelivered: true})
	}
	if err == nil && !all.IsZero() {
		to := until
		if obs.endpointCreated > 0 {
			// From then on Stripe delivers to the successor itself.
			to = time.Unix(obs.endpointCreated+1, 0)
		}
		err = list(stripeclient.EventWindow{From: all, To: to, Types: types})
	}
	if err != nil {
		obs.followUp = true
		logf.FromContext(ctx).Info("Listing the replaced endpoint's events failed; retrying", "reason", stripeclient.Redact(err.Error()))
		return
	}
	slices.SortStableFunc(events, func(a, b stripeclient.RawEvent) int { return int(a.Created - b.Created) })
	delivered, failed, _ := r.redeliver(ctx, si, stored.value, events)
	what := describeGap(undelivered, all)
	newest := undelivered
	if all.After(newest) {
		newest = all
	}
	if failed > 0 && now.Sub(newest) < gapGiveUp+retryWindow(si) {
		obs.followUp = true
		logf.FromContext(ctx).Info("Re-delivering the replaced endpoint's events: the receiver refused some; retrying",
			"delivered", delivered, "refused", failed)
		return
	}
	if err := r.patchAnnotations(ctx, si, func(a map[string]string) {
		delete(a, paymentsv1alpha1.AnnotationRedeliverUndeliveredSince)
		delete(a, paymentsv1alpha1.AnnotationRedeliverAllSince)
	}); err != nil {
		obs.followUp = true // the next pass re-sends; the systems of record deduplicate
		return
	}
	if failed > 0 {
		r.event(si, corev1.EventTypeWarning, paymentsv1alpha1.EventGapRedelivered,
			"gave up re-delivering %s: %d of %d events not accepted by the receiver; set %s to re-send them",
			what, failed, len(events), paymentsv1alpha1.AnnotationReplaySince)
		return
	}
	r.event(si, corev1.EventTypeNormal, paymentsv1alpha1.EventGapRedelivered,
		"re-delivered %d events through the replay path with the current signing secret: %s", delivered, what)
}

func describeGap(undelivered, all time.Time) string {
	var parts []string
	if !undelivered.IsZero() {
		parts = append(parts, "those Stripe had not delivered, created since "+undelivered.UTC().Format(time.RFC3339))
	}
	if !all.IsZero() {
		parts = append(parts, "every event created while no endpoint existed, from "+all.UTC().Format(time.RFC3339))
	}
	return strings.Join(parts, ", and ")
}
