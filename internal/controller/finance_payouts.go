package controller

// Payout reconciliation (spec.finance.payouts, issue 17): each paid automatic payout of the
// clinic's Stripe account is written, with every balance transaction it settles, to the clinic's
// system of record through its receiver (a ledger.Message of kind payout.reconciled). The
// receiver records then any payment of it the system of record never received, so after each
// payout the ledger is complete.
//
// Stripe's facts this relies on:
//   - GET /v1/payouts?status=paid&arrival_date[gte]=… lists paid payouts, newest first
//     (https://docs.stripe.com/api/payouts/list); automatic payouts are the ones the payout
//     schedule made (https://docs.stripe.com/api/payouts/object#payout_object-automatic).
//   - GET /v1/balance_transactions?payout=po_… lists what a payout settles, in pages of up to 100,
//     for automatic payouts only (https://docs.stripe.com/api/balance_transactions/list), and the
//     list is whole only once the payout's reconciliation_status is completed
//     (https://docs.stripe.com/api/payouts/object#payout_object-reconciliation_status; Stripe
//     sends payout.paid and then payout.reconciliation_completed,
//     https://docs.stripe.com/api/events/types#event_types-payout.reconciliation_completed).
//   - A restricted key needs rak_payout_read for the first and rak_balance_read for the second
//     (https://docs.stripe.com/keys/permissions-reference).
//
// Cadence and cost: a check runs when the feature is enabled, then every PayoutCheckInterval
// (1 h by default, jittered ±10 %), never on a mere resync. A check costs one list call (one more
// per 100 paid payouts in the window) plus, per payout not written yet, ceil((items+1)/100) calls
// (the payout's own debit is listed with its items). A check with nothing new costs one call.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/keys"
	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// DefaultPayoutCheckInterval is the period between payout checks when the reconciler sets none.
// Stripe pays out at most daily on the usual schedules: an hour finds a payout soon after Stripe
// has reconciled it, for one list call an hour.
const DefaultPayoutCheckInterval = time.Hour

const (
	// payoutFirstLookback is how far back the first check after enabling looks: about a month of
	// books, the payouts a finance team still reconciles, without writing a clinic's whole
	// history (balance transactions of old payouts stay listable on Stripe, but nobody asked
	// for them).
	payoutFirstLookback = 30 * 24 * time.Hour
	// payoutCursorMargin is how far before the cursor (the newest arrival written) each check
	// lists again: payouts arriving the same day as the last one written, or marked paid a
	// little later than a newer one, are not missed. The ones written already are skipped by id
	// (status.finance.payouts.writtenIDs).
	payoutCursorMargin = 24 * time.Hour
	// maxPayoutsPerCheck bounds one check's work; the rest follows after payoutContinueDelay.
	maxPayoutsPerCheck  = 40
	payoutContinueDelay = time.Second
	// maxLastFilledIDs and maxWrittenIDs are the CRD's bounds on the id lists in status.
	maxLastFilledIDs = 20
	maxWrittenIDs    = 100
	// reconciliationCompleted is the reconciliation_status from which a payout's balance
	// transactions are final.
	reconciliationCompleted = "completed"
	// permPayoutRead and permBalanceRead are the restricted-key permissions of the two listings
	// (https://docs.stripe.com/keys/permissions-reference), named when Stripe's 403 does not.
	permPayoutRead  = "rak_payout_read"
	permBalanceRead = "rak_balance_read"
)

// payoutSchedule is one integration's payout check schedule, in memory: when the next check is
// due, how many checks in a row failed (for the backoff of retries), and what the last check
// found, re-applied in the passes between checks so a status write lost to a conflict is not lost
// until the next check.
type payoutSchedule struct {
	due      time.Time
	failures int
	cond     *condition
	status   *paymentsv1alpha1.PayoutsStatus
}

// payoutOutcome is what one check found.
type payoutOutcome struct {
	cond condition
	// keepCond: a transient Stripe failure; the stored condition stays (cond applies only when
	// there is none).
	keepCond bool
	// status is the new status.finance.payouts, nil when the check changed nothing of it.
	status *paymentsv1alpha1.PayoutsStatus
	// retry: retry sooner than the interval, with backoff (write failed, transient Stripe error);
	// more: the check stopped at maxPayoutsPerCheck.
	retry, more bool
	// written and filled count this check's payouts and filled payments, for the metrics.
	written, filled int
}

func payoutsEnabled(si *paymentsv1alpha1.StripeIntegration) bool {
	return si.Spec.Finance != nil && si.Spec.Finance.Payouts != nil && si.Spec.Finance.Payouts.Enabled
}

func storedPayouts(si *paymentsv1alpha1.StripeIntegration) *paymentsv1alpha1.PayoutsStatus {
	if si.Status.Finance == nil {
		return nil
	}
	return si.Status.Finance.Payouts
}

func (r *StripeIntegrationReconciler) payoutInterval() time.Duration {
	if r.PayoutCheckInterval <= 0 {
		return DefaultPayoutCheckInterval
	}
	return r.PayoutCheckInterval
}

// viewClient returns how to build a client for k when a pass reused a Stripe view and so made no
// call: building one costs no Stripe call, and the factory shares the transport, the backend and
// the account's rate limiter with the probe's clients (the limiter key is the probe's: the stored
// account while the keys are the ones status recorded). The key stays inside the closure, which
// only a finance check that is due calls.
func (r *StripeIntegrationReconciler) viewClient(si *paymentsv1alpha1.StripeIntegration, k keys.Key,
	fingerprint string) func() stripeclient.Client {
	limiterKey := si.Status.AccountID
	if fingerprint != si.Status.KeyFingerprint {
		limiterKey = ""
	}
	return func() stripeclient.Client { return r.Stripe.For(k.Value, k.Mode, limiterKey) }
}

// untilDue shortens a requeue so the pass runs by due (zero: nothing scheduled).
func untilDue(next time.Duration, due, now time.Time) time.Duration {
	if due.IsZero() {
		return next
	}
	return min(next, max(due.Sub(now), time.Millisecond))
}

// reconcilePayouts runs the payout check when it is due, and otherwise keeps what the last one
// found. Disabled, it removes the condition and status.finance.payouts.
func (r *StripeIntegrationReconciler) reconcilePayouts(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, obs *observation) {
	const ct = paymentsv1alpha1.ConditionPayoutsReconciled
	if !payoutsEnabled(si) {
		r.payoutChecks.forget(si.UID)
		obs.Cleared = append(obs.Cleared, ct)
		obs.ClearPayouts = true
		return
	}
	if obs.err != nil {
		return // the pass failed elsewhere and is retried with backoff; the stored findings stay
	}
	if !connectedInPass(obs) {
		obs.Informational = append(obs.Informational, unknown(ct, paymentsv1alpha1.ReasonNotConnected,
			"payout reconciliation waits for the integration to be Connected"))
		return
	}
	now := r.now()
	sched := r.payoutScheduleFor(si)
	if now.Before(sched.due) {
		if sched.status != nil && newerPayouts(sched.status, storedPayouts(si)) == sched.status {
			// Re-applied until stored: a status write lost to a conflict is not lost until the
			// next check. Another manager's newer findings (a leader change) are not overwritten.
			obs.Payouts = sched.status
			if sched.cond != nil {
				obs.Informational = append(obs.Informational, *sched.cond)
			}
		}
		obs.financeDue = sched.due
		return
	}
	sc := obs.stripe
	if sc == nil && obs.stripeFor != nil {
		sc = obs.stripeFor()
	}
	if sc == nil {
		return // not reached: a connected pass either called Stripe or reused a view
	}
	out := r.checkPayouts(ctx, si, sc, newerPayouts(sched.status, storedPayouts(si)))
	r.recordPayoutCheck(si, obs.Mode, out)
	sched = r.nextPayoutSchedule(si, sched, out)
	r.payoutChecks.set(si.UID, sched)
	if !out.keepCond || meta.FindStatusCondition(si.Status.Conditions, ct) == nil {
		obs.Informational = append(obs.Informational, out.cond)
	}
	if out.status != nil {
		obs.Payouts = out.status
	}
	obs.financeDue = sched.due
}

// newerPayouts is whichever of this process's last findings and the stored status comes from the
// later check: memory after a status write that has not reached the cache (or was lost to a
// conflict), the stored one after another manager checked meanwhile (a leader change). Memory
// wins a tie.
func newerPayouts(mem, stored *paymentsv1alpha1.PayoutsStatus) *paymentsv1alpha1.PayoutsStatus {
	switch {
	case mem == nil:
		return stored
	case stored == nil || stored.LastReconcileTime == nil:
		return mem
	case mem.LastReconcileTime == nil || stored.LastReconcileTime.After(mem.LastReconcileTime.Time):
		return stored
	}
	return mem
}

// payoutScheduleFor is the integration's schedule. Without one in memory: a feature just enabled
// (no condition yet, or one saying it waited for the connection) is due now; otherwise this
// process started after checks had run, and the next is due an interval after the last one, but
// not before the integration's place in the first interval after the start (startOffset), so a
// restart does not check every clinic at once.
func (r *StripeIntegrationReconciler) payoutScheduleFor(si *paymentsv1alpha1.StripeIntegration) payoutSchedule {
	if s, ok := r.payoutChecks.get(si.UID); ok {
		return s
	}
	c := meta.FindStatusCondition(si.Status.Conditions, paymentsv1alpha1.ConditionPayoutsReconciled)
	if c == nil || c.Reason == paymentsv1alpha1.ReasonNotConnected {
		return payoutSchedule{}
	}
	interval := r.payoutInterval()
	due := r.started.Add(startOffset(si.UID, interval))
	if st := storedPayouts(si); st != nil && st.LastReconcileTime != nil && st.LastReconcileTime.Add(interval).After(due) {
		due = st.LastReconcileTime.Add(interval)
	}
	s := payoutSchedule{due: due}
	r.payoutChecks.set(si.UID, s)
	return s
}

// nextPayoutSchedule schedules the check after out: an interval later (jittered), sooner with
// backoff after a failed write or a transient Stripe failure, at once when the check stopped at
// its bound.
func (r *StripeIntegrationReconciler) nextPayoutSchedule(si *paymentsv1alpha1.StripeIntegration, prev payoutSchedule,
	out payoutOutcome) payoutSchedule {
	now, interval := r.now(), r.payoutInterval()
	next := payoutSchedule{due: now.Add(jittered(interval, rand.Float64())), cond: prev.cond, status: prev.status}
	switch {
	case out.retry:
		next.failures = prev.failures + 1
		next.due = now.Add(payoutRetryDelay(interval, next.failures))
	case out.more:
		next.due = now.Add(min(interval, payoutContinueDelay))
	}
	if !out.keepCond || meta.FindStatusCondition(si.Status.Conditions, paymentsv1alpha1.ConditionPayoutsReconciled) == nil && prev.cond == nil {
		c := out.cond
		next.cond = &c
	}
	if out.status != nil {
		next.status = out.status
	}
	return next
}

// payoutRetryDelay backs off from a sixteenth of the interval, doubling per failed check, up to
// the interval itself (with the default: about 4, 8, 15, 30 and 60 minutes).
func payoutRetryDelay(interval time.Duration, failures int) time.Duration {
	d := max(interval/16, 100*time.Millisecond)
	for i := 1; i < failures && d < interval; i++ {
		d *= 2
	}
	return min(d, interval)
}

func (r *StripeIntegrationReconciler) recordPayoutCheck(si *paymentsv1alpha1.StripeIntegration, mode paymentsv1alpha1.Mode, out payoutOutcome) {
	if r.Metrics == nil {
		return
	}
	if mode == "" {
		mode = si.Spec.Mode
	}
	m := string(mode)
	r.Metrics.PayoutChecks.WithLabelValues(m, out.cond.Reason).Inc()
	r.Metrics.PayoutsReconciled.WithLabelValues(m).Add(float64(out.written))
	r.Metrics.PaymentsFilled.WithLabelValues(m).Add(float64(out.filled))
}

// checkPayouts lists the paid payouts since the cursor of base and writes the reconciled ones
// not written yet, oldest first. It stops at the first one Stripe has not finished reconciling (so the
// cursor never passes it), at one whose items do not add up, and at a write the receiver refused.
func (r *StripeIntegrationReconciler) checkPayouts(ctx context.Context, si *paymentsv1alpha1.StripeIntegration,
	sc stripeclient.Client, base *paymentsv1alpha1.PayoutsStatus) payoutOutcome {
	next := &paymentsv1alpha1.PayoutsStatus{}
	if base != nil {
		next = base.DeepCopy()
	}
	now := r.now()
	since := now.Add(-payoutFirstLookback)
	if next.LastArrivalDate != nil {
		since = next.LastArrivalDate.Add(-payoutCursorMargin)
	}
	listed, err := sc.ListPaidPayouts(ctx, since)
	if err != nil {
		return payoutStripeFailure(err, permPayoutRead, "listing paid payouts", nil)
	}
	arrivals := make(map[string]int64, len(listed))
	for _, p := range listed {
		arrivals[p.ID] = p.ArrivalDate
	}
	var out payoutOutcome
	var waiting *stripeclient.Payout
	for _, p := range payoutsToWrite(listed, next.WrittenIDs) {
		if out.written == maxPayoutsPerCheck {
			out.more = true
			break
		}
		if p.ReconciliationStatus != reconciliationCompleted {
			waiting = &p
			break
		}
		if failed, stop := r.writePayout(ctx, si, sc, p, next, arrivals, &out); stop {
			failed.written, failed.filled = out.written, out.filled
			failed.status = progress(next, out.written, now, !failed.keepCond)
			return failed
		}
	}
	next.LastReconcileTime = ptrTime(now)
	out.status = next
	out.cond = reconciledCondition(next, waiting)
	return out
}

// writePayout lists one payout's items, checks them and hands the payout to the receiver. On
// success it advances next and out and returns stop false; otherwise the outcome to report.
func (r *StripeIntegrationReconciler) writePayout(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, sc stripeclient.Client,
	p stripeclient.Payout, next *paymentsv1alpha1.PayoutsStatus, arrivals map[string]int64, out *payoutOutcome) (payoutOutcome, bool) {
	const ct = paymentsv1alpha1.ConditionPayoutsReconciled
	txns, err := sc.ListPayoutTransactions(ctx, p.ID)
	if err != nil {
		return payoutStripeFailure(err, permBalanceRead, "listing the balance transactions of payout "+p.ID, &p), true
	}
	lp := ledgerPayout(si.Spec.ClinicID, p, txns)
	if err := lp.Check(); err != nil {
		return payoutOutcome{cond: falseCond(ct, paymentsv1alpha1.ReasonPayoutInvalid, fmt.Sprintf(
			"payout %s (arriving %s) is not written: %s; later payouts wait behind it, and Stripe's listing is read again at the next check",
			p.ID, day(p.ArrivalDate), err))}, true
	}
	res, err := r.sendLedger(ctx, si, ledger.Message{ID: p.ID, Kind: ledger.KindPayout, ClinicID: si.Spec.ClinicID,
		Livemode: p.Livemode, Payout: &lp})
	if err != nil {
		return payoutOutcome{retry: true, cond: falseCond(ct, paymentsv1alpha1.ReasonPayoutWriteFailed, stripeclient.Redact(fmt.Sprintf(
			"payout %s (arriving %s) was not written: %s; retried with backoff", p.ID, day(p.ArrivalDate), writeFailure(err))))}, true
	}
	// The receiver may cut the ids it names (ledger.MaxFilledIDs); FilledCount is the total.
	filled := max(res.FilledCount, len(res.Filled))
	advance(next, p, len(lp.Items), res.Filled, filled, arrivals)
	out.written++
	out.filled += filled
	return payoutOutcome{}, false
}

// writeFailure keeps the receiver's answer but not a transport error's URL noise.
func writeFailure(err error) string {
	if errors.Is(err, errLedgerNotWritten) {
		return err.Error()
	}
	return "the receiver could not be reached or did not answer (" + err.Error() + ")"
}

// progress is the status to record when a check stopped early: what it wrote before stopping,
// and the check's time when it finished with an answer (not a transient failure). Nil when it
// changed nothing.
func progress(next *paymentsv1alpha1.PayoutsStatus, written int, now time.Time, finished bool) *paymentsv1alpha1.PayoutsStatus {
	if finished {
		next.LastReconcileTime = ptrTime(now)
		return next
	}
	if written > 0 {
		return next
	}
	return nil
}

// payoutsToWrite keeps the automatic paid payouts not written yet, oldest first: by arrival, then
// creation, then id, so payouts arriving the same day have a stable order.
func payoutsToWrite(listed []stripeclient.Payout, written []string) []stripeclient.Payout {
	out := make([]stripeclient.Payout, 0, len(listed))
	for _, p := range listed {
		// Manual payouts settle no particular transactions: Stripe cannot list them by payout.
		if p.Automatic && p.Status == "paid" && !slices.Contains(written, p.ID) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b stripeclient.Payout) int {
		return cmp.Or(cmp.Compare(a.ArrivalDate, b.ArrivalDate), cmp.Compare(a.Created, b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// ledgerPayout maps a payout and its balance transactions to the ledger's record: every item but
// the payout's own debit (type payout), oldest first. Their nets add up to the payout's amount
// when Stripe listed the payout whole, which ledger.Payout.Check verifies.
func ledgerPayout(clinicID string, p stripeclient.Payout, txns []stripeclient.BalanceTransaction) ledger.Payout {
	lp := ledger.Payout{ID: p.ID, ClinicID: clinicID, Amount: p.Amount, Currency: p.Currency, ArrivalDate: p.ArrivalDate,
		Created: p.Created, Livemode: p.Livemode, Items: make([]ledger.Item, 0, len(txns))}
	for _, bt := range slices.Backward(txns) { // Stripe lists newest first
		if bt.Type == "payout" && (bt.SourceID == p.ID || bt.SourceID == "") {
			continue
		}
		lp.Items = append(lp.Items, ledger.Item{ID: bt.ID, Type: bt.Type, ReportingCategory: bt.ReportingCategory,
			Amount: bt.Amount, Fee: bt.Fee, Net: bt.Net, Currency: bt.Currency, Created: bt.Created,
			SourceID: bt.SourceID, ChargeID: bt.ChargeID, PaymentIntentID: bt.PaymentIntentID})
	}
	return lp
}

// advance records a written payout in next: the cursor, its figures, the running totals, and the
// written ids a later check would list again (arrived within the margin before the cursor).
func advance(next *paymentsv1alpha1.PayoutsStatus, p stripeclient.Payout, items int, filled []string, filledCount int,
	arrivals map[string]int64) {
	arrival := time.Unix(p.ArrivalDate, 0).UTC()
	next.LastPayoutID = p.ID
	if next.LastArrivalDate == nil || arrival.After(next.LastArrivalDate.Time) {
		next.LastArrivalDate = ptrTime(arrival)
	}
	next.LastItems = int32(min(items, 1<<31-1))
	next.LastFilled = int32(min(filledCount, 1<<31-1))
	next.LastFilledIDs = slices.Clone(filled[:min(len(filled), maxLastFilledIDs)])
	next.Reconciled++
	next.Filled += int64(filledCount)
	floor := next.LastArrivalDate.Add(-payoutCursorMargin).Unix()
	kept := make([]string, 0, len(next.WrittenIDs)+1)
	for _, id := range append(next.WrittenIDs, p.ID) {
		// An id missing from this listing arrived before it looked: no later check lists it.
		if a, ok := arrivals[id]; ok && a >= floor {
			kept = append(kept, id)
		}
	}
	next.WrittenIDs = kept[max(0, len(kept)-maxWrittenIDs):]
}

// reconciledCondition is True after a check that wrote every reconciled payout it found; its
// message changes only with what was written, so a check with nothing new changes only
// lastReconcileTime.
func reconciledCondition(st *paymentsv1alpha1.PayoutsStatus, waiting *stripeclient.Payout) condition {
	msg := fmt.Sprintf("no paid automatic payout of the last %d days to write yet", int(payoutFirstLookback/(24*time.Hour)))
	if st.LastPayoutID != "" {
		msg = fmt.Sprintf("payout %s (arrived %s) written with %d items, %d payments filled in; "+
			"%d payouts written and %d payments filled in since enabling",
			st.LastPayoutID, st.LastArrivalDate.UTC().Format(time.DateOnly), st.LastItems, st.LastFilled, st.Reconciled, st.Filled)
	}
	if waiting != nil {
		msg += fmt.Sprintf("; payout %s (arriving %s) waits for Stripe to finish reconciling it (reconciliation_status %s)",
			waiting.ID, day(waiting.ArrivalDate), waiting.ReconciliationStatus)
	}
	return trueCond(paymentsv1alpha1.ConditionPayoutsReconciled, paymentsv1alpha1.ReasonPayoutsReconciled, msg)
}

// payoutStripeFailure maps a failed payout listing: a missing permission names it (Stripe's
// word, else the one the call needs), a transient failure keeps the stored condition and is
// retried with backoff, anything else is reported as Stripe's answer.
func payoutStripeFailure(err error, permission, call string, p *stripeclient.Payout) payoutOutcome {
	const ct = paymentsv1alpha1.ConditionPayoutsReconciled
	e := stripeclient.Classify(err)
	switch {
	case e.Transient():
		reason := paymentsv1alpha1.ReasonStripeUnavailable
		if e.Kind == stripeclient.KindRateLimited {
			reason = paymentsv1alpha1.ReasonRateLimited
		}
		return payoutOutcome{keepCond: true, retry: true, cond: unknown(ct, reason, stripeclient.Redact(fmt.Sprintf(
			"%s failed (%s); retried with backoff", call, e.Message)))}
	case e.Kind == stripeclient.KindPermissionDenied:
		if e.Permission != "" {
			permission = e.Permission
		}
		msg := fmt.Sprintf("the restricted key lacks %s, which %s needs; grant it in the Stripe dashboard or use another key", permission, call)
		if p != nil {
			msg += fmt.Sprintf(" (payout %s waits)", p.ID)
		}
		return payoutOutcome{cond: falseCond(ct, paymentsv1alpha1.ReasonPayoutPermissionMissing, msg)}
	default:
		return payoutOutcome{cond: falseCond(ct, paymentsv1alpha1.ReasonPayoutCheckFailed, stripeclient.Redact(fmt.Sprintf(
			"Stripe answered %s with an unexpected error: %s; tried again at the next check", call, e.Error())))}
	}
}

func day(unix int64) string { return time.Unix(unix, 0).UTC().Format(time.DateOnly) }

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}
