/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package stripefake

import (
	"net/http"
	"slices"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// payoutEpoch is the fake clock's start in the payout tests.
var payoutEpoch = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// payoutFixture is one account with a test key, on a fake clock.
type payoutFixture struct {
	s     *Server
	url   string
	clock *fakeClock
	key   string
	acct  string
	c     clients
}

func newPayoutFixture(t *testing.T) *payoutFixture {
	t.Helper()
	clock := newFakeClock(payoutEpoch)
	s, baseURL := startFake(t, WithClock(clock.Now))
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	return &payoutFixture{s: s, url: baseURL, clock: clock, key: key, acct: acct, c: clientsFor(baseURL, key)}
}

// add seeds a transaction a minute after the previous one, so creation order
// is list order.
func (f *payoutFixture) add(t *testing.T, seed BalanceTransactionSeed) string {
	t.Helper()
	f.clock.Advance(time.Minute)
	id, err := f.s.AddBalanceTransaction(f.acct, false, seed)
	if err != nil {
		t.Fatalf("AddBalanceTransaction(%+v): %v", seed, err)
	}
	return id
}

// charge seeds a card charge of amount with Stripe's processing fee.
func (f *payoutFixture) charge(t *testing.T, currency string, amount, fee int64) string {
	t.Helper()
	return f.add(t, BalanceTransactionSeed{Type: "charge", Amount: amount, Currency: currency,
		Fees: []FeeDetail{{Amount: fee, Type: "stripe_fee", Description: "Stripe processing fees"}}})
}

// payout makes an automatic payout of ids an hour later.
func (f *payoutFixture) payout(t *testing.T, ids ...string) string {
	t.Helper()
	f.clock.Advance(time.Hour)
	po, err := f.s.CreatePayout(f.acct, false, PayoutSeed{Automatic: true, TransactionIDs: ids})
	if err != nil {
		t.Fatalf("CreatePayout: %v", err)
	}
	return po
}

// listTxns lists balance transactions with p through stripe-go's iterator.
func listTxns(t *testing.T, c clients, p *stripe.BalanceTransactionListParams) []*stripe.BalanceTransaction {
	t.Helper()
	it := c.bt.List(p)
	var out []*stripe.BalanceTransaction
	for it.Next() {
		out = append(out, it.BalanceTransaction())
	}
	if err := it.Err(); err != nil {
		t.Fatalf("list balance transactions: %v", err)
	}
	return out
}

func txnIDs(txns []*stripe.BalanceTransaction) []string {
	ids := make([]string, 0, len(txns))
	for _, x := range txns {
		ids = append(ids, x.ID)
	}
	return ids
}

// TestPayoutTransactionsPaginate lists a 250-transaction payout in pages of
// 100: every transaction once, newest first, the payout's debit at the top.
func TestPayoutTransactionsPaginate(t *testing.T) {
	f := newPayoutFixture(t)
	settled := make([]string, 0, 250)
	var sumNet int64
	for i := range 250 {
		amount := int64(1000 + 10*i)
		fee := amount*29/1000 + 30
		id := f.charge(t, "usd", amount, fee)
		settled = append(settled, id)
		sumNet += amount - fee
	}
	unsettled := f.charge(t, "usd", 5000, 175) // after the payout's cut: stays in the balance
	po := f.payout(t, settled...)
	if err := f.s.PayPayout(f.acct, false, po); err != nil {
		t.Fatalf("PayPayout: %v", err)
	}

	got, err := f.c.po.Get(po, nil)
	if err != nil {
		t.Fatalf("get payout: %v", err)
	}
	if got.Amount != sumNet || got.Currency != stripe.CurrencyUSD || !got.Automatic ||
		got.Status != stripe.PayoutStatusPaid || got.ReconciliationStatus != stripe.PayoutReconciliationStatusCompleted {
		t.Fatalf("payout = amount %d %s automatic=%v status=%s reconciliation=%s, want %d usd automatic paid completed",
			got.Amount, got.Currency, got.Automatic, got.Status, got.ReconciliationStatus, sumNet)
	}

	p := &stripe.BalanceTransactionListParams{Payout: stripe.String(po)}
	p.Limit = stripe.Int64(100)
	txns := listTxns(t, f.c, p)
	if calls := f.s.CallsTo(f.key, http.MethodGet, PathBalanceTxns); calls != 3 {
		t.Errorf("listed 251 transactions in %d pages, want 3 of at most 100", calls)
	}
	newestFirst := slices.Clone(settled)
	slices.Reverse(newestFirst)
	want := append([]string{got.BalanceTransaction.ID}, newestFirst...)
	if ids := txnIDs(txns); !slices.Equal(ids, want) {
		t.Fatalf("listed %d ids, want the payout's debit then the %d settled ones newest first (first diff at %d)",
			len(ids), len(settled), firstDiff(ids, want))
	}
	if slices.Contains(txnIDs(txns), unsettled) {
		t.Errorf("an unsettled transaction is listed under the payout")
	}
	debit := txns[0]
	if debit.Type != stripe.BalanceTransactionTypePayout || debit.Amount != -sumNet || debit.Net != -sumNet ||
		debit.Source.ID != po || debit.ReportingCategory != stripe.BalanceTransactionReportingCategoryPayout {
		t.Errorf("payout debit = %s %d net %d source %s category %s", debit.Type, debit.Amount, debit.Net, debit.Source.ID, debit.ReportingCategory)
	}

	// Paging back from the last page's first object returns the page before it.
	back := &stripe.BalanceTransactionListParams{Payout: stripe.String(po)}
	back.Limit = stripe.Int64(100)
	back.EndingBefore = stripe.String(txns[200].ID)
	back.Single = true
	it := f.c.bt.List(back)
	var page []string
	for it.Next() {
		page = append(page, it.BalanceTransaction().ID)
	}
	if err := it.Err(); err != nil {
		t.Fatalf("list ending_before: %v", err)
	}
	slices.Reverse(page) // stripe-go's iterator hands an ending_before page over oldest first
	if !slices.Equal(page, txnIDs(txns[100:200])) {
		t.Errorf("ending_before %s gave %d ids, not the second page", txns[200].ID, len(page))
	}
}

// firstDiff is the first index where a and b differ, for readable failures.
func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestBalanceTransactionAmounts checks net = amount - fee, the signs and
// reporting categories of refunds, fees and disputes as stripe-go decodes them.
func TestBalanceTransactionAmounts(t *testing.T) {
	f := newPayoutFixture(t)
	ch := f.add(t, BalanceTransactionSeed{Type: "charge", Amount: 10000, Currency: "usd", Source: "ch_visit1001",
		Fees: []FeeDetail{{Amount: 290, Type: "stripe_fee"}, {Amount: 30, Type: "tax", Description: "VAT"}}})
	re := f.add(t, BalanceTransactionSeed{Type: "refund", Amount: -2500, Currency: "usd", Source: "re_visit1001"})
	fee := f.add(t, BalanceTransactionSeed{Type: "stripe_fee", Amount: -150, Currency: "usd", Description: "Radar fees"})
	dp := f.add(t, BalanceTransactionSeed{Type: "adjustment", Amount: -4000, Currency: "usd", Source: "dp_visit1002",
		Fees: []FeeDetail{{Amount: 1500, Type: "stripe_fee", Description: "Dispute fee"}}})

	for _, tc := range []struct {
		id               string
		typ              stripe.BalanceTransactionType
		amount, fee, net int64
		source           string
		category         stripe.BalanceTransactionReportingCategory
	}{
		{ch, stripe.BalanceTransactionTypeCharge, 10000, 320, 9680, "ch_visit1001", stripe.BalanceTransactionReportingCategoryCharge},
		{re, stripe.BalanceTransactionTypeRefund, -2500, 0, -2500, "re_visit1001", stripe.BalanceTransactionReportingCategoryRefund},
		{fee, stripe.BalanceTransactionTypeStripeFee, -150, 0, -150, "", stripe.BalanceTransactionReportingCategoryFee},
		{dp, stripe.BalanceTransactionTypeAdjustment, -4000, 1500, -5500, "dp_visit1002", stripe.BalanceTransactionReportingCategoryDispute},
	} {
		bt, err := f.c.bt.Get(tc.id, nil)
		if err != nil {
			t.Fatalf("get %s: %v", tc.id, err)
		}
		source := ""
		if bt.Source != nil {
			source = bt.Source.ID
		}
		if bt.Type != tc.typ || bt.Amount != tc.amount || bt.Fee != tc.fee || bt.Net != tc.net || source != tc.source ||
			bt.ReportingCategory != tc.category || bt.Currency != stripe.CurrencyUSD || bt.Status != stripe.BalanceTransactionStatusAvailable {
			t.Errorf("%s = %s %d fee %d net %d source %q %s %s %s, want %s %d fee %d net %d source %q %s", tc.id,
				bt.Type, bt.Amount, bt.Fee, bt.Net, source, bt.ReportingCategory, bt.Currency, bt.Status,
				tc.typ, tc.amount, tc.fee, tc.net, tc.source, tc.category)
		}
		var feeSum int64
		for _, d := range bt.FeeDetails {
			feeSum += d.Amount
			if d.Currency != stripe.CurrencyUSD {
				t.Errorf("%s fee detail in %s", tc.id, d.Currency)
			}
		}
		if feeSum != bt.Fee {
			t.Errorf("%s fee_details add up to %d, fee is %d", tc.id, feeSum, bt.Fee)
		}
	}

	// The payout pays out the nets: 9680 - 2500 - 150 - 5500 = 1530.
	po := f.payout(t, ch, re, fee, dp)
	got, err := f.c.po.Get(po, nil)
	if err != nil || got.Amount != 1530 {
		t.Fatalf("payout amount = %v (err %v), want 1530", got, err)
	}
	byType := listTxns(t, f.c, &stripe.BalanceTransactionListParams{Type: stripe.String("refund"), Source: stripe.String("re_visit1001")})
	if !slices.Equal(txnIDs(byType), []string{re}) {
		t.Errorf("type=refund&source=re_visit1001 listed %v, want [%s]", txnIDs(byType), re)
	}
}

// TestBalanceTransactionPending: a transaction reads pending until its
// available_on passes, and a payout cannot take it before then.
func TestBalanceTransactionPending(t *testing.T) {
	f := newPayoutFixture(t)
	id := f.add(t, BalanceTransactionSeed{Type: "charge", Amount: 2000, Currency: "eur", AvailableOn: payoutEpoch.Add(48 * time.Hour)})
	if bt, err := f.c.bt.Get(id, nil); err != nil || bt.Status != stripe.BalanceTransactionStatusPending {
		t.Fatalf("before available_on: %v %v, want pending", bt, err)
	}
	if _, err := f.s.CreatePayout(f.acct, false, PayoutSeed{Automatic: true, TransactionIDs: []string{id}}); err == nil {
		t.Fatalf("a payout settled a pending transaction")
	}
	f.clock.Advance(48 * time.Hour)
	if bt, err := f.c.bt.Get(id, nil); err != nil || bt.Status != stripe.BalanceTransactionStatusAvailable {
		t.Fatalf("after available_on: %v %v, want available", bt, err)
	}
	f.payout(t, id)
}
