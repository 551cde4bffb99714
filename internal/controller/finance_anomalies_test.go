package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/anomaly"
	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// testAnomalyInterval is the suite manager's AnomalyCheckInterval: short, so a test sees a
// check within seconds; the checks still list only what settled (anomalySettleDelay).
const testAnomalyInterval = time.Second

// waitAnomaly bounds the waits for a check's outcome: the settle delay, a few intervals and a
// loaded machine's reconcile latency; it is about meaning (the check ran), not speed.
const waitAnomaly = 60 * time.Second

// flagSink stands in for the clinic's receiver on its ledger path: it verifies the
// Clinicpay-Ledger-Signature with the clinic's signing secret, decodes each message and answers
// written, or refuses while refuse is set.
type flagSink struct {
	t       *testing.T
	secret  []byte
	refuse  atomic.Bool
	mu      sync.Mutex
	written []ledger.Message
	refused int
	badSig  int
}

func (s *flagSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := sigheader.Ledger.Verify(r.Header.Get(sigheader.LedgerHeader), body, 0, time.Now(), s.secret); err != nil {
		s.badSig++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var msg ledger.Message
	if err := json.Unmarshal(body, &msg); err != nil || msg.Check() != nil {
		http.Error(w, "bad message", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if s.refuse.Load() {
		s.refused++
		w.WriteHeader(http.StatusBadGateway)
		_ = json.NewEncoder(w).Encode(ledger.Result{Status: "failed", Message: "the FHIR server answered 503"})
		return
	}
	s.written = append(s.written, msg)
	_ = json.NewEncoder(w).Encode(ledger.Result{Status: ledger.StatusWritten})
}

// flags returns the flags written so far.
func (s *flagSink) flags() []ledger.Flag {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ledger.Flag
	for _, m := range s.written {
		if m.Flag != nil {
			out = append(out, *m.Flag)
		}
	}
	return out
}

func (s *flagSink) counts() (refused, badSig int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused, s.badSig
}

// anomalyClinic is a connected integration whose ledger messages go to a test sink.
type anomalyClinic struct {
	ns, name, acct string
	keys           testKeys
	uid            types.UID
	sink           *flagSink
}

// connectAnomalyClinic connects a clinic (with the key options given to the fake), points its
// ledger at a sink and returns it; anomaly flags are not on yet, so history can be seeded first.
func connectAnomalyClinic(t *testing.T, name string, keyOpts stripefake.KeyOptions) *anomalyClinic {
	t.Helper()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	if keyOpts.Permissions != nil {
		k.secret = "rk_test_" + randomKeyBody(t, 32)
	}
	fake.AddKey(k.secret, keyOpts)
	mustCreate(t, credentialsSecret(ns, name+"-keys", k), integration(ns, name, uniqueClinic(name, ns), v1.ModeTest, name+"-keys"))
	si := waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	markAvailable(t, ns, receiverName(si))
	si = waitCondition(t, ns, name, v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
	secret := strings.Fields(string(signingSecret(t, si).Data[v1.SigningSecretKey]))[0]
	sink := &flagSink{t: t, secret: []byte(secret)}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	replayTargets.Store(si.Spec.ClinicID, srv.URL+"/stripe/webhook/"+si.Spec.ClinicID)
	return &anomalyClinic{ns: ns, name: name, acct: fake.AccountForKey(k.secret), keys: k, uid: si.UID, sink: sink}
}

// enable turns anomaly flags on with spec (Enabled is set).
func (c *anomalyClinic) enable(t *testing.T, spec v1.AnomaliesSpec) {
	t.Helper()
	spec.Enabled = true
	c.patch(t, func(si *v1.StripeIntegration) { si.Spec.Finance = &v1.FinanceSpec{Anomalies: &spec} })
}

func (c *anomalyClinic) patch(t *testing.T, edit func(*v1.StripeIntegration)) {
	t.Helper()
	si := getSI(t, c.ns, c.name)
	orig := si.DeepCopy()
	edit(si)
	must(t, k8sClient.Patch(context.Background(), si, client.MergeFrom(orig)))
}

// past records an event created at `at` in the clinic's log (history, not delivered).
func (c *anomalyClinic) past(t *testing.T, typ string, at time.Time, object map[string]any) string {
	t.Helper()
	id, err := fake.RecordPastEvent(c.acct, false, typ, "", at, object)
	must(t, err)
	return id
}

// now triggers an event created now.
func (c *anomalyClinic) now(t *testing.T, typ string, object map[string]any) string {
	t.Helper()
	id, err := fake.TriggerEvent(c.acct, false, typ, object)
	must(t, err)
	return id
}

// waitChecked waits until the operator's detector has been fed every event created before
// `until` (the in-memory cursor, which status records lazily).
func (c *anomalyClinic) waitChecked(t *testing.T, until time.Time) {
	t.Helper()
	eventually(t, waitAnomaly, "the anomaly check to pass "+until.UTC().Format(time.RFC3339), func() (bool, string) {
		st, ok := testReconciler.anomalies.get(c.uid)
		if !ok {
			return false, "no detector"
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.warm() && !st.listed.IsZero() && st.listed.After(until), fmt.Sprintf("listed up to %s, %d pending", st.listed, len(st.pending))
	})
}

// waitFlag waits for a written flag and returns the flags written.
func (c *anomalyClinic) waitFlag(t *testing.T) []ledger.Flag {
	t.Helper()
	var got []ledger.Flag
	eventually(t, waitAnomaly, "a flag written", func() (bool, string) {
		got = c.sink.flags()
		return len(got) > 0, "none yet"
	})
	return got
}

func (c *anomalyClinic) flagMetric(rule anomaly.Kind) float64 {
	m, err := testMetrics.AnomalyFlags.GetMetricWithLabelValues(c.ns, c.name, string(rule))
	if err != nil {
		return -1
	}
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		return -1
	}
	return out.GetCounter().GetValue()
}

func chargeRefunded(amount, refunded int64) map[string]any {
	id := anomalyTestID()
	return map[string]any{"id": "ch_" + id, "object": "charge", "amount": amount, "amount_refunded": refunded, "currency": "usd",
		"payment_intent": "pi_" + id, "refunded": refunded == amount}
}

func piSucceeded(amount int64) map[string]any {
	return map[string]any{"id": "pi_" + anomalyTestID(), "object": "payment_intent", "amount": amount, "amount_received": amount, "currency": "usd",
		"status": "succeeded"}
}

func disputeObject(amount int64) map[string]any {
	id := anomalyTestID()
	return map[string]any{"id": "dp_" + id, "object": "dispute", "amount": amount, "currency": "usd", "charge": "ch_" + id,
		"payment_intent": "pi_" + id, "status": "needs_response", "reason": "fraudulent"}
}

var idSeq atomic.Int64

func anomalyTestID() string { return fmt.Sprintf("T%013d", idSeq.Add(1)) }

// seedRoutineHistory records two days of a small clinic's trade: a payment every hour and a
// partial refund every six hours.
func (c *anomalyClinic) seedRoutineHistory(t *testing.T) {
	t.Helper()
	now := time.Now()
	for h := 48; h >= 1; h-- {
		at := now.Add(-time.Duration(h) * time.Hour)
		c.past(t, "payment_intent.succeeded", at, piSucceeded(12000+int64(h%5)*500))
		if h%6 == 0 {
			c.past(t, "charge.refunded", at.Add(10*time.Minute), chargeRefunded(12000, 3000))
		}
	}
}

// TestAnomalyDisputeFlag: a dispute reaches the receiver as one Dispute flag with the raw event,
// signed with the clinic's signing secret; status and the metric name it; a dispute of the
// history before anomaly flags were enabled is not flagged.
func TestAnomalyDisputeFlag(t *testing.T) {
	t.Parallel()
	c := connectAnomalyClinic(t, "clinic-an-dispute", stripefake.KeyOptions{})
	c.past(t, "charge.dispute.created", time.Now().Add(-3*time.Hour), disputeObject(4000))
	c.enable(t, v1.AnomaliesSpec{})
	waitCondition(t, c.ns, c.name, v1.ConditionAnomaliesChecked, metav1.ConditionTrue, v1.ReasonAnomaliesChecked, waitAnomaly)

	obj := disputeObject(7000)
	id := c.now(t, "charge.dispute.created", obj)
	c.waitFlag(t)
	c.waitChecked(t, time.Now().Add(time.Second))
	got := c.sink.flags()
	if len(got) != 1 {
		t.Fatalf("flags = %+v, want exactly one", got)
	}
	f := got[0]
	if f.Rule != string(anomaly.KindDispute) || f.EventID != id || f.ID != ledger.FlagID("Dispute", id) || f.EventType != "charge.dispute.created" ||
		f.DisputeID != obj["id"] || f.ChargeID != obj["charge"] || f.Amount != 7000 || f.Currency != "usd" {
		t.Errorf("flag = %+v", f)
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Data struct {
			Object struct {
				ID string `json:"id"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(f.Event, &ev); err != nil || ev.ID != id || ev.Type != "charge.dispute.created" || ev.Data.Object.ID != obj["id"] {
		t.Errorf("the flag's event is not the Stripe event: %s (%v)", f.Event, err)
	}
	if _, bad := c.sink.counts(); bad != 0 {
		t.Errorf("%d messages with a bad signature", bad)
	}
	si := eventuallyAnomalies(t, c, func(a *v1.AnomaliesStatus) bool { return a.Flags == 1 && a.LastFlag != nil })
	a := si.Status.Finance.Anomalies
	if a.LastFlag.Rule != "Dispute" || a.LastFlag.EventID != id || !strings.Contains(a.LastFlag.Reason, "7000 usd") ||
		a.CheckedUntil == nil || a.CheckedUntil.Unix() <= f.Created {
		t.Errorf("status.finance.anomalies = %+v (lastFlag %+v)", a, a.LastFlag)
	}
	if v := c.flagMetric(anomaly.KindDispute); v != 1 {
		t.Errorf("stripe_operator_anomaly_flags_total{rule=Dispute} = %v, want 1", v)
	}
}

// eventuallyAnomalies waits for status.finance.anomalies to satisfy ok.
func eventuallyAnomalies(t *testing.T, c *anomalyClinic, ok func(*v1.AnomaliesStatus) bool) *v1.StripeIntegration {
	t.Helper()
	var si *v1.StripeIntegration
	eventually(t, waitAnomaly, "status.finance.anomalies", func() (bool, string) {
		si = getSI(t, c.ns, c.name)
		a := storedAnomalies(si)
		return a != nil && ok(a), fmt.Sprintf("%+v", a)
	})
	return si
}

// TestAnomalyRefundSpike: after a seeded baseline of a refund every six hours, ten refunds within
// a minute raise one RefundSpike flag, not one per refund.
func TestAnomalyRefundSpike(t *testing.T) {
	t.Parallel()
	c := connectAnomalyClinic(t, "clinic-an-spike", stripefake.KeyOptions{})
	c.seedRoutineHistory(t)
	c.enable(t, v1.AnomaliesSpec{})
	waitCondition(t, c.ns, c.name, v1.ConditionAnomaliesChecked, metav1.ConditionTrue, v1.ReasonAnomaliesChecked, waitAnomaly)
	for range 10 {
		c.now(t, "charge.refunded", chargeRefunded(12000, 12000))
	}
	c.waitChecked(t, time.Now().Add(time.Second))
	got := c.sink.flags()
	if len(got) != 1 || got[0].Rule != string(anomaly.KindRefundSpike) {
		t.Fatalf("flags = %+v, want one RefundSpike", got)
	}
	if !strings.Contains(got[0].Reason, "at least 7 refunds") || got[0].ChargeID == "" || got[0].Amount != 12000 {
		t.Errorf("flag = %+v", got[0])
	}
	if v := c.flagMetric(anomaly.KindRefundSpike); v != 1 {
		t.Errorf("stripe_operator_anomaly_flags_total{rule=RefundSpike} = %v, want 1", v)
	}
}

// TestAnomalyCleanStream: a clinic's ordinary trade after its baseline raises no flag.
func TestAnomalyCleanStream(t *testing.T) {
	t.Parallel()
	c := connectAnomalyClinic(t, "clinic-an-clean", stripefake.KeyOptions{})
	c.seedRoutineHistory(t)
	c.enable(t, v1.AnomaliesSpec{})
	waitCondition(t, c.ns, c.name, v1.ConditionAnomaliesChecked, metav1.ConditionTrue, v1.ReasonAnomaliesChecked, waitAnomaly)
	for i := range 6 {
		c.now(t, "payment_intent.succeeded", piSucceeded(11000+int64(i)*700))
	}
	c.now(t, "charge.refunded", chargeRefunded(12000, 4000))
	c.now(t, "payment_intent.payment_failed", map[string]any{"id": "pi_" + anomalyTestID(), "object": "payment_intent", "amount": 9000,
		"currency": "usd", "status": "requires_payment_method"})
	c.waitChecked(t, time.Now().Add(time.Second))
	if got := c.sink.flags(); len(got) != 0 {
		t.Fatalf("a clean stream raised flags: %+v", got)
	}
	si := getSI(t, c.ns, c.name)
	if a := storedAnomalies(si); a == nil || a.Flags != 0 || a.LastFlag != nil || a.CheckedUntil == nil {
		t.Errorf("status.finance.anomalies = %+v", a)
	}
	if v := c.flagMetric(anomaly.KindRefundSpike); v != 0 {
		t.Errorf("a clean stream counted %v flags", v)
	}
}

// TestAnomalyRestartKeepsBaseline: the detector lives in memory; a restart (here: the
// reconciler's memory of the integration dropped, status kept, which is all a new process has)
// re-flags nothing before the stored cursor and rebuilds the baseline from Stripe's log, so a
// spike right after the restart is judged against the clinic's history (an empty baseline
// flags nothing in its first hour).
func TestAnomalyRestartKeepsBaseline(t *testing.T) {
	t.Parallel()
	c := connectAnomalyClinic(t, "clinic-an-restart", stripefake.KeyOptions{})
	c.seedRoutineHistory(t)
	c.enable(t, v1.AnomaliesSpec{})
	waitCondition(t, c.ns, c.name, v1.ConditionAnomaliesChecked, metav1.ConditionTrue, v1.ReasonAnomaliesChecked, waitAnomaly)
	disputeID := c.now(t, "charge.dispute.created", disputeObject(5000))
	c.waitFlag(t)
	c.now(t, "payment_intent.succeeded", piSucceeded(12000))
	c.waitChecked(t, time.Now().Add(time.Second))

	testReconciler.anomalies.forget(c.uid) // the restart
	eventually(t, waitAnomaly, "a new detector, warmed from Stripe's log", func() (bool, string) {
		st, ok := testReconciler.anomalies.get(c.uid)
		if !ok {
			return false, "no detector yet"
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.det != nil && st.warm(), "warming"
	})
	for range 9 {
		c.now(t, "charge.refunded", chargeRefunded(12000, 12000))
	}
	c.waitChecked(t, time.Now().Add(time.Second))
	got := c.sink.flags()
	if len(got) != 2 || got[0].EventID != disputeID || got[1].Rule != string(anomaly.KindRefundSpike) {
		t.Fatalf("flags = %+v, want the dispute once, then one RefundSpike after the restart", got)
	}
	// The pass writes status after its check and its flags: the detector's state (waitChecked)
	// and the sink are ahead of it for a moment.
	eventually(t, waitShort, "status.finance.anomalies with 2 flags", func() (bool, string) {
		a := storedAnomalies(getSI(t, c.ns, c.name))
		return a != nil && a.Flags == 2, fmt.Sprintf("%+v", a)
	})
}

// TestAnomalyEventPermissionMissing: a restricted key that may not read events reports
// EventPermissionMissing naming rak_event_read; the integration stays Connected.
func TestAnomalyEventPermissionMissing(t *testing.T) {
	t.Parallel()
	c := connectAnomalyClinic(t, "clinic-an-perm", stripefake.KeyOptions{Permissions: []string{stripefake.PermWebhookRead,
		stripefake.PermWebhookWrite}})
	c.enable(t, v1.AnomaliesSpec{})
	si := waitCondition(t, c.ns, c.name, v1.ConditionAnomaliesChecked, metav1.ConditionFalse, v1.ReasonEventPermissionMissing, waitAnomaly)
	if cond := getCondition(t, si, v1.ConditionAnomaliesChecked); !strings.Contains(cond.Message, "rak_event_read") {
		t.Errorf("message %q does not name rak_event_read", cond.Message)
	}
	if cond := getCondition(t, si, v1.ConditionConnected); cond.Status != metav1.ConditionTrue {
		t.Errorf("Connected = %s/%s: an informational condition turned it", cond.Status, cond.Reason)
	}
}

// TestAnomalyFlagWriteRetried: a flag the receiver refuses is reported (FlagWriteFailed), keeps
// the cursor before its event, and is written once the receiver takes it again.
func TestAnomalyFlagWriteRetried(t *testing.T) {
	t.Parallel()
	c := connectAnomalyClinic(t, "clinic-an-refuse", stripefake.KeyOptions{})
	c.enable(t, v1.AnomaliesSpec{})
	waitCondition(t, c.ns, c.name, v1.ConditionAnomaliesChecked, metav1.ConditionTrue, v1.ReasonAnomaliesChecked, waitAnomaly)
	c.sink.refuse.Store(true)
	id := c.now(t, "charge.dispute.created", disputeObject(3000))
	created := time.Now().Add(-time.Second)
	si := waitCondition(t, c.ns, c.name, v1.ConditionAnomaliesChecked, metav1.ConditionFalse, v1.ReasonFlagWriteFailed, waitAnomaly)
	if msg := getCondition(t, si, v1.ConditionAnomaliesChecked).Message; !strings.Contains(msg, "Dispute/"+id) {
		t.Errorf("message %q does not name the flag", msg)
	}
	if a := storedAnomalies(si); a == nil || a.CheckedUntil == nil || a.CheckedUntil.After(created.Add(2*time.Second)) {
		t.Errorf("the cursor moved past a flag the receiver refused: %+v", a)
	}
	// Retried at each check, and nothing newer is listed meanwhile.
	eventually(t, waitAnomaly, "a retry", func() (bool, string) {
		n, _ := c.sink.counts()
		return n >= 2, fmt.Sprintf("%d refused", n)
	})
	c.sink.refuse.Store(false)
	waitCondition(t, c.ns, c.name, v1.ConditionAnomaliesChecked, metav1.ConditionTrue, v1.ReasonAnomaliesChecked, waitAnomaly)
	got := c.waitFlag(t)
	if len(got) != 1 || got[0].EventID != id {
		t.Fatalf("flags = %+v, want the dispute once", got)
	}
	eventuallyAnomalies(t, c, func(a *v1.AnomaliesStatus) bool {
		return a.CheckedUntil != nil && a.CheckedUntil.Unix() > got[0].Created
	})
	if v := c.flagMetric(anomaly.KindDispute); v != 1 {
		t.Errorf("stripe_operator_anomaly_flags_total{rule=Dispute} = %v after retries, want 1 (a flag counts once)", v)
	}
}

// TestAnomalyThresholdsPerIntegration: three refunds in a short while pass the default minimum
// of seven. Thresholds set on the integration (refundMinCount 3, a 20 s window) rebuild its
// detector, whose baseline replay judges the refunds already checked silently (history is not
// flagged: that incident counts as spoken for); three more refunds once its window has passed
// raise a RefundSpike under the new minimum. Turning the feature off removes its condition,
// status and metric series.
func TestAnomalyThresholdsPerIntegration(t *testing.T) {
	t.Parallel()
	c := connectAnomalyClinic(t, "clinic-an-thresholds", stripefake.KeyOptions{})
	c.past(t, "payment_intent.succeeded", time.Now().Add(-5*time.Hour), piSucceeded(12000))
	c.enable(t, v1.AnomaliesSpec{})
	waitCondition(t, c.ns, c.name, v1.ConditionAnomaliesChecked, metav1.ConditionTrue, v1.ReasonAnomaliesChecked, waitAnomaly)
	for range 3 {
		c.now(t, "charge.refunded", chargeRefunded(5000, 5000))
	}
	firstThree := time.Now()
	c.waitChecked(t, firstThree.Add(time.Second))
	if got := c.sink.flags(); len(got) != 0 {
		t.Fatalf("three refunds flagged with the default thresholds: %+v", got)
	}

	const window = 20 * time.Second
	c.enable(t, v1.AnomaliesSpec{RefundMinCount: ptr.To[int32](3), RefundFactorPercent: ptr.To[int32](200),
		RefundWindow: &metav1.Duration{Duration: window}})
	eventually(t, waitAnomaly, "a detector with refundMinCount 3", func() (bool, string) {
		st, ok := testReconciler.anomalies.get(c.uid)
		if !ok {
			return false, "none"
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.th.RefundMinCount == 3 && st.th.RefundFactor == 2 && st.th.Window == window && st.warm(), fmt.Sprintf("%+v", st.th)
	})
	if got := c.sink.flags(); len(got) != 0 {
		t.Fatalf("rebuilding the detector flagged history: %+v", got)
	}
	time.Sleep(time.Until(firstThree.Add(window + 2*time.Second)))
	for range 3 {
		c.now(t, "charge.refunded", chargeRefunded(5000, 5000))
	}
	c.waitFlag(t)
	c.waitChecked(t, time.Now().Add(time.Second))
	if got := c.sink.flags(); len(got) != 1 || got[0].Rule != string(anomaly.KindRefundSpike) || !strings.Contains(got[0].Reason, "at least 3 refunds") {
		t.Fatalf("flags = %+v, want one RefundSpike under refundMinCount 3", got)
	}

	c.patch(t, func(si *v1.StripeIntegration) { si.Spec.Finance.Anomalies.Enabled = false })
	eventually(t, waitAnomaly, "the feature's status removed", func() (bool, string) {
		si := getSI(t, c.ns, c.name)
		cond := conditionOrNone(si, v1.ConditionAnomaliesChecked)
		return cond.Status == "" && si.Status.Finance == nil, fmt.Sprintf("condition %s, finance %+v", cond.Status, si.Status.Finance)
	})
	if _, ok := testReconciler.anomalies.get(c.uid); ok {
		t.Error("the detector is kept with the feature off")
	}
	if n := flagSeries(c); n != 0 {
		t.Errorf("%d flag series left for the integration", n)
	}
}

// flagSeries counts the integration's flag series.
func flagSeries(c *anomalyClinic) int {
	ch := make(chan prometheus.Metric, 4096)
	testMetrics.AnomalyFlags.Collect(ch)
	close(ch)
	n := 0
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range d.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["namespace"] == c.ns && labels["name"] == c.name {
			n++
		}
	}
	return n
}

// TestObserveEvent maps Stripe's events to observations: a refund counts what its event
// refunded (previous_attributes), an expanded id reads as an id, other types are ignored.
func TestObserveEvent(t *testing.T) {
	ev := func(typ, obj string, extra string) stripeclient.RawEvent {
		return stripeclient.RawEvent{ID: "evt_1", Type: typ, Created: 1_800_000_000,
			JSON: []byte(`{"id":"evt_1","type":"` + typ + `","created":1800000000,"data":{"object":` + obj + extra + `}}`)}
	}
	cases := []struct {
		name string
		ev   stripeclient.RawEvent
		typ  anomaly.ObservationType
		amt  int64
		ids  [3]string // payment intent, charge, dispute
	}{
		{"payment", ev("payment_intent.succeeded", `{"id":"pi_1","amount":900,"amount_received":800,"currency":"eur","latest_charge":"ch_1"}`, ""),
			anomaly.Payment, 800, [3]string{"pi_1", "ch_1", ""}},
		{"failed", ev("payment_intent.payment_failed", `{"id":"pi_2","amount":900,"amount_received":0,"currency":"eur"}`, ""),
			anomaly.FailedPayment, 900, [3]string{"pi_2", "", ""}},
		{"second partial refund", ev("charge.refunded", `{"id":"ch_3","amount":10000,"amount_refunded":7000,"currency":"usd","payment_intent":"pi_3"}`,
			`,"previous_attributes":{"amount_refunded":4000,"refunded":false}`), anomaly.Refund, 3000, [3]string{"pi_3", "ch_3", ""}},
		{"refund without previous attributes", ev("charge.refunded", `{"id":"ch_4","amount":10000,"amount_refunded":2500,"currency":"usd"}`, ""),
			anomaly.Refund, 2500, [3]string{"", "ch_4", ""}},
		{"dispute, expanded charge", ev("charge.dispute.created",
			`{"id":"dp_5","amount":600,"currency":"usd","charge":{"id":"ch_5"},"payment_intent":"pi_5"}`, ""),
			anomaly.Dispute, 600, [3]string{"pi_5", "ch_5", "dp_5"}},
	}
	for _, tc := range cases {
		o, f, ok := observeEvent(tc.ev)
		if !ok || o.Type != tc.typ || o.Amount != tc.amt || o.EventID != "evt_1" || !o.At.Equal(time.Unix(1_800_000_000, 0)) ||
			[3]string{f.PaymentIntentID, f.ChargeID, f.DisputeID} != tc.ids || f.Amount != tc.amt {
			t.Errorf("%s: observation %+v, flag %+v, ok %t", tc.name, o, f, ok)
		}
	}
	if _, _, ok := observeEvent(ev("customer.created", `{"id":"cus_1"}`, "")); ok {
		t.Error("customer.created was observed")
	}
}

// TestAnomalyThresholdsFromSpec: percent and tenths convert, unset fields take the defaults.
func TestAnomalyThresholdsFromSpec(t *testing.T) {
	th := anomaly.NewDetector(anomalyThresholds(&v1.AnomaliesSpec{Enabled: true, RefundFactorPercent: ptr.To[int32](250),
		OutlierDeviationsTenths: ptr.To[int32](35), FailedBurstCount: ptr.To[int32](4), FailedBurstWindow: &metav1.Duration{Duration: time.Minute},
		RefundBaseline: &metav1.Duration{Duration: 48 * time.Hour}})).Thresholds()
	want := anomaly.DefaultThresholds
	want.RefundFactor, want.OutlierMADs, want.FailedBurstCount, want.FailedBurstWindow, want.Baseline = 2.5, 3.5, 4, time.Minute, 48*time.Hour
	if th != want {
		t.Errorf("thresholds = %+v, want %+v", th, want)
	}
	if h := baselineHorizon(th); h != 49*time.Hour {
		t.Errorf("baseline horizon = %s, want the baseline and the window", h)
	}
	if th := anomaly.NewDetector(anomalyThresholds(&v1.AnomaliesSpec{Enabled: true})).Thresholds(); th != anomaly.DefaultThresholds {
		t.Errorf("unset thresholds = %+v, want the defaults", th)
	}
}

// TestAnomalyEventsListedTwiceCountOnce: Stripe's events are at least once, and a check after a
// restart lists again what the stored cursor had not passed: an event listed twice counts once,
// in the baseline replay and in the check.
func TestAnomalyEventsListedTwiceCountOnce(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	refund := func(i int, at time.Time) stripeclient.RawEvent {
		id := fmt.Sprintf("evt_r%d", i)
		return stripeclient.RawEvent{ID: id, Type: "charge.refunded", Created: at.Unix(),
			JSON: []byte(fmt.Sprintf(`{"id":%q,"type":"charge.refunded","data":{"object":{"id":"ch_%d","amount_refunded":100,"currency":"usd"}}}`, id, i))}
	}
	payment := func(id string, at time.Time) stripeclient.RawEvent {
		return stripeclient.RawEvent{ID: id, Type: "payment_intent.succeeded", Created: at.Unix(),
			JSON: []byte(`{"id":"` + id + `","data":{"object":{"id":"pi_p","amount":100,"currency":"usd"}}}`)}
	}
	// The baseline: a payment three hours back, listed twice.
	log := []stripeclient.RawEvent{payment("evt_p", now.Add(-3*time.Hour)), payment("evt_p", now.Add(-3*time.Hour))}
	for i := range 4 {
		e := refund(i, now.Add(10*time.Second+time.Duration(i)*time.Second))
		log = append(log, e, e) // each listed twice
	}
	sc := &fakeStripe{ListEventsFn: func(_ context.Context, w stripeclient.EventWindow) ([]stripeclient.RawEvent, error) {
		var out []stripeclient.RawEvent
		for _, e := range log {
			if at := time.Unix(e.Created, 0); !at.Before(w.From) && at.Before(w.To) {
				out = append(out, e)
			}
		}
		return out, nil
	}}
	si := &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "si", UID: "u1"}, Spec: v1.StripeIntegrationSpec{ClinicID: "c1"}}
	cl := crfake.NewClientBuilder().WithObjects(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns"}}).Build()
	r := &StripeIntegrationReconciler{SecretReader: cl, Client: cl}
	st := &anomalyState{th: anomaly.NewDetector(anomaly.Thresholds{RefundMinCount: 4, Baseline: 3 * time.Hour}).Thresholds()}
	// The first check (on enable) builds the baseline and starts the cursor now.
	if res := r.checkAnomalies(context.Background(), si, sc, st, false, now); len(res.raised) != 0 || res.listErr != nil || !st.warm() {
		t.Fatalf("first check: %+v", res)
	}
	res := r.checkAnomalies(context.Background(), si, sc, st, false, now.Add(time.Minute))
	// Counted twice, the second copy of the second refund would make four and flag.
	if len(res.raised) != 1 || res.raised[0].EventID != "evt_r3" || res.raised[0].Value != 400 {
		t.Fatalf("raised %+v, want one spike of the four refunds (400) raised by the fourth", res.raised)
	}
	// The receiver was not reachable (no signing secret here): the flag waits, and the cursor
	// stays at its event.
	if res.writeErr == nil || len(st.pending) != 1 || !st.checked().Equal(time.Unix(log[len(log)-1].Created, 0)) {
		t.Errorf("write error %v, %d pending, cursor %s", res.writeErr, len(st.pending), st.checked())
	}
}

// A flag's count and lastFlag survive a lost status write: the detector raises a flag once, so
// the pass retried after a conflict (no check due) must still count it, and stop counting once
// status shows it. Before, the retried pass wrote nothing and the next check counted only its
// own flags: status said 1 flag where the receiver had written 2.
func TestAnomalyFlagCountSurvivesALostStatusWrite(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	si := &v1.StripeIntegration{}
	si.Status.Finance = &v1.FinanceStatus{Anomalies: &v1.AnomaliesStatus{Flags: 1,
		LastFlag:     &v1.AnomalyFlagStatus{Rule: string(anomaly.KindDispute), EventID: "evt_dispute"},
		CheckedUntil: &metav1.Time{Time: now.Add(-time.Minute)}}}
	st := &anomalyState{start: now.Add(-time.Hour), warmed: now.Add(-time.Hour), listed: now}
	spike := anomaly.Flag{Kind: anomaly.KindRefundSpike, EventID: "evt_refund9", At: now}
	r := &StripeIntegrationReconciler{}

	var checkPass observation
	r.reportAnomalies(si, st, anomalyResult{raised: []anomaly.Flag{spike}, written: []anomaly.Flag{spike}}, &checkPass, now)
	if a := checkPass.Anomalies; a == nil || a.Flags != 2 || a.LastFlag == nil || a.LastFlag.EventID != "evt_refund9" {
		t.Fatalf("the check's status = %+v, want 2 flags, the spike last", a)
	}
	// Its status write lost a conflict: the retried pass sees the stored status unchanged.
	var retried observation
	recountUnreported(si, st, &retried)
	if a := retried.Anomalies; a == nil || a.Flags != 2 || a.LastFlag == nil || a.LastFlag.EventID != "evt_refund9" {
		t.Fatalf("the retried pass's status = %+v, want the spike still counted (2 flags)", a)
	}
	// Written now: later passes count nothing twice.
	si.Status.Finance.Anomalies = retried.Anomalies
	var later observation
	recountUnreported(si, st, &later)
	if later.Anomalies != nil || len(st.unreported) != 0 {
		t.Errorf("after the write: status %+v, %d unreported; want nothing to write", later.Anomalies, len(st.unreported))
	}
	r.reportAnomalies(si, st, anomalyResult{}, &later, now.Add(time.Minute))
	if a := later.Anomalies; a != nil && a.Flags != 2 {
		t.Errorf("the next check's status counts %d flags, want 2", a.Flags)
	}
}
