package stripeclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// balanceTxnJSON is a balance transaction as Stripe lists it with expand[]=data.source.
func balanceTxnJSON(i int, typ string, source map[string]any) map[string]any {
	return map[string]any{
		"id": fmt.Sprintf("txn_%04d", i), "object": "balance_transaction", "type": typ, "reporting_category": typ,
		"amount": 1000 + i, "fee": 59, "net": 1000 + i - 59, "currency": "usd", "created": 1700000000 + i,
		"available_on": 1700100000, "status": "available", "source": source,
	}
}

// TestListPayoutTransactionsPagesAndNamesPayments: 250 transactions in pages of 100, each
// request filtered by the payout with its source expanded, and each item naming the payment
// its expanded source belongs to.
func TestListPayoutTransactionsPagesAndNamesPayments(t *testing.T) {
	const total = 250
	all := make([]map[string]any, 0, total)
	for i := range total {
		var src map[string]any
		switch i % 4 {
		case 0:
			src = map[string]any{"id": fmt.Sprintf("ch_%d", i), "object": "charge", "payment_intent": fmt.Sprintf("pi_%d", i)}
		case 1:
			src = map[string]any{"id": fmt.Sprintf("re_%d", i), "object": "refund", "charge": fmt.Sprintf("ch_r%d", i),
				"payment_intent": fmt.Sprintf("pi_r%d", i)}
		case 2:
			src = map[string]any{"id": fmt.Sprintf("dp_%d", i), "object": "dispute", "charge": fmt.Sprintf("ch_d%d", i),
				"payment_intent": fmt.Sprintf("pi_d%d", i)}
		default:
			src = nil // a Stripe fee booked without a source
		}
		all = append(all, balanceTxnJSON(i, []string{"charge", "refund", "dispute", "stripe_fee"}[i%4], src))
	}
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("payout") != "po_1" || q.Get("expand[0]") != "data.source" {
			writeStripeError(w, http.StatusBadRequest, "invalid_request_error", "", "unexpected query "+r.URL.RawQuery, "")
			return
		}
		start := 0
		if after := q.Get("starting_after"); after != "" {
			n, _ := strconv.Atoi(after[len("txn_"):])
			start = n + 1
		}
		end := min(start+100, total)
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "url": "/v1/balance_transactions", "has_more": end < total,
			"data": all[start:end]})
	})
	c := testFactory(t, srv.URL).For(skTest, v1alpha1.ModeTest, "")
	got, err := c.ListPayoutTransactions(context.Background(), "po_1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != total {
		t.Fatalf("%d transactions, want %d", len(got), total)
	}
	for i, bt := range got {
		if bt.ID != fmt.Sprintf("txn_%04d", i) || bt.Net != bt.Amount-bt.Fee || bt.Currency != "usd" {
			t.Fatalf("item %d = %+v", i, bt)
		}
	}
	want := []BalanceTransaction{got[0], got[1], got[2], got[3]}
	if want[0].ChargeID != "ch_0" || want[0].PaymentIntentID != "pi_0" || want[0].SourceID != "ch_0" {
		t.Errorf("charge item = %+v", want[0])
	}
	if want[1].ChargeID != "ch_r1" || want[1].PaymentIntentID != "pi_r1" || want[1].SourceID != "re_1" {
		t.Errorf("refund item = %+v", want[1])
	}
	if want[2].ChargeID != "ch_d2" || want[2].PaymentIntentID != "pi_d2" || want[2].SourceID != "dp_2" {
		t.Errorf("dispute item = %+v", want[2])
	}
	if want[3].SourceID != "" || want[3].ChargeID != "" || want[3].Type != "stripe_fee" {
		t.Errorf("fee item = %+v", want[3])
	}
	reqs := rec.all()
	if len(reqs) != 3 || reqs[0].Limit != "100" || reqs[1].StartingAfter != "txn_0099" || reqs[2].StartingAfter != "txn_0199" {
		t.Errorf("requests = %+v, want 3 pages of 100 chained by starting_after", reqs)
	}
}

// TestListPaidPayoutsFiltersPaidByArrival: status=paid and arrival_date[gte] go to Stripe,
// pages follow has_more, and the fields the reconciliation needs are decoded.
func TestListPaidPayoutsFiltersPaidByArrival(t *testing.T) {
	since := time.Unix(1_700_000_000, 0)
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("status") != "paid" || q.Get("arrival_date[gte]") != "1700000000" {
			writeStripeError(w, http.StatusBadRequest, "invalid_request_error", "", "unexpected query "+r.URL.RawQuery, "")
			return
		}
		page := []map[string]any{{"id": "po_2", "object": "payout", "amount": 123456, "currency": "jpy", "status": "paid",
			"automatic": true, "arrival_date": 1700200000, "created": 1700100000, "reconciliation_status": "completed", "livemode": true}}
		if q.Get("starting_after") == "po_2" {
			page = []map[string]any{{"id": "po_1", "object": "payout", "amount": 1005, "currency": "kwd", "status": "paid",
				"automatic": false, "arrival_date": 1700000000, "created": 1699900000, "reconciliation_status": "not_applicable"}}
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "url": "/v1/payouts", "has_more": q.Get("starting_after") == "",
			"data": page})
	})
	got, err := testFactory(t, srv.URL).For(skTest, v1alpha1.ModeTest, "").ListPaidPayouts(context.Background(), since)
	if err != nil {
		t.Fatal(err)
	}
	want := []Payout{
		{ID: "po_2", Amount: 123456, Currency: "jpy", Status: "paid", ReconciliationStatus: "completed", Automatic: true,
			ArrivalDate: 1700200000, Created: 1700100000, Livemode: true},
		{ID: "po_1", Amount: 1005, Currency: "kwd", Status: "paid", ReconciliationStatus: "not_applicable",
			ArrivalDate: 1700000000, Created: 1699900000},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("payouts = %+v\nwant %+v", got, want)
	}
	if n := len(rec.all()); n != 2 {
		t.Errorf("%d requests, want 2 pages", n)
	}
}

// TestPayoutListingNamesTheMissingPermission: a restricted key without balance or payout read
// access gets Stripe's 403, classified PermissionDenied with the permission Stripe named, so the
// condition can tell the clinic which one to grant.
func TestPayoutListingNamesTheMissingPermission(t *testing.T) {
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		perm := "rak_balance_read"
		if r.URL.Path == "/v1/payouts" {
			perm = "rak_payout_read"
		}
		writeStripeError(w, http.StatusForbidden, "invalid_request_error", "", "The provided key 'rk_test_*********QQZZ' does not "+
			"have the required permissions for this endpoint on account 'acct_1'. Having the '"+perm+"' permission would allow this "+
			"request to continue.", "")
	})
	c := testFactory(t, srv.URL).For(rkTest, v1alpha1.ModeTest, "")
	_, errTxn := c.ListPayoutTransactions(context.Background(), "po_1")
	_, errPayouts := c.ListPaidPayouts(context.Background(), time.Now())
	for perm, err := range map[string]error{"rak_balance_read": errTxn, "rak_payout_read": errPayouts} {
		var se *Error
		if !errors.As(err, &se) || se.Kind != KindPermissionDenied || se.Permission != perm {
			t.Errorf("err = %v, want PermissionDenied naming %s", err, perm)
		}
		assertNoKeyMaterial(t, "error", fmt.Sprint(err))
	}
}

// TestPayoutListingIsBounded: a server that always answers has_more does not keep the client
// paging forever, and an empty payout id never reaches Stripe.
func TestPayoutListingIsBounded(t *testing.T) {
	var n atomic.Int32
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "has_more": true,
			"data": []map[string]any{{"id": fmt.Sprintf("po_%d", i), "object": "payout"}}})
	})
	c := testFactory(t, srv.URL).For(skTest, v1alpha1.ModeTest, "")
	if _, err := c.ListPaidPayouts(context.Background(), time.Now()); err == nil {
		t.Error("endless has_more: no error")
	}
	if got := n.Load(); got != maxPayoutPages {
		t.Errorf("%d requests, want the cap of %d", got, maxPayoutPages)
	}
	var se *Error
	if _, err := c.ListPayoutTransactions(context.Background(), ""); !errors.As(err, &se) || se.Kind != KindInvalidRequest {
		t.Errorf("empty payout id: err = %v, want InvalidRequest", err)
	}
	if n.Load() != maxPayoutPages {
		t.Error("an empty payout id reached Stripe")
	}
}
