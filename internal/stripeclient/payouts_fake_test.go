package stripeclient

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// TestPayoutReconciliationAgainstTheFake lists a paid automatic payout the way the operator
// will, against the stateful fake: 250 payments (pages of 100), a refund, a dispute and a lone
// Stripe fee, each item naming its payment from the expanded source, and the nets adding up to
// the deposit. A manual payout is not listed by payout, by Stripe's rule.
func TestPayoutReconciliationAgainstTheFake(t *testing.T) {
	fake, url := newFake(t)
	key := "sk_test_payoutReconciliation000"
	acct := fake.AddKey(key, stripefake.KeyOptions{})
	seed := func(s stripefake.BalanceTransactionSeed) string {
		t.Helper()
		id, err := fake.AddBalanceTransaction(acct, false, s)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	ids := make([]string, 0, 253)
	for i := range 250 {
		ids = append(ids, seed(stripefake.BalanceTransactionSeed{Type: "charge", Amount: 12000 + int64(i), Currency: "usd",
			Fees: []stripefake.FeeDetail{{Amount: 378, Type: "stripe_fee"}}, Source: fmt.Sprintf("ch_%03d", i),
			SourcePaymentIntent: fmt.Sprintf("pi_%03d", i)}))
	}
	ids = append(ids,
		seed(stripefake.BalanceTransactionSeed{Type: "refund", Amount: -5000, Currency: "usd", Source: "re_1", SourceCharge: "ch_007",
			SourcePaymentIntent: "pi_007"}),
		seed(stripefake.BalanceTransactionSeed{Type: "adjustment", Amount: -12003, Currency: "usd", Source: "dp_1", SourceCharge: "ch_003",
			SourcePaymentIntent: "pi_003", Fees: []stripefake.FeeDetail{{Amount: 1500, Type: "stripe_fee"}}}),
		seed(stripefake.BalanceTransactionSeed{Type: "stripe_fee", Amount: -200, Currency: "usd"}))
	po, err := fake.CreatePayout(acct, false, stripefake.PayoutSeed{Automatic: true, TransactionIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.PayPayout(acct, false, po); err != nil {
		t.Fatal(err)
	}
	manual, err := fake.CreatePayout(acct, false, stripefake.PayoutSeed{Amount: 1000, Currency: "usd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.PayPayout(acct, false, manual); err != nil {
		t.Fatal(err)
	}

	c := NewFactory(Config{BaseURL: url}).For(key, v1alpha1.ModeTest, "")
	ctx := context.Background()
	payouts, err := c.ListPaidPayouts(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var paid *Payout
	for i := range payouts {
		if payouts[i].ID == po {
			paid = &payouts[i]
		}
	}
	if len(payouts) != 2 || paid == nil || !paid.Automatic || paid.Status != "paid" || paid.ReconciliationStatus != "completed" {
		t.Fatalf("payouts = %+v, want the automatic one paid and reconciled, and the manual one", payouts)
	}
	calls := fake.CallsTo(key, "GET", stripefake.PathBalanceTxns)
	txns, err := c.ListPayoutTransactions(ctx, po)
	if err != nil {
		t.Fatal(err)
	}
	if n := fake.CallsTo(key, "GET", stripefake.PathBalanceTxns) - calls; n != 3 {
		t.Errorf("%d requests for 254 transactions, want 3 pages", n)
	}
	var net int64
	byID := map[string]BalanceTransaction{}
	for _, bt := range txns {
		byID[bt.SourceID] = bt
		if bt.Type != "payout" {
			net += bt.Net
		}
	}
	if len(txns) != 254 || net != paid.Amount {
		t.Errorf("%d transactions with nets adding up to %d; want 253 items and the payout's own debit, adding up to %d", len(txns), net, paid.Amount)
	}
	for src, want := range map[string][2]string{"ch_042": {"ch_042", "pi_042"}, "re_1": {"ch_007", "pi_007"}, "dp_1": {"ch_003", "pi_003"}} {
		if got := byID[src]; got.ChargeID != want[0] || got.PaymentIntentID != want[1] {
			t.Errorf("%s names charge %q and payment %q, want %v", src, got.ChargeID, got.PaymentIntentID, want)
		}
	}
	var se *Error
	if _, err := c.ListPayoutTransactions(ctx, manual); !errors.As(err, &se) || se.Kind != KindInvalidRequest {
		t.Errorf("a manual payout's transactions: err = %v, want Stripe's invalid request", err)
	}
}

// TestPayoutListingWithARestrictedKey: a restricted key with payout but not balance read lists
// payouts and is refused the transactions, naming rak_balance_read.
func TestPayoutListingWithARestrictedKey(t *testing.T) {
	fake, url := newFake(t)
	key := "rk_test_payoutsButNoBalance0000"
	fake.AddKey(key, stripefake.KeyOptions{Permissions: []string{stripefake.PermPayoutRead}})
	c := NewFactory(Config{BaseURL: url}).For(key, v1alpha1.ModeTest, "")
	if _, err := c.ListPaidPayouts(context.Background(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatalf("payouts with rak_payout_read: %v", err)
	}
	_, err := c.ListPayoutTransactions(context.Background(), "po_unknown")
	var se *Error
	if !errors.As(err, &se) || se.Kind != KindPermissionDenied || se.Permission != stripefake.PermBalanceRead {
		t.Errorf("err = %v, want PermissionDenied naming %s", err, stripefake.PermBalanceRead)
	}
}
