package fhirrelay

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/clinicpay/stripe-operator/internal/ledger"
)

// testPayout is a day's payout: two card payments (one with a PaymentIntent, one a bare
// charge), a refund, a dispute with its fee, and a Stripe fee booked on its own.
func testPayout(currency string, scale int64) ledger.Payout {
	items := []ledger.Item{
		{ID: "txn_ch1", Type: "charge", ReportingCategory: "charge", Amount: 6000 * scale, Fee: 204 * scale, SourceID: "ch_1", ChargeID: "ch_1",
			PaymentIntentID: "pi_1"},
		{ID: "txn_ch2", Type: "charge", ReportingCategory: "charge", Amount: 1500 * scale, Fee: 74 * scale, SourceID: "ch_2", ChargeID: "ch_2"},
		{ID: "txn_re1", Type: "refund", ReportingCategory: "refund", Amount: -500 * scale, SourceID: "re_1", ChargeID: "ch_1",
			PaymentIntentID: "pi_1"},
		{ID: "txn_dp1", Type: "adjustment", ReportingCategory: "dispute", Amount: -1500 * scale, Fee: 1500 * scale, SourceID: "dp_1",
			ChargeID: "ch_2"},
		{ID: "txn_fee1", Type: "stripe_fee", ReportingCategory: "fee", Amount: -200 * scale},
	}
	var sum int64
	for i := range items {
		items[i].Currency, items[i].Created = currency, 1_705_300_000+int64(i)
		items[i].Net = items[i].Amount - items[i].Fee
		sum += items[i].Net
	}
	return ledger.Payout{ID: "po_1", ClinicID: "clinic-a", Amount: sum, Currency: currency, ArrivalDate: 1_705_536_000,
		Created: 1_705_363_200, Items: items}
}

// TestPayoutReconciliationAddsUpToTheDeposit: one PaymentReconciliation per payout, keyed on the
// payout id, whose details add up exactly to the deposit in zero-, two- and three-decimal
// currencies, each detail naming its balance transaction and, for payments, the PaymentNotice.
func TestPayoutReconciliationAddsUpToTheDeposit(t *testing.T) {
	for _, tc := range []struct {
		currency, want string
		scale          int64
	}{
		{"usd", "3522.00", 100},
		{"jpy", "3522", 1},
		{"kwd", "3.522", 1},
	} {
		t.Run(tc.currency, func(t *testing.T) {
			p := testPayout(tc.currency, tc.scale)
			w, err := payoutReconciliation(p)
			if err != nil {
				t.Fatal(err)
			}
			if w.resourceType != "PaymentReconciliation" || w.key != (Identifier{System: SystemStripePayout, Value: "po_1"}) {
				t.Errorf("write %s keyed %+v", w.resourceType, w.key)
			}
			r := w.resource.(*PaymentReconciliation)
			if string(r.PaymentAmount.Value) != tc.want || r.PaymentAmount.Currency != strings.ToUpper(tc.currency) ||
				r.PaymentDate != "2024-01-18" {
				t.Errorf("deposit %s %s on %s, want %s %s on 2024-01-18", r.PaymentAmount.Value, r.PaymentAmount.Currency, r.PaymentDate, tc.want,
					strings.ToUpper(tc.currency))
			}
			sum := new(big.Rat)
			for _, d := range r.Detail {
				v, ok := new(big.Rat).SetString(string(d.Amount.Value))
				if !ok {
					t.Fatalf("detail amount %q is not a decimal", d.Amount.Value)
				}
				sum.Add(sum, v)
			}
			if want, _ := new(big.Rat).SetString(tc.want); sum.Cmp(want) != 0 {
				t.Errorf("details add up to %s, the deposit is %s", sum.FloatString(3), tc.want)
			}
			// 5 transactions, 3 of them with a fee.
			if len(r.Detail) != 8 {
				t.Fatalf("%d details, want 8", len(r.Detail))
			}
			first := r.Detail[0]
			if first.Identifier.Value != "txn_ch1" || first.Type.Coding[0].Code != "payment" || first.Request.Identifier.Value != "pi_1" ||
				first.Request.Identifier.System != SystemStripePaymentIntent || first.Payee.Identifier.Value != "clinic-a" {
				t.Errorf("first detail = %s", mustJSON(t, first))
			}
			if fee := r.Detail[1]; fee.Identifier.Value != "txn_ch1" || fee.Type.Text != "Stripe fee" || !strings.HasPrefix(string(fee.Amount.Value), "-") {
				t.Errorf("fee detail = %s", mustJSON(t, fee))
			}
			if bare := r.Detail[2]; bare.Request.Identifier.System != SystemStripeCharge || bare.Request.Identifier.Value != "ch_2" {
				t.Errorf("a payment without a PaymentIntent is referenced by %s", mustJSON(t, bare.Request))
			}
			if last := r.Detail[len(r.Detail)-1]; last.Request != nil || last.Type.Coding[0].Code != "adjustment" {
				t.Errorf("the lone Stripe fee = %s", mustJSON(t, last))
			}
		})
	}
}

// TestPayoutReconciliationRefusesAPartialPayout: a payout whose items do not add up (listed in
// part) is refused by name rather than recorded as if whole.
func TestPayoutReconciliationRefusesAPartialPayout(t *testing.T) {
	p := testPayout("usd", 100)
	p.Items = p.Items[:3]
	if _, err := payoutReconciliation(p); err == nil || !strings.Contains(err.Error(), "add up") {
		t.Errorf("err = %v, want the sum named", err)
	}
	p = testPayout("usd", 100)
	p.Currency = "dollars"
	for i := range p.Items {
		p.Items[i].Currency = "dollars"
	}
	if _, err := payoutReconciliation(p); err == nil || !strings.Contains(err.Error(), "ISO 4217") {
		t.Errorf("err = %v, want the currency named", err)
	}
}

// TestPayoutReconciliationIsValidR4: the FHIR validator accepts the resources in every kind of
// currency.
func TestPayoutReconciliationIsValidR4(t *testing.T) {
	cases := []struct {
		currency string
		scale    int64
	}{{"usd", 100}, {"jpy", 1}, {"kwd", 1}}
	resources := make([]json.RawMessage, 0, len(cases))
	for _, c := range cases {
		w, err := payoutReconciliation(testPayout(c.currency, c.scale))
		if err != nil {
			t.Fatal(err)
		}
		resources = append(resources, json.RawMessage(mustJSON(t, w.resource)))
	}
	results, code := runValidator(t, resources)
	for i, r := range results {
		if !r.Valid {
			t.Errorf("payout %d: invalid: %+v", i, r.Messages)
		}
	}
	if code != 0 {
		t.Errorf("validator exit code %d", code)
	}
}
