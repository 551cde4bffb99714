package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/anomaly"
	"github.com/clinicpay/stripe-operator/internal/keys"
	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// syntheticLog is a seeded clinic's Stripe event log over two weeks: about n ordinary events
// (payments log-normal around 120 USD, 3 % refunds, 4 % failed attempts) and, in the second
// week, 8 incidents of each rule (refund spikes, failed bursts, 20-60-fold payments, disputes),
// as Stripe renders the events the operator reads. It mirrors internal/anomaly's generator, in
// event JSON.
func syntheticLog(seed uint64, n int, start time.Time) []stripeclient.RawEvent {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var log []stripeclient.RawEvent
	add := func(typ string, amount int64, at time.Time) {
		id := fmt.Sprintf("evt_%06d", len(log)+1)
		obj := map[string]any{"id": fmt.Sprintf("obj_%06d", len(log)+1), "currency": "usd"}
		switch typ {
		case evPaymentSucceeded:
			obj["amount"], obj["amount_received"] = amount, amount
		case evChargeRefunded:
			obj["amount"], obj["amount_refunded"] = amount*2, amount
		default:
			obj["amount"] = amount
		}
		body, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "created": at.Unix(),
			"data": map[string]any{"object": obj}})
		log = append(log, stripeclient.RawEvent{ID: id, Type: typ, Created: at.Unix(), JSON: body})
	}
	typical := func() int64 { return int64(12000 * math.Exp(0.45*rng.NormFloat64())) }
	days := 14 * 24 * time.Hour
	for range n {
		at := start.Add(time.Duration(rng.Int64N(int64(days))))
		switch r := rng.Float64(); {
		case r < 0.03:
			add(evChargeRefunded, typical()/2, at)
		case r < 0.07:
			add(evPaymentFailed, typical(), at)
		default:
			add(evPaymentSucceeded, typical(), at)
		}
	}
	for i := range 8 {
		at := start.Add(7*24*time.Hour + time.Duration(i)*19*time.Hour + time.Duration(rng.Int64N(int64(time.Hour))))
		for range 8 + rng.IntN(8) {
			add(evChargeRefunded, typical(), at.Add(time.Duration(rng.Int64N(int64(40*time.Minute)))))
		}
		for range 12 + rng.IntN(10) {
			add(evPaymentFailed, typical(), at.Add(5*time.Hour+time.Duration(rng.Int64N(int64(5*time.Minute)))))
		}
		add(evPaymentSucceeded, typical()*(20+rng.Int64N(40)), at.Add(9*time.Hour))
		add(evDisputeCreated, typical(), at.Add(11*time.Hour))
	}
	slices.SortStableFunc(log, func(a, b stripeclient.RawEvent) int { return int(a.Created - b.Created) })
	return log
}

// logStripe serves a log's events as Stripe's list does for a window (ErrTooManyEvents past Max).
func logStripe(log []stripeclient.RawEvent) *fakeStripe {
	return &fakeStripe{ListEventsFn: func(_ context.Context, w stripeclient.EventWindow) ([]stripeclient.RawEvent, error) {
		i := sort.Search(len(log), func(i int) bool { return log[i].Created >= w.From.Unix() })
		j := sort.Search(len(log), func(i int) bool { return log[i].Created >= w.To.Unix() })
		if w.Max > 0 && j-i > w.Max {
			return nil, stripeclient.ErrTooManyEvents
		}
		return slices.Clone(log[i:j]), nil
	}}
}

// TestAnomalyOperatorPathMatchesRules runs seeded synthetic logs of 10,000 events through the
// operator's path (events as Stripe's list renders them, observeEvent, checks every 5 minutes
// over the settled part of the log, flags through sendLedger to a receiver that writes them)
// and through the rules directly: the operator raises exactly the rules' flags. With an operator
// restart in the middle of the incidents (the detector rebuilt from the baseline before a stored
// cursor that lags the checked one by 20 minutes), no flag is written twice under another rule
// and every incident the rules flag is still flagged.
func TestAnomalyOperatorPathMatchesRules(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	si := &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "clinic", UID: "uid-stream"},
		Spec: v1.StripeIntegrationSpec{ClinicID: "clinic-stream"}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: signingSecretName(si.Name),
		OwnerReferences: []metav1.OwnerReference{ownerRef(si)}}, Data: map[string][]byte{v1.SigningSecretKey: []byte("whsec_stream")}}
	var mu sync.Mutex
	written := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m ledger.Message
		_ = json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		written[m.ID]++
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(ledger.Result{Status: ledger.StatusWritten})
	}))
	defer srv.Close()
	cl := crfake.NewClientBuilder().WithObjects(secret).Build()
	r := &StripeIntegrationReconciler{SecretReader: cl, Client: cl, ReceiverURL: func(*v1.StripeIntegration) string { return srv.URL }}
	th := anomaly.NewDetector(anomaly.Thresholds{}).Thresholds()

	for seed := range uint64(3) {
		log := syntheticLog(seed+1, 10_000, start)
		want := map[string]bool{}
		d := anomaly.NewDetector(th)
		for _, ev := range log {
			o, _, _ := observeEvent(ev)
			for _, f := range d.Observe(o) {
				want[ledger.FlagID(string(f.Kind), f.EventID)] = true
			}
		}
		run := func(restartAt time.Time) map[string]int {
			mu.Lock()
			clear(written)
			mu.Unlock()
			s := si.DeepCopy()
			st := &anomalyState{th: th}
			sc := logStripe(log)
			// Enabled before the first event: nothing to seed, every event is checked.
			for now := start; now.Before(start.Add(15 * 24 * time.Hour)); now = now.Add(5 * time.Minute) {
				if !restartAt.IsZero() && !now.Before(restartAt) && st.det != nil && st.warm() && now.Sub(restartAt) < 5*time.Minute {
					lag := metav1.NewTime(st.checked().Add(-20 * time.Minute))
					s.Status.Finance = &v1.FinanceStatus{Anomalies: &v1.AnomaliesStatus{CheckedUntil: &lag}}
					st = &anomalyState{th: th}
				}
				res := r.checkAnomalies(context.Background(), s, sc, st, false, now)
				if res.listErr != nil || res.writeErr != nil {
					t.Fatalf("check at %s: %v %v", now, res.listErr, res.writeErr)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			return maps.Clone(written)
		}
		got := run(time.Time{})
		for id := range want {
			if got[id] != 1 {
				t.Errorf("seed %d: the rules raised %s, the operator wrote it %d times", seed+1, id, got[id])
			}
		}
		for id := range got {
			if !want[id] {
				t.Errorf("seed %d: the operator wrote %s, which the rules did not raise", seed+1, id)
			}
		}
		restarted := run(start.Add(8*24*time.Hour + 3*time.Hour))
		missing := 0
		for id := range want {
			if restarted[id] == 0 {
				missing++
			}
		}
		extra, again := 0, 0
		for id, n := range restarted {
			if !want[id] {
				extra++
			}
			if n > 1 {
				again++
			}
			if n > 1 && !want[id] {
				t.Errorf("seed %d: %s written %d times across the restart", seed+1, id, n)
			}
		}
		t.Logf("seed %d: %d flags from the rules, all written by the operator; across a restart: %d missing, %d others, %d written again",
			seed+1, len(want), missing, extra, again)
		if missing > 0 || extra > 1 {
			t.Errorf("seed %d: across a restart %d of the rules' flags were not written and %d others were", seed+1, missing, extra)
		}
	}
}

// TestAnomalyCheckOnReusedView: a pass that reused a recent Stripe view has no client; the check
// builds one for the key the pass accepted, sharing its account's rate limiters, and runs once
// per interval, not on every pass, while the feature off asks Stripe nothing and clears status.
func TestAnomalyCheckOnReusedView(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sc := logStripe(nil)
	clients := &fakeStripeClients{client: sc}
	r := &StripeIntegrationReconciler{Stripe: clients, Clock: clocktesting.NewFakePassiveClock(now), AnomalyCheckInterval: time.Minute}
	si := &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "clinic", UID: "uid-view"},
		Spec:   v1.StripeIntegrationSpec{ClinicID: "c", Finance: &v1.FinanceSpec{Anomalies: &v1.AnomaliesSpec{Enabled: true}}},
		Status: v1.StripeIntegrationStatus{KeyFingerprint: "fp", AccountID: "acct_1"}}
	pass := func() observation {
		obs := observation{reusedView: true}
		obs.KeyFingerprint, obs.Mode = "fp", v1.ModeTest
		obs.stripeFor = r.viewClient(si, keys.Key{Kind: keys.KindSecret, Mode: v1.ModeTest, Value: "sk_test_x"}, obs.KeyFingerprint)
		for _, c := range []*condition{&obs.KeysValid, &obs.Authenticated, &obs.Webhook, &obs.Receiver} {
			*c = trueCond("T", "R", "")
		}
		r.reconcileAnomalies(context.Background(), si, &obs)
		return obs
	}
	obs := pass()
	if got := clients.Requests(); len(got) != 1 || got[0] != (fakeStripeClientRequest{SecretKey: "sk_test_x", Mode: v1.ModeTest, LimiterKey: "acct_1"}) {
		t.Fatalf("clients asked for %+v, want the accepted key with the account's limiter", got)
	}
	if len(obs.Informational) != 1 || obs.Informational[0].Reason != v1.ReasonAnomaliesChecked || obs.Anomalies == nil ||
		obs.Anomalies.CheckedUntil == nil || obs.financeDue.Sub(now) < 50*time.Second {
		t.Fatalf("first check: %+v, anomalies %+v, due %s", obs.Informational, obs.Anomalies, obs.financeDue)
	}
	calls := len(sc.Calls())
	if obs := pass(); len(sc.Calls()) != calls || obs.financeDue.IsZero() || len(obs.Informational) != 0 {
		t.Errorf("a pass before the check is due asked Stripe (%d calls) or changed status: %+v", len(sc.Calls())-calls, obs.Informational)
	}
	si.Spec.Finance.Anomalies.Enabled = false
	si.Status.Finance = &v1.FinanceStatus{Anomalies: obs.Anomalies}
	if obs := pass(); !obs.ClearAnomalies || !slices.Contains(obs.Cleared, v1.ConditionAnomaliesChecked) || len(sc.Calls()) != calls {
		t.Errorf("feature off: %+v", obs.statusInput)
	}
	if _, ok := r.anomalies.get(si.UID); ok {
		t.Error("the detector is kept with the feature off")
	}
}

// TestAnomalyTransientFailuresDoNotFlap: a 429 on the event list leaves AnomaliesChecked as it
// was within the transient-failure grace and retries within 30 s; past the grace it reports
// RateLimited; the next good check reports True again.
func TestAnomalyTransientFailuresDoNotFlap(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakePassiveClock(now)
	var fail atomic.Bool
	sc := &fakeStripe{ListEventsFn: func(context.Context, stripeclient.EventWindow) ([]stripeclient.RawEvent, error) {
		if fail.Load() {
			return nil, &stripeclient.Error{Kind: stripeclient.KindRateLimited, HTTPStatus: 429, Message: "Too many requests"}
		}
		return nil, nil
	}}
	r := &StripeIntegrationReconciler{Stripe: &fakeStripeClients{client: sc}, Clock: clk, AnomalyCheckInterval: 5 * time.Minute,
		TransientFailureGrace: 2 * time.Minute}
	si := &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "clinic", UID: "uid-transient"},
		Spec: v1.StripeIntegrationSpec{ClinicID: "c", Finance: &v1.FinanceSpec{Anomalies: &v1.AnomaliesSpec{Enabled: true}}}}
	pass := func() observation {
		obs := observation{reusedView: true}
		obs.stripeFor = r.viewClient(si, keys.Key{Kind: keys.KindSecret, Mode: v1.ModeTest, Value: "sk_test_x"}, "")
		for _, c := range []*condition{&obs.KeysValid, &obs.Authenticated, &obs.Webhook, &obs.Receiver} {
			*c = trueCond("T", "R", "")
		}
		r.reconcileAnomalies(context.Background(), si, &obs)
		// What computeStatus stores.
		si.Status = computeStatus(si.Status, si.Generation, obs.statusInput, clk.Now())
		return obs
	}
	cond := func() metav1.Condition { return conditionOrNone(si, v1.ConditionAnomaliesChecked) }
	pass()
	if c := cond(); c.Status != metav1.ConditionTrue {
		t.Fatalf("first check: %+v", c)
	}
	fail.Store(true)
	clk.SetTime(now.Add(6 * time.Minute))
	obs := pass()
	if c := cond(); c.Status != metav1.ConditionTrue || len(obs.Informational) != 0 {
		t.Errorf("a 429 within the grace changed AnomaliesChecked: %+v", c)
	}
	if d := obs.financeDue.Sub(clk.Now()); d > 30*time.Second || d <= 0 {
		t.Errorf("retry in %s, want within 30 s", d)
	}
	clk.SetTime(now.Add(9 * time.Minute))
	pass()
	if c := cond(); c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonRateLimited {
		t.Errorf("past the grace: %+v, want False/RateLimited", c)
	}
	fail.Store(false)
	clk.SetTime(now.Add(10 * time.Minute))
	pass()
	if c := cond(); c.Status != metav1.ConditionTrue || c.Reason != v1.ReasonAnomaliesChecked {
		t.Errorf("after Stripe recovered: %+v", c)
	}
}
