package httprelay

import (
	"errors"
	"fmt"
	"math"
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
	// APIVersion is the Stripe API version the event was rendered in: a replayed event keeps
	// the version of its creation, so clinics reading more than the envelope can tell shapes apart.
	APIVersion string `json:"apiVersion"`
	Object     Object `json:"object"`
	// Payout is set only in "payout.reconciled" envelopes: the deposit's arrival and every
	// balance transaction it settles (ledger.go).
	Payout *Payout `json:"payout,omitempty"`
	// Flags is set only in the envelope of an event an anomaly rule flagged: the flags it
	// raised (ledger.go).
	Flags []Flag `json:"flags,omitempty"`
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
//
// It reads the data.object already decoded (Data.Object) when there is one; otherwise, as for
// the receiver's events (relay.Event), it reads only the members it needs out of Data.Raw
// (objectFromRaw), which gives the same Object.
func NewEnvelope(ev relay.Event) (Envelope, error) {
	s := ev.Stripe
	env := Envelope{ID: s.ID, Type: string(s.Type), Created: s.Created, Livemode: s.Livemode, ClinicID: ev.ClinicID,
		APIVersion: s.APIVersion}
	if s.Data == nil || len(s.Data.Raw) == 0 {
		return env, errors.New("event has no data.object")
	}
	if s.Data.Object != nil {
		env.Object = objectFrom(s.Data.Object)
		return env, nil
	}
	obj, err := objectFromRaw(s.Data.Raw)
	if err != nil {
		return env, fmt.Errorf("decoding data.object: %w", err)
	}
	env.Object = obj
	return env, nil
}

func objectFrom(raw map[string]any) Object {
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
	return finishObject(o)
}

// finishObject applies what does not depend on how the object was read: customers reduced to
// their id and metadata, and the amount in major units.
func finishObject(o Object) Object {
	if o.Object == "customer" {
		// Customers are personal data; the clinic maps them through metadata and the id.
		o = Object{ID: o.ID, Object: o.Object, Metadata: o.Metadata}
	}
	if o.Amount != nil && o.Currency != "" {
		o.AmountDecimal = decimal(*o.Amount, o.Currency)
	}
	return o
}

// The helpers below read values decoded by encoding/json into an any (strings, float64s, bools,
// map[string]any); they return the zero value when a field is absent, null or of another type.

func str(v any) string {
	s, _ := v.(string)
	return s
}

// maxExactInt bounds the integers a float64 holds exactly (2^53); Stripe's amounts are far
// below it.
const maxExactInt = 1 << 53

// integer reads a whole JSON number; fractions and numbers too large to be exact are left out.
func integer(v any) *int64 {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > maxExactInt {
		return nil
	}
	n := int64(f)
	return &n
}

func boolean(v any) *bool {
	b, ok := v.(bool)
	if !ok {
		return nil
	}
	return &b
}

// ref reads a related object's id, whether Stripe sent the id or the expanded object.
func ref(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	obj, _ := v.(map[string]any)
	return str(obj["id"])
}

func stringMap(v any) map[string]string {
	all, _ := v.(map[string]any)
	if len(all) == 0 {
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
