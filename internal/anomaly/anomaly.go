// Package anomaly flags a clinic's unusual payment activity with deterministic rules a finance
// team can check by hand: every flag names the rule, the figure that tripped it and the
// threshold, computed from the clinic's own history only. There is no model and no I/O: callers
// feed observations in the order the money moved and relay the flags.
//
// Rules (defaults in DefaultThresholds, each settable per integration):
//   - RefundSpike: refunds in the last Window exceed RefundFactor times the clinic's trailing
//     mean per Window over Baseline (by count or by amount), and at least RefundMinCount refunds.
//   - AmountOutlier: a payment whose amount lies more than OutlierMADs robust deviations
//     (1.4826 × the median absolute deviation) from the median of the clinic's last payments in
//     the same currency, on the log scale, once OutlierMinHistory payments are known.
//   - FailedPaymentBurst: at least FailedBurstCount failed payments within FailedBurstWindow.
//   - Dispute: every dispute.
//
// A spike or burst flags once, then stays quiet for its window: one flag per incident, not one
// per event of it.
package anomaly

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Kind names a rule.
type Kind string

// The rules.
const (
	KindRefundSpike        Kind = "RefundSpike"
	KindAmountOutlier      Kind = "AmountOutlier"
	KindFailedPaymentBurst Kind = "FailedPaymentBurst"
	KindDispute            Kind = "Dispute"
)

// ObservationType is what kind of money movement an observation is.
type ObservationType string

// Observation types, from the Stripe events that carry them.
const (
	Payment       ObservationType = "payment"        // payment_intent.succeeded, charge.succeeded
	Refund        ObservationType = "refund"         // charge.refunded
	FailedPayment ObservationType = "failed_payment" // payment_intent.payment_failed
	Dispute       ObservationType = "dispute"        // charge.dispute.created
)

// Observation is one money movement of the clinic.
type Observation struct {
	// EventID is the Stripe event that carried it: a flag names the event that raised it.
	EventID string
	Type    ObservationType
	// Amount is in the currency's smallest unit; Currency as Stripe writes it ("usd").
	Amount   int64
	Currency string
	At       time.Time
}

// Flag is one anomaly: the rule, the event that raised it, and the figures that explain it.
type Flag struct {
	Kind    Kind
	EventID string
	At      time.Time
	// Value is the figure the rule measured and Threshold the bound it crossed.
	Value, Threshold float64
	// Reason explains the flag in a sentence, figures included; it holds no personal data.
	Reason string
}

// Thresholds configure the rules; the zero value of a field means its default.
type Thresholds struct {
	// Window is the refund spike's window (default 1 h), Baseline the trailing history its
	// mean is taken over (default 7 days).
	Window, Baseline time.Duration
	// RefundFactor (default 4) and RefundMinCount (default 7) bound a refund spike.
	RefundFactor   float64
	RefundMinCount int
	// OutlierMADs (default 5) and OutlierMinHistory (default 50 payments) bound an amount
	// outlier; OutlierHistory (default 1,000) is how many recent payments per currency are kept.
	OutlierMADs       float64
	OutlierMinHistory int
	OutlierHistory    int
	// FailedBurstCount (default 10) failed payments within FailedBurstWindow (default 10 min)
	// are a burst.
	FailedBurstCount  int
	FailedBurstWindow time.Duration
}

// DefaultThresholds are the documented defaults (docs/finance.md).
var DefaultThresholds = Thresholds{
	Window: time.Hour, Baseline: 7 * 24 * time.Hour,
	RefundFactor: 4, RefundMinCount: 7,
	OutlierMADs: 5, OutlierMinHistory: 50, OutlierHistory: 1000,
	FailedBurstCount: 10, FailedBurstWindow: 10 * time.Minute,
}

// withDefaults fills the zero fields of t from DefaultThresholds.
func (t Thresholds) withDefaults() Thresholds {
	d := DefaultThresholds
	orDefault(&t.Window, d.Window)
	orDefault(&t.Baseline, d.Baseline)
	orDefault(&t.RefundFactor, d.RefundFactor)
	orDefault(&t.RefundMinCount, d.RefundMinCount)
	orDefault(&t.OutlierMADs, d.OutlierMADs)
	orDefault(&t.OutlierMinHistory, d.OutlierMinHistory)
	orDefault(&t.OutlierHistory, d.OutlierHistory)
	orDefault(&t.FailedBurstCount, d.FailedBurstCount)
	orDefault(&t.FailedBurstWindow, d.FailedBurstWindow)
	if t.Baseline < t.Window {
		t.Baseline = t.Window
	}
	return t
}

// orDefault sets *v to def unless *v is positive.
func orDefault[T int | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// timed is an observation's time and amount, kept for the windows.
type timed struct {
	at     time.Time
	amount int64
}

// Detector holds one clinic's recent history. It is not safe for concurrent use.
type Detector struct {
	th Thresholds
	// refunds within Baseline + Window, oldest first; failed payments within FailedBurstWindow.
	refunds, failed []timed
	// amounts holds the last OutlierHistory payment amounts per currency, oldest first, and
	// stats their summary.
	amounts map[string][]int64
	stats   map[string]amountStats
	// first is the first observation's time: the baseline counts only history the detector saw.
	first time.Time
	// quietUntil silences a rule after it flagged, until its window has passed.
	quietUntil map[Kind]time.Time
	// seen remembers the last seenCap event ids (ring order in seenRing): a redelivered or
	// replayed event is counted once.
	seen     map[string]struct{}
	seenRing []string
	seenNext int
}

// seenCap bounds the event ids a detector remembers: more than a clinic's events over the
// redelivery horizons that matter here (Stripe's retries, a replay of the last hours).
const seenCap = 8192

// NewDetector returns a detector with th (zero fields take their defaults).
func NewDetector(th Thresholds) *Detector {
	return &Detector{th: th.withDefaults(), amounts: map[string][]int64{}, stats: map[string]amountStats{}, quietUntil: map[Kind]time.Time{},
		seen: map[string]struct{}{}}
}

// Thresholds returns the thresholds in force, defaults filled in.
func (d *Detector) Thresholds() Thresholds { return d.th }

// Observe records o and returns the flags it raises (usually none). An event id it has seen
// recently is ignored.
func (d *Detector) Observe(o Observation) []Flag {
	if o.EventID != "" && !d.firstSight(o.EventID) {
		return nil
	}
	if d.first.IsZero() || o.At.Before(d.first) {
		d.first = o.At
	}
	var flags []Flag
	switch o.Type {
	case Payment:
		if f, ok := d.outlier(o); ok {
			flags = append(flags, f)
		}
		d.remember(o)
	case Refund:
		d.refunds = insert(prune(d.refunds, o.At.Add(-d.th.Baseline-d.th.Window)), timed{at: o.At, amount: o.Amount})
		if f, ok := d.refundSpike(o); ok {
			flags = append(flags, f)
		}
	case FailedPayment:
		d.failed = insert(prune(d.failed, o.At.Add(-d.th.FailedBurstWindow)), timed{at: o.At, amount: o.Amount})
		if n := len(d.failed); n >= d.th.FailedBurstCount && d.speak(KindFailedPaymentBurst, o.At, d.th.FailedBurstWindow) {
			flags = append(flags, Flag{Kind: KindFailedPaymentBurst, EventID: o.EventID, At: o.At, Value: float64(n),
				Threshold: float64(d.th.FailedBurstCount), Reason: fmt.Sprintf("%d failed payments within %s (threshold %d)", n,
					d.th.FailedBurstWindow, d.th.FailedBurstCount)})
		}
	case Dispute:
		flags = append(flags, Flag{Kind: KindDispute, EventID: o.EventID, At: o.At, Value: float64(o.Amount), Threshold: 0,
			Reason: fmt.Sprintf("a dispute of %d %s (minor units) was opened", o.Amount, o.Currency)})
	}
	return flags
}

// firstSight records id and reports whether it is new.
func (d *Detector) firstSight(id string) bool {
	if _, ok := d.seen[id]; ok {
		return false
	}
	if len(d.seenRing) < seenCap {
		d.seenRing = append(d.seenRing, id)
	} else {
		delete(d.seen, d.seenRing[d.seenNext])
		d.seenRing[d.seenNext] = id
		d.seenNext = (d.seenNext + 1) % seenCap
	}
	d.seen[id] = struct{}{}
	return true
}

// speak reports whether rule k may flag at now, and if so silences it for window.
func (d *Detector) speak(k Kind, now time.Time, window time.Duration) bool {
	if now.Before(d.quietUntil[k]) {
		return false
	}
	d.quietUntil[k] = now.Add(window)
	return true
}

// refundSpike compares the refunds of the last Window with the trailing mean per Window over
// the baseline before it (as much of it as the detector has seen, at least one Window).
func (d *Detector) refundSpike(o Observation) (Flag, bool) {
	windowStart := o.At.Add(-d.th.Window)
	var count, amount, baseCount, baseAmount float64
	for _, r := range d.refunds {
		if r.at.After(windowStart) {
			count++
			amount += float64(r.amount)
		} else {
			baseCount++
			baseAmount += float64(r.amount)
		}
	}
	seen := min(windowStart.Sub(d.first), d.th.Baseline)
	if seen < d.th.Window {
		return Flag{}, false // no baseline yet: the first hour of history is nobody's spike
	}
	windows := float64(seen) / float64(d.th.Window)
	meanCount, meanAmount := baseCount/windows, baseAmount/windows
	// The bound never drops below RefundMinCount refunds, so a clinic with no refund history is
	// not flagged for its first few.
	countBound := math.Max(d.th.RefundFactor*meanCount, float64(d.th.RefundMinCount))
	amountBound := d.th.RefundFactor * meanAmount
	if count < float64(d.th.RefundMinCount) || (count <= countBound && amount <= amountBound) {
		return Flag{}, false
	}
	if !d.speak(KindRefundSpike, o.At, d.th.Window) {
		return Flag{}, false
	}
	value, bound, by := count, countBound, "count"
	if count <= countBound {
		value, bound, by = amount, amountBound, "amount"
	}
	return Flag{Kind: KindRefundSpike, EventID: o.EventID, At: o.At, Value: value, Threshold: bound,
		Reason: fmt.Sprintf("%.0f refunds of %.0f %s (minor units) in the last %s, against a trailing mean of %.2f refunds of %.0f per %s "+
			"over %s: above %g× by %s (bound %.0f), and at least %d refunds", count, amount, o.Currency, d.th.Window, meanCount, meanAmount,
			d.th.Window, seen.Round(time.Minute), d.th.RefundFactor, by, bound, d.th.RefundMinCount)}, true
}

// outlier compares a payment with the clinic's recent payments in its currency, on the log
// scale: payment amounts are roughly log-normal (many routine visits, a few procedures), so a
// robust z-score of log(amount) flags a 20-fold payment without flagging every large bill.
func (d *Detector) outlier(o Observation) (Flag, bool) {
	if o.Amount <= 0 || len(d.amounts[o.Currency]) < d.th.OutlierMinHistory {
		return Flag{}, false
	}
	st := d.statsFor(o.Currency)
	z := math.Abs(math.Log(float64(o.Amount))-st.logMedian) / st.logSpread
	if z <= d.th.OutlierMADs {
		return Flag{}, false
	}
	median := math.Exp(st.logMedian)
	return Flag{Kind: KindAmountOutlier, EventID: o.EventID, At: o.At, Value: z, Threshold: d.th.OutlierMADs,
		Reason: fmt.Sprintf("a payment of %d %s (minor units) is %.1f times the median %.0f of the clinic's last %d payments: %.1f robust "+
			"deviations on the log scale (threshold %g)", o.Amount, o.Currency, float64(o.Amount)/median, median, st.n, z, d.th.OutlierMADs)}, true
}

// amountStats summarise a currency's recent payments: the median of log(amount) and the robust
// spread (1.4826 × the median absolute deviation, at least logSpreadFloor).
type amountStats struct {
	logMedian, logSpread float64
	n                    int
	// fresh counts the payments remembered since the stats were computed.
	fresh int
}

// logSpreadFloor keeps a clinic with one fixed price from flagging every other price: a spread
// of 0.05 on the log scale is about 5 % of the amount.
const logSpreadFloor = 0.05

// statsFor returns the currency's stats, recomputed once a twentieth of the history is new:
// sorting the history for every payment would cost more than the rest of the receiver's work.
func (d *Detector) statsFor(currency string) amountStats {
	st, ok := d.stats[currency]
	hist := d.amounts[currency]
	if ok && st.fresh <= len(hist)/20 {
		return st
	}
	logs := make([]float64, 0, len(hist))
	for _, a := range hist {
		if a > 0 {
			logs = append(logs, math.Log(float64(a)))
		}
	}
	slices.Sort(logs)
	med := medianF(logs)
	dev := make([]float64, len(logs))
	for i, v := range logs {
		dev[i] = math.Abs(v - med)
	}
	slices.Sort(dev)
	st = amountStats{logMedian: med, logSpread: math.Max(1.4826*medianF(dev), logSpreadFloor), n: len(hist)}
	d.stats[currency] = st
	return st
}

func (d *Detector) remember(o Observation) {
	if st, ok := d.stats[o.Currency]; ok {
		st.fresh++
		d.stats[o.Currency] = st
	}
	h := append(d.amounts[o.Currency], o.Amount)
	if len(h) > d.th.OutlierHistory {
		h = slices.Delete(h, 0, len(h)-d.th.OutlierHistory)
	}
	d.amounts[o.Currency] = h
}

// insert adds e in time order: Stripe delivers events at least once and in no set order.
func insert(ts []timed, e timed) []timed {
	i, _ := slices.BinarySearchFunc(ts, e.at, func(x timed, at time.Time) int { return x.at.Compare(at) })
	return slices.Insert(ts, i, e)
}

// prune drops the entries before cutoff (entries are oldest first).
func prune(ts []timed, cutoff time.Time) []timed {
	i := 0
	for i < len(ts) && ts[i].at.Before(cutoff) {
		i++
	}
	return slices.Delete(ts, 0, i)
}

func medianF(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
