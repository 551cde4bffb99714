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
	"strings"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// TestPayoutFilterRefusesManualPayout: Stripe cannot tell what a manual
// payout settled and refuses the payout filter for it; an unknown payout is a
// 404 on the payout parameter.
func TestPayoutFilterRefusesManualPayout(t *testing.T) {
	f := newPayoutFixture(t)
	f.charge(t, "usd", 5000, 175)
	manual, err := f.s.CreatePayout(f.acct, false, PayoutSeed{Amount: 4825, Currency: "usd"})
	if err != nil {
		t.Fatalf("CreatePayout manual: %v", err)
	}
	if err := f.s.PayPayout(f.acct, false, manual); err != nil {
		t.Fatalf("PayPayout manual: %v", err)
	}
	got, err := f.c.po.Get(manual, nil)
	if err != nil {
		t.Fatalf("get manual payout: %v", err)
	}
	if got.Automatic || got.Status != stripe.PayoutStatusPaid || got.ReconciliationStatus != stripe.PayoutReconciliationStatusNotApplicable {
		t.Errorf("manual payout = automatic=%v %s %s, want false paid not_applicable", got.Automatic, got.Status, got.ReconciliationStatus)
	}

	refused := f.c.bt.List(&stripe.BalanceTransactionListParams{Payout: stripe.String(manual)})
	if refused.Next() {
		t.Fatalf("the payout filter listed a manual payout's transactions")
	}
	wantStripeError(t, refused.Err(), http.StatusBadRequest, stripe.ErrorTypeInvalidRequest, "",
		"Balance transaction history can only be filtered on automatic transfers, not manual.")

	it := f.c.bt.List(&stripe.BalanceTransactionListParams{Payout: stripe.String("po_doesnotexist")})
	it.Next()
	se := gotStripeError(t, it.Err(), http.StatusNotFound, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing,
		"No such payout: 'po_doesnotexist'")
	if se.Param != "payout" {
		t.Errorf("param = %q, want payout", se.Param)
	}
	_, err = f.c.po.Get("po_doesnotexist", nil)
	wantStripeError(t, err, http.StatusNotFound, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "No such payout")
	_, err = f.c.bt.Get("txn_doesnotexist", nil)
	wantStripeError(t, err, http.StatusNotFound, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing,
		"No such balance transaction: 'txn_doesnotexist'")
}

// TestPayoutPermissions: a restricted key needs rak_payout_read for payouts
// and rak_balance_read for balance transactions, and the 403 names the one
// missing.
func TestPayoutPermissions(t *testing.T) {
	f := newPayoutFixture(t)
	po := f.payout(t, f.charge(t, "usd", 5000, 175))
	webhooksOnly, _ := addKey(f.s, "rk_test_", KeyOptions{Account: f.acct, Permissions: []string{PermWebhookWrite}})
	payoutsOnly, _ := addKey(f.s, "rk_test_", KeyOptions{Account: f.acct, Permissions: []string{PermPayoutRead}})
	both, _ := addKey(f.s, "rk_test_", KeyOptions{Account: f.acct, Permissions: []string{PermPayoutRead, PermBalanceRead}})

	listPayouts := func(c clients) error {
		it := c.po.List(&stripe.PayoutListParams{})
		it.Next()
		return it.Err()
	}
	listTxns := func(c clients) error {
		it := c.bt.List(&stripe.BalanceTransactionListParams{Payout: stripe.String(po)})
		it.Next()
		return it.Err()
	}
	for _, tc := range []struct {
		name               string
		key                string
		payoutPerm, btPerm string // the permission a 403 names, "" for success
	}{
		{"webhooks only", webhooksOnly, PermPayoutRead, PermBalanceRead},
		{"payouts only", payoutsOnly, "", PermBalanceRead},
		{"payouts and balance", both, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clientsFor(f.url, tc.key)
			for _, call := range []struct {
				err  error
				perm string
			}{{listPayouts(c), tc.payoutPerm}, {listTxns(c), tc.btPerm}} {
				if call.perm == "" {
					if call.err != nil {
						t.Errorf("want success, got %v", call.err)
					}
					continue
				}
				wantStripeError(t, call.err, http.StatusForbidden, stripe.ErrorTypeInvalidRequest, "",
					"Having the '"+call.perm+"' permission would allow this request to continue.")
			}
		})
	}
}

// TestPayoutCurrencies: zero- and three-decimal amounts round-trip exactly,
// and a charged three-decimal amount must end in 0.
func TestPayoutCurrencies(t *testing.T) {
	f := newPayoutFixture(t)
	for _, tc := range []struct {
		currency    string
		amount, fee int64
		digits      int
	}{
		{"jpy", 12345, 444, 0}, // ¥12,345
		{"krw", 250000, 8250, 0},
		{"bhd", 12340, 375, 3}, // 12.340 BD; the fee, Stripe's own, need not end in 0
		{"kwd", 99990, 2899, 3},
		{"usd", 12345, 388, 2},
	} {
		t.Run(tc.currency, func(t *testing.T) {
			if d := MinorUnitDigits(tc.currency); d != tc.digits {
				t.Errorf("MinorUnitDigits(%s) = %d, want %d", tc.currency, d, tc.digits)
			}
			id := f.charge(t, tc.currency, tc.amount, tc.fee)
			po := f.payout(t, id)
			txns := listTxns(t, f.c, &stripe.BalanceTransactionListParams{Payout: stripe.String(po)})
			if len(txns) != 1 || txns[0].Type != stripe.BalanceTransactionTypePayout {
				t.Fatalf("before reconciliation the payout lists %v, want its debit alone", txnIDs(txns))
			}
			if err := f.s.PayPayout(f.acct, false, po); err != nil {
				t.Fatalf("PayPayout: %v", err)
			}
			txns = listTxns(t, f.c, &stripe.BalanceTransactionListParams{Payout: stripe.String(po)})
			if len(txns) != 2 || txns[1].ID != id {
				t.Fatalf("payout lists %v, want its debit and %s", txnIDs(txns), id)
			}
			ch := txns[1]
			if string(ch.Currency) != tc.currency || ch.Amount != tc.amount || ch.Fee != tc.fee || ch.Net != tc.amount-tc.fee {
				t.Errorf("charge = %d fee %d net %d %s, want %d fee %d %s", ch.Amount, ch.Fee, ch.Net, ch.Currency, tc.amount, tc.fee, tc.currency)
			}
			if txns[0].Amount != -(tc.amount-tc.fee) || string(txns[0].Currency) != tc.currency {
				t.Errorf("debit = %d %s, want %d %s", txns[0].Amount, txns[0].Currency, -(tc.amount - tc.fee), tc.currency)
			}
		})
	}
	if _, err := f.s.AddBalanceTransaction(f.acct, false, BalanceTransactionSeed{Type: "charge", Amount: 12345, Currency: "bhd"}); err == nil ||
		!strings.Contains(err.Error(), "divisible by 10") {
		t.Errorf("a 12.345 BD charge was accepted (err %v)", err)
	}
	if _, err := f.s.AddBalanceTransaction(f.acct, false, BalanceTransactionSeed{Type: "charge", Amount: 100, Currency: "USD"}); err == nil {
		t.Errorf("an upper-case currency was accepted")
	}
}

// TestPayoutModeSeparation: test-mode payouts and transactions are invisible
// to the same account's live key, and the other way round.
func TestPayoutModeSeparation(t *testing.T) {
	f := newPayoutFixture(t)
	live, _ := addKey(f.s, "sk_live_", KeyOptions{Account: f.acct})
	lc := clientsFor(f.url, live)
	testTxn := f.charge(t, "usd", 5000, 175)
	testPo := f.payout(t, testTxn)
	liveTxn, err := f.s.AddBalanceTransaction(f.acct, true, BalanceTransactionSeed{Type: "charge", Amount: 7000, Currency: "usd"})
	if err != nil {
		t.Fatalf("AddBalanceTransaction live: %v", err)
	}
	if _, err := f.s.CreatePayout(f.acct, true, PayoutSeed{Automatic: true, TransactionIDs: []string{testTxn}}); err == nil {
		t.Fatalf("a live payout settled a test-mode transaction")
	}
	livePo, err := f.s.CreatePayout(f.acct, true, PayoutSeed{Automatic: true, TransactionIDs: []string{liveTxn}})
	if err != nil {
		t.Fatalf("CreatePayout live: %v", err)
	}

	_, err = lc.po.Get(testPo, nil)
	wantStripeError(t, err, http.StatusNotFound, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "No such payout")
	_, err = lc.bt.Get(testTxn, nil)
	wantStripeError(t, err, http.StatusNotFound, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "No such balance transaction")
	it := lc.bt.List(&stripe.BalanceTransactionListParams{Payout: stripe.String(testPo)})
	it.Next()
	wantStripeError(t, it.Err(), http.StatusNotFound, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeResourceMissing, "No such payout")

	for _, tc := range []struct {
		name   string
		c      clients
		po     string
		live   bool
		txnIDs []string
	}{{"test", f.c, testPo, false, []string{testTxn}}, {"live", lc, livePo, true, []string{liveTxn}}} {
		pit := tc.c.po.List(&stripe.PayoutListParams{})
		var pos []string
		for pit.Next() {
			pos = append(pos, pit.Payout().ID)
			if pit.Payout().Livemode != tc.live {
				t.Errorf("%s key listed a payout with livemode=%v", tc.name, pit.Payout().Livemode)
			}
		}
		if pit.Err() != nil || !slices.Equal(pos, []string{tc.po}) {
			t.Errorf("%s key lists payouts %v (err %v), want [%s]", tc.name, pos, pit.Err(), tc.po)
		}
		all := txnIDs(listTxns(t, tc.c, &stripe.BalanceTransactionListParams{Type: stripe.String("charge")}))
		if !slices.Equal(all, tc.txnIDs) {
			t.Errorf("%s key lists charges %v, want %v", tc.name, all, tc.txnIDs)
		}
	}
}

// TestListPayouts: newest first, the documented filters, and Stripe's quirk
// of ignoring status=in_transit.
func TestListPayouts(t *testing.T) {
	f := newPayoutFixture(t)
	pos := make([]string, 0, 5)
	for i := range 5 {
		po := f.payout(t, f.charge(t, "usd", int64(1000*(i+1)), 59))
		pos = append(pos, po)
		f.clock.Advance(24 * time.Hour)
	}
	if err := f.s.PayPayout(f.acct, false, pos[0]); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SendPayoutInTransit(f.acct, false, pos[1]); err != nil {
		t.Fatal(err)
	}
	if err := f.s.PayPayout(f.acct, false, pos[1]); err != nil {
		t.Fatal(err)
	}
	if err := f.s.PayPayout(f.acct, false, pos[1]); err == nil {
		t.Errorf("a paid payout was paid again")
	}
	if err := f.s.SendPayoutInTransit(f.acct, false, pos[2]); err != nil {
		t.Fatal(err)
	}
	list := func(p *stripe.PayoutListParams) []string {
		t.Helper()
		it := f.c.po.List(p)
		var ids []string
		for it.Next() {
			ids = append(ids, it.Payout().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("list payouts: %v", err)
		}
		return ids
	}
	newestFirst := slices.Clone(pos)
	slices.Reverse(newestFirst)
	two := &stripe.PayoutListParams{}
	two.Limit = stripe.Int64(2)
	if got := list(two); !slices.Equal(got, newestFirst) {
		t.Errorf("pages of 2 list %v, want %v", got, newestFirst)
	}
	if got := list(&stripe.PayoutListParams{Status: stripe.String("paid")}); !slices.Equal(got, []string{pos[1], pos[0]}) {
		t.Errorf("status=paid lists %v, want %v", got, []string{pos[1], pos[0]})
	}
	if got := list(&stripe.PayoutListParams{Status: stripe.String("in_transit")}); !slices.Equal(got, newestFirst) {
		t.Errorf("status=in_transit lists %v, want every payout as Stripe does", got)
	}
	// Payout i is created about 25 h after payout i-1 and arrives two days after
	// its creation: arrivals after pos[0]'s and within 3 days of it are pos[1]'s and pos[2]'s.
	p0, err := f.c.po.Get(pos[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	window := &stripe.PayoutListParams{ArrivalDateRange: &stripe.RangeQueryParams{
		GreaterThan: p0.ArrivalDate, LesserThanOrEqual: p0.ArrivalDate + int64(3*24*time.Hour/time.Second)}}
	if got := list(window); !slices.Equal(got, []string{pos[2], pos[1]}) {
		t.Errorf("arrival_date window lists %v, want %v", got, []string{pos[2], pos[1]})
	}
	for _, tc := range []struct {
		name string
		p    *stripe.PayoutListParams
		msg  string
	}{
		{"status", &stripe.PayoutListParams{Status: stripe.String("sent")}, "Invalid status"},
		{"limit 0", &stripe.PayoutListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(0)}}, "greater than or equal to 1"},
		{"limit 101", &stripe.PayoutListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(101)}}, "less than or equal to 100"},
		{"cursor", &stripe.PayoutListParams{ListParams: stripe.ListParams{StartingAfter: stripe.String("po_gone")}}, "No such payout: 'po_gone'"},
	} {
		it := f.c.po.List(tc.p)
		it.Next()
		se := asStripeError(t, it.Err())
		if se.HTTPStatusCode != http.StatusBadRequest || se.Type != stripe.ErrorTypeInvalidRequest || !strings.Contains(se.Msg, tc.msg) {
			t.Errorf("%s: got %d %s %q, want 400 invalid_request_error %q", tc.name, se.HTTPStatusCode, se.Type, se.Msg, tc.msg)
		}
	}
}
