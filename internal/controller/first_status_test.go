package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// statusHistory records, from a watch started before the integration exists, every status the
// apiserver stored for it: one entry per change of its conditions, "-" for none.
type statusHistory struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	seen   []string
}

func watchStatuses(t *testing.T, ns, name string) *statusHistory {
	t.Helper()
	watchClient := sharedWatchClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	wi, err := watchClient.Watch(ctx, &v1.StripeIntegrationList{}, client.InNamespace(ns))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h := &statusHistory{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		defer wi.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-wi.ResultChan():
				if !ok {
					return
				}
				si, isSI := ev.Object.(*v1.StripeIntegration)
				if !isSI || si.Name != name || ev.Type == watch.Deleted {
					continue
				}
				h.add(conditionsSummary(si.Status.Conditions))
			}
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *statusHistory) add(s string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.seen) == 0 || h.seen[len(h.seen)-1] != s {
		h.seen = append(h.seen, s)
	}
}

// waitFor waits until the statuses seen are exactly want (" → "-joined); a status the watch has
// not delivered yet is waited for, one too many fails.
func (h *statusHistory) waitFor(t *testing.T, want string) {
	t.Helper()
	eventually(t, waitShort, "statuses "+want, func() (bool, string) {
		got := strings.Join(h.history(), " → ")
		return got == want, got
	})
}

func (h *statusHistory) stop() {
	h.cancel()
	<-h.done
}

func (h *statusHistory) history() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

// conditionsSummary is Connected's status and reason, "-" without conditions.
func conditionsSummary(conds []metav1.Condition) string {
	if len(conds) == 0 {
		return "-"
	}
	for _, c := range conds {
		if c.Type == v1.ConditionConnected {
			return fmt.Sprintf("Connected=%s/%s", c.Status, c.Reason)
		}
	}
	return "no Connected condition"
}

// TestFirstStatusWaitsForTheReceiver: a new integration whose keys, account and endpoint check out
// and whose receiver only needs its pods gets one status write, Connected, and one Event, instead
// of ReceiverProgressing and then Connected (two writes and two Events).
func TestFirstStatusWaitsForTheReceiver(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-hold"
	firstStatusHolds.Store(uniqueClinic(name, ns), time.Minute)
	h := watchStatuses(t, ns, name)
	newClinic(t, ns, name)

	// The first pass applies the receiver objects, the NetworkPolicy after the Deployment, and
	// then, without the hold, writes ReceiverProgressing at once.
	si := getSI(t, ns, name)
	getObj(t, ns, receiverName(si), &networkingv1.NetworkPolicy{})
	time.Sleep(time.Second)
	if got := h.history(); len(got) > 1 || len(got) == 1 && got[0] != "-" {
		t.Fatalf("status before the receiver is available: %v, want none written", got)
	}

	setReceiverAvailable(t, ns, receiverName(si))
	si = waitCondition(t, ns, name, v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
	// Written from the first pass's Stripe view, it still records that pass's probe; without it
	// the next resync's probe would write status again to add it.
	if si.Status.LastProbeTime == nil || si.Status.LastProbeTime.After(si.Status.Conditions[0].LastTransitionTime.Time) {
		t.Errorf("lastProbeTime %v, want the first pass's probe (before the status write at %v)", si.Status.LastProbeTime,
			si.Status.Conditions[0].LastTransitionTime)
	}
	// The watch may deliver the status write a moment after the read above saw it.
	h.waitFor(t, "- → Connected=True/Connected")
	// The recorder writes Events in the background: wait for the status write's, then count.
	var notes []string
	eventually(t, waitShort, "the status write's Event", func() (bool, string) {
		notes = notes[:0]
		for _, e := range listEvents(t, ns) {
			if e.Regarding.Name == name {
				notes = append(notes, e.Reason+": "+e.Note)
			}
		}
		return len(notes) > 0, "none"
	})
	if len(notes) != 1 {
		t.Errorf("Events about the integration: %q, want one", notes)
	}
}

// TestFirstStatusHoldEnds: a receiver that is not available within the hold gets its
// ReceiverProgressing status when the hold runs out; it is not held for ever.
func TestFirstStatusHoldEnds(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-hold-ends"
	firstStatusHolds.Store(uniqueClinic(name, ns), 2*time.Second)
	h := watchStatuses(t, ns, name)
	newClinic(t, ns, name)
	si := waitCondition(t, ns, name, v1.ConditionReceiverReady, metav1.ConditionFalse, v1.ReasonReceiverProgressing, waitShort)
	if written := si.Status.Conditions[0].LastTransitionTime.Sub(si.CreationTimestamp.Time); written < time.Second {
		t.Errorf("status written %s after the creation, within the 2s hold", written)
	}
	h.waitFor(t, "- → Connected=False/ReceiverProgressing")
}

// TestFirstStatusHoldsOnlyForTheReceiver: anything but a receiver on its way is reported at once,
// hold or not: here keys of the wrong mode, under a hold of a minute.
func TestFirstStatusHoldsOnlyForTheReceiver(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-hold-keys"
	firstStatusHolds.Store(uniqueClinic(name, ns), time.Minute)
	newClinic(t, ns, name, withMode(v1.ModeLive), withKeysFor(v1.ModeTest))
	waitCondition(t, ns, name, v1.ConditionKeysValid, metav1.ConditionFalse, v1.ReasonModeMismatch, waitShort)
}

// TestFirstStatusHoldIsBounded: the hold counts from the receiver's creation (now, when the cache
// does not show it yet), never exceeds the configured hold whatever the clocks say, and applies
// only to a first status.
func TestFirstStatusHoldIsBounded(t *testing.T) {
	t.Parallel()
	const hold = 10 * time.Second
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	r := &StripeIntegrationReconciler{FirstStatusHold: hold}
	ok := func(ct string) condition { return trueCond(ct, "Fine", "") }
	obsAt := func(created time.Time) *observation {
		o := &observation{}
		o.KeysValid, o.Authenticated, o.Webhook = ok(v1.ConditionKeysValid), ok(v1.ConditionAuthenticated), ok(v1.ConditionWebhookEndpointReady)
		o.Receiver = falseCond(v1.ConditionReceiverReady, v1.ReasonReceiverProgressing, "")
		o.receiverCreated = created
		return o
	}
	for i, tc := range []struct {
		name    string
		created time.Time
		want    time.Duration
	}{
		{"not in the cache yet", time.Time{}, hold},
		{"created 4s ago", now.Add(-4 * time.Second), 6 * time.Second},
		{"created long ago", now.Add(-time.Hour), -time.Hour + hold},
		{"apiserver clock ahead", now.Add(time.Hour), hold},
	} {
		si := &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{UID: types.UID(fmt.Sprint("bounded-", i))}}
		if got := r.firstStatusHold(si, obsAt(tc.created), now); got != tc.want {
			t.Errorf("%s: hold %s, want %s", tc.name, got, tc.want)
		}
	}
	// A Deployment the cache never shows, or one whose creation time runs ahead of this clock,
	// holds the status once, not on every pass after the hold ran out.
	for _, created := range []time.Time{{}, now.Add(time.Hour)} {
		si := &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{UID: types.UID("again-" + created.String())}}
		for pass, at := range []time.Time{now, now.Add(4 * time.Second), now.Add(hold)} {
			want := hold - at.Sub(now)
			if got := r.firstStatusHold(si, obsAt(created), at); got != want {
				t.Errorf("Deployment created %v, pass %d at +%s: hold %s, want %s", created, pass, at.Sub(now), got, want)
			}
		}
	}
	si := &v1.StripeIntegration{}
	written := &v1.StripeIntegration{Status: v1.StripeIntegrationStatus{Conditions: []metav1.Condition{{Type: v1.ConditionConnected}}}}
	if got := r.firstStatusHold(written, obsAt(now), now); got > 0 {
		t.Errorf("an integration with a status is held %s", got)
	}
	if got := (&StripeIntegrationReconciler{}).firstStatusHold(si, obsAt(now), now); got > 0 {
		t.Errorf("no hold configured, held %s", got)
	}
}
