package fhirrelay

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	stripe "github.com/stripe/stripe-go/v76"
)

// mapChargeRefunded records the money one charge.refunded event gave back. A refund is not
// a payment notice: the clinic pays the customer back. It becomes a PaymentReconciliation
// whose paymentIssuer is the clinic, paymentAmount the amount refunded by this event, and
// whose one detail is an adjustment of the original charge (detail.predecessor) allocating
// the negative amount to the same Claim/Invoice as the payment.
//
// Stripe raises charge.refunded once per refund, partial ones included, with the charge's
// running total in amount_refunded and the total before in previous_attributes; so the key
// is the event id (each event is one refund) and the amount is the difference.
func (t *Target) mapChargeRefunded(ev eventFacts, raw json.RawMessage, previous map[string]any) ([]write, error) {
	var ch stripe.Charge
	if err := decodeObject(raw, &ch, "charge"); err != nil {
		return nil, err
	}
	if ch.ID == "" {
		return nil, errors.New("charge has no id")
	}
	before, err := previousAmountRefunded(previous)
	if err != nil {
		return nil, err
	}
	refunded := ch.AmountRefunded - before
	if refunded <= 0 {
		return nil, nil // the total did not grow: nothing was given back by this event
	}
	code, err := currencyCode(string(ch.Currency))
	if err != nil {
		return nil, err
	}
	amount, adjustment := moneyIn(refunded, code), moneyIn(-refunded, code)
	total, charged := moneyIn(ch.AmountRefunded, code), moneyIn(ch.Amount, code)
	key := Identifier{System: SystemStripeEvent, Value: ev.id}
	clinic := ev.clinic
	recon := &PaymentReconciliation{
		ResourceType:  "PaymentReconciliation",
		Extension:     ev.apiVersion,
		Identifier:    []Identifier{key},
		Status:        fmStatusActive,
		Created:       ev.created,
		PaymentIssuer: &clinic,
		Outcome:       outcomeComplete,
		Disposition: fmt.Sprintf("Refund of Stripe charge %s: %s %s (%s of %s %s refunded in total)",
			ch.ID, amount.Value, amount.Currency, total.Value, charged.Value, charged.Currency),
		PaymentDate:   ev.date,
		PaymentAmount: amount,
		Detail: []ReconciliationItem{{
			Predecessor: &Identifier{System: SystemStripeCharge, Value: ch.ID},
			// HL7's payment-type has no "refund"; a refund adjusts the earlier payment.
			Type:    paymentType("adjustment", "Adjustment", "Refund"),
			Request: t.keys.refs(ch.Metadata).allocated(),
			Date:    ev.date,
			Amount:  &adjustment,
		}},
	}
	return []write{{resourceType: "PaymentReconciliation", key: key, resource: recon}}, nil
}

// previousAmountRefunded reads previous_attributes.amount_refunded, the charge's refunded
// total before this event. Stripe sends it with charge.refunded because amount_refunded
// changed; when it is absent the charge had no earlier refund, so 0.
func previousAmountRefunded(previous map[string]any) (int64, error) {
	v, ok := previous["amount_refunded"]
	if !ok || v == nil {
		return 0, nil
	}
	// encoding/json decodes numbers in a map as float64, exact for Stripe's amounts (< 2^53).
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 0 || f > 1<<53 {
		return 0, fmt.Errorf("previous_attributes.amount_refunded %v is not a whole amount", v)
	}
	return int64(f), nil
}
