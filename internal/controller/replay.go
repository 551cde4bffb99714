package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/receiver"
	"github.com/clinicpay/stripe-operator/internal/relay/httprelay"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

const (
	// eventLogRetention is how far back Stripe's event log goes.
	eventLogRetention = 30 * 24 * time.Hour
	// maxReplayEvents bounds one replay request.
	maxReplayEvents = 10000
	// replayWorkers deliver in parallel; the receiver deduplicates, order is best effort.
	replayWorkers = 4
	// replayDeadline bounds the time one replay may hold a reconcile worker.
	replayDeadline = 5 * time.Minute
)

// DefaultReceiverURL is where the operator re-delivers replayed events inside the cluster: the
// receiver Service's webhook port, the same path Stripe posts to.
func DefaultReceiverURL(si *paymentsv1alpha1.StripeIntegration) string {
	return fmt.Sprintf("http://%s.%s.svc:%d%s", receiverName(si), si.Namespace, webhookPort, webhookPath(si))
}

// reconcileReplay runs a replay request once the integration is connected: it lists the clinic's
// events from Stripe and re-delivers them to the receiver, signed like Stripe signs them, so the
// receiver's verification and the downstream idempotency apply unchanged, and marked as a replay
// (receiver.ReplaySignatureHeader) so the receiver's dedup memory does not swallow them.
func (r *StripeIntegrationReconciler) reconcileReplay(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, sc stripeclient.Client, obs *observation) {
	req := si.Annotations[paymentsv1alpha1.AnnotationReplaySince]
	if req == "" || (si.Status.Replay != nil && si.Status.Replay.Since == req) {
		return
	}
	now := r.now()
	finish := func(phase paymentsv1alpha1.ReplayPhase, delivered, failed int, msg string) {
		ts := metav1.NewTime(now.Truncate(time.Second))
		obs.replay = &paymentsv1alpha1.ReplayStatus{Since: req, Phase: phase, Delivered: int32(delivered), Failed: int32(failed), Message: msg, CompletionTime: &ts}
		et := corev1.EventTypeNormal
		if phase == paymentsv1alpha1.ReplayFailed {
			et = corev1.EventTypeWarning
		}
		r.event(si, et, paymentsv1alpha1.EventReplayCompleted, "replay since %s: %s", req, msg)
	}
	since, err := time.Parse(time.RFC3339, req)
	switch {
	case err != nil:
		finish(paymentsv1alpha1.ReplayFailed, 0, 0, fmt.Sprintf("%s is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z)", paymentsv1alpha1.AnnotationReplaySince))
		return
	case since.After(now):
		finish(paymentsv1alpha1.ReplayFailed, 0, 0, "the requested time is in the future")
		return
	}
	note := ""
	if oldest := now.Add(-eventLogRetention); since.Before(oldest) {
		since, note = oldest, " (Stripe keeps 30 days of events; started 30 days back)"
	}
	stored, err := r.readSigningSecret(ctx, si)
	if err != nil {
		obs.err = fmt.Errorf("reading the signing secret for replay: %w", err)
		return
	}
	if stored.value == "" {
		obs.err = errors.New("replay waits for the signing secret to be stored")
		return
	}
	secret := stored.value
	desired := desiredEndpoint(si, r.WebhookBaseURL, stripeclient.APIVersion)
	events, err := sc.ListEvents(ctx, since, desired.EnabledEvents, maxReplayEvents)
	if err != nil {
		if isTransient(err) {
			obs.err = fmt.Errorf("listing events for replay: %w", err)
			return
		}
		finish(paymentsv1alpha1.ReplayFailed, 0, 0, "listing Stripe events failed: "+stripeclient.Redact(err.Error()))
		return
	}
	delivered, failed := r.redeliver(ctx, si, secret, events)
	msg := fmt.Sprintf("%d of %d events re-delivered to the receiver%s", delivered, len(events), note)
	if failed > 0 {
		finish(paymentsv1alpha1.ReplayFailed, delivered, failed, fmt.Sprintf("%s; %d failed (set the annotation to a new value to retry)", msg, failed))
		return
	}
	finish(paymentsv1alpha1.ReplaySucceeded, delivered, 0, msg)
}

// redeliver POSTs each event to the receiver with a fresh Stripe-style signature.
func (r *StripeIntegrationReconciler) redeliver(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, secret string, events []stripeclient.RawEvent) (int, int) {
	ctx, cancel := context.WithTimeout(ctx, replayDeadline)
	defer cancel()
	url := r.receiverURL(si)
	hc := r.ReplayHTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	var delivered, failed atomic.Int64
	work := make(chan stripeclient.RawEvent)
	var wg sync.WaitGroup
	for range replayWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range work {
				if err := r.deliverOne(ctx, hc, url, secret, ev); err != nil {
					logf.FromContext(ctx).Info("Replaying event failed", "event", ev.ID, "reason", err.Error())
					failed.Add(1)
					continue
				}
				delivered.Add(1)
			}
		}()
	}
	for _, ev := range events {
		work <- ev
	}
	close(work)
	wg.Wait()
	return int(delivered.Load()), int(failed.Load())
}

func (r *StripeIntegrationReconciler) deliverOne(ctx context.Context, hc *http.Client, url, secret string, ev stripeclient.RawEvent) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ev.JSON))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	// Stripe's scheme, which the clinic-facing signature reuses: t=<unix>,v1=HMAC("<t>.<body>").
	now := r.now()
	req.Header.Set("Stripe-Signature", httprelay.Sign([]byte(secret), now, ev.JSON))
	// The replay marker makes the receiver relay again an event it already relayed: the clinic
	// asked for a re-send, and the systems of record deduplicate on the event id themselves.
	req.Header.Set(receiver.ReplaySignatureHeader, receiver.SignReplay(secret, now, ev.JSON))
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("posting to receiver: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered HTTP %d", resp.StatusCode)
	}
	return nil
}

func (r *StripeIntegrationReconciler) receiverURL(si *paymentsv1alpha1.StripeIntegration) string {
	if r.ReceiverURL != nil {
		return r.ReceiverURL(si)
	}
	return DefaultReceiverURL(si)
}
