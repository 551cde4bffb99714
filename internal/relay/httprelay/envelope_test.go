package httprelay

import (
	"encoding/json"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// stripeEvent builds a relay.Event the way the receiver does, from Stripe's wire JSON.
func stripeEvent(t *testing.T, typ, object string) relay.Event {
	t.Helper()
	raw := `{"id":"evt_1","object":"event","type":"` + typ + `","created":1700000000,"livemode":false,` +
		`"api_version":"` + stripe.APIVersion + `","data":{"object":` + object + `}}`
	var ev stripe.Event
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		t.Fatalf("test event: %v", err)
	}
	return relay.Event{ClinicID: "clinic-a", Stripe: ev}
}

func TestEnvelope(t *testing.T) {
	for name, tc := range map[string]struct {
		typ, object string
		want        string // the envelope's "object", compact JSON
	}{
		"payment_intent": {
			typ: "payment_intent.succeeded",
			object: `{"id":"pi_1","object":"payment_intent","amount":1234,"amount_received":1234,"currency":"usd",
				"status":"succeeded","customer":"cus_1","invoice":null,"description":"ignored","client_secret":"pi_1_secret_x",
				"metadata":{"patient_id":"p-1","claim_id":"c&1"}}`,
			want: `{"id":"pi_1","object":"payment_intent","amount":1234,"amountDecimal":"12.34","amount_received":1234,` +
				`"currency":"usd","status":"succeeded","customer":"cus_1","metadata":{"claim_id":"c&1","patient_id":"p-1"}}`,
		},
		"charge refunded, partially": {
			typ: "charge.refunded",
			object: `{"id":"ch_1","object":"charge","amount":5000,"amount_captured":5000,"amount_refunded":1500,
				"refunded":false,"paid":true,"currency":"eur","status":"succeeded","payment_intent":"pi_1",
				"customer":{"id":"cus_9","object":"customer","email":"x@example.com"},"billing_details":{"name":"A"}}`,
			want: `{"id":"ch_1","object":"charge","amount":5000,"amountDecimal":"50.00","amount_captured":5000,` +
				`"amount_refunded":1500,"refunded":false,"paid":true,"currency":"eur","status":"succeeded",` +
				`"customer":"cus_9","payment_intent":"pi_1"}`,
		},
		"charge refunded, fully": {
			typ:    "charge.refunded",
			object: `{"id":"ch_2","object":"charge","amount":300,"amount_refunded":300,"refunded":true,"currency":"jpy"}`,
			want:   `{"id":"ch_2","object":"charge","amount":300,"amountDecimal":"300","amount_refunded":300,"refunded":true,"currency":"jpy"}`,
		},
		"invoice": {
			typ: "invoice.paid",
			object: `{"id":"in_1","object":"invoice","amount_due":700,"amount_paid":700,"amount_remaining":0,"currency":"usd",
				"status":"paid","paid":true,"customer":"cus_1","charge":"ch_1","payment_intent":"pi_1","lines":{"data":[]},
				"metadata":{}}`,
			want: `{"id":"in_1","object":"invoice","amount_due":700,"amount_paid":700,"amount_remaining":0,"paid":true,` +
				`"currency":"usd","status":"paid","customer":"cus_1","payment_intent":"pi_1","charge":"ch_1"}`,
		},
		"customer keeps no personal data": {
			typ:    "customer.created",
			object: `{"id":"cus_1","object":"customer","email":"p@example.com","name":"A Patient","phone":"+1","metadata":{"patient_id":"p-1"}}`,
			want:   `{"id":"cus_1","object":"customer","metadata":{"patient_id":"p-1"}}`,
		},
		"refund in a three-decimal currency": {
			typ:    "refund.created",
			object: `{"id":"re_1","object":"refund","amount":1234,"currency":"KWD","status":"pending","charge":"ch_1"}`,
			want:   `{"id":"re_1","object":"refund","amount":1234,"amountDecimal":"1.234","currency":"KWD","status":"pending","charge":"ch_1"}`,
		},
		"unexpected field types are dropped": {
			typ:    "payment_intent.created",
			object: `{"id":"pi_2","object":"payment_intent","amount":"12","currency":7,"status":null,"metadata":{"a":"b","n":1}}`,
			want:   `{"id":"pi_2","object":"payment_intent","metadata":{"a":"b"}}`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			env, err := NewEnvelope(stripeEvent(t, tc.typ, tc.object))
			if err != nil {
				t.Fatal(err)
			}
			if env.ID != "evt_1" || env.Type != tc.typ || env.Created != 1700000000 || env.Livemode || env.ClinicID != "clinic-a" {
				t.Errorf("envelope header = %+v", env)
			}
			got, err := jsonMarshal(env.Object)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("object\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestEnvelopeWithoutObject(t *testing.T) {
	if _, err := NewEnvelope(relay.Event{ClinicID: "clinic-a"}); err == nil {
		t.Error("an event without data.object produced an envelope")
	}
}

func TestDecimal(t *testing.T) {
	for _, tc := range []struct {
		minor    int64
		currency string
		want     string
	}{
		{1234, "usd", "12.34"},
		{5, "usd", "0.05"},
		{0, "eur", "0.00"},
		{-250, "gbp", "-2.50"},
		{500, "jpy", "500"},
		{1, "bhd", "0.001"},
		{1234567, "KWD", "1234.567"},
	} {
		if got := decimal(tc.minor, tc.currency); got != tc.want {
			t.Errorf("decimal(%d, %s) = %s, want %s", tc.minor, tc.currency, got, tc.want)
		}
	}
}

// TestEnvelopeFromRawOnly covers events built without stripe-go (Data.Object nil): the raw
// object is decoded the same way, so the envelope is the same.
func TestEnvelopeFromRawOnly(t *testing.T) {
	object := `{"id":"pi_1","object":"payment_intent","amount":1234,"amount_received":12.5,"amount_due":1e3,` +
		`"amount_paid":12345678901234567890,"currency":"usd","customer":{"id":"cus_1"},"metadata":{"patient_id":"p-1"}}`
	parsed := stripeEvent(t, "payment_intent.succeeded", object)
	handMade := relay.Event{ClinicID: parsed.ClinicID, Stripe: parsed.Stripe}
	handMade.Stripe.Data = &stripe.EventData{Raw: parsed.Stripe.Data.Raw}
	// Whole numbers only, and only those a float64 holds exactly.
	want := `{"id":"pi_1","object":"payment_intent","amount":1234,"amountDecimal":"12.34","amount_due":1000,` +
		`"currency":"usd","customer":"cus_1","metadata":{"patient_id":"p-1"}}`
	for name, ev := range map[string]relay.Event{"stripe-go": parsed, "raw only": handMade} {
		env, err := NewEnvelope(ev)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, _ := jsonMarshal(env.Object); string(got) != want {
			t.Errorf("%s: object\n got %s\nwant %s", name, got, want)
		}
	}
	handMade.Stripe.Data.Raw = json.RawMessage(`[1]`)
	if _, err := NewEnvelope(handMade); err == nil {
		t.Error("a data.object that is not an object produced an envelope")
	}
}

// TestEnvelopeAcrossAPIVersions: a replayed event comes in the API version of its creation. The
// envelope names that version and maps the same amounts from an older shape (2020-08-27: the
// PaymentIntent embeds its charges list, no latest_charge) and a newer one.
func TestEnvelopeAcrossAPIVersions(t *testing.T) {
	for version, object := range map[string]string{
		"2020-08-27": `{"id":"pi_1","object":"payment_intent","amount":1234,"amount_received":1234,"currency":"usd",
			"charges":{"object":"list","data":[{"id":"ch_1","object":"charge","amount":1234,"paid":true}],"has_more":false},
			"metadata":{"patient_id":"p-1"}}`,
		"2024-06-20": `{"id":"pi_1","object":"payment_intent","amount":1234,"amount_received":1234,"currency":"usd",
			"latest_charge":"ch_1","metadata":{"patient_id":"p-1"}}`,
	} {
		t.Run(version, func(t *testing.T) {
			raw := `{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1700000000,"livemode":false,` +
				`"api_version":"` + version + `","data":{"object":` + object + `}}`
			var ev stripe.Event
			if err := json.Unmarshal([]byte(raw), &ev); err != nil {
				t.Fatal(err)
			}
			env, err := NewEnvelope(relay.Event{ClinicID: "clinic-a", Stripe: ev})
			if err != nil {
				t.Fatal(err)
			}
			o := env.Object
			if env.APIVersion != version || o.Amount == nil || *o.Amount != 1234 || o.AmountReceived == nil ||
				*o.AmountReceived != 1234 || o.AmountDecimal != "12.34" || o.Metadata["patient_id"] != "p-1" {
				t.Errorf("envelope = %+v, object %+v", env, o)
			}
		})
	}
}
