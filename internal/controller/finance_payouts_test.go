package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	clocktesting "k8s.io/utils/clock/testing"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// testPayoutInterval is the suite's payout check interval: a few resyncs' worth, so a test sees
// several checks.
const testPayoutInterval = 2 * time.Second

// waitPayout bounds waits for a payout check: a few intervals and retries on a loaded machine.
const waitPayout = 30 * time.Second

// ledgerSink stands in for the receiver's ledger endpoint: it verifies the
// Clinicpay-Ledger-Signature with the clinic's signing secret, decodes and checks the message, and
// answers as the receiver does once every system of record took it. unseen names the payments
// the system of record never received: the sink reports them filled.
type ledgerSink struct {
	mu       sync.Mutex
	secret   []byte
	path     string
	down     bool
	unseen   map[string]bool
	written  map[string]int // payout id → times written
	payouts  map[string]ledger.Payout
	order    []string // payout ids in the order written
	rejected []string
}

func (s *ledgerSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	answer := func(code int, res ledger.Result) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(res)
	}
	if s.down {
		answer(http.StatusServiceUnavailable, ledger.Result{Status: "failed", Message: "the system of record is unavailable"})
		return
	}
	reject := func(why string) {
		s.rejected = append(s.rejected, why)
		answer(http.StatusBadRequest, ledger.Result{Status: "rejected", Message: why})
	}
	if r.Method != http.MethodPost || r.URL.Path != s.path {
		reject(r.Method + " " + r.URL.Path)
		return
	}
	if err := sigheader.Ledger.Verify(r.Header.Get(sigheader.LedgerHeader), body, 5*time.Minute, time.Now(), s.secret); err != nil {
		reject("signature: " + err.Error())
		return
	}
	var m ledger.Message
	if err := json.Unmarshal(body, &m); err != nil {
		reject("decode: " + err.Error())
		return
	}
	if err := m.Check(); err != nil || m.Kind != ledger.KindPayout {
		reject(fmt.Sprintf("message %s of kind %s: %v", m.ID, m.Kind, err))
		return
	}
	var filled []string
	for _, it := range m.Payout.Items {
		id := cmpOr(it.PaymentIntentID, it.ChargeID)
		if s.unseen[id] && !slices.Contains(filled, id) {
			filled = append(filled, id)
			delete(s.unseen, id) // recorded now: a second write finds it
		}
	}
	s.written[m.ID]++
	s.payouts[m.ID] = *m.Payout
	s.order = append(s.order, m.ID)
	answer(http.StatusOK, ledger.Result{Status: ledger.StatusWritten, Filled: filled})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *ledgerSink) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *ledgerSink) times(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written[id]
}

func (s *ledgerSink) payout(id string) (ledger.Payout, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.payouts[id]
	return p, ok
}

func (s *ledgerSink) snapshot() (written map[string]int, order, rejected []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	written = make(map[string]int, len(s.written))
	for k, v := range s.written {
		written[k] = v
	}
	return written, slices.Clone(s.order), slices.Clone(s.rejected)
}

// payoutClinic is a connected clinic with payout reconciliation enabled and a ledgerSink as its
// receiver. perms nil gives a secret key (full access), else a restricted key with perms. seed
// runs before the receiver is ready, so before the first check.
type payoutClinic struct {
	ns, name, account string
	keys              testKeys
	sink              *ledgerSink
}

func newPayoutClinic(t *testing.T, name string, perms []string, seed func(pc *payoutClinic)) *payoutClinic {
	t.Helper()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	if perms != nil {
		k.secret = "rk_test_" + randomKeyBody(t, 32)
	}
	fake.AddKey(k.secret, stripefake.KeyOptions{Permissions: perms})
	si := integration(ns, name, uniqueClinic(name, ns), v1.ModeTest, name+"-keys")
	si.Spec.Finance = &v1.FinanceSpec{Payouts: &v1.PayoutsSpec{Enabled: true}}
	mustCreate(t, credentialsSecret(ns, name+"-keys", k), si)
	si = waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	pc := &payoutClinic{ns: ns, name: name, account: fake.AccountForKey(k.secret), keys: k, sink: &ledgerSink{
		secret: signingSecret(t, si).Data[v1.SigningSecretKey], path: ledger.PathPrefix + si.Spec.ClinicID,
		unseen: map[string]bool{}, written: map[string]int{}, payouts: map[string]ledger.Payout{},
	}}
	srv := httptest.NewServer(pc.sink)
	t.Cleanup(srv.Close)
	replayTargets.Store(si.Spec.ClinicID, srv.URL+"/ignored")
	t.Cleanup(func() { replayTargets.Delete(si.Spec.ClinicID) })
	if seed != nil {
		seed(pc)
	}
	markAvailable(t, ns, receiverName(si))
	waitCondition(t, ns, name, v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
	return pc
}

// seedPayout records the transactions four days back and settles them in an automatic payout
// created three days back and arriving at arrival; pay marks it paid (and reconciled).
func (pc *payoutClinic) seedPayout(t *testing.T, arrival time.Time, pay bool, seeds ...stripefake.BalanceTransactionSeed) (string, []string) {
	t.Helper()
	created := arrival.Add(-2 * 24 * time.Hour)
	ids := make([]string, 0, len(seeds))
	for i, s := range seeds {
		if s.Created.IsZero() {
			s.Created = created.Add(-24*time.Hour + time.Duration(i)*time.Second)
		}
		id, err := fake.AddBalanceTransaction(pc.account, false, s)
		must(t, err)
		ids = append(ids, id)
	}
	po, err := fake.CreatePayout(pc.account, false, stripefake.PayoutSeed{Automatic: true, TransactionIDs: ids,
		Created: created, ArrivalDate: arrival})
	must(t, err)
	if pay {
		must(t, fake.PayPayout(pc.account, false, po))
	}
	return po, ids
}

func charge(amount, fee int64, currency, ch, pi string) stripefake.BalanceTransactionSeed {
	s := stripefake.BalanceTransactionSeed{Type: "charge", Amount: amount, Currency: currency, Source: ch, SourcePaymentIntent: pi}
	if fee != 0 {
		s.Fees = []stripefake.FeeDetail{{Amount: fee, Type: "stripe_fee", Description: "Stripe processing fees"}}
	}
	return s
}

func (pc *payoutClinic) status(t *testing.T) (*v1.PayoutsStatus, metav1.Condition) {
	t.Helper()
	si := getSI(t, pc.ns, pc.name)
	c := conditionOrNone(si, v1.ConditionPayoutsReconciled)
	if si.Status.Finance == nil || si.Status.Finance.Payouts == nil {
		return nil, c
	}
	return si.Status.Finance.Payouts, c
}

// waitWritten waits until status records payout id as the last one written and the condition
// is True.
func (pc *payoutClinic) waitWritten(t *testing.T, id string) *v1.PayoutsStatus {
	t.Helper()
	var st *v1.PayoutsStatus
	eventually(t, waitPayout, "payout "+id+" reconciled in status", func() (bool, string) {
		var c metav1.Condition
		st, c = pc.status(t)
		return st != nil && st.LastPayoutID == id && c.Status == metav1.ConditionTrue,
			fmt.Sprintf("%s/%s: %s; %+v", c.Status, c.Reason, c.Message, st)
	})
	return st
}

func daysAgo(n int) time.Time {
	return time.Now().UTC().Truncate(time.Hour).Add(-time.Duration(n) * 24 * time.Hour)
}

// TestPayoutMultiPageWithRefundsFeesDisputeAndAdjustment: a payout of 158 items (two pages of
// balance transactions with the payout's own debit) reaches the receiver whole, once, with each
// item's Stripe ids; the payment the system of record never saw is reported filled in status.
func TestPayoutMultiPageWithRefundsFeesDisputeAndAdjustment(t *testing.T) {
	t.Parallel()
	var po string
	var txns []string
	seeds := make([]stripefake.BalanceTransactionSeed, 0, 158)
	for i := range 150 {
		seeds = append(seeds, charge(10000+int64(i), 320, "usd", fmt.Sprintf("ch_mp%03d", i), fmt.Sprintf("pi_mp%03d", i)))
	}
	for i := range 5 {
		seeds = append(seeds, stripefake.BalanceTransactionSeed{Type: "refund", Amount: -5000, Currency: "usd",
			Source: fmt.Sprintf("re_mp%d", i), SourceCharge: fmt.Sprintf("ch_mp%03d", i), SourcePaymentIntent: fmt.Sprintf("pi_mp%03d", i)})
	}
	seeds = append(seeds,
		stripefake.BalanceTransactionSeed{Type: "adjustment", Amount: -10010, Currency: "usd", Source: "dp_mp1",
			SourceCharge: "ch_mp010", SourcePaymentIntent: "pi_mp010", Fees: []stripefake.FeeDetail{{Amount: 1500, Type: "stripe_fee"}}},
		stripefake.BalanceTransactionSeed{Type: "stripe_fee", Amount: -2500, Currency: "usd", Description: "Billing usage"},
		stripefake.BalanceTransactionSeed{Type: "adjustment", Amount: 123, Currency: "usd", Description: "Goodwill credit"},
	)
	pc := newPayoutClinic(t, "clinic-po-mp", nil, func(pc *payoutClinic) {
		pc.sink.unseen["pi_mp042"] = true // the receiver never saw this payment
		po, txns = pc.seedPayout(t, daysAgo(1), true, seeds...)
	})
	st := pc.waitWritten(t, po)
	got, ok := pc.sink.payout(po)
	if !ok {
		t.Fatal("the receiver holds no record of the payout")
	}
	if len(got.Items) != 158 || st.LastItems != 158 {
		t.Fatalf("items: receiver %d, status %d, want 158", len(got.Items), st.LastItems)
	}
	var sum int64
	byID := map[string]ledger.Item{}
	for _, it := range got.Items {
		sum += it.Net
		byID[it.ID] = it
		if it.Type == "payout" {
			t.Errorf("the payout's own debit %s is among the items", it.ID)
		}
	}
	if sum != got.Amount || got.Currency != "usd" {
		t.Errorf("items add up to %d, payout %d %s", sum, got.Amount, got.Currency)
	}
	for _, id := range txns {
		if _, ok := byID[id]; !ok {
			t.Errorf("balance transaction %s missing from the record", id)
		}
	}
	wantItem := func(id string, check func(ledger.Item) bool, what string) {
		if it := byID[id]; !check(it) {
			t.Errorf("item %s: %+v, want %s", id, it, what)
		}
	}
	wantItem(txns[7], func(it ledger.Item) bool {
		return it.Type == "charge" && it.SourceID == "ch_mp007" && it.ChargeID == "ch_mp007" && it.PaymentIntentID == "pi_mp007" &&
			it.Amount == 10007 && it.Fee == 320 && it.Net == 9687
	}, "the charge with its ids and fee")
	wantItem(txns[150], func(it ledger.Item) bool {
		return it.Type == "refund" && it.ReportingCategory == "refund" && it.SourceID == "re_mp0" && it.ChargeID == "ch_mp000" &&
			it.PaymentIntentID == "pi_mp000" && it.Net == -5000
	}, "the refund naming its payment")
	wantItem(txns[155], func(it ledger.Item) bool {
		return it.ReportingCategory == "dispute" && it.SourceID == "dp_mp1" && it.PaymentIntentID == "pi_mp010" && it.Net == -11510
	}, "the dispute with its fee")
	wantItem(txns[156], func(it ledger.Item) bool { return it.Type == "stripe_fee" && it.Net == -2500 }, "the Stripe fee")
	wantItem(txns[157], func(it ledger.Item) bool { return it.Type == "adjustment" && it.Net == 123 }, "the adjustment")

	if st.LastFilled != 1 || !slices.Equal(st.LastFilledIDs, []string{"pi_mp042"}) || st.Filled != 1 || st.Reconciled != 1 {
		t.Errorf("status = %+v, want the one filled payment pi_mp042", st)
	}
	if st.LastArrivalDate == nil || st.LastArrivalDate.Unix() != daysAgo(1).Unix() || st.LastReconcileTime == nil {
		t.Errorf("cursor = %v, last check %v", st.LastArrivalDate, st.LastReconcileTime)
	}
	// The suite's tests share the counters (labelled by mode only), so they are at least ours.
	mode := string(v1.ModeTest)
	if n := testutil.ToFloat64(testMetrics.PayoutsReconciled.WithLabelValues(mode)); n < 1 {
		t.Errorf("stripe_operator_payouts_reconciled_total = %v, want at least 1", n)
	}
	if n := testutil.ToFloat64(testMetrics.PaymentsFilled.WithLabelValues(mode)); n < 1 {
		t.Errorf("stripe_operator_payout_payments_filled_total = %v, want at least 1", n)
	}
	if n := testutil.ToFloat64(testMetrics.PayoutChecks.WithLabelValues(mode, v1.ReasonPayoutsReconciled)); n < 1 {
		t.Errorf("stripe_operator_payout_checks_total{reason=PayoutsReconciled} = %v, want at least 1", n)
	}
	_, c := pc.status(t)
	if !strings.Contains(c.Message, po) || !strings.Contains(c.Message, "158 items") {
		t.Errorf("condition message %q does not name the payout and its items", c.Message)
	}
	// Later checks list again, find nothing new and write nothing: one list call each.
	before := fake.CallsTo(pc.keys.secret, http.MethodGet, stripefake.PathBalanceTxns)
	time.Sleep(3 * testPayoutInterval)
	if n := pc.sink.times(po); n != 1 {
		t.Errorf("payout written %d times, want once", n)
	}
	if n := fake.CallsTo(pc.keys.secret, http.MethodGet, stripefake.PathBalanceTxns) - before; n != 0 {
		t.Errorf("%d balance transaction listings after the payout was written, want none", n)
	}
	if _, _, rejected := pc.sink.snapshot(); len(rejected) > 0 {
		t.Errorf("the receiver rejected: %v", rejected)
	}
}

// TestPayoutWaitsForReconciliation: a paid payout whose reconciliation is still in progress is
// not written, and neither is a later one behind it, until Stripe completes it; then both are,
// oldest first.
func TestPayoutWaitsForReconciliation(t *testing.T) {
	t.Parallel()
	var first, second string
	pc := newPayoutClinic(t, "clinic-po-wait", nil, func(pc *payoutClinic) {
		first, _ = pc.seedPayout(t, daysAgo(2), false, charge(5000, 175, "eur", "", "pi_w1"))
		must(t, fake.PayPayoutUnreconciled(pc.account, false, first))
		second, _ = pc.seedPayout(t, daysAgo(1), true, charge(7000, 233, "eur", "", "pi_w2"))
	})
	eventually(t, waitPayout, "the check to wait for "+first, func() (bool, string) {
		_, c := pc.status(t)
		return c.Status == metav1.ConditionTrue && strings.Contains(c.Message, first+" ") && strings.Contains(c.Message, "in_progress"), c.Message
	})
	time.Sleep(2 * testPayoutInterval)
	if written, _, _ := pc.sink.snapshot(); len(written) != 0 {
		t.Fatalf("written before reconciliation completed: %v", written)
	}
	must(t, fake.CompletePayoutReconciliation(pc.account, false, first))
	st := pc.waitWritten(t, second)
	written, order, _ := pc.sink.snapshot()
	if !slices.Equal(order, []string{first, second}) || written[first] != 1 || written[second] != 1 {
		t.Errorf("written %v in order %v, want %s then %s once each", written, order, first, second)
	}
	if st.Reconciled != 2 {
		t.Errorf("reconciled = %d, want 2", st.Reconciled)
	}
}

// TestPayoutZeroAndThreeDecimalCurrencies: amounts pass through in the currency's smallest unit,
// whole yen and fils, exactly.
func TestPayoutZeroAndThreeDecimalCurrencies(t *testing.T) {
	t.Parallel()
	var jpy, kwd string
	pc := newPayoutClinic(t, "clinic-po-cur", nil, func(pc *payoutClinic) {
		jpy, _ = pc.seedPayout(t, daysAgo(3), true, charge(5000, 180, "jpy", "", "pi_jpy1"), charge(12001, 432, "jpy", "", "pi_jpy2"),
			stripefake.BalanceTransactionSeed{Type: "refund", Amount: -1000, Currency: "jpy", SourcePaymentIntent: "pi_jpy1"})
		kwd, _ = pc.seedPayout(t, daysAgo(2), true, charge(12340, 375, "kwd", "", "pi_kwd1"), charge(990, 33, "kwd", "", "pi_kwd2"),
			stripefake.BalanceTransactionSeed{Type: "stripe_fee", Amount: -7, Currency: "kwd"})
	})
	pc.waitWritten(t, kwd)
	for id, want := range map[string]struct {
		currency string
		amount   int64
	}{jpy: {"jpy", 5000 - 180 + 12001 - 432 - 1000}, kwd: {"kwd", 12340 - 375 + 990 - 33 - 7}} {
		got, ok := pc.sink.payout(id)
		if !ok || got.Currency != want.currency || got.Amount != want.amount || len(got.Items) != 3 {
			t.Errorf("payout %s = %+v, want %d %s in 3 items", id, got, want.amount, want.currency)
		}
	}
}

// TestPayoutRestrictedKeyWithoutPermission: the condition names the permission the refused call
// needed, for each of the two listings.
func TestPayoutRestrictedKeyWithoutPermission(t *testing.T) {
	t.Parallel()
	webhook := []string{stripefake.PermWebhookRead, stripefake.PermWebhookWrite}
	cases := map[string]struct {
		perms   []string
		missing string
	}{
		"payouts": {perms: append(slices.Clone(webhook), stripefake.PermBalanceRead), missing: stripefake.PermPayoutRead},
		"balance": {perms: append(slices.Clone(webhook), stripefake.PermPayoutRead), missing: stripefake.PermBalanceRead},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pc := newPayoutClinic(t, "clinic-po-rk", tc.perms, func(pc *payoutClinic) {
				pc.seedPayout(t, daysAgo(1), true, charge(5000, 175, "usd", "", "pi_rk"))
			})
			si := waitCondition(t, pc.ns, pc.name, v1.ConditionPayoutsReconciled, metav1.ConditionFalse, v1.ReasonPayoutPermissionMissing, waitPayout)
			if msg := getCondition(t, si, v1.ConditionPayoutsReconciled).Message; !strings.Contains(msg, tc.missing) {
				t.Errorf("message %q does not name %s", msg, tc.missing)
			}
			if c := getCondition(t, si, v1.ConditionConnected); c.Status != metav1.ConditionTrue {
				t.Errorf("Connected = %s/%s: the payout permission is not part of it", c.Status, c.Reason)
			}
			if written, _, _ := pc.sink.snapshot(); len(written) != 0 {
				t.Errorf("written without the permission: %v", written)
			}
		})
	}
}

// TestPayoutReceiverDownThenRecovers: a refused write is reported and retried, sooner than the
// interval, until the receiver takes it; the payout is then written once.
func TestPayoutReceiverDownThenRecovers(t *testing.T) {
	t.Parallel()
	var po string
	pc := newPayoutClinic(t, "clinic-po-down", nil, func(pc *payoutClinic) {
		pc.sink.setDown(true)
		po, _ = pc.seedPayout(t, daysAgo(1), true, charge(5000, 175, "usd", "", "pi_down"))
	})
	si := waitCondition(t, pc.ns, pc.name, v1.ConditionPayoutsReconciled, metav1.ConditionFalse, v1.ReasonPayoutWriteFailed, waitPayout)
	if msg := getCondition(t, si, v1.ConditionPayoutsReconciled).Message; !strings.Contains(msg, po) || !strings.Contains(msg, "unavailable") {
		t.Errorf("message %q does not name the payout and the receiver's answer", msg)
	}
	if st, _ := pc.status(t); st != nil && st.LastPayoutID != "" {
		t.Errorf("status advanced past a payout the receiver refused: %+v", st)
	}
	pc.sink.setDown(false)
	st := pc.waitWritten(t, po)
	if n := pc.sink.times(po); n != 1 || st.Reconciled != 1 {
		t.Errorf("written %d times, reconciled %d; want once", n, st.Reconciled)
	}
}

// TestPayoutsSameDayBothWrittenOnce: two payouts arriving the same day, one of them paid only
// after the other was written, are each written exactly once.
func TestPayoutsSameDayBothWrittenOnce(t *testing.T) {
	t.Parallel()
	arrival := daysAgo(1)
	var a, b string
	pc := newPayoutClinic(t, "clinic-po-day", nil, func(pc *payoutClinic) {
		a, _ = pc.seedPayout(t, arrival, true, charge(5000, 175, "usd", "", "pi_da"))
		b, _ = pc.seedPayout(t, arrival, false, charge(6000, 204, "usd", "", "pi_db"))
	})
	pc.waitWritten(t, a)
	must(t, fake.PayPayout(pc.account, false, b)) // paid later, arriving the same day as a
	st := pc.waitWritten(t, b)
	time.Sleep(3 * testPayoutInterval)
	written, _, _ := pc.sink.snapshot()
	if written[a] != 1 || written[b] != 1 || len(written) != 2 {
		t.Errorf("written %v, want %s and %s once each", written, a, b)
	}
	if st.Reconciled != 2 || !slices.Contains(st.WrittenIDs, a) || !slices.Contains(st.WrittenIDs, b) {
		t.Errorf("status = %+v, want both reconciled and remembered", st)
	}
}

// TestPayoutsDisabledRemovesConditionAndStatus: turning the feature off removes what it reported.
func TestPayoutsDisabledRemovesConditionAndStatus(t *testing.T) {
	t.Parallel()
	var po string
	pc := newPayoutClinic(t, "clinic-po-off", nil, func(pc *payoutClinic) {
		po, _ = pc.seedPayout(t, daysAgo(1), true, charge(5000, 175, "usd", "", "pi_off"))
	})
	pc.waitWritten(t, po)
	si := getSI(t, pc.ns, pc.name)
	si.Spec.Finance.Payouts.Enabled = false
	must(t, k8sClient.Update(t.Context(), si))
	eventually(t, waitShort, "payout condition and status removed", func() (bool, string) {
		si := getSI(t, pc.ns, pc.name)
		c := meta.FindStatusCondition(si.Status.Conditions, v1.ConditionPayoutsReconciled)
		return c == nil && si.Status.Finance == nil, fmt.Sprintf("%v %+v", c, si.Status.Finance)
	})
}

func TestLedgerPayoutExcludesTheDebit(t *testing.T) {
	t.Parallel()
	p := stripeclient.Payout{ID: "po_1", Amount: 900, Currency: "usd", Status: "paid", Automatic: true}
	lp := ledgerPayout("c1", p, []stripeclient.BalanceTransaction{
		{ID: "txn_po", Type: "payout", Amount: -900, Net: -900, Currency: "usd", SourceID: "po_1"},
		{ID: "txn_b", Type: "charge", Amount: 1000, Fee: 100, Net: 900, Currency: "usd", SourceID: "ch_1", ChargeID: "ch_1"},
	})
	if len(lp.Items) != 1 || lp.Items[0].ID != "txn_b" || lp.Check() != nil {
		t.Errorf("ledger payout = %+v (check %v)", lp, lp.Check())
	}
	lp.Amount = 901
	if lp.Check() == nil {
		t.Error("a payout whose items do not add up passed the check")
	}
}

func TestPayoutRetryDelayBacksOffUpToTheInterval(t *testing.T) {
	t.Parallel()
	var got []time.Duration
	for f := 1; f <= 7; f++ {
		got = append(got, payoutRetryDelay(time.Hour, f))
	}
	want := []time.Duration{225 * time.Second, 450 * time.Second, 900 * time.Second, 1800 * time.Second, time.Hour, time.Hour, time.Hour}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
}

func TestPayoutsToWriteOldestFirstSkippingWritten(t *testing.T) {
	t.Parallel()
	got := payoutsToWrite([]stripeclient.Payout{
		{ID: "po_c", ArrivalDate: 20, Created: 5, Automatic: true, Status: "paid"},
		{ID: "po_b", ArrivalDate: 10, Created: 6, Automatic: true, Status: "paid"},
		{ID: "po_a", ArrivalDate: 10, Created: 4, Automatic: true, Status: "paid"},
		{ID: "po_m", ArrivalDate: 5, Created: 1, Automatic: false, Status: "paid"},
		{ID: "po_w", ArrivalDate: 5, Created: 1, Automatic: true, Status: "paid"},
	}, []string{"po_w"})
	ids := make([]string, 0, len(got))
	for _, p := range got {
		ids = append(ids, p.ID)
	}
	if !slices.Equal(ids, []string{"po_a", "po_b", "po_c"}) {
		t.Errorf("order %v", ids)
	}
}

// stubPayouts answers the payout listings from memory; every other call panics (nil interface).
type stubPayouts struct {
	stripeclient.Client
	payouts []stripeclient.Payout
	txns    map[string][]stripeclient.BalanceTransaction
	listErr error
	calls   int
}

func (s *stubPayouts) ListPaidPayouts(context.Context, time.Time) ([]stripeclient.Payout, error) {
	s.calls++
	return s.payouts, s.listErr
}

func (s *stubPayouts) ListPayoutTransactions(_ context.Context, id string) ([]stripeclient.BalanceTransaction, error) {
	s.calls++
	return s.txns[id], nil
}

// connectedObs is a pass that found the integration connected without a Stripe call (a reused
// view): the payout check builds its client with stripeFor.
func connectedObs(sc stripeclient.Client) *observation {
	obs := &observation{stripeFor: func() stripeclient.Client { return sc }, reusedView: true}
	obs.KeysValid = trueCond(v1.ConditionKeysValid, v1.ReasonKeysValid, "")
	obs.Authenticated = trueCond(v1.ConditionAuthenticated, v1.ReasonAuthenticated, "")
	obs.Webhook = trueCond(v1.ConditionWebhookEndpointReady, v1.ReasonEndpointReady, "")
	obs.Receiver = trueCond(v1.ConditionReceiverReady, v1.ReasonReceiverAvailable, "")
	obs.Mode = v1.ModeTest
	return obs
}

func payoutsSI(uid string) *v1.StripeIntegration {
	si := integration("ns", "c", "clinic-1", v1.ModeTest, "keys")
	si.UID = types.UID(uid)
	si.Spec.Finance = &v1.FinanceSpec{Payouts: &v1.PayoutsSpec{Enabled: true}}
	return si
}

func payoutCond(obs *observation) *condition {
	for i := range obs.Informational {
		if obs.Informational[i].Type == v1.ConditionPayoutsReconciled {
			return &obs.Informational[i]
		}
	}
	return nil
}

// TestPayoutCheckInReusedViewPass: a pass that reused the Stripe view (no probe) runs a due
// check with the client stripeFor builds, and the passes before the next one are due make no call.
func TestPayoutCheckInReusedViewPass(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r := &StripeIntegrationReconciler{Clock: clocktesting.NewFakePassiveClock(now), PayoutCheckInterval: time.Hour}
	stub := &stubPayouts{}
	si := payoutsSI("uid-view")
	obs := connectedObs(stub)
	r.reconcilePayouts(context.Background(), si, obs)
	c := payoutCond(obs)
	if stub.calls != 1 || c == nil || c.Status != metav1.ConditionTrue || obs.Payouts == nil || obs.Payouts.LastReconcileTime == nil {
		t.Fatalf("calls %d, condition %+v, status %+v", stub.calls, c, obs.Payouts)
	}
	if d := obs.financeDue.Sub(now); d < 54*time.Minute || d > 66*time.Minute {
		t.Errorf("next check in %s, want the jittered hour", d)
	}
	again := connectedObs(stub)
	r.reconcilePayouts(context.Background(), si, again)
	if stub.calls != 1 || payoutCond(again) == nil || again.Payouts == nil {
		t.Errorf("a pass before the check is due: %d calls, condition %v, status %v (want none, and the last findings kept)",
			stub.calls, payoutCond(again), again.Payouts)
	}
}

// TestPayoutInvalidAndTransientOutcomes: items that do not add up are not written and are named;
// a transient Stripe failure keeps the stored condition and retries sooner than the interval.
func TestPayoutInvalidAndTransientOutcomes(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r := &StripeIntegrationReconciler{Clock: clocktesting.NewFakePassiveClock(now), PayoutCheckInterval: time.Hour}
	stub := &stubPayouts{
		payouts: []stripeclient.Payout{{ID: "po_bad", Amount: 1000, Currency: "usd", Status: "paid", Automatic: true,
			ReconciliationStatus: "completed", ArrivalDate: now.Add(-24 * time.Hour).Unix()}},
		txns: map[string][]stripeclient.BalanceTransaction{"po_bad": {
			{ID: "txn_1", Type: "charge", Amount: 990, Net: 990, Currency: "usd"},
			{ID: "txn_po", Type: "payout", Amount: -1000, Net: -1000, Currency: "usd", SourceID: "po_bad"}}},
	}
	si := payoutsSI("uid-invalid")
	obs := connectedObs(stub)
	r.reconcilePayouts(context.Background(), si, obs)
	c := payoutCond(obs)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonPayoutInvalid || !strings.Contains(c.Message, "po_bad") {
		t.Fatalf("condition = %+v, want PayoutInvalid naming po_bad", c)
	}
	if obs.Payouts == nil || obs.Payouts.LastPayoutID != "" || obs.Payouts.Reconciled != 0 {
		t.Errorf("status advanced past an invalid payout: %+v", obs.Payouts)
	}

	// The stored condition is True; Stripe is unavailable at the next check.
	si = payoutsSI("uid-transient")
	si.Status.Conditions = []metav1.Condition{{Type: v1.ConditionPayoutsReconciled, Status: metav1.ConditionTrue,
		Reason: v1.ReasonPayoutsReconciled, Message: "earlier"}}
	stub = &stubPayouts{listErr: &stripeclient.Error{Kind: stripeclient.KindUnavailable, Message: "HTTP 503"}}
	r.payoutChecks.set(si.UID, payoutSchedule{due: now})
	obs = connectedObs(stub)
	r.reconcilePayouts(context.Background(), si, obs)
	if c := payoutCond(obs); c != nil || obs.Payouts != nil {
		t.Errorf("a transient failure changed the findings: %+v, %+v", c, obs.Payouts)
	}
	if d := obs.financeDue.Sub(now); d <= 0 || d >= time.Hour {
		t.Errorf("retry in %s, want sooner than the interval", d)
	}
}

// TestPayoutScheduleAfterStart: without a schedule in memory a just enabled feature is due at
// once; one that ran before this process started is due an interval after its last check, but not
// before its place in the spread after the start.
func TestPayoutScheduleAfterStart(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r := &StripeIntegrationReconciler{Clock: clocktesting.NewFakePassiveClock(start), PayoutCheckInterval: time.Hour, started: start}
	if s := r.payoutScheduleFor(payoutsSI("uid-new")); !s.due.IsZero() {
		t.Errorf("just enabled: due %v, want now", s.due)
	}
	ran := func(uid string, last time.Time) *v1.StripeIntegration {
		si := payoutsSI(uid)
		si.Status.Conditions = []metav1.Condition{{Type: v1.ConditionPayoutsReconciled, Status: metav1.ConditionTrue, Reason: v1.ReasonPayoutsReconciled}}
		si.Status.Finance = &v1.FinanceStatus{Payouts: &v1.PayoutsStatus{LastReconcileTime: ptrTime(last)}}
		return si
	}
	recent := ran("uid-recent", start.Add(-time.Minute))
	if s := r.payoutScheduleFor(recent); s.due.Before(start.Add(59 * time.Minute)) {
		t.Errorf("checked a minute before the start: due %v, want an interval after that check", s.due)
	}
	spread := map[time.Duration]bool{}
	for range 20 {
		s := r.payoutScheduleFor(ran(string(uuid.NewUUID()), start.Add(-5*time.Hour)))
		if s.due.Before(start) || !s.due.Before(start.Add(time.Hour)) {
			t.Fatalf("overdue before the start: due %v, want within the first interval", s.due)
		}
		spread[s.due.Sub(start)/(10*time.Minute)] = true
	}
	if len(spread) < 3 {
		t.Errorf("20 overdue checks fall in %d of 6 ten-minute slots: not spread", len(spread))
	}
}

// TestNewerPayouts: memory wins over a cached status that lags, a status another manager wrote
// after this one's last check wins over memory.
func TestNewerPayouts(t *testing.T) {
	t.Parallel()
	at := func(minute int) *v1.PayoutsStatus {
		return &v1.PayoutsStatus{LastReconcileTime: ptrTime(time.Date(2026, 12, 6, 12, minute, 0, 0, time.UTC))}
	}
	early, late := at(0), at(5)
	cases := []struct {
		name             string
		mem, stored, win *v1.PayoutsStatus
	}{
		{"no memory", nil, early, early},
		{"nothing stored", late, nil, late},
		{"cache lags", late, early, late},
		{"another manager checked since", early, late, late},
		{"same check", late, at(5), late},
	}
	for _, tc := range cases {
		if got := newerPayouts(tc.mem, tc.stored); got != tc.win {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.win)
		}
	}
}
