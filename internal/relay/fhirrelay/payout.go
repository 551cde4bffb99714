package fhirrelay

import (
	"fmt"
	"time"

	"github.com/clinicpay/stripe-operator/internal/ledger"
)

// payoutReconciliation maps a paid payout to one PaymentReconciliation, FHIR R4's resource for
// "a bulk payment with per-item details": the deposit as paymentAmount and paymentDate (its
// arrival), and one detail per amount the deposit is made of, so the clinic's finance team can
// match the bank line to the payments it contains. The details add up to the deposit:
//   - each balance transaction's gross amount, typed "payment" for payments and "adjustment"
//     for refunds, disputes, fees and adjustments (the Stripe type in the text), identified by
//     the transaction id and, when it belongs to a payment, requesting the PaymentNotice of
//     that payment (referenced logically, by the payment's Stripe id, as written for it);
//   - and, where Stripe kept a fee, that fee as a negative "adjustment" of the same transaction.
//
// It is written once per payout: a conditional create keyed on the payout id.
func payoutReconciliation(p ledger.Payout) (write, error) {
	if err := p.Check(); err != nil {
		return write{}, err
	}
	code, err := currencyCode(p.Currency)
	if err != nil {
		return write{}, fmt.Errorf("payout %s: %w", p.ID, err)
	}
	key := Identifier{System: SystemStripePayout, Value: p.ID}
	clinic := &Reference{Type: "Organization", Identifier: &Identifier{System: SystemClinicID, Value: p.ClinicID}}
	arrival := time.Unix(p.ArrivalDate, 0).UTC().Format(time.DateOnly)
	amount := moneyIn(p.Amount, code)
	details := make([]ReconciliationItem, 0, len(p.Items)*2)
	for _, it := range p.Items {
		id := &Identifier{System: SystemStripeBalanceTransaction, Value: it.ID}
		date := time.Unix(it.Created, 0).UTC().Format(time.DateOnly)
		gross := moneyIn(it.Amount, code)
		kind, display := paymentTypeAdjustment, "Adjustment"
		if isPaymentItem(it) {
			kind, display = paymentTypePayment, "Payment"
		}
		details = append(details, ReconciliationItem{Identifier: id, Type: paymentType(kind, display, "Stripe "+it.Type),
			Request: paymentRef(it), Date: date, Payee: clinic, Amount: &gross})
		if it.Fee != 0 {
			fee := moneyIn(-it.Fee, code)
			details = append(details, ReconciliationItem{Identifier: id, Type: paymentType(paymentTypeAdjustment, "Adjustment", "Stripe fee"),
				Request: paymentRef(it), Date: date, Payee: clinic, Amount: &fee})
		}
	}
	recon := &PaymentReconciliation{
		ResourceType: "PaymentReconciliation",
		Identifier:   []Identifier{key},
		Status:       fmStatusActive,
		Created:      time.Unix(p.Created, 0).UTC().Format(time.RFC3339),
		Outcome:      outcomeComplete,
		Disposition: fmt.Sprintf("Stripe payout %s of %s %s to the clinic's bank account, arriving %s: %d balance transactions",
			p.ID, amount.Value, code, arrival, len(p.Items)),
		PaymentDate:       arrival,
		PaymentAmount:     amount,
		PaymentIdentifier: &key,
		Detail:            details,
	}
	return write{resourceType: "PaymentReconciliation", key: key, resource: recon}, nil
}

// paymentRef references the PaymentNotice written for the payment an item belongs to, by the
// identifier that PaymentNotice is keyed on (its PaymentIntent, else its Charge); nil for items
// of no payment (fees, adjustments).
func paymentRef(it ledger.Item) *Reference {
	switch {
	case it.PaymentIntentID != "":
		return &Reference{Type: "PaymentNotice", Identifier: &Identifier{System: SystemStripePaymentIntent, Value: it.PaymentIntentID}}
	case it.ChargeID != "":
		return &Reference{Type: "PaymentNotice", Identifier: &Identifier{System: SystemStripeCharge, Value: it.ChargeID}}
	}
	return nil
}

// isPaymentItem reports whether a balance transaction is money a patient paid: Stripe books
// card charges as "charge" and other payment methods' payments as "payment", both in the
// "charge" reporting category (https://docs.stripe.com/reports/reporting-categories).
func isPaymentItem(it ledger.Item) bool {
	switch {
	case it.ReportingCategory == "charge":
		return true
	case it.Type == "charge", it.Type == "payment":
		return true
	}
	return false
}
