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

	stripe "github.com/stripe/stripe-go/v76"
)

// TestAdminPayout: one admin call makes a paid, reconciled automatic payout
// that the clinic's key then lists like any other.
func TestAdminPayout(t *testing.T) {
	s, base := startFake(t, WithAdminAPI())
	key, _ := addKey(s, "sk_test_", KeyOptions{})
	body := `{"key":"` + key + `","pay":true,"transactions":[
		{"type":"charge","amount":12500,"currency":"usd","source":"ch_demo1","fees":[{"amount":393,"type":"stripe_fee"}]},
		{"type":"refund","amount":-2500,"currency":"usd","source":"re_demo1"}]}`
	var got adminPayoutResponse
	if code := adminCall(t, base, http.MethodPost, "/_fake/payouts", body, &got); code != http.StatusOK {
		t.Fatalf("POST /_fake/payouts = %d", code)
	}
	c := clientsFor(base, key)
	po, err := c.po.Get(got.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if po.Amount != 12500-393-2500 || po.Status != stripe.PayoutStatusPaid || po.ReconciliationStatus != stripe.PayoutReconciliationStatusCompleted {
		t.Errorf("payout = %d %s %s, want 9607 paid completed", po.Amount, po.Status, po.ReconciliationStatus)
	}
	listed := txnIDs(listTxns(t, c, &stripe.BalanceTransactionListParams{Payout: stripe.String(got.ID)}))
	want := []string{po.BalanceTransaction.ID, got.Transactions[1], got.Transactions[0]}
	if !slices.Equal(listed, want) {
		t.Errorf("payout lists %v, want %v", listed, want)
	}

	for _, tc := range []struct {
		name, body string
		want       int
		msg        string
	}{
		{"no transactions", `{"key":"` + key + `"}`, http.StatusBadRequest, `"transactions" is required`},
		{"bad transaction", `{"key":"` + key + `","transactions":[{"type":"charge","amount":-5,"currency":"usd"}]}`,
			http.StatusBadRequest, "transactions[0]"},
		{"nets negative", `{"key":"` + key + `","transactions":[{"type":"refund","amount":-5,"currency":"usd"}]}`,
			http.StatusBadRequest, "payout:"},
		{"unknown account", `{"account":"acct_none","transactions":[{"type":"charge","amount":5,"currency":"usd"}]}`,
			http.StatusNotFound, "not found"},
	} {
		var e adminError
		if code := adminCall(t, base, http.MethodPost, "/_fake/payouts", tc.body, &e); code != tc.want || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("%s: got %d %q, want %d containing %q", tc.name, code, e.Error, tc.want, tc.msg)
		}
	}
}
