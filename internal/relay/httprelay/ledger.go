package httprelay

import (
	"context"
	"encoding/json"
	"fmt"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/relay"
)

var _ relay.LedgerWriter = (*Target)(nil)

// TypePayoutReconciled is the envelope type of a paid payout with the items it settles.
const TypePayoutReconciled = ledger.KindPayout

// Payout is what a "payout.reconciled" envelope adds to the envelope's object (the deposit: id,
// amount, currency, status "paid"): when the money reaches the bank and what it is made of.
type Payout struct {
	// ArrivalDate is when the deposit reaches the clinic's bank, Unix seconds.
	ArrivalDate int64 `json:"arrivalDate"`
	// Items are the balance transactions the payout settles; their nets add up to the
	// object's amount. Always an array, empty for a payout of nothing.
	Items []PayoutItem `json:"items"`
}

// PayoutItem is one balance transaction of a payout (ledger.Item) with its amounts also in
// major units.
type PayoutItem struct {
	ID                string `json:"id"`
	Type              string `json:"type"`
	ReportingCategory string `json:"reportingCategory,omitempty"`
	Amount            int64  `json:"amount"`
	AmountDecimal     string `json:"amountDecimal"`
	Fee               int64  `json:"fee"`
	FeeDecimal        string `json:"feeDecimal"`
	Net               int64  `json:"net"`
	NetDecimal        string `json:"netDecimal"`
	Currency          string `json:"currency"`
	Created           int64  `json:"created"`
	SourceID          string `json:"sourceID,omitempty"`
	ChargeID          string `json:"chargeID,omitempty"`
	PaymentIntentID   string `json:"paymentIntentID,omitempty"`
}

// Flag is one anomaly flag (ledger.Flag) in the envelope of the event that raised it, without
// the event itself, which is the envelope.
type Flag struct {
	ID              string  `json:"id"`
	Rule            string  `json:"rule"`
	Reason          string  `json:"reason"`
	Value           float64 `json:"value"`
	Threshold       float64 `json:"threshold"`
	EventID         string  `json:"eventID"`
	EventType       string  `json:"eventType,omitempty"`
	Created         int64   `json:"created,omitempty"`
	PaymentIntentID string  `json:"paymentIntentID,omitempty"`
	ChargeID        string  `json:"chargeID,omitempty"`
	DisputeID       string  `json:"disputeID,omitempty"`
	Amount          *int64  `json:"amount,omitempty"`
	AmountDecimal   string  `json:"amountDecimal,omitempty"`
	Currency        string  `json:"currency,omitempty"`
}

// WriteLedger implements relay.LedgerWriter: one signed POST of the message's envelope, with
// Idempotency-Key and webhook-id the message id (the payout id, or the flag id), accepted on
// 2xx. The clinic's endpoint answers only accepted or not, so it never reports filled payments.
func (t *Target) WriteLedger(ctx context.Context, msg ledger.Message) ([]string, error) {
	env, err := LedgerEnvelope(msg)
	if err != nil {
		return nil, fmt.Errorf("building envelope of %s %s: %w", msg.Kind, msg.ID, err)
	}
	body, err := jsonMarshal(env)
	if err != nil {
		return nil, fmt.Errorf("encoding envelope of %s %s: %w", msg.Kind, msg.ID, err)
	}
	if err := t.post(ctx, msg.ID, body); err != nil {
		return nil, err
	}
	return nil, nil
}

// LedgerEnvelope builds a ledger message's envelope:
//   - a payout: type "payout.reconciled", id the payout id, object the deposit, payout its
//     arrival and items;
//   - a flag: the envelope of the flagged Stripe event, exactly as the event relay builds it,
//     with flags holding the flag. Its id is the event's; the deduplication key (Idempotency-Key,
//     webhook-id) is the flag id, so a clinic that already took the event's own envelope takes
//     this one too.
func LedgerEnvelope(msg ledger.Message) (Envelope, error) {
	if err := msg.Check(); err != nil {
		return Envelope{}, err
	}
	if msg.Kind == ledger.KindPayout {
		return payoutEnvelope(msg.Livemode, *msg.Payout), nil
	}
	return flagEnvelope(msg.ClinicID, msg.Livemode, *msg.Flag)
}

func payoutEnvelope(livemode bool, p ledger.Payout) Envelope {
	amount := p.Amount
	items := make([]PayoutItem, 0, len(p.Items))
	for _, it := range p.Items {
		items = append(items, PayoutItem{ID: it.ID, Type: it.Type, ReportingCategory: it.ReportingCategory,
			Amount: it.Amount, AmountDecimal: decimal(it.Amount, it.Currency),
			Fee: it.Fee, FeeDecimal: decimal(it.Fee, it.Currency),
			Net: it.Net, NetDecimal: decimal(it.Net, it.Currency),
			Currency: it.Currency, Created: it.Created, SourceID: it.SourceID, ChargeID: it.ChargeID, PaymentIntentID: it.PaymentIntentID})
	}
	return Envelope{ID: p.ID, Type: TypePayoutReconciled, Created: p.Created, Livemode: livemode, ClinicID: p.ClinicID,
		Object: Object{ID: p.ID, Object: "payout", Amount: &amount, AmountDecimal: decimal(p.Amount, p.Currency),
			Currency: p.Currency, Status: "paid"},
		Payout: &Payout{ArrivalDate: p.ArrivalDate, Items: items}}
}

// flagEnvelope is the envelope of the flagged event with the flag added. A flag whose message
// carries no event, or one without data.object, gets an envelope built from the flag's own
// facts: the event's id, type and time, and the payment's id and amount. An event that is not
// JSON or is another event than the flag names is refused (the receiver answers such a message
// 400 before any target sees it).
func flagEnvelope(clinicID string, livemode bool, f ledger.Flag) (Envelope, error) {
	flag := Flag{ID: f.ID, Rule: f.Rule, Reason: f.Reason, Value: f.Value, Threshold: f.Threshold, EventID: f.EventID,
		EventType: f.EventType, Created: f.Created, PaymentIntentID: f.PaymentIntentID, ChargeID: f.ChargeID,
		DisputeID: f.DisputeID, Currency: f.Currency}
	if f.Currency != "" {
		amount := f.Amount
		flag.Amount, flag.AmountDecimal = &amount, decimal(f.Amount, f.Currency)
	}
	if len(f.Event) > 0 {
		var ev stripe.Event
		if err := json.Unmarshal(f.Event, &ev); err != nil {
			return Envelope{}, fmt.Errorf("flag %s: decoding its event: %w", f.ID, err)
		}
		if ev.ID != f.EventID {
			return Envelope{}, fmt.Errorf("flag %s: its event is %q, not %s", f.ID, ev.ID, f.EventID)
		}
		// An event without data.object gets the envelope of the flag's facts below rather than
		// fail: the operator would send the same message again and again to no avail.
		if env, err := NewEnvelope(relay.Event{ClinicID: clinicID, Stripe: ev}); err == nil {
			env.Flags = []Flag{flag}
			return env, nil
		}
	}
	obj := Object{ID: f.PaymentIntentID, Amount: flag.Amount, AmountDecimal: flag.AmountDecimal, Currency: f.Currency,
		PaymentIntent: f.PaymentIntentID, Charge: f.ChargeID}
	if obj.ID == "" {
		obj.ID = f.ChargeID
	}
	return Envelope{ID: f.EventID, Type: f.EventType, Created: f.Created, Livemode: livemode, ClinicID: clinicID,
		Object: obj, Flags: []Flag{flag}}, nil
}
