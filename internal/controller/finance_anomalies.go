package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/anomaly"
	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// Anomaly flags (spec.finance.anomalies, docs/finance.md). The operator reads the clinic's
// whole event log from Stripe, where each receiver replica sees only part of the stream, so the
// rules (internal/anomaly) run here: every AnomalyCheckInterval a check lists the events of the
// kinds the rules read (anomalyEventTypes) created since status.finance.anomalies.checkedUntil,
// up to a few seconds ago, feeds them to the integration's detector and hands each flag to the
// clinic's receiver as a ledger message (sendLedger), which writes it to the systems of record.
//
// The detector lives in memory. After a start, a threshold change or new keys, the first check
// rebuilds it from the baseline period before the cursor (the refund baseline and window) without
// flagging anything, so the clinic's own history is never empty; then it checks what is new. On
// first enable the cursor starts now: history seeds the baseline and is not flagged.
//
// The cursor moves only past events whose flags the receiver wrote: a refused flag is kept and
// sent again at the next check, and no newer event is listed meanwhile. A flag sent twice is
// harmless: the systems of record key it on its id (rule and event). The cursor is written to
// status with every flag, and otherwise at most every anomalyCursorPersistEvery, so a quiet
// clinic costs no status write per check; after a restart the events since the stored cursor are
// checked again, which at worst sends a flag again.

const (
	// anomalySettleDelay keeps a check off the newest seconds of the log: an event listed once
	// the second it was created has passed for a while is not followed by one created earlier.
	anomalySettleDelay = 5 * time.Second
	// anomalyCheckEvents and anomalyCheckDeadline cap one check's work; the next check goes on.
	anomalyCheckEvents   = 5000
	anomalyCheckDeadline = 2 * time.Minute
	// anomalyWindowEvents bounds one listed window (halved when it holds more), as replays do.
	anomalyWindowEvents = 1000
	// anomalyFirstWindow is the first listing window of a baseline replay.
	anomalyFirstWindow = 24 * time.Hour
	// anomalyContinueDelay is how soon a check that hit its cap goes on.
	anomalyContinueDelay = time.Second
	// anomalyRetryDelay is how soon a check after a transient Stripe failure runs (at most).
	anomalyRetryDelay = 30 * time.Second
	// anomalyCursorPersistEvery bounds how far the stored cursor lags the checked one.
	anomalyCursorPersistEvery = 30 * time.Minute
)

// DefaultAnomalyCheckInterval is how often a clinic's events are checked (jittered ±10 %): the
// manager's --anomaly-check-interval default.
const DefaultAnomalyCheckInterval = 5 * time.Minute

// anomalyThresholds maps spec.finance.anomalies to the rules' thresholds. Unset fields stay
// zero and take anomaly.DefaultThresholds. refundFactorPercent is a percentage (400 is 4×) and
// outlierDeviationsTenths tenths of a deviation (50 is 5.0): the API holds no floats.
func anomalyThresholds(s *paymentsv1alpha1.AnomaliesSpec) anomaly.Thresholds {
	var th anomaly.Thresholds
	if s == nil {
		return th
	}
	if s.RefundWindow != nil {
		th.Window = s.RefundWindow.Duration
	}
	if s.RefundBaseline != nil {
		th.Baseline = s.RefundBaseline.Duration
	}
	if s.RefundFactorPercent != nil {
		th.RefundFactor = float64(*s.RefundFactorPercent) / 100
	}
	if s.RefundMinCount != nil {
		th.RefundMinCount = int(*s.RefundMinCount)
	}
	if s.OutlierDeviationsTenths != nil {
		th.OutlierMADs = float64(*s.OutlierDeviationsTenths) / 10
	}
	if s.OutlierMinHistory != nil {
		th.OutlierMinHistory = int(*s.OutlierMinHistory)
	}
	if s.FailedBurstCount != nil {
		th.FailedBurstCount = int(*s.FailedBurstCount)
	}
	if s.FailedBurstWindow != nil {
		th.FailedBurstWindow = s.FailedBurstWindow.Duration
	}
	return th
}

// baselineHorizon is how much history before the cursor rebuilds a detector: the refund
// baseline and window, at least the failed-burst window, within Stripe's 30-day event log.
func baselineHorizon(th anomaly.Thresholds) time.Duration {
	h := max(th.Baseline+th.Window, th.FailedBurstWindow)
	return min(h, eventLogRetention-time.Hour)
}

// anomalyState is one integration's detector and check progress, in memory only.
type anomalyState struct {
	mu sync.Mutex
	// th and fingerprint are what the detector was built for: other thresholds or other keys
	// (maybe another account) rebuild it.
	th          anomaly.Thresholds
	fingerprint string
	det         *anomaly.Detector
	// warmed is how far the baseline replay has fed the detector; start is the cursor it warms
	// up to, where checking begins.
	warmed, start time.Time
	// listed is how far events were fed to the detector after warming (zero: not yet).
	listed time.Time
	// resume is where a detector rebuilt for other thresholds or keys starts checking: what
	// its predecessor checked (zero: status's cursor).
	resume time.Time
	// window is the listing window's length last used.
	window time.Duration
	// pending are flags the receiver has not written yet, oldest first.
	pending []pendingFlag
	// unreported are flags the receiver wrote that status may not count yet, oldest first: the
	// status write of the pass that raised them can fail (a conflict with a newer copy), and the
	// detector raises a flag once. Each pass counts them on top of the stored count until status
	// shows the newest of them as lastFlag.
	unreported []anomaly.Flag
	// due is when the next check runs; failingSince when the current run of transient Stripe
	// failures began (zero: none).
	due, failingSince time.Time
}

// pendingFlag is a flag waiting for the receiver.
type pendingFlag struct {
	flag anomaly.Flag
	msg  ledger.Message
}

// warm reports whether the baseline replay is done.
func (s *anomalyState) warm() bool { return !s.warmed.Before(s.start) }

// checked is the cursor status may record: every event before it was checked and its flags
// written.
func (s *anomalyState) checked() time.Time {
	c := s.listed
	if c.IsZero() {
		c = s.start
	}
	for _, p := range s.pending {
		if at := time.Unix(p.msg.Flag.Created, 0).UTC(); at.Before(c) {
			c = at
		}
	}
	return c
}

// anomalyInterval is AnomalyCheckInterval, or its default when unset.
func (r *StripeIntegrationReconciler) anomalyInterval() time.Duration {
	if r.AnomalyCheckInterval <= 0 {
		return DefaultAnomalyCheckInterval
	}
	return r.AnomalyCheckInterval
}

// forgetAnomalies drops an integration's detector and its flag series: the integration is
// deleted or the feature is off.
func (r *StripeIntegrationReconciler) forgetAnomalies(si *paymentsv1alpha1.StripeIntegration) {
	r.anomalies.forget(si.UID)
	if r.Metrics != nil && r.Metrics.AnomalyFlags != nil {
		r.Metrics.AnomalyFlags.DeletePartialMatch(map[string]string{"namespace": si.Namespace, "name": si.Name})
	}
}

// reconcileAnomalies runs the anomaly check when it is enabled, the integration is connected and
// the check is due, and reports it in status. It never fails the pass: a Stripe or receiver
// failure shows in AnomaliesChecked and is retried at the next check.
func (r *StripeIntegrationReconciler) reconcileAnomalies(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, obs *observation) {
	spec := anomaliesSpec(si)
	if spec == nil || !spec.Enabled {
		r.forgetAnomalies(si)
		if meta.FindStatusCondition(si.Status.Conditions, paymentsv1alpha1.ConditionAnomaliesChecked) != nil ||
			(si.Status.Finance != nil && si.Status.Finance.Anomalies != nil) {
			obs.Cleared = append(obs.Cleared, paymentsv1alpha1.ConditionAnomaliesChecked)
			obs.ClearAnomalies = true
		}
		return
	}
	if !connectedInPass(obs) {
		anomaliesWaiting(si, obs)
		return
	}
	th := anomaly.NewDetector(anomalyThresholds(spec)).Thresholds()
	st := r.anomalyStateFor(si, th, obs.KeyFingerprint)
	if !st.mu.TryLock() {
		return // another pass of this integration is checking
	}
	defer st.mu.Unlock()
	now := r.now()
	if now.Before(st.due) {
		obs.financeDue = soonerDue(obs.financeDue, st.due)
		recountUnreported(si, st, obs)
		return
	}
	sc := obs.stripe
	if sc == nil && obs.stripeFor != nil {
		// This pass reused what a recent Stripe pass saw (stripeView): a client for the keys
		// Stripe accepted then, sharing their account's rate limiters.
		sc = obs.stripeFor()
	}
	if sc == nil {
		return // not reached: a connected pass either called Stripe or reused a view
	}
	res := r.checkAnomalies(ctx, si, sc, st, obs.Mode == paymentsv1alpha1.ModeLive, now)
	r.reportAnomalies(si, st, res, obs, now)
}

// soonerDue is the earlier of two due times, zero meaning none: the payout check may have
// scheduled the pass's requeue already.
func soonerDue(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// anomaliesSpec is spec.finance.anomalies, nil when unset.
func anomaliesSpec(si *paymentsv1alpha1.StripeIntegration) *paymentsv1alpha1.AnomaliesSpec {
	if si.Spec.Finance == nil {
		return nil
	}
	return si.Spec.Finance.Anomalies
}

// anomaliesWaiting reports a check that cannot run because the integration is not connected.
// A transient Stripe failure (within its grace) leaves the stored condition as it is.
func anomaliesWaiting(si *paymentsv1alpha1.StripeIntegration, obs *observation) {
	stored := meta.FindStatusCondition(si.Status.Conditions, paymentsv1alpha1.ConditionAnomaliesChecked)
	if stored != nil && (obs.err != nil || obs.Authenticated.Transient || obs.Webhook.Transient) {
		return
	}
	c := unknown(paymentsv1alpha1.ConditionAnomaliesChecked, paymentsv1alpha1.ReasonNotConnected,
		"anomaly checks wait for the integration to be Connected (see Connected)")
	if si.Spec.Suspend {
		c = unknown(paymentsv1alpha1.ConditionAnomaliesChecked, paymentsv1alpha1.ReasonSuspended,
			"spec.suspend is true: no anomaly checks are made")
	}
	obs.Informational = append(obs.Informational, c)
}

// anomalyStateFor returns the integration's state, a new one when there is none or it was built
// for other thresholds or keys. A new state's first check is due at once, except after a start,
// when status shows earlier checks: it is then spread over one interval from the start (the
// integration's startOffset), so a restarted manager does not list every clinic's baseline at once.
func (r *StripeIntegrationReconciler) anomalyStateFor(si *paymentsv1alpha1.StripeIntegration, th anomaly.Thresholds,
	fingerprint string) *anomalyState {
	r.anomaliesMu.Lock()
	defer r.anomaliesMu.Unlock()
	old, ok := r.anomalies.get(si.UID)
	if ok && old.th == th && old.fingerprint == fingerprint {
		return old
	}
	st := &anomalyState{th: th, fingerprint: fingerprint}
	switch {
	case ok:
		// Other thresholds or keys: what the old detector checked stays checked (its baseline
		// is rebuilt up to there, silently), and the new one checks from there at once.
		old.mu.Lock()
		if old.warm() {
			st.resume = old.checked()
		}
		old.mu.Unlock()
	case storedAnomalies(si) != nil && storedAnomalies(si).CheckedUntil != nil && !r.started.IsZero():
		st.due = r.started.Add(startOffset(si.UID, r.anomalyInterval()))
	}
	r.anomalies.set(si.UID, st)
	return st
}

// storedAnomalies is status.finance.anomalies, nil when unset.
func storedAnomalies(si *paymentsv1alpha1.StripeIntegration) *paymentsv1alpha1.AnomaliesStatus {
	if si.Status.Finance == nil {
		return nil
	}
	return si.Status.Finance.Anomalies
}

// anomalyResult is what one check did.
type anomalyResult struct {
	// raised are the flags the rules raised in this check; written those the receiver wrote.
	raised, written []anomaly.Flag
	// more: the check hit its cap with events left; it goes on soon.
	more bool
	// listErr is Stripe's answer to a failed listing; writeErr the receiver's to a failed flag.
	listErr, writeErr error
	// failed names the flag the receiver refused.
	failed string
}

// checkAnomalies runs one check: the baseline replay while the detector is not warm, the flags
// that wait for the receiver, then the events created since the detector's last one.
func (r *StripeIntegrationReconciler) checkAnomalies(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, sc stripeclient.Client,
	st *anomalyState, livemode bool, now time.Time) anomalyResult {
	var res anomalyResult
	if st.det == nil {
		st.det = anomaly.NewDetector(st.th)
		st.start = now.Add(-anomalySettleDelay).Truncate(time.Second)
		if a := storedAnomalies(si); a != nil && a.CheckedUntil != nil && a.CheckedUntil.Time.Before(st.start) {
			st.start = a.CheckedUntil.Time
		}
		if !st.resume.IsZero() && st.resume.Before(now) {
			st.start = st.resume
		}
		// Events older than Stripe's log cannot be listed: a cursor that old moves to the log's start.
		if oldest := now.Add(-eventLogRetention).Add(time.Hour).Truncate(time.Second); st.start.Before(oldest) {
			st.start = oldest
		}
		st.warmed = st.start.Add(-baselineHorizon(st.th))
		st.listed, st.window, st.pending = time.Time{}, 0, nil
	}
	listCtx, cancel := context.WithTimeout(ctx, anomalyCheckDeadline)
	defer cancel()
	budget := anomalyCheckEvents
	if !st.warm() {
		reached, err := r.listAnomalyEvents(listCtx, sc, st, st.warmed, st.start, &budget, func(ev stripeclient.RawEvent) {
			if o, _, ok := observeEvent(ev); ok {
				st.det.Observe(o) // the baseline: its flags were raised (or not) before
			}
		})
		st.warmed = reached
		if err != nil || !st.warm() {
			res.listErr, res.more = err, err == nil
			return res
		}
		st.listed = st.start
	}
	if !r.sendPending(ctx, si, st, &res) {
		return res
	}
	to := now.Add(-anomalySettleDelay).Truncate(time.Second)
	reached, err := r.listAnomalyEvents(listCtx, sc, st, st.listed, to, &budget, func(ev stripeclient.RawEvent) {
		o, about, ok := observeEvent(ev)
		if !ok {
			return
		}
		for _, f := range st.det.Observe(o) {
			res.raised = append(res.raised, f)
			st.pending = append(st.pending, pendingFlag{flag: f, msg: flagMessage(si.Spec.ClinicID, livemode, f, about, ev)})
		}
	})
	if reached.After(st.listed) {
		st.listed = reached
	}
	res.listErr, res.more = err, err == nil && st.listed.Before(to)
	r.sendPending(ctx, si, st, &res)
	return res
}

// sendPending hands the waiting flags to the receiver, oldest first, and reports whether all
// were written; it stops at the first the receiver does not write.
func (r *StripeIntegrationReconciler) sendPending(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, st *anomalyState,
	res *anomalyResult) bool {
	for len(st.pending) > 0 {
		p := st.pending[0]
		if _, err := r.sendLedger(ctx, si, p.msg); err != nil {
			logf.FromContext(ctx).Info("Writing an anomaly flag failed; retried at the next check", "flag", p.msg.ID,
				"reason", stripeclient.Redact(err.Error()))
			res.writeErr, res.failed = err, p.msg.ID
			return false
		}
		res.written = append(res.written, p.flag)
		st.pending = st.pending[1:]
	}
	return true
}

// listAnomalyEvents lists the events of the rules' types created in [from, to) window by window,
// oldest first, hands each to fn and returns how far it got: it stops when the budget of events
// or the context's deadline is spent (reached < to, no error) or Stripe fails (the error).
func (r *StripeIntegrationReconciler) listAnomalyEvents(ctx context.Context, sc stripeclient.Client, st *anomalyState, from, to time.Time,
	budget *int, fn func(stripeclient.RawEvent)) (time.Time, error) {
	if st.window <= 0 {
		st.window = anomalyFirstWindow
	}
	cursor := from
	for cursor.Before(to) && *budget > 0 {
		end := cursor.Add(st.window)
		if end.After(to) {
			end = to
		}
		w := stripeclient.EventWindow{From: cursor, To: end, Types: anomalyEventTypes, Max: anomalyWindowEvents}
		if end.Sub(cursor) <= time.Second {
			w.Max = 0 // a second cannot be split: Stripe's created times are whole seconds
		}
		events, err := sc.ListEvents(ctx, w)
		switch {
		case errors.Is(err, stripeclient.ErrTooManyEvents):
			st.window = max(time.Second, (end.Sub(cursor) / 2).Truncate(time.Second))
			continue
		case err != nil && ctx.Err() != nil:
			return cursor, nil // the check's time is up: the next one goes on from here
		case err != nil:
			return cursor, err
		}
		for _, ev := range events {
			fn(ev)
		}
		*budget -= len(events)
		cursor = end
		if len(events) < anomalyWindowEvents/4 && st.window < eventLogRetention {
			st.window *= 2
		}
	}
	return cursor, nil
}

// countUnreported drops from st.unreported (oldest first) the flags stored already counts, up to
// and including the one it names as lastFlag, and adds the rest to next (a copy of stored): their
// number to flags, the newest as lastFlag. It returns how many it added.
func countUnreported(next *paymentsv1alpha1.AnomaliesStatus, st *anomalyState, stored *paymentsv1alpha1.AnomaliesStatus) int {
	if stored != nil && stored.LastFlag != nil {
		for i, f := range st.unreported {
			if string(f.Kind) == stored.LastFlag.Rule && f.EventID == stored.LastFlag.EventID {
				st.unreported = slices.Clone(st.unreported[i+1:])
				break
			}
		}
	}
	n := len(st.unreported)
	if n == 0 {
		return 0
	}
	next.Flags += int64(n)
	f := st.unreported[n-1]
	next.LastFlag = &paymentsv1alpha1.AnomalyFlagStatus{Rule: string(f.Kind), EventID: f.EventID, Time: metav1.NewTime(f.At), Reason: f.Reason}
	return n
}

// recountUnreported, in a pass without a check, writes the flags the last check raised whose
// status write failed (it lost a conflict): the retried pass must not wait for the next check to
// count them.
func recountUnreported(si *paymentsv1alpha1.StripeIntegration, st *anomalyState, obs *observation) {
	stored := storedAnomalies(si)
	if stored == nil {
		return
	}
	next := stored.DeepCopy()
	if countUnreported(next, st, stored) == 0 {
		return
	}
	if c := st.checked(); st.warm() && (next.CheckedUntil == nil || c.After(next.CheckedUntil.Time)) {
		next.CheckedUntil = &metav1.Time{Time: c}
	}
	obs.Anomalies = next
}

// reportAnomalies turns a check's outcome into status, metrics and the next check's time.
func (r *StripeIntegrationReconciler) reportAnomalies(si *paymentsv1alpha1.StripeIntegration, st *anomalyState, res anomalyResult,
	obs *observation, now time.Time) {
	for _, f := range res.raised {
		if r.Metrics != nil && r.Metrics.AnomalyFlags != nil {
			r.Metrics.AnomalyFlags.WithLabelValues(si.Namespace, si.Name, string(f.Kind)).Inc()
		}
	}
	stored := storedAnomalies(si)
	next := paymentsv1alpha1.AnomaliesStatus{}
	if stored != nil {
		next = *stored.DeepCopy()
	}
	st.unreported = append(st.unreported, res.raised...)
	countUnreported(&next, st, stored)
	interval := jittered(r.anomalyInterval(), rand.Float64())
	st.due = now.Add(interval)
	cond, keep := anomalyCondition(si, st, res, r.TransientFailureGrace, r.anomalyInterval(), now)
	switch {
	case res.listErr != nil && isTransient(res.listErr):
		st.due = now.Add(min(interval, anomalyRetryDelay))
	case res.more:
		st.due = now.Add(min(interval, anomalyContinueDelay))
	}
	obs.financeDue = soonerDue(obs.financeDue, st.due)
	if !keep {
		obs.Informational = append(obs.Informational, cond)
	}
	// The cursor is written with every flag, when the condition changes, and otherwise once it
	// lags by anomalyCursorPersistEvery: a quiet clinic's checks write nothing in between.
	checked := st.checked()
	if st.warm() && (stored == nil || stored.CheckedUntil == nil || len(st.unreported) > 0 || len(res.written) > 0 ||
		checked.Sub(stored.CheckedUntil.Time) >= anomalyCursorPersistEvery || conditionChanges(si, cond, keep)) {
		next.CheckedUntil = &metav1.Time{Time: checked}
		obs.Anomalies = &next
	}
}

// conditionChanges reports whether cond differs from the stored AnomaliesChecked in status or reason.
func conditionChanges(si *paymentsv1alpha1.StripeIntegration, cond condition, keep bool) bool {
	if keep {
		return false
	}
	c := meta.FindStatusCondition(si.Status.Conditions, paymentsv1alpha1.ConditionAnomaliesChecked)
	return c == nil || c.Status != cond.Status || c.Reason != cond.Reason
}

// anomalyCondition is AnomaliesChecked after a check; keep is true when the stored one stays
// (a transient Stripe failure within the grace, or a baseline replay still under way).
func anomalyCondition(si *paymentsv1alpha1.StripeIntegration, st *anomalyState, res anomalyResult, grace, interval time.Duration,
	now time.Time) (condition, bool) {
	const ct = paymentsv1alpha1.ConditionAnomaliesChecked
	stored := meta.FindStatusCondition(si.Status.Conditions, ct)
	transient := res.listErr != nil && isTransient(res.listErr)
	switch {
	case !transient:
		st.failingSince = time.Time{}
	case st.failingSince.IsZero():
		st.failingSince = now
	}
	switch {
	case res.listErr != nil && transient:
		if stored != nil && now.Before(st.failingSince.Add(grace)) {
			return condition{}, true
		}
		c := authCondition(res.listErr)
		return falseCond(ct, c.Reason, fmt.Sprintf("listing the clinic's events has failed since %s; retrying (%s)",
			st.failingSince.UTC().Format(time.RFC3339), c.Message)), false
	case res.listErr != nil:
		e := stripeclient.Classify(res.listErr)
		if e.Kind == stripeclient.KindPermissionDenied {
			perm := e.Permission
			if perm == "" {
				perm = "rak_event_read"
			}
			return falseCond(ct, paymentsv1alpha1.ReasonEventPermissionMissing, fmt.Sprintf(
				"the restricted key lacks %s, which reading the clinic's events needs; grant it in the Stripe dashboard", perm)), false
		}
		c := authCondition(res.listErr)
		return falseCond(ct, c.Reason, "listing the clinic's events failed: "+c.Message), false
	case res.writeErr != nil:
		return falseCond(ct, paymentsv1alpha1.ReasonFlagWriteFailed, fmt.Sprintf(
			"the receiver did not write flag %s; it is sent again at the next check, and no newer event is checked meanwhile: %s",
			res.failed, stripeclient.Redact(res.writeErr.Error()))), false
	case !st.warm():
		return condition{}, true // the baseline replay goes on at the next check
	}
	return trueCond(ct, paymentsv1alpha1.ReasonAnomaliesChecked, fmt.Sprintf(
		"the clinic's payments, failed payments, refunds and disputes are checked every %s against the rules' thresholds, "+
			"up to status.finance.anomalies.checkedUntil", interval)), false
}
