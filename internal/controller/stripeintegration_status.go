package controller

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// maxManualCleanup bounds status.manualCleanup (the CRD allows 16 items).
const maxManualCleanup = 16

// statusInput is what one reconcile pass found, as computeStatus needs it: no clients, no clock.
// The pass fills it in place, as the statusInput embedded in its observation.
type statusInput struct {
	// The four conditions, in dependency order; a zero one (no Type) was not evaluated.
	KeysValid, Authenticated, Webhook, Receiver condition
	Mode                                        paymentsv1alpha1.Mode
	// KeyFingerprint is of the keys this pass used, once they passed the key policy ("" before).
	// KeysAccepted: Stripe accepted those keys in this pass (or a fresh view says it did), so
	// status records KeyFingerprint; otherwise the stored fingerprint stays.
	KeyFingerprint string
	KeysAccepted   bool
	AccountID      *string // nil keeps the stored value
	// EndpointID, WebhookURL and SigningSecretName describe the endpoint; nil keeps the stored value.
	EndpointID        *string
	WebhookURL        *string
	SigningSecretName *string
	// ManualCleanup adds endpoints that need removal by hand (kept, deduplicated, at most 16).
	ManualCleanup []string
	// Replay, when set, is the outcome of a replay request that ran in this pass.
	Replay *paymentsv1alpha1.ReplayStatus
	Probed bool // a Stripe probe ran in this pass, or at ProbedAt for a view it reused
	// ProbedAt is when the probe of a reused view ran (zero: in this pass).
	ProbedAt  time.Time
	Succeeded bool // no transient error: observedGeneration may move
	// FailingSince is when the current run of transient Stripe failures began; zero when this
	// pass had none. Grace is how long such a run leaves True conditions True (0: not at all).
	FailingSince time.Time
	Grace        time.Duration
	// Informational are conditions outside Connected (PayoutsReconciled, AnomaliesChecked,
	// DeliveriesArriving) that this pass evaluated; a type it did not evaluate keeps its stored
	// condition. Cleared lists informational types to remove: their feature is off.
	Informational []condition
	Cleared       []string
	// Payouts and Anomalies, when set, replace status.finance's parts (nil keeps the stored one);
	// ClearPayouts and ClearAnomalies remove them.
	Payouts                      *paymentsv1alpha1.PayoutsStatus
	Anomalies                    *paymentsv1alpha1.AnomaliesStatus
	ClearPayouts, ClearAnomalies bool
}

// conditions returns the evaluated conditions in dependency order.
func (in statusInput) conditions() []condition {
	out := make([]condition, 0, 4)
	for _, c := range []condition{in.KeysValid, in.Authenticated, in.Webhook, in.Receiver} {
		if c.Type != "" {
			out = append(out, c)
		}
	}
	return out
}

// computeStatus is pure: given the stored status, the object's generation, what the pass observed
// and the time, it returns the new status. An unchanged observation yields an identical status, so
// a resync that finds everything as it was writes nothing.
func computeStatus(prev paymentsv1alpha1.StripeIntegrationStatus, generation int64, in statusInput,
	now time.Time) paymentsv1alpha1.StripeIntegrationStatus {
	next := *prev.DeepCopy()
	ts := metav1.NewTime(now.Truncate(time.Second))
	conds, graced := withinGrace(prev.Conditions, in, now)
	summary := summarize(conds)
	if graced && summary.Status == metav1.ConditionTrue {
		summary.Message += "; " + failingPrefix(in.FailingSince) + fmt.Sprintf(", within the %s grace (see Authenticated and WebhookEndpointReady)",
			in.Grace)
	}
	for _, c := range append(conds, summary) {
		meta.SetStatusCondition(&next.Conditions, metav1.Condition{
			Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message,
			ObservedGeneration: generation, LastTransitionTime: ts,
		})
	}
	for _, c := range in.Informational {
		meta.SetStatusCondition(&next.Conditions, metav1.Condition{
			Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message,
			ObservedGeneration: generation, LastTransitionTime: ts,
		})
	}
	for _, t := range in.Cleared {
		meta.RemoveStatusCondition(&next.Conditions, t)
	}
	setFinance(&next, in)
	if in.Mode != "" {
		next.Mode = in.Mode
	}
	setIfObserved(&next.AccountID, in.AccountID)
	if in.KeysAccepted && in.KeyFingerprint != "" {
		next.KeyFingerprint = in.KeyFingerprint
	}
	setIfObserved(&next.WebhookEndpointID, in.EndpointID)
	setIfObserved(&next.WebhookURL, in.WebhookURL)
	setIfObserved(&next.SigningSecretName, in.SigningSecretName)
	for _, m := range in.ManualCleanup {
		if !slices.Contains(next.ManualCleanup, m) && len(next.ManualCleanup) < maxManualCleanup {
			next.ManualCleanup = append(next.ManualCleanup, m)
		}
	}
	if in.Replay != nil {
		next.Replay = in.Replay.DeepCopy()
	}
	if in.Probed && probeOutcomeChanged(prev, next) {
		at := ts
		if !in.ProbedAt.IsZero() {
			at = metav1.NewTime(in.ProbedAt.Truncate(time.Second))
		}
		next.LastProbeTime = &at
	}
	if in.Succeeded {
		next.ObservedGeneration = generation
	}
	return next
}

// setFinance applies the pass's finance findings to status.finance, which exists only while
// one of its parts does.
func setFinance(next *paymentsv1alpha1.StripeIntegrationStatus, in statusInput) {
	f := next.Finance
	if f == nil {
		f = &paymentsv1alpha1.FinanceStatus{}
	}
	switch {
	case in.ClearPayouts:
		f.Payouts = nil
	case in.Payouts != nil:
		f.Payouts = in.Payouts.DeepCopy()
	}
	switch {
	case in.ClearAnomalies:
		f.Anomalies = nil
	case in.Anomalies != nil:
		f.Anomalies = in.Anomalies.DeepCopy()
	}
	if f.Payouts == nil && f.Anomalies == nil {
		next.Finance = nil
		return
	}
	next.Finance = f
}

// withinGrace keeps True the conditions a transient Stripe failure would overturn while the run of
// failures is younger than the grace: one 429, or a Stripe incident, is not every clinic's outage.
// They keep their last good reason (so no Event), and a message that says what fails and since
// when. It reports whether it kept any.
func withinGrace(prev []metav1.Condition, in statusInput, now time.Time) ([]condition, bool) {
	if in.Grace <= 0 || in.FailingSince.IsZero() || !now.Before(in.FailingSince.Add(in.Grace)) {
		return in.conditions(), false
	}
	out := in.conditions()
	graced := false
	for i, c := range out {
		p := meta.FindStatusCondition(prev, c.Type)
		if !c.Transient || p == nil || p.Status != metav1.ConditionTrue {
			continue
		}
		out[i] = trueCond(c.Type, p.Reason, gracedMessage(p.Message, c, in.FailingSince, in.Grace))
		graced = true
	}
	return out, graced
}

// gracedMessage is written once, when the failures start: later passes within the same run keep
// it whatever they see, so a resync during an incident writes nothing.
func gracedMessage(prevMessage string, failure condition, since time.Time, grace time.Duration) string {
	prefix := failingPrefix(since)
	if strings.HasPrefix(prevMessage, prefix) {
		return prevMessage
	}
	return fmt.Sprintf("%s (%s: %s); it stays True unless the failures outlast the %s grace", prefix, failure.Reason, failure.Message, grace)
}

// failingMessage starts the message of a condition kept True within the transient-failure grace.
const failingMessage = "Stripe calls failing since "

func failingPrefix(since time.Time) string {
	return failingMessage + since.UTC().Format(time.RFC3339)
}

// setIfObserved overwrites *dst when the pass observed a value; nil keeps the stored one.
func setIfObserved(dst, observed *string) {
	if observed != nil {
		*dst = *observed
	}
}

// summarize derives Connected: True only when every other condition is True; otherwise it carries
// the reason and message of the first one that is not, so `kubectl get si` shows what to fix.
func summarize(conds []condition) condition {
	for _, c := range conds {
		if c.Status != metav1.ConditionTrue {
			status := metav1.ConditionFalse
			if c.Status == metav1.ConditionUnknown && c.Reason == paymentsv1alpha1.ReasonSecretReadFailed {
				status = metav1.ConditionUnknown
			}
			return condition{Type: paymentsv1alpha1.ConditionConnected, Status: status, Reason: c.Reason,
				Message: fmt.Sprintf("%s: %s", c.Type, c.Message)}
		}
	}
	return condition{Type: paymentsv1alpha1.ConditionConnected, Status: metav1.ConditionTrue,
		Reason: paymentsv1alpha1.ReasonConnected, Message: "keys valid, Stripe accepts them, webhook endpoint and receiver ready"}
}

// probeOutcomeChanged reports whether the probe's result differs from the stored one: another
// Authenticated status or reason, or other keys. Only then does lastProbeTime move.
func probeOutcomeChanged(prev, next paymentsv1alpha1.StripeIntegrationStatus) bool {
	if prev.LastProbeTime == nil || prev.KeyFingerprint != next.KeyFingerprint {
		return true
	}
	p := meta.FindStatusCondition(prev.Conditions, paymentsv1alpha1.ConditionAuthenticated)
	n := meta.FindStatusCondition(next.Conditions, paymentsv1alpha1.ConditionAuthenticated)
	return p == nil || n == nil || p.Status != n.Status || p.Reason != n.Reason
}

// transition is one condition change worth an Event.
type transition struct {
	eventType, reason, note string
}

// maxEventNote is the longest note an events.k8s.io/v1 Event accepts.
const maxEventNote = 1024

// inProgress are False reasons that describe expected progress rather than a problem.
var inProgress = map[string]bool{
	paymentsv1alpha1.ReasonReceiverProgressing:     true,
	paymentsv1alpha1.ReasonWaitingForSigningSecret: true,
}

// conditionTransitions lists condition changes (status or reason) into True or False. Unknown is
// bookkeeping ("not checked yet") and is not announced.
func conditionTransitions(prev, next []metav1.Condition) []transition {
	out := make([]transition, 0, len(next))
	for _, n := range next {
		if n.Status == metav1.ConditionUnknown {
			continue
		}
		p := meta.FindStatusCondition(prev, n.Type)
		if p != nil && p.Status == n.Status && p.Reason == n.Reason {
			continue
		}
		et := corev1.EventTypeNormal
		if n.Status == metav1.ConditionFalse && !inProgress[n.Reason] {
			et = corev1.EventTypeWarning
		}
		out = append(out, transition{eventType: et, reason: n.Reason, note: fmt.Sprintf("%s is %s: %s", n.Type, n.Status, n.Message)})
	}
	return out
}

// statusEvent folds the condition changes of one status write into a single Event, so that an
// integration connecting for the first time costs one Event write rather than one per condition.
// It is a Warning if any condition turned False for a reason other than expected progress; its
// reason is that condition's, else the last change's (Connected comes last); its note lists every
// change. Nil when no condition changed.
func statusEvent(prev, next []metav1.Condition) *transition {
	ts := conditionTransitions(prev, next)
	if len(ts) == 0 {
		return nil
	}
	ev := transition{eventType: corev1.EventTypeNormal, reason: ts[len(ts)-1].reason}
	notes := make([]string, 0, len(ts))
	for _, t := range ts {
		notes = append(notes, t.note)
		if t.eventType == corev1.EventTypeWarning && ev.eventType != corev1.EventTypeWarning {
			ev.eventType, ev.reason = corev1.EventTypeWarning, t.reason
		}
	}
	ev.note = strings.Join(notes, "; ")
	if len(ev.note) > maxEventNote {
		ev.note = strings.ToValidUTF8(ev.note[:maxEventNote-len("…")], "") + "…"
	}
	return &ev
}
