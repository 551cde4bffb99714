package fhirrelay

import (
	"encoding/json"
	"errors"

	stripe "github.com/stripe/stripe-go/v76"
)

// payment is what each "payment happened" event reduces to. One Stripe payment raises up to
// three of the default events (invoice.payment_succeeded, payment_intent.succeeded,
// charge.succeeded); exactly one of them writes its PaymentNotice, chosen from the object's
// own links, so the choice does not depend on arrival order and the payment is never
// counted twice:
//   - an invoice's payment is written by invoice.payment_succeeded (it has the invoice's
//     metadata, where Stripe Invoicing users put their references);
//   - any other PaymentIntent's by payment_intent.succeeded;
//   - a Charge without PaymentIntent or invoice (legacy Charges API) by charge.succeeded.
type payment struct {
	// key makes the write idempotent: the PaymentIntent id, else the Charge id, else the
	// Invoice id.
	key Identifier
	// ids are all the Stripe ids of the payment, key first, so any of them finds it.
	ids      []Identifier
	amount   int64
	currency string
	metadata map[string]string
}

// newPayment orders the ids: the first non-empty one is the key.
func newPayment(piID, chID, inID string, amount int64, currency string, md map[string]string) (payment, error) {
	p := payment{amount: amount, currency: currency, metadata: md}
	for _, id := range []Identifier{
		{System: SystemStripePaymentIntent, Value: piID},
		{System: SystemStripeCharge, Value: chID},
		{System: SystemStripeInvoice, Value: inID},
	} {
		if id.Value != "" {
			p.ids = append(p.ids, id)
		}
	}
	if len(p.ids) == 0 {
		return payment{}, errors.New("payment has no Stripe id")
	}
	p.key = p.ids[0]
	return p, nil
}

// mapPaymentIntentSucceeded writes the payment unless an invoice created the PaymentIntent.
func (t *Target) mapPaymentIntentSucceeded(ev eventFacts, raw json.RawMessage) ([]write, error) {
	var pi stripe.PaymentIntent
	if err := decodeObject(raw, &pi, "payment_intent"); err != nil {
		return nil, err
	}
	if invoiceID(pi.Invoice) != "" {
		return nil, nil // invoice.payment_succeeded writes it
	}
	amount := pi.AmountReceived
	if amount == 0 {
		amount = pi.Amount
	}
	chID := chargeID(pi.LatestCharge)
	if chID == "" {
		chID = legacyChargeID(raw)
	}
	p, err := newPayment(pi.ID, chID, "", amount, string(pi.Currency), pi.Metadata)
	if err != nil {
		return nil, err
	}
	return t.paymentNotice(ev, p)
}

// legacyChargeID reads the succeeded charge from the charges list that PaymentIntents carry in
// API versions before 2022-11-15 (a replay renders an event in the version of its creation),
// where latest_charge does not exist; "" when there is none.
func legacyChargeID(raw json.RawMessage) string {
	var pi struct {
		Charges *struct {
			Data []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"data"`
		} `json:"charges"`
	}
	if json.Unmarshal(raw, &pi) != nil || pi.Charges == nil {
		return ""
	}
	for _, ch := range pi.Charges.Data {
		if ch.Status == "succeeded" {
			return ch.ID
		}
	}
	return ""
}

// mapChargeSucceeded writes only legacy charges: a charge with a PaymentIntent or an invoice
// is written by that object's event, and an uncaptured charge is an authorization, not a
// payment.
func (t *Target) mapChargeSucceeded(ev eventFacts, raw json.RawMessage) ([]write, error) {
	var ch stripe.Charge
	if err := decodeObject(raw, &ch, "charge"); err != nil {
		return nil, err
	}
	if paymentIntentID(ch.PaymentIntent) != "" || invoiceID(ch.Invoice) != "" || !ch.Captured {
		return nil, nil
	}
	amount := ch.AmountCaptured
	if amount == 0 {
		amount = ch.Amount
	}
	p, err := newPayment("", ch.ID, "", amount, string(ch.Currency), ch.Metadata)
	if err != nil {
		return nil, err
	}
	return t.paymentNotice(ev, p)
}

// mapInvoicePaymentSucceeded writes the money the invoice collected; an invoice settled
// without money moving through Stripe (amount_paid 0: a free invoice or one covered by
// customer credit) is acknowledged unwritten.
func (t *Target) mapInvoicePaymentSucceeded(ev eventFacts, raw json.RawMessage) ([]write, error) {
	var in stripe.Invoice
	if err := decodeObject(raw, &in, "invoice"); err != nil {
		return nil, err
	}
	if in.AmountPaid <= 0 {
		return nil, nil
	}
	p, err := newPayment(paymentIntentID(in.PaymentIntent), chargeID(in.Charge), in.ID,
		in.AmountPaid, string(in.Currency), in.Metadata)
	if err != nil {
		return nil, err
	}
	return t.paymentNotice(ev, p)
}

// paymentNotice builds the PaymentNotice for a payment, its PaymentReconciliation contained
// so one atomic create records both (PaymentNotice.payment is 1..1 and must point at one).
func (t *Target) paymentNotice(ev eventFacts, p payment) ([]write, error) {
	amount, err := stripeMoney(p.amount, p.currency)
	if err != nil {
		return nil, err
	}
	refs := t.keys.refs(p.metadata)
	recon := &PaymentReconciliation{
		ResourceType:      "PaymentReconciliation",
		ID:                containedPaymentID,
		Status:            fmStatusActive,
		Created:           ev.created,
		Outcome:           outcomeComplete,
		PaymentDate:       ev.date,
		PaymentAmount:     amount,
		PaymentIdentifier: &p.key,
	}
	if ref := refs.allocated(); ref != nil {
		recon.Detail = []ReconciliationItem{{
			Type:    paymentType(paymentTypePayment, "Payment", ""),
			Request: ref,
			Amount:  &amount,
		}}
	}
	clinic := ev.clinic
	notice := &PaymentNotice{
		ResourceType: "PaymentNotice",
		Extension:    ev.apiVersion,
		Contained:    []*PaymentReconciliation{recon},
		Identifier:   p.ids,
		Status:       fmStatusActive,
		Request:      refs.billed(),
		Created:      ev.created,
		Payment:      Reference{Reference: "#" + containedPaymentID},
		PaymentDate:  ev.date,
		Payee:        &clinic,
		Recipient:    ev.clinic,
		Amount:       amount,
		// "paid", not "cleared": Stripe has taken the money, the clinic's bank has not.
		PaymentStatus: &CodeableConcept{Coding: []Coding{{System: paymentStatusSystem, Code: "paid", Display: "Paid"}}},
	}
	return []write{{resourceType: "PaymentNotice", key: p.key, resource: notice}}, nil
}

// paymentType is a PaymentReconciliation.detail.type from HL7's payment-type code system.
func paymentType(code, display, text string) CodeableConcept {
	return CodeableConcept{Coding: []Coding{{System: paymentTypeSystem, Code: code, Display: display}}, Text: text}
}
