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
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
)

// TestPayPayoutUnreconciled: a payout paid but still reconciling lists its
// debit alone; once CompletePayoutReconciliation runs it lists what it settled.
func TestPayPayoutUnreconciled(t *testing.T) {
	f := newPayoutFixture(t)
	a, b := f.charge(t, "usd", 5000, 175), f.charge(t, "usd", 7000, 233)
	po := f.payout(t, a, b)
	if err := f.s.CompletePayoutReconciliation(f.acct, false, po); err == nil {
		t.Fatal("a pending payout's reconciliation completed")
	}
	if err := f.s.PayPayoutUnreconciled(f.acct, false, po); err != nil {
		t.Fatal(err)
	}
	p, err := f.c.po.Get(po, nil)
	if err != nil || p.Status != stripe.PayoutStatusPaid || p.ReconciliationStatus != stripe.PayoutReconciliationStatusInProgress {
		t.Fatalf("payout = %+v, %v; want paid and in progress", p, err)
	}
	if got := listTxns(t, f.c, &stripe.BalanceTransactionListParams{Payout: stripe.String(po)}); len(got) != 1 || got[0].Type != "payout" {
		t.Fatalf("before reconciliation: %v, want the payout's debit alone", txnIDs(got))
	}
	if err := f.s.CompletePayoutReconciliation(f.acct, false, po); err != nil {
		t.Fatal(err)
	}
	if got := listTxns(t, f.c, &stripe.BalanceTransactionListParams{Payout: stripe.String(po)}); len(got) != 3 {
		t.Fatalf("after reconciliation: %v, want the debit and both charges", txnIDs(got))
	}
	if err := f.s.CompletePayoutReconciliation(f.acct, false, po); err == nil {
		t.Error("a completed reconciliation completed again")
	}
}
