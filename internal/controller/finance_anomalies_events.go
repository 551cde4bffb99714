package controller

import (
	"encoding/json"
	"time"

	"github.com/clinicpay/stripe-operator/internal/anomaly"
	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// The Stripe events the anomaly rules read, one per kind of money movement, so that no movement
// is counted twice (https://docs.stripe.com/api/events/types):
//   - payment_intent.succeeded: "Occurs when a PaymentIntent has successfully completed
//     payment." (not charge.succeeded as well: the same payment again);
//   - payment_intent.payment_failed: "Occurs when a PaymentIntent has failed the attempt to
//     create a payment method or a payment." (not charge.failed as well);
//   - charge.refunded: "Occurs whenever a charge is refunded, including partial refunds." It is
//     sent for every refund of a charge in every API version, where refund.created is sent for
//     charge refunds only from API version 2024-10-28.acacia on
//     (https://docs.stripe.com/changelog/acacia/2024-10-28/refund-webhook-update), and Stripe
//     renders a listed event in the version in force when it was created;
//   - charge.dispute.created: "Occurs when a customer disputes a charge with their bank."
var anomalyEventTypes = []string{evPaymentSucceeded, evPaymentFailed, evChargeRefunded, evDisputeCreated}

const (
	evPaymentSucceeded = "payment_intent.succeeded"
	evPaymentFailed    = "payment_intent.payment_failed"
	evChargeRefunded   = "charge.refunded"
	evDisputeCreated   = "charge.dispute.created"
)

// anomalyEvent is the part of a listed event the rules and the flag read.
type anomalyEvent struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Created int64  `json:"created"`
	Data    struct {
		Object struct {
			ID             string          `json:"id"`
			Amount         int64           `json:"amount"`
			AmountReceived int64           `json:"amount_received"`
			AmountRefunded int64           `json:"amount_refunded"`
			Currency       string          `json:"currency"`
			PaymentIntent  json.RawMessage `json:"payment_intent"`
			Charge         json.RawMessage `json:"charge"`
			LatestCharge   json.RawMessage `json:"latest_charge"`
		} `json:"object"`
		// PreviousAttributes holds the values the event changed, as they were before it
		// (https://docs.stripe.com/api/events/object#event_object-data-previous_attributes).
		PreviousAttributes *struct {
			AmountRefunded *int64 `json:"amount_refunded"`
		} `json:"previous_attributes"`
	} `json:"data"`
}

// observeEvent maps a listed event to the observation the rules take and the flag fields that
// name what it concerns. ok is false for an event the rules do not read or cannot parse.
func observeEvent(ev stripeclient.RawEvent) (anomaly.Observation, ledger.Flag, bool) {
	var e anomalyEvent
	if err := json.Unmarshal(ev.JSON, &e); err != nil {
		return anomaly.Observation{}, ledger.Flag{}, false
	}
	obj := e.Data.Object
	o := anomaly.Observation{EventID: ev.ID, Currency: obj.Currency, At: time.Unix(ev.Created, 0).UTC()}
	f := ledger.Flag{EventID: ev.ID, EventType: ev.Type, Created: ev.Created, Currency: obj.Currency}
	switch ev.Type {
	case evPaymentSucceeded:
		o.Type, o.Amount = anomaly.Payment, obj.AmountReceived
		if o.Amount <= 0 {
			o.Amount = obj.Amount
		}
		f.PaymentIntentID, f.ChargeID = obj.ID, idOf(obj.LatestCharge)
	case evPaymentFailed:
		o.Type, o.Amount = anomaly.FailedPayment, obj.Amount
		f.PaymentIntentID, f.ChargeID = obj.ID, idOf(obj.LatestCharge)
	case evChargeRefunded:
		// amount_refunded is the charge's cumulative refunded amount; the event's own refund is
		// what it added to the amount before (previous_attributes), the whole of it when Stripe
		// did not say (the first refund of a charge).
		o.Type, o.Amount = anomaly.Refund, obj.AmountRefunded
		if p := e.Data.PreviousAttributes; p != nil && p.AmountRefunded != nil && *p.AmountRefunded <= obj.AmountRefunded {
			o.Amount = obj.AmountRefunded - *p.AmountRefunded
		}
		f.ChargeID, f.PaymentIntentID = obj.ID, idOf(obj.PaymentIntent)
	case evDisputeCreated:
		o.Type, o.Amount = anomaly.Dispute, obj.Amount
		f.DisputeID, f.ChargeID, f.PaymentIntentID = obj.ID, idOf(obj.Charge), idOf(obj.PaymentIntent)
	default:
		return anomaly.Observation{}, ledger.Flag{}, false
	}
	f.Amount = o.Amount
	return o, f, true
}

// idOf reads an id field that Stripe renders as a string, or as the object when expanded.
func idOf(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.ID
	}
	return ""
}

// flagMessage is the ledger message for a flag the rules raised on ev: the rule's figures, what
// the event concerns, and the event as Stripe rendered it.
func flagMessage(clinicID string, livemode bool, fl anomaly.Flag, about ledger.Flag, ev stripeclient.RawEvent) ledger.Message {
	f := about
	f.ID = ledger.FlagID(string(fl.Kind), fl.EventID)
	f.Rule, f.Reason, f.Value, f.Threshold = string(fl.Kind), fl.Reason, fl.Value, fl.Threshold
	f.Event = json.RawMessage(ev.JSON)
	return ledger.Message{ID: f.ID, Kind: ledger.KindFlag, ClinicID: clinicID, Livemode: livemode, Flag: &f}
}
