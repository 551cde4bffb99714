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
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// payoutHook is a webhook receiver that verifies each payout event and, on
// payout.paid, lists the payout's transactions the way a hasty consumer would.
type payoutHook struct {
	mu     sync.Mutex
	events []stripe.Event
	// listedOnPaid is how many transactions ?payout= listed during payout.paid.
	listedOnPaid int
	errs         []string
}

func newPayoutHook(t *testing.T, secret func() string, c clients) (*payoutHook, string) {
	t.Helper()
	h := &payoutHook{listedOnPaid: -1}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), secret(),
			// The fake's clock is in the past; the signature itself is still checked.
			webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true, IgnoreTolerance: true})
		h.mu.Lock()
		defer h.mu.Unlock()
		if err != nil {
			h.errs = append(h.errs, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.events = append(h.events, ev)
		if ev.Type == "payout.paid" {
			it := c.bt.List(&stripe.BalanceTransactionListParams{Payout: stripe.String(ev.GetObjectValue("id"))})
			n := 0
			for it.Next() {
				n++
			}
			if it.Err() != nil {
				h.errs = append(h.errs, it.Err().Error())
			}
			h.listedOnPaid = n
		}
	}))
	t.Cleanup(srv.Close)
	return h, srv.URL
}

// TestPayoutEvents: paying an automatic payout sends payout.paid, then
// payout.reconciliation_completed, signed and rendered in each endpoint's
// API version; only the second finds the payout's transactions listable.
func TestPayoutEvents(t *testing.T) {
	f := newPayoutFixture(t)
	types := []string{"payout.created", "payout.paid", "payout.reconciliation_completed"}
	hooks := map[string]*payoutHook{}
	for _, version := range []string{stripe.APIVersion, "2024-06-20"} {
		var mu sync.Mutex
		var secret string
		h, url := newPayoutHook(t, func() string { mu.Lock(); defer mu.Unlock(); return secret }, f.c)
		p := endpointParams(url, types...)
		p.APIVersion = stripe.String(version)
		we, err := f.c.we.New(p)
		if err != nil {
			t.Fatalf("create endpoint: %v", err)
		}
		mu.Lock()
		secret = we.Secret
		mu.Unlock()
		hooks[version] = h
	}
	ids := []string{f.charge(t, "usd", 10000, 320), f.charge(t, "usd", 4000, 146)}
	po := f.payout(t, ids...)
	if err := f.s.PayPayout(f.acct, false, po); err != nil {
		t.Fatalf("PayPayout: %v", err)
	}

	for version, h := range hooks {
		h.mu.Lock()
		if len(h.errs) > 0 {
			t.Errorf("%s endpoint: %v", version, h.errs)
		}
		var got []string
		for _, ev := range h.events {
			got = append(got, string(ev.Type))
			if ev.APIVersion != version {
				t.Errorf("%s endpoint got %s in API version %s", version, ev.Type, ev.APIVersion)
			}
			var obj stripe.Payout
			if err := json.Unmarshal(ev.Data.Raw, &obj); err != nil {
				t.Fatalf("decode %s: %v", ev.Type, err)
			}
			wantStatus, wantRecon := stripe.PayoutStatusPending, stripe.PayoutReconciliationStatusInProgress
			switch ev.Type {
			case "payout.paid":
				wantStatus = stripe.PayoutStatusPaid
			case "payout.reconciliation_completed":
				wantStatus, wantRecon = stripe.PayoutStatusPaid, stripe.PayoutReconciliationStatusCompleted
			}
			if obj.ID != po || obj.Amount != 13534 || obj.Status != wantStatus || obj.ReconciliationStatus != wantRecon {
				t.Errorf("%s: payout %s %d %s %s, want %s 13534 %s %s", ev.Type, obj.ID, obj.Amount, obj.Status,
					obj.ReconciliationStatus, po, wantStatus, wantRecon)
			}
		}
		if strings.Join(got, ",") != strings.Join(types, ",") {
			t.Errorf("%s endpoint got %v, want %v in order", version, got, types)
		}
		if h.listedOnPaid != 1 {
			t.Errorf("%s endpoint listed %d transactions on payout.paid, want the debit alone before reconciliation", version, h.listedOnPaid)
		}
		h.mu.Unlock()
	}
	if n := len(listTxns(t, f.c, &stripe.BalanceTransactionListParams{Payout: stripe.String(po)})); n != 3 {
		t.Errorf("after reconciliation the payout lists %d transactions, want 3", n)
	}
}

// TestPayoutRoutesFaultsAndCounters: the new routes are counted and go
// through fault injection like the others.
func TestPayoutRoutesFaultsAndCounters(t *testing.T) {
	f := newPayoutFixture(t)
	po := f.payout(t, f.charge(t, "usd", 5000, 175))
	f.s.InjectFault(Fault{Key: f.key, PathPrefix: PathBalanceTxns, Status: http.StatusServiceUnavailable, Times: 1})
	it := f.c.bt.List(&stripe.BalanceTransactionListParams{Payout: stripe.String(po)})
	it.Next()
	wantStripeError(t, it.Err(), http.StatusServiceUnavailable, stripe.ErrorTypeAPI, "", "Sorry, something went wrong")
	if txns := listTxns(t, f.c, &stripe.BalanceTransactionListParams{Payout: stripe.String(po)}); len(txns) != 1 {
		t.Errorf("after the fault the list has %d transactions, want 1", len(txns))
	}
	if _, err := f.c.po.Get(po, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tmpl string
		want int
	}{{PathBalanceTxns, 2}, {PathPayout, 1}, {PathPayouts, 0}} {
		if n := f.s.CallsTo(f.key, http.MethodGet, tc.tmpl); n != tc.want {
			t.Errorf("CallsTo(GET %s) = %d, want %d", tc.tmpl, n, tc.want)
		}
	}
}

// TestPayoutSeedValidation: the admin API refuses what Stripe would never
// produce.
func TestPayoutSeedValidation(t *testing.T) {
	f := newPayoutFixture(t)
	charge := f.charge(t, "usd", 5000, 175)
	refund := f.add(t, BalanceTransactionSeed{Type: "refund", Amount: -6000, Currency: "usd"})
	euro := f.charge(t, "eur", 3000, 100)
	settled := f.charge(t, "usd", 1000, 59)
	f.payout(t, settled)

	for _, tc := range []struct {
		name string
		seed BalanceTransactionSeed
	}{
		{"unknown type", BalanceTransactionSeed{Type: "dispute", Amount: -100, Currency: "usd"}},
		{"payout type", BalanceTransactionSeed{Type: "payout", Amount: -100, Currency: "usd"}},
		{"positive refund", BalanceTransactionSeed{Type: "refund", Amount: 100, Currency: "usd"}},
		{"negative charge", BalanceTransactionSeed{Type: "charge", Amount: -100, Currency: "usd"}},
		{"zero", BalanceTransactionSeed{Type: "adjustment", Currency: "usd"}},
		{"fee type", BalanceTransactionSeed{Type: "charge", Amount: 100, Currency: "usd", Fees: []FeeDetail{{Amount: 3, Type: "surcharge"}}}},
	} {
		if _, err := f.s.AddBalanceTransaction(f.acct, false, tc.seed); err == nil {
			t.Errorf("%s: AddBalanceTransaction accepted %+v", tc.name, tc.seed)
		}
	}
	if _, err := f.s.AddBalanceTransaction("acct_unknown", false, BalanceTransactionSeed{Type: "charge", Amount: 100, Currency: "usd"}); err == nil {
		t.Errorf("AddBalanceTransaction accepted an unknown account")
	}
	for _, tc := range []struct {
		name string
		seed PayoutSeed
	}{
		{"nets to negative", PayoutSeed{Automatic: true, TransactionIDs: []string{charge, refund}}},
		{"two currencies", PayoutSeed{Automatic: true, TransactionIDs: []string{charge, euro}}},
		{"already settled", PayoutSeed{Automatic: true, TransactionIDs: []string{settled}}},
		{"listed twice", PayoutSeed{Automatic: true, TransactionIDs: []string{charge, charge}}},
		{"unknown", PayoutSeed{Automatic: true, TransactionIDs: []string{"txn_unknown"}}},
		{"none", PayoutSeed{Automatic: true}},
		{"automatic with amount", PayoutSeed{Automatic: true, TransactionIDs: []string{charge}, Amount: 4825}},
		{"manual with transactions", PayoutSeed{TransactionIDs: []string{charge}, Amount: 4825, Currency: "usd"}},
		{"manual without amount", PayoutSeed{Currency: "usd"}},
		{"method", PayoutSeed{Amount: 100, Currency: "usd", Method: "wire"}},
	} {
		if _, err := f.s.CreatePayout(f.acct, false, tc.seed); err == nil {
			t.Errorf("%s: CreatePayout accepted %+v", tc.name, tc.seed)
		}
	}
	// A refused payout settles nothing: the charge is still free to pay out.
	f.payout(t, charge)
	if err := f.s.PayPayout(f.acct, true, "po_unknown"); err == nil {
		t.Errorf("PayPayout accepted an unknown payout")
	}
}

// TestPayoutFailsAfterPaid: a paid payout can still fail; its amount comes
// back to the balance as a payout_failure transaction that the next payout
// settles, and payout.failed reaches the endpoint.
func TestPayoutFailsAfterPaid(t *testing.T) {
	f := newPayoutFixture(t)
	rcv := newReceiver(t, http.StatusOK)
	if _, err := f.c.we.New(endpointParams(rcv.srv.URL, "payout.failed")); err != nil {
		t.Fatalf("create endpoint: %v", err)
	}
	po := f.payout(t, f.charge(t, "usd", 5000, 175))
	if err := f.s.PayPayout(f.acct, false, po); err != nil {
		t.Fatalf("PayPayout: %v", err)
	}
	if err := f.s.FailPayout(f.acct, false, po, "account_closed"); err != nil {
		t.Fatalf("FailPayout: %v", err)
	}
	if err := f.s.FailPayout(f.acct, false, po, ""); err == nil {
		t.Errorf("a failed payout failed again")
	}
	got, err := f.c.po.Get(po, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != stripe.PayoutStatusFailed || got.FailureCode != stripe.PayoutFailureCodeAccountClosed ||
		got.FailureMessage == "" || got.FailureBalanceTransaction == nil {
		t.Fatalf("failed payout = %s %s %q %v", got.Status, got.FailureCode, got.FailureMessage, got.FailureBalanceTransaction)
	}
	back, err := f.c.bt.Get(got.FailureBalanceTransaction.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.Type != stripe.BalanceTransactionTypePayoutFailure || back.Amount != 4825 || back.Net != 4825 ||
		back.ReportingCategory != stripe.BalanceTransactionReportingCategoryPayoutReversal || back.Source.ID != po {
		t.Errorf("failure transaction = %s %d net %d %s source %s", back.Type, back.Amount, back.Net, back.ReportingCategory, back.Source.ID)
	}
	again := f.payout(t, back.ID)
	if p, err := f.c.po.Get(again, nil); err != nil || p.Amount != 4825 {
		t.Errorf("the next payout = %v (err %v), want 4825", p, err)
	}
	bodies, _ := rcv.received()
	if len(bodies) != 1 || !strings.Contains(string(bodies[0]), `"type": "payout.failed"`) {
		t.Errorf("endpoint received %d bodies, want one payout.failed", len(bodies))
	}
}
