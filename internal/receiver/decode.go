package receiver

import (
	"bytes"
	"encoding/json"
	"errors"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/jsonscan"
)

// decodeEvent parses a verified body into the stripe.Event webhook.ConstructEvent returns, with
// one difference: Data.Object, data.object decoded into a map, is left nil. The relays read
// Data.Raw (the FHIR relay decodes it into stripe-go's types, the HTTP relay reads only the
// members its envelope carries). That map, and decoding "data" a second time to get at it, were
// most of stripe-go's parse: on the bench's 2.3 KB payment_intent event, 198 allocations and
// about 60 µs against 20 and about 20 µs here (BenchmarkDecodeEvent).
// TestDecodeEventMatchesStripeGo and FuzzDecodeEvent hold the rest of the result to stripe-go's.
//
// It refuses what ConstructEvent refuses: invalid JSON, a member of the wrong type, and a
// "data" whose object is missing or neither a JSON object nor null (ConstructEvent's map decode
// fails on it). It accepts one thing ConstructEvent refuses: a data.object holding a number no
// float64 can hold (1e400), which the map decode fails on and nothing the relays read needs.
func decodeEvent(payload []byte) (stripe.Event, error) {
	var w wireEvent
	if err := json.Unmarshal(payload, &w); err != nil {
		return stripe.Event{}, err
	}
	ev := stripe.Event{Account: w.Account, APIVersion: w.APIVersion, Created: w.Created, ID: w.ID,
		Livemode: w.Livemode, Object: w.Object, PendingWebhooks: w.PendingWebhooks, Request: w.Request, Type: w.Type}
	if w.Data != nil {
		ev.Data = (*stripe.EventData)(w.Data)
	}
	return ev, nil
}

var errNotAnObject = errors.New("data.object is not a JSON object")

// wireEvent is stripe.Event's JSON shape with the data decoded by eventData.
type wireEvent struct {
	Account         string               `json:"account"`
	APIVersion      string               `json:"api_version"`
	Created         int64                `json:"created"`
	Data            *eventData           `json:"data"`
	ID              string               `json:"id"`
	Livemode        bool                 `json:"livemode"`
	Object          string               `json:"object"`
	PendingWebhooks int64                `json:"pending_webhooks"`
	Request         *stripe.EventRequest `json:"request"`
	Type            stripe.EventType     `json:"type"`
}

// eventData decodes "data" as stripe.EventData's UnmarshalJSON does (a fresh value for each
// occurrence of the key: raw object and previous attributes) except for the map of the object.
type eventData stripe.EventData

func (d *eventData) UnmarshalJSON(b []byte) error {
	type plain stripe.EventData // its fields without its UnmarshalJSON; Object is json:"-"
	scanned, ok := scanData(b)
	p := plain(scanned)
	if !ok {
		if err := json.Unmarshal(b, &p); err != nil {
			return err
		}
	}
	// Checked for each occurrence of "data", as stripe-go decodes the map for each. encoding/json
	// hands a value's bytes without the space around them; a "data" without "object" leaves
	// none, which stripe-go's map decode fails on.
	if raw := p.Raw; len(raw) == 0 || (raw[0] != '{' && string(raw) != "null") {
		return errNotAnObject
	}
	*d = eventData(p)
	return nil
}

// scanData reads the usual "data" (the members "object" and "previous_attributes", each at most
// once, spelt exactly so) by walking its members, which saves encoding/json's second check of
// the bytes it validated before calling UnmarshalJSON and its skip over the object. It reports
// false for anything else (other or repeated keys, keys in another case or with escapes,
// previous attributes that are not an object), which the caller then decodes with
// encoding/json: that keeps its rules for those cases (case-insensitive keys, merges) and its
// errors.
func scanData(b []byte) (stripe.EventData, bool) {
	var d stripe.EventData
	var haveObject, havePrevious, ok = false, false, true
	walked := jsonscan.Members(b, func(key, value []byte) bool {
		switch {
		case string(key) == "object" && !haveObject:
			d.Raw, haveObject = bytes.Clone(value), true
		case string(key) == "previous_attributes" && !havePrevious:
			havePrevious = true
			ok = json.Unmarshal(value, &d.PreviousAttributes) == nil
		default:
			ok = false
		}
		return ok
	})
	return d, walked && ok
}
