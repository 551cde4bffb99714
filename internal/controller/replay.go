package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

const (
	// eventLogRetention is how far back Stripe's event log goes.
	eventLogRetention = 30 * 24 * time.Hour
	// replayWindowEvents bounds how many events one listed window may hold in memory; a window
	// with more is halved and listed again (down to one second, which is listed whole).
	replayWindowEvents = 1000
	// replayPassEvents bounds one pass: once it handed this many events to the receiver it
	// starts no other window, records its cursor in status and requeues (replayPassInterval).
	replayPassEvents = 1000
	// replayFirstWindow is the first window's length when no better guess is remembered;
	// windows double while they hold under a quarter of replayWindowEvents.
	replayFirstWindow = time.Hour
	// replayPassInterval is how soon the next pass of a running replay starts.
	replayPassInterval = time.Second
	// replayWorkers deliver the events of one second in parallel; seconds go in order.
	replayWorkers = 4
	// replayDeadline bounds the time one replay pass may hold a reconcile worker.
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
// (sigheader.ReplayHeader) so the receiver's dedup memory does not swallow them.
//
// Every event created from the requested time (at most 30 days back, Stripe's log) until the
// replay started is delivered once, oldest first. Stripe lists newest first only, so the range
// is walked forward in time windows, created[gte]=from&created[lt]=to: each window is listed
// whole, reversed and delivered; one holding more than replayWindowEvents is halved first. A
// pass handles about replayPassEvents events, then records its cursor (status.replay.resumeAfter:
// everything created before it was handed over) and requeues, so a long replay neither holds a
// worker nor loses its place when the manager restarts. A crash inside a pass re-sends at most
// that pass's events, which the systems of record deduplicate on the event id.
//
// Rate: event-list pages wait for the account's event-list limiter (stripeclient
// DefaultEventListRate, 5 pages a second per account and mode) besides the account's request
// limiter, so a replay uses at most a fifth of Stripe's test-mode limit, a twentieth of live's.
func (r *StripeIntegrationReconciler) reconcileReplay(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, sc stripeclient.Client,
	obs *observation) {
	req := si.Annotations[paymentsv1alpha1.AnnotationReplaySince]
	prev := si.Status.Replay
	if req == "" || (prev != nil && prev.Since == req && prev.Phase != paymentsv1alpha1.ReplayRunning) {
		return
	}
	now := r.now()
	failed := func(st paymentsv1alpha1.ReplayStatus, msg string) {
		st.Phase, st.Message, st.ResumeAfter = paymentsv1alpha1.ReplayFailed, msg, nil
		r.finishReplay(si, obs, st, now)
	}
	since, err := time.Parse(time.RFC3339, req)
	switch {
	case err != nil:
		failed(paymentsv1alpha1.ReplayStatus{Since: req}, fmt.Sprintf("%s is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z)",
			paymentsv1alpha1.AnnotationReplaySince))
		return
	case since.After(now):
		failed(paymentsv1alpha1.ReplayStatus{Since: req}, "the requested time is in the future")
		return
	}
	since = since.Truncate(time.Second) // Stripe's created times are whole seconds
	st := paymentsv1alpha1.ReplayStatus{Since: req, Phase: paymentsv1alpha1.ReplayRunning}
	if prev != nil && prev.Since == req && prev.ResumeAfter != nil && prev.Until != nil {
		// A running replay: make sure the cursor is the stored one, not a lagging cache's,
		// or this pass would send the previous pass's events again.
		fresh := &paymentsv1alpha1.StripeIntegration{}
		if err := r.SecretReader.Get(ctx, client.ObjectKeyFromObject(si), fresh); err != nil {
			obs.err = fmt.Errorf("reading the replay's progress: %w", err)
			return
		}
		if fresh.ResourceVersion != si.ResourceVersion {
			obs.replayRunning = true // the next pass starts from the current object
			return
		}
		st = *prev.DeepCopy()
	} else {
		until := metav1.NewTime(now.Truncate(time.Second).Add(time.Second))
		st.Until, st.ResumeAfter = &until, &metav1.Time{Time: since}
	}
	note := ""
	if oldest := now.Add(-eventLogRetention).Truncate(time.Second).Add(time.Second); st.ResumeAfter.Before(&metav1.Time{Time: oldest}) {
		st.ResumeAfter = &metav1.Time{Time: oldest}
	}
	if since.Before(st.Until.Add(-eventLogRetention)) {
		note = " (Stripe keeps 30 days of events; started 30 days back)"
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
	desired := desiredEndpoint(si, r.WebhookBaseURL, stripeclient.APIVersion)
	listErr := r.replayPass(ctx, si, sc, stored.value, desired.EnabledEvents, &st)
	progress := fmt.Sprintf("delivered %d so far (up to %s), oldest first, of the events created from %s until %s%s",
		st.Delivered, st.ResumeAfter.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339), st.Until.UTC().Format(time.RFC3339), note)
	if st.Failed > 0 {
		progress += fmt.Sprintf("; %d not accepted by the receiver", st.Failed)
	}
	switch {
	case listErr != nil && isTransient(listErr):
		st.Message = progress + "; listing Stripe events failed, retrying: " + stripeclient.Redact(listErr.Error())
		obs.Replay, obs.err = &st, fmt.Errorf("listing events for replay: %w", listErr)
		return
	case listErr != nil:
		failed(st, fmt.Sprintf("listing Stripe events failed: %s; %s (set the annotation to a new value to retry)",
			stripeclient.Redact(listErr.Error()), progress))
		return
	case st.ResumeAfter.Before(st.Until):
		st.Message = progress
		obs.Replay, obs.replayRunning = &st, true
		return
	}
	progress = fmt.Sprintf("%d events re-delivered to the receiver, oldest first, created from %s until the replay started (%s)%s",
		st.Delivered, since.UTC().Format(time.RFC3339), st.Until.UTC().Format(time.RFC3339), note)
	if st.Failed > 0 {
		retry := st.OldestFailed.UTC()
		if retry.Format(time.RFC3339) == req {
			retry = retry.Add(-time.Second)
		}
		failed(st, fmt.Sprintf("%s; %d not accepted by the receiver, the oldest created at %s (set %s to %s to re-send from there)",
			progress, st.Failed, st.OldestFailed.UTC().Format(time.RFC3339), paymentsv1alpha1.AnnotationReplaySince, retry.Format(time.RFC3339)))
		return
	}
	st.Phase, st.Message, st.ResumeAfter = paymentsv1alpha1.ReplaySucceeded, progress, nil
	r.finishReplay(si, obs, st, now)
}

// finishReplay records a replay's outcome and announces it.
func (r *StripeIntegrationReconciler) finishReplay(si *paymentsv1alpha1.StripeIntegration, obs *observation, st paymentsv1alpha1.ReplayStatus,
	now time.Time) {
	r.replayWindows.forget(si.UID)
	ts := metav1.NewTime(now.Truncate(time.Second))
	st.CompletionTime = &ts
	obs.Replay = &st
	et := corev1.EventTypeNormal
	if st.Phase == paymentsv1alpha1.ReplayFailed {
		et = corev1.EventTypeWarning
	}
	r.event(si, et, paymentsv1alpha1.EventReplayCompleted, "replay since %s: %s", st.Since, st.Message)
}

// replayPass walks windows forward from st.ResumeAfter towards st.Until, delivering each
// window's events oldest first, until about replayPassEvents were handed over; it moves the
// cursor and the counts in st past every window it delivered, and returns a listing error.
func (r *StripeIntegrationReconciler) replayPass(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, sc stripeclient.Client, secret string,
	types []string, st *paymentsv1alpha1.ReplayStatus) error {
	ctx, cancel := context.WithTimeout(ctx, replayDeadline)
	defer cancel()
	window, ok := r.replayWindows.get(si.UID)
	if !ok {
		window = replayFirstWindow
	}
	defer func() { r.replayWindows.set(si.UID, window) }()
	cursor, until := st.ResumeAfter.Time, st.Until.Time
	for handled := 0; cursor.Before(until) && handled < replayPassEvents; {
		if err := ctx.Err(); err != nil {
			return nil // the next pass goes on from the cursor
		}
		to := cursor.Add(window)
		if to.After(until) {
			to = until
		}
		w := stripeclient.EventWindow{From: cursor, To: to, Types: types, Max: replayWindowEvents}
		if to.Sub(cursor) <= time.Second {
			w.Max = 0 // a second cannot be split: Stripe's created times are whole seconds
		}
		events, err := sc.ListEvents(ctx, w)
		if errors.Is(err, stripeclient.ErrTooManyEvents) {
			window = max(time.Second, (to.Sub(cursor) / 2).Truncate(time.Second))
			continue
		}
		if err != nil {
			return err
		}
		delivered, failed, oldestFailed := r.redeliver(ctx, si, secret, events)
		st.Delivered += int32(delivered)
		st.Failed += int32(failed)
		if failed > 0 && (st.OldestFailed == nil || oldestFailed.Before(st.OldestFailed.Time)) {
			st.OldestFailed = &metav1.Time{Time: oldestFailed}
		}
		handled += len(events)
		cursor = to
		st.ResumeAfter = &metav1.Time{Time: cursor}
		if len(events) < replayWindowEvents/4 && window < eventLogRetention {
			window *= 2
		}
	}
	return nil
}

// redeliver POSTs each event to the receiver with a fresh Stripe-style signature, in the order
// given (oldest first): the events of one created second in parallel, the seconds one after
// another. It returns how many the receiver accepted and refused, and when the oldest refused
// one was created.
func (r *StripeIntegrationReconciler) redeliver(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, secret string,
	events []stripeclient.RawEvent) (int, int, time.Time) {
	url := r.receiverURL(si)
	hc := r.ReplayHTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	var delivered, failed atomic.Int64
	var oldestFailed atomic.Int64
	oldestFailed.Store(math.MaxInt64)
	one := func(ev stripeclient.RawEvent) {
		if err := r.deliverOne(ctx, hc, url, secret, ev); err != nil {
			logf.FromContext(ctx).Info("Replaying event failed", "event", ev.ID, "reason", err.Error())
			failed.Add(1)
			for {
				old := oldestFailed.Load()
				if ev.Created >= old || oldestFailed.CompareAndSwap(old, ev.Created) {
					break
				}
			}
			return
		}
		delivered.Add(1)
	}
	for len(events) > 0 {
		n := 1
		for n < len(events) && events[n].Created == events[0].Created {
			n++
		}
		second := events[:n]
		events = events[n:]
		if len(second) == 1 {
			one(second[0])
			continue
		}
		work := make(chan stripeclient.RawEvent)
		var wg sync.WaitGroup
		for range min(replayWorkers, len(second)) {
			wg.Go(func() {
				for ev := range work {
					one(ev)
				}
			})
		}
		for _, ev := range second {
			work <- ev
		}
		close(work)
		wg.Wait()
	}
	var oldest time.Time
	if failed.Load() > 0 {
		oldest = time.Unix(oldestFailed.Load(), 0).UTC()
	}
	return int(delivered.Load()), int(failed.Load()), oldest
}

func (r *StripeIntegrationReconciler) deliverOne(ctx context.Context, hc *http.Client, url, secret string, ev stripeclient.RawEvent) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ev.JSON))
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	// Stripe's scheme, which the clinic-facing signature reuses: t=<unix>,v1=HMAC("<t>.<body>").
	now := r.now()
	req.Header.Set("Stripe-Signature", sigheader.Sign([]byte(secret), now, ev.JSON))
	// The replay marker makes the receiver relay again an event it already relayed: the clinic
	// asked for a re-send, and the systems of record deduplicate on the event id themselves.
	req.Header.Set(sigheader.ReplayHeader, sigheader.SignReplay(secret, now, ev.JSON))
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("posting to receiver: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered HTTP %d", resp.StatusCode)
	}
	var answer struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&answer); err != nil {
		return fmt.Errorf("receiver answered HTTP %d without its JSON status: %w", resp.StatusCode, err)
	}
	switch answer.Status {
	case sigheader.ReplayStatusRelayed, sigheader.ReplayStatusAcknowledged:
		return nil
	default:
		return fmt.Errorf(
			"receiver answered %q, not %q: it did not take the replay marker (clocks more than %s apart, or a receiver older than the operator)",
			answer.Status, sigheader.ReplayStatusRelayed, sigheader.DefaultTolerance)
	}
}

func (r *StripeIntegrationReconciler) receiverURL(si *paymentsv1alpha1.StripeIntegration) string {
	if r.ReceiverURL != nil {
		return r.ReceiverURL(si)
	}
	return DefaultReceiverURL(si)
}
