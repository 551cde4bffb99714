package httprelay

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/clinicpay/stripe-operator/internal/ledger"
)

// kwdPayout is a payout in a three-decimal currency: a payment with its fee and a refund.
func kwdPayout() ledger.Message {
	p := ledger.Payout{ID: "po_1", ClinicID: "clinic-a", Amount: 10_000 - 300 - 2_500, Currency: "kwd", ArrivalDate: 1_705_536_000,
		Created: 1_705_363_200, Items: []ledger.Item{
			{ID: "txn_1", Type: "charge", ReportingCategory: "charge", Amount: 10_000, Fee: 300, Net: 9_700, Currency: "kwd",
				Created: 1_705_300_000, SourceID: "ch_1", ChargeID: "ch_1", PaymentIntentID: "pi_1"},
			{ID: "txn_2", Type: "refund", ReportingCategory: "refund", Amount: -2_500, Net: -2_500, Currency: "kwd",
				Created: 1_705_300_100, SourceID: "re_1", ChargeID: "ch_1", PaymentIntentID: "pi_1"},
		}}
	return ledger.Message{ID: p.ID, Kind: ledger.KindPayout, ClinicID: "clinic-a", Payout: &p}
}

// jpyFlag is an amount outlier raised by a payment_intent.succeeded event in yen.
func jpyFlag() ledger.Message {
	event := `{"id":"evt_9","object":"event","type":"payment_intent.succeeded","created":1705400000,"livemode":false,` +
		`"api_version":"2023-10-16","data":{"object":{"id":"pi_9","object":"payment_intent","amount":900000,` +
		`"amount_received":900000,"currency":"jpy","status":"succeeded","metadata":{"patient_id":"p-1"}}}}`
	f := ledger.Flag{ID: ledger.FlagID("AmountOutlier", "evt_9"), Rule: "AmountOutlier", Reason: "900000 JPY is 12 deviations above the median",
		Value: 12, Threshold: 6, EventID: "evt_9", EventType: "payment_intent.succeeded", Created: 1_705_400_000, PaymentIntentID: "pi_9",
		Amount: 900000, Currency: "jpy", Event: json.RawMessage(event)}
	return ledger.Message{ID: f.ID, Kind: ledger.KindFlag, ClinicID: "clinic-a", Flag: &f}
}

// TestWriteLedgerPayoutEnvelope: a payout's envelope is signed like an event's, keyed on the
// payout id, and carries the deposit and every item with three-decimal amounts.
func TestWriteLedgerPayoutEnvelope(t *testing.T) {
	c := newClinic(t, http.StatusAccepted)
	now := time.Now()
	target, err := New(Config{URL: c.srv.URL, SigningKeyFile: keyFileWith(t, "s3cret\n"), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	filled, err := target.WriteLedger(context.Background(), kwdPayout())
	if err != nil || filled != nil {
		t.Fatalf("WriteLedger = %v, %v; want no filled ids (HTTP cannot tell)", filled, err)
	}
	body, h := c.last(t)
	if h.Get("Idempotency-Key") != "po_1" || h.Get(HeaderWebhookID) != "po_1" {
		t.Errorf("keys %q, %q; want the payout id", h.Get("Idempotency-Key"), h.Get(HeaderWebhookID))
	}
	verifyStandard(t, "s3cret", body, h)
	want := `{"id":"po_1","type":"payout.reconciled","created":1705363200,"livemode":false,"clinicID":"clinic-a","apiVersion":"",` +
		`"object":{"id":"po_1","object":"payout","amount":7200,"amountDecimal":"7.200","currency":"kwd","status":"paid"},` +
		`"payout":{"arrivalDate":1705536000,"items":[` +
		`{"id":"txn_1","type":"charge","reportingCategory":"charge","amount":10000,"amountDecimal":"10.000","fee":300,"feeDecimal":"0.300",` +
		`"net":9700,"netDecimal":"9.700","currency":"kwd","created":1705300000,"sourceID":"ch_1","chargeID":"ch_1","paymentIntentID":"pi_1"},` +
		`{"id":"txn_2","type":"refund","reportingCategory":"refund","amount":-2500,"amountDecimal":"-2.500","fee":0,"feeDecimal":"0.000",` +
		`"net":-2500,"netDecimal":"-2.500","currency":"kwd","created":1705300100,"sourceID":"re_1","chargeID":"ch_1","paymentIntentID":"pi_1"}]}}`
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
}

// TestWriteLedgerFlagEnvelope: a flag travels in the envelope of the event that raised it, built
// as the event relay builds it, with the new flags field; the deduplication key is the flag id.
func TestWriteLedgerFlagEnvelope(t *testing.T) {
	c := newClinic(t, http.StatusOK)
	target, err := New(Config{URL: c.srv.URL, SigningKeyFile: keyFileWith(t, "s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := target.WriteLedger(context.Background(), jpyFlag()); err != nil {
		t.Fatal(err)
	}
	body, h := c.last(t)
	if h.Get("Idempotency-Key") != "AmountOutlier/evt_9" || h.Get(HeaderWebhookID) != "AmountOutlier/evt_9" {
		t.Errorf("keys %q, %q; want the flag id", h.Get("Idempotency-Key"), h.Get(HeaderWebhookID))
	}
	verifyStandard(t, "s3cret", body, h)
	want := `{"id":"evt_9","type":"payment_intent.succeeded","created":1705400000,"livemode":false,"clinicID":"clinic-a",` +
		`"apiVersion":"2023-10-16","object":{"id":"pi_9","object":"payment_intent","amount":900000,"amountDecimal":"900000",` +
		`"amount_received":900000,"currency":"jpy","status":"succeeded","metadata":{"patient_id":"p-1"}},` +
		`"flags":[{"id":"AmountOutlier/evt_9","rule":"AmountOutlier","reason":"900000 JPY is 12 deviations above the median",` +
		`"value":12,"threshold":6,"eventID":"evt_9","eventType":"payment_intent.succeeded","created":1705400000,` +
		`"paymentIntentID":"pi_9","amount":900000,"amountDecimal":"900000","currency":"jpy"}]}`
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
}

// TestLedgerEnvelopeRefuses: an invalid message, or a flag whose event is another, builds no
// envelope.
func TestLedgerEnvelopeRefuses(t *testing.T) {
	bad := kwdPayout()
	bad.Payout.Amount++
	if _, err := LedgerEnvelope(bad); err == nil || !strings.Contains(err.Error(), "add up") {
		t.Errorf("a payout that does not add up: %v", err)
	}
	other := jpyFlag()
	other.Flag.EventID = "evt_other"
	other.Flag.ID, other.ID = "AmountOutlier/evt_other", "AmountOutlier/evt_other"
	if _, err := LedgerEnvelope(other); err == nil || !strings.Contains(err.Error(), "evt_9") {
		t.Errorf("a flag carrying another event: %v", err)
	}
}

// TestWriteLedgerFailure: a non-2xx answer is the target's failure.
func TestWriteLedgerFailure(t *testing.T) {
	c := newClinic(t, http.StatusServiceUnavailable)
	target, err := New(Config{URL: c.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = target.WriteLedger(context.Background(), kwdPayout())
	if se, ok := errors.AsType[*StatusError](err); !ok || se.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("err = %v, want HTTP 503", err)
	}
}

// verifyStandard checks the Standard Webhooks signature with the reference library, given the
// secret a clinic with a plain key file is told to use.
func verifyStandard(t *testing.T, key string, body []byte, h http.Header) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte(key)))
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, h); err != nil {
		t.Errorf("Standard Webhooks verification: %v", err)
	}
}

// TestLedgerEnvelopeFromTheFlagsFacts: a flag whose event has no data.object (or no event at all)
// still reaches the clinic, in an envelope made of the flag's own facts, rather than fail every
// time the operator sends it.
func TestLedgerEnvelopeFromTheFlagsFacts(t *testing.T) {
	msg := jpyFlag()
	msg.Flag.Event = json.RawMessage(`{"id":"evt_9","object":"event","type":"payment_intent.succeeded"}`)
	for name, event := range map[string]json.RawMessage{"no data.object": msg.Flag.Event, "no event": nil} {
		msg.Flag.Event = event
		env, err := LedgerEnvelope(msg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _ := jsonMarshal(env)
		want := `{"id":"evt_9","type":"payment_intent.succeeded","created":1705400000,"livemode":false,"clinicID":"clinic-a","apiVersion":"",` +
			`"object":{"id":"pi_9","amount":900000,"amountDecimal":"900000","currency":"jpy","payment_intent":"pi_9"},"flags":[`
		if !strings.HasPrefix(string(got), want) || len(env.Flags) != 1 || env.Flags[0].ID != msg.ID {
			t.Errorf("%s:\n got %s\nwant %s…", name, got, want)
		}
	}
}
