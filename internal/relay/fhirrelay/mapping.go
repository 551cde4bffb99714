package fhirrelay

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// write is one conditional create: POST [base]/<resourceType> with
// If-None-Exist: identifier=<key.System>|<key.Value>. The resource carries key among its
// identifiers, so the write after it finds it.
type write struct {
	resourceType string
	key          Identifier
	resource     any
	// wantExisting asks the server for the matching resource when it already exists (see
	// created.existing); only the payout's gap-filling PaymentNotices need it.
	wantExisting bool
}

// eventFacts are the parts of the event envelope every mapping uses.
type eventFacts struct {
	id string
	// created and date render the event's creation time in UTC as FHIR dateTime and date. The
	// event's time, not the delivery's, so a redelivery maps to the same resource.
	created, date string
	// clinic is the clinic's Organization, referenced logically by clinic id.
	clinic Reference
	// apiVersion is the extension naming the event's Stripe API version; nil when it has none.
	apiVersion []Extension
}

// mapEvent maps a Stripe event to the writes that record it; none for events that record no
// money movement and for types the mapping does not know, which are acknowledged unwritten.
// An error means the event is malformed for its type.
func (t *Target) mapEvent(ev relay.Event) ([]write, error) {
	facts, err := newEventFacts(ev)
	if err != nil {
		return nil, err
	}
	raw := ev.Stripe.Data.Raw
	if err := checkPaymentLinks(ev.Stripe); err != nil {
		return nil, err
	}
	switch ev.Stripe.Type {
	case stripe.EventTypePaymentIntentSucceeded:
		return t.mapPaymentIntentSucceeded(facts, raw)
	case stripe.EventTypeChargeSucceeded:
		return t.mapChargeSucceeded(facts, raw)
	case stripe.EventTypeInvoicePaymentSucceeded:
		return t.mapInvoicePaymentSucceeded(facts, raw)
	case stripe.EventTypeChargeRefunded:
		return t.mapChargeRefunded(facts, raw, ev.Stripe.Data.PreviousAttributes)
	case stripe.EventTypeCustomerCreated, stripe.EventTypeCustomerUpdated:
		return t.mapCustomer(facts, raw)
	default:
		// payment_intent.payment_failed moves no money and FHIR R4 has no resource for a
		// failed attempt; other types are not part of the mapping. See docs/fhir-mapping.md.
		return nil, nil
	}
}

// paymentLinksRemoved is the first Stripe API version (2025-03-31.basil) without the
// PaymentIntent↔Invoice and Charge↔Invoice fields that decide which event writes a payment.
const paymentLinksRemoved = "2025-03-31"

// checkPaymentLinks refuses payment events rendered in a version without those links: mapped
// anyway, an invoice's payment would be written twice (once per PaymentIntent, once per
// Invoice), and a wrong total is worse than a named failure. Live deliveries use the endpoint's
// pinned version; only replays of such accounts meet this.
func checkPaymentLinks(ev stripe.Event) error {
	switch ev.Type {
	case stripe.EventTypePaymentIntentSucceeded, stripe.EventTypeChargeSucceeded, stripe.EventTypeInvoicePaymentSucceeded:
	default:
		return nil
	}
	if v := ev.APIVersion; len(v) >= len(paymentLinksRemoved) && v[:len(paymentLinksRemoved)] >= paymentLinksRemoved {
		return fmt.Errorf("%s in Stripe API version %s: versions from %s lack the invoice links that keep a payment from being written twice; not mapped",
			ev.Type, v, paymentLinksRemoved)
	}
	return nil
}

func newEventFacts(ev relay.Event) (eventFacts, error) {
	switch {
	case ev.Stripe.ID == "":
		return eventFacts{}, errors.New("event has no id")
	case ev.Stripe.Data == nil || len(ev.Stripe.Data.Raw) == 0:
		return eventFacts{}, errors.New("event has no data.object")
	case ev.Stripe.Created <= 0:
		return eventFacts{}, errors.New("event has no created time")
	case ev.ClinicID == "":
		return eventFacts{}, errors.New("event has no clinic id")
	}
	at := time.Unix(ev.Stripe.Created, 0).UTC()
	return eventFacts{
		id:      ev.Stripe.ID,
		created: at.Format(time.RFC3339),
		date:    at.Format(time.DateOnly),
		clinic: Reference{
			Type:       "Organization",
			Identifier: &Identifier{System: SystemClinicID, Value: ev.ClinicID},
		},
		apiVersion: apiVersionExtension(ev.Stripe.APIVersion),
	}, nil
}

// apiVersionExtension names the Stripe API version the event came in, so the clinic can tell
// which shape a record was mapped from; nil when the event has none (FHIR strings are never
// empty). An extension, not meta.tag: tags are codes FHIR validators look up in a value set.
func apiVersionExtension(version string) []Extension {
	if strings.TrimSpace(version) == "" {
		return nil
	}
	return []Extension{{URL: ExtensionStripeAPIVersion, ValueString: version}}
}

// decodeObject decodes data.object into a stripe-go type, which also resolves expandable
// fields sent as bare ids ("payment_intent": "pi_…").
func decodeObject(raw json.RawMessage, into any, kind string) error {
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("decode %s: %w", kind, err)
	}
	return nil
}

// paymentIntentID, chargeID and invoiceID return the id of an expandable Stripe field, ""
// when it is absent.
func paymentIntentID(pi *stripe.PaymentIntent) string {
	if pi == nil {
		return ""
	}
	return pi.ID
}

func chargeID(ch *stripe.Charge) string {
	if ch == nil {
		return ""
	}
	return ch.ID
}

func invoiceID(in *stripe.Invoice) string {
	if in == nil {
		return ""
	}
	return in.ID
}
