package httprelay

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// Envelope is the JSON body sent to the clinic; see the package documentation for the schema.
type Envelope struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Created  int64  `json:"created"`
	Livemode bool   `json:"livemode"`
	ClinicID string `json:"clinicID"`
	Object   Object `json:"object"`
}

// Object is the subset of the event's data.object a clinic needs. Pointer fields distinguish
// "absent" from zero, so a refund of 0 is still sent.
type Object struct {
	ID              string            `json:"id,omitempty"`
	Object          string            `json:"object,omitempty"`
	Amount          *int64            `json:"amount,omitempty"`
	AmountDecimal   string            `json:"amountDecimal,omitempty"`
	AmountReceived  *int64            `json:"amount_received,omitempty"`
	AmountCaptured  *int64            `json:"amount_captured,omitempty"`
	AmountRefunded  *int64            `json:"amount_refunded,omitempty"`
	AmountDue       *int64            `json:"amount_due,omitempty"`
	AmountPaid      *int64            `json:"amount_paid,omitempty"`
	AmountRemaining *int64            `json:"amount_remaining,omitempty"`
	Refunded        *bool             `json:"refunded,omitempty"`
	Paid            *bool             `json:"paid,omitempty"`
	Currency        string            `json:"currency,omitempty"`
	Status          string            `json:"status,omitempty"`
	Customer        string            `json:"customer,omitempty"`
	PaymentIntent   string            `json:"payment_intent,omitempty"`
	Charge          string            `json:"charge,omitempty"`
	Invoice         string            `json:"invoice,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
}

// NewEnvelope builds the envelope of a verified event. It fails only when the event carries no
// data.object; object fields of an unexpected JSON type are left out rather than failing the
// delivery, which Stripe would otherwise retry for days to no avail.
func NewEnvelope(ev relay.Event) (Envelope, error) {
	s := ev.Stripe
	env := Envelope{ID: s.ID, Type: string(s.Type), Created: s.Created, Livemode: s.Livemode, ClinicID: ev.ClinicID}
	if s.Data == nil || len(s.Data.Raw) == 0 {
		return env, errors.New("event has no data.object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(s.Data.Raw, &raw); err != nil {
		return env, fmt.Errorf("decoding data.object: %w", err)
	}
	env.Object = objectFrom(raw)
	return env, nil
}

func objectFrom(raw map[string]json.RawMessage) Object {
	o := Object{
		ID:              str(raw["id"]),
		Object:          str(raw["object"]),
		Amount:          integer(raw["amount"]),
		AmountReceived:  integer(raw["amount_received"]),
		AmountCaptured:  integer(raw["amount_captured"]),
		AmountRefunded:  integer(raw["amount_refunded"]),
		AmountDue:       integer(raw["amount_due"]),
		AmountPaid:      integer(raw["amount_paid"]),
		AmountRemaining: integer(raw["amount_remaining"]),
		Refunded:        boolean(raw["refunded"]),
		Paid:            boolean(raw["paid"]),
		Currency:        str(raw["currency"]),
		Status:          str(raw["status"]),
		Customer:        ref(raw["customer"]),
		PaymentIntent:   ref(raw["payment_intent"]),
		Charge:          ref(raw["charge"]),
		Invoice:         ref(raw["invoice"]),
		Metadata:        stringMap(raw["metadata"]),
	}
	if o.Object == "customer" {
		// Customers are personal data; the clinic maps them through metadata and the id.
		o = Object{ID: o.ID, Object: o.Object, Metadata: o.Metadata}
	}
	if o.Amount != nil && o.Currency != "" {
		o.AmountDecimal = decimal(*o.Amount, o.Currency)
	}
	return o
}

// The helpers below return the zero value when a field is absent, null or of another type.

func str(m json.RawMessage) string {
	var s string
	if json.Unmarshal(m, &s) != nil {
		return ""
	}
	return s
}

func integer(m json.RawMessage) *int64 {
	var n int64
	if m == nil || string(m) == "null" || json.Unmarshal(m, &n) != nil {
		return nil
	}
	return &n
}

func boolean(m json.RawMessage) *bool {
	var b bool
	if m == nil || string(m) == "null" || json.Unmarshal(m, &b) != nil {
		return nil
	}
	return &b
}

// ref reads a related object's id, whether Stripe sent the id or the expanded object.
func ref(m json.RawMessage) string {
	if s := str(m); s != "" {
		return s
	}
	var obj struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(m, &obj) != nil {
		return ""
	}
	return obj.ID
}

func stringMap(m json.RawMessage) map[string]string {
	var all map[string]any
	if json.Unmarshal(m, &all) != nil || len(all) == 0 {
		return nil
	}
	out := make(map[string]string, len(all))
	for k, v := range all {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// decimal renders minor units in major units with the currency's exponent as Stripe's API
// uses it.
func decimal(minor int64, currency string) string {
	exp := currencyExponent(strings.ToLower(currency))
	sign := ""
	u := uint64(minor)
	if minor < 0 {
		sign, u = "-", uint64(-minor)
	}
	digits := strconv.FormatUint(u, 10)
	if exp == 0 {
		return sign + digits
	}
	if len(digits) <= exp {
		digits = strings.Repeat("0", exp-len(digits)+1) + digits
	}
	return sign + digits[:len(digits)-exp] + "." + digits[len(digits)-exp:]
}

// currencyExponent follows Stripe's currency documentation: zero-decimal currencies are sent
// in whole units, three-decimal ones in thousandths, all others in hundredths.
func currencyExponent(currency string) int {
	switch currency {
	case "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf":
		return 0
	case "bhd", "jod", "kwd", "omr", "tnd":
		return 3
	default:
		return 2
	}
}
