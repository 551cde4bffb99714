package fhirrelay

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// wantWrite is what a mapping case expects to be written; fields left empty expect the
// element to be absent.
type wantWrite struct {
	resourceType string
	key          Identifier
	identifiers  []Identifier
	// amount is PaymentNotice.amount, or PaymentReconciliation.paymentAmount for a refund.
	amount Money
	// request is PaymentNotice.request; allocated the detail's request (notice or refund).
	request, allocated string
	// adjustment is a refund detail's (negative) amount value; predecessor its charge id.
	adjustment, predecessor string
	// name and subject are an Account's.
	name, subject string
	created, date string
}

// mappingCase is one realistic Stripe event and what it must become.
type mappingCase struct {
	name    string
	cfg     Config
	fixture string
	patch   func(event, object map[string]any)
	want    *wantWrite // nil: acknowledged, nothing written
}

var (
	piKey     = Identifier{System: SystemStripePaymentIntent, Value: "pi_3OjK2pLq8sTuVwXy1HiJkLmN"}
	piChKey   = Identifier{System: SystemStripeCharge, Value: "ch_3OjK2pLq8sTuVwXy1OpQrStU"}
	invPiKey  = Identifier{System: SystemStripePaymentIntent, Value: "pi_3OjNp9Lq8sTuVwXy0PaYmEnT"}
	invChKey  = Identifier{System: SystemStripeCharge, Value: "ch_3OjNp9Lq8sTuVwXy0TgBnHyU"}
	invInKey  = Identifier{System: SystemStripeInvoice, Value: "in_1OjNp2Lq8sTuVwXyQaZwSxEd"}
	refundKey = Identifier{System: SystemStripeEvent, Value: "evt_3OjLm4Lq8sTuVwXy1RfNdEvT"}
	cusKey    = Identifier{System: SystemStripeCustomer, Value: "cus_PYqRsTuVwXyZ01"}
)

const (
	piCreated, piDate         = "2024-01-15T09:52:25Z", "2024-01-15"
	refundCreated, refundDate = "2024-01-22T09:40:00Z", "2024-01-22"
)

func usd(v string) Money { return Money{Value: json.Number(v), Currency: "USD"} }

// piNotice is the PaymentNotice expected from the payment_intent.succeeded fixture.
func piNotice(request, allocated string) *wantWrite {
	return &wantWrite{
		resourceType: "PaymentNotice", key: piKey, identifiers: []Identifier{piKey, piChKey},
		amount: usd("125.50"), request: request, allocated: allocated, created: piCreated, date: piDate,
	}
}

// refund is the PaymentReconciliation expected from the charge.refunded fixture.
func refund(amount, allocated string) *wantWrite {
	return &wantWrite{
		resourceType: "PaymentReconciliation", key: refundKey, identifiers: []Identifier{refundKey},
		amount: usd(amount), adjustment: "-" + amount, predecessor: piChKey.Value, allocated: allocated,
		created: refundCreated, date: refundDate,
	}
}

// olderPaymentIntent renders the payment_intent.succeeded fixture as API version 2020-08-27 did:
// the charges list instead of latest_charge (a replay comes in the version of its creation).
func olderPaymentIntent(e, o map[string]any) {
	e["api_version"] = "2020-08-27"
	delete(o, "latest_charge")
	o["charges"] = map[string]any{"object": "list", "has_more": false, "data": []any{
		map[string]any{"id": "ch_failedFirstAttempt", "object": "charge", "status": "failed", "amount": 12550},
		map[string]any{"id": piChKey.Value, "object": "charge", "status": "succeeded", "amount": 12550},
	}}
}

// TestMapEventNamesAPIVersion: every resource names the Stripe API version its event came in.
func TestMapEventNamesAPIVersion(t *testing.T) {
	target := newTestTarget(t, Config{})
	for _, fixture := range []string{"payment_intent.succeeded", "charge.refunded", "customer.created"} {
		for _, version := range []string{"2020-08-27", "2024-06-20"} {
			writes, err := target.mapEvent(loadEvent(t, fixture, func(e, _ map[string]any) { e["api_version"] = version }))
			if err != nil || len(writes) != 1 {
				t.Fatalf("%s at %s: %v (%d writes)", fixture, version, err, len(writes))
			}
			var res struct{ Extension []Extension }
			if err := json.Unmarshal([]byte(mustJSON(t, writes[0].resource)), &res); err != nil {
				t.Fatal(err)
			}
			want := []Extension{{URL: ExtensionStripeAPIVersion, ValueString: version}}
			if !reflect.DeepEqual(res.Extension, want) {
				t.Errorf("%s at %s: extension = %+v, want %+v", fixture, version, res.Extension, want)
			}
		}
	}
}

// TestMapEventRefusesVersionsWithoutInvoiceLinks: from 2025-03-31.basil a PaymentIntent no
// longer names its invoice, so the one-notice-per-payment rule cannot hold; payment events in
// such versions fail with a named error instead of writing an invoice's payment twice.
func TestMapEventRefusesVersionsWithoutInvoiceLinks(t *testing.T) {
	target := newTestTarget(t, Config{})
	for _, fixture := range []string{"payment_intent.succeeded", "invoice.payment_succeeded", "charge.succeeded"} {
		ev := loadEvent(t, fixture, func(e, _ map[string]any) { e["api_version"] = "2025-03-31.basil" })
		if _, err := target.mapEvent(ev); err == nil || !strings.Contains(err.Error(), "2025-03-31.basil") {
			t.Errorf("%s at 2025-03-31.basil: err = %v, want a named refusal", fixture, err)
		}
	}
	ev := loadEvent(t, "customer.created", func(e, _ map[string]any) { e["api_version"] = "2025-03-31.basil" })
	if writes, err := target.mapEvent(ev); err != nil || len(writes) != 1 {
		t.Errorf("customer.created at 2025-03-31.basil: %v (%d writes), want mapped", err, len(writes))
	}
}

func mappingCases() []mappingCase {
	customKeys := Config{PatientMetadataKey: "fhir_patient", ClaimMetadataKey: "fhir_claim", InvoiceMetadataKey: "fhir_invoice"}
	legacyCharge := func(_, o map[string]any) { o["payment_intent"] = nil }
	jpy := piNotice("Claim/claim-2002", "Invoice/inv-3003")
	jpy.amount = Money{Value: "5000", Currency: "JPY"}
	kwd := piNotice("Claim/claim-2002", "Invoice/inv-3003")
	kwd.amount = Money{Value: "1.234", Currency: "KWD"}
	legacy := piNotice("Claim/claim-2002", "Invoice/inv-3003")
	legacy.key, legacy.identifiers = piChKey, []Identifier{piChKey}
	invoice := &wantWrite{
		resourceType: "PaymentNotice", key: invPiKey, identifiers: []Identifier{invPiKey, invChKey, invInKey},
		amount: Money{Value: "200.00", Currency: "EUR"}, request: "Claim/claim-5005", allocated: "Invoice/inv-6006",
		created: "2024-01-16T10:13:20Z", date: "2024-01-16",
	}
	invoiceLegacy := *invoice
	invoiceLegacy.key, invoiceLegacy.identifiers = invChKey, []Identifier{invChKey, invInKey}
	account := &wantWrite{
		resourceType: "Account", key: cusKey, identifiers: []Identifier{cusKey},
		name: "Jordan Rivera", subject: "Patient/pat-1001",
	}
	accountNoSubject := *account
	accountNoSubject.subject = ""
	accountCustom := *account
	accountCustom.subject = "Patient/p-9"

	return []mappingCase{
		{name: "payment_intent.succeeded", fixture: "payment_intent.succeeded",
			want: piNotice("Claim/claim-2002", "Invoice/inv-3003")},
		{name: "payment_intent.succeeded at 2020-08-27 (charges list, no latest_charge)", fixture: "payment_intent.succeeded",
			patch: olderPaymentIntent, want: piNotice("Claim/claim-2002", "Invoice/inv-3003")},
		{name: "payment_intent.succeeded at 2024-06-20", fixture: "payment_intent.succeeded",
			patch: func(e, _ map[string]any) { e["api_version"] = "2024-06-20" }, want: piNotice("Claim/claim-2002", "Invoice/inv-3003")},
		{name: "payment_intent.succeeded without metadata", fixture: "payment_intent.succeeded",
			patch: setMetadata(map[string]any{}), want: piNotice("", "")},
		{name: "payment_intent.succeeded custom metadata keys", fixture: "payment_intent.succeeded", cfg: customKeys,
			patch: setMetadata(map[string]any{"fhir_claim": "Claim/c-77", "fhir_invoice": "i-88", "claim_id": "not-this"}),
			want:  piNotice("Claim/c-77", "Invoice/i-88")},
		{name: "payment_intent.succeeded claim only", fixture: "payment_intent.succeeded",
			patch: setMetadata(map[string]any{"claim_id": "claim-2002"}), want: piNotice("Claim/claim-2002", "Claim/claim-2002")},
		{name: "payment_intent.succeeded invoice only", fixture: "payment_intent.succeeded",
			patch: setMetadata(map[string]any{"invoice_id": "inv-3003"}), want: piNotice("Invoice/inv-3003", "Invoice/inv-3003")},
		{name: "payment_intent.succeeded unusable metadata left out", fixture: "payment_intent.succeeded",
			patch: setMetadata(map[string]any{"claim_id": "2002 (see chart)", "invoice_id": "  ", "patient_id": "Patient/"}),
			want:  piNotice("", "")},
		{name: "payment_intent.succeeded zero-decimal JPY", fixture: "payment_intent.succeeded",
			patch: func(_, o map[string]any) { o["amount"], o["amount_received"], o["currency"] = 5000, 5000, "jpy" }, want: jpy},
		{name: "payment_intent.succeeded three-decimal KWD", fixture: "payment_intent.succeeded",
			patch: func(_, o map[string]any) { o["amount"], o["amount_received"], o["currency"] = 1234, 1234, "kwd" }, want: kwd},
		{name: "payment_intent.succeeded created by an invoice", fixture: "payment_intent.succeeded",
			patch: func(_, o map[string]any) { o["invoice"] = invInKey.Value }},
		{name: "payment_intent.payment_failed", fixture: "payment_intent.payment_failed"},
		{name: "charge.succeeded of a PaymentIntent", fixture: "charge.succeeded"},
		{name: "charge.succeeded legacy charge", fixture: "charge.succeeded", patch: legacyCharge, want: legacy},
		{name: "charge.succeeded legacy authorization only", fixture: "charge.succeeded",
			patch: func(e, o map[string]any) { legacyCharge(e, o); o["captured"], o["amount_captured"] = false, 0 }},
		{name: "charge.succeeded of an invoice", fixture: "charge.succeeded",
			patch: func(e, o map[string]any) { legacyCharge(e, o); o["invoice"] = invInKey.Value }},
		{name: "charge.refunded partial", fixture: "charge.refunded", want: refund("50.00", "Invoice/inv-3003")},
		{name: "charge.refunded remainder", fixture: "charge.refunded",
			patch: func(e, o map[string]any) {
				o["amount_refunded"], o["refunded"] = 12550, true
				e["data"].(map[string]any)["previous_attributes"] = map[string]any{"amount_refunded": 5000, "refunded": false}
			},
			want: refund("75.50", "Invoice/inv-3003")},
		{name: "charge.refunded without previous_attributes", fixture: "charge.refunded",
			patch: func(e, _ map[string]any) { delete(e["data"].(map[string]any), "previous_attributes") },
			want:  refund("50.00", "Invoice/inv-3003")},
		{name: "charge.refunded total unchanged", fixture: "charge.refunded",
			patch: func(e, _ map[string]any) {
				e["data"].(map[string]any)["previous_attributes"] = map[string]any{"amount_refunded": 5000}
			}},
		{name: "charge.refunded without metadata", fixture: "charge.refunded", patch: setMetadata(map[string]any{}),
			want: refund("50.00", "")},
		{name: "invoice.payment_succeeded", fixture: "invoice.payment_succeeded", want: invoice},
		{name: "invoice.payment_succeeded without PaymentIntent", fixture: "invoice.payment_succeeded",
			patch: func(_, o map[string]any) { o["payment_intent"] = nil }, want: &invoiceLegacy},
		{name: "invoice.payment_succeeded nothing collected", fixture: "invoice.payment_succeeded",
			patch: func(_, o map[string]any) { o["amount_paid"] = 0 }},
		{name: "customer.created", fixture: "customer.created", want: account},
		{name: "customer.updated without patient", fixture: "customer.updated",
			patch: setMetadata(map[string]any{}), want: &accountNoSubject},
		{name: "customer.updated custom patient key", fixture: "customer.updated",
			cfg:   Config{PatientMetadataKey: "ehr_patient"},
			patch: setMetadata(map[string]any{"ehr_patient": "Patient/p-9", "patient_id": "not-this"}), want: &accountCustom},
		{name: "unsupported type payout.paid", fixture: "payout.paid"},
	}
}

func TestMapEvent(t *testing.T) {
	for _, tc := range mappingCases() {
		t.Run(tc.name, func(t *testing.T) {
			target := newTestTarget(t, tc.cfg)
			writes, err := target.mapEvent(loadEvent(t, tc.fixture, tc.patch))
			if err != nil {
				t.Fatalf("mapEvent: %v", err)
			}
			if tc.want == nil {
				if len(writes) != 0 {
					t.Fatalf("want no write, got %d: %s", len(writes), mustJSON(t, writes[0].resource))
				}
				return
			}
			if len(writes) != 1 {
				t.Fatalf("want 1 write, got %d", len(writes))
			}
			checkWrite(t, writes[0], *tc.want)
		})
	}
}

func checkWrite(t *testing.T, w write, want wantWrite) {
	t.Helper()
	if w.resourceType != want.resourceType || w.key != want.key {
		t.Fatalf("write %s keyed %+v, want %s keyed %+v", w.resourceType, w.key, want.resourceType, want.key)
	}
	switch r := w.resource.(type) {
	case *PaymentNotice:
		checkNotice(t, r, want)
	case *PaymentReconciliation:
		checkRefund(t, r, want)
	case *Account:
		checkAccount(t, r, want)
	default:
		t.Fatalf("unexpected resource %T", w.resource)
	}
}

func checkNotice(t *testing.T, n *PaymentNotice, want wantWrite) {
	t.Helper()
	eq(t, "resourceType", n.ResourceType, "PaymentNotice")
	eq(t, "identifier", n.Identifier, want.identifiers)
	eq(t, "status", n.Status, "active")
	eq(t, "created", n.Created, want.created)
	eq(t, "paymentDate", n.PaymentDate, want.date)
	eq(t, "amount", n.Amount, want.amount)
	eq(t, "request", refString(n.Request), want.request)
	eq(t, "recipient", n.Recipient, clinicRef())
	eq(t, "payee", *n.Payee, clinicRef())
	eq(t, "paymentStatus", n.PaymentStatus.Coding[0].Code, "paid")
	eq(t, "payment", n.Payment.Reference, "#payment")
	if len(n.Contained) != 1 {
		t.Fatalf("contained: %d resources, want the PaymentReconciliation", len(n.Contained))
	}
	pr := n.Contained[0]
	eq(t, "contained id", pr.ID, "payment")
	eq(t, "contained paymentAmount", pr.PaymentAmount, want.amount)
	eq(t, "contained paymentIdentifier", *pr.PaymentIdentifier, want.key)
	eq(t, "contained paymentDate", pr.PaymentDate, want.date)
	if want.allocated == "" {
		eq(t, "contained detail", len(pr.Detail), 0)
		return
	}
	eq(t, "contained detail", len(pr.Detail), 1)
	eq(t, "detail.request", refString(pr.Detail[0].Request), want.allocated)
	eq(t, "detail.type", pr.Detail[0].Type.Coding[0].Code, "payment")
	eq(t, "detail.amount", *pr.Detail[0].Amount, want.amount)
}

func checkRefund(t *testing.T, r *PaymentReconciliation, want wantWrite) {
	t.Helper()
	eq(t, "resourceType", r.ResourceType, "PaymentReconciliation")
	eq(t, "identifier", r.Identifier, want.identifiers)
	eq(t, "status", r.Status, "active")
	eq(t, "created", r.Created, want.created)
	eq(t, "paymentDate", r.PaymentDate, want.date)
	eq(t, "paymentAmount", r.PaymentAmount, want.amount)
	eq(t, "paymentIssuer", *r.PaymentIssuer, clinicRef())
	eq(t, "outcome", r.Outcome, "complete")
	if !strings.Contains(r.Disposition, want.predecessor) {
		t.Errorf("disposition %q does not name the charge", r.Disposition)
	}
	eq(t, "detail", len(r.Detail), 1)
	d := r.Detail[0]
	eq(t, "detail.type", d.Type.Coding[0].Code, "adjustment")
	eq(t, "detail.predecessor", *d.Predecessor, Identifier{System: SystemStripeCharge, Value: want.predecessor})
	eq(t, "detail.amount", *d.Amount, Money{Value: json.Number(want.adjustment), Currency: want.amount.Currency})
	eq(t, "detail.request", refString(d.Request), want.allocated)
}

func checkAccount(t *testing.T, a *Account, want wantWrite) {
	t.Helper()
	eq(t, "resourceType", a.ResourceType, "Account")
	eq(t, "identifier", a.Identifier, want.identifiers)
	eq(t, "status", a.Status, "active")
	eq(t, "name", a.Name, want.name)
	eq(t, "owner", *a.Owner, clinicRef())
	subject := ""
	if len(a.Subject) > 0 {
		eq(t, "subject count", len(a.Subject), 1)
		subject = a.Subject[0].Reference
	}
	eq(t, "subject", subject, want.subject)
}

func clinicRef() Reference {
	return Reference{Type: "Organization", Identifier: &Identifier{System: SystemClinicID, Value: testClinic}}
}

func refString(r *Reference) string {
	if r == nil {
		return ""
	}
	return r.Reference
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

// A redelivery must map to the same bytes, or the FHIR server would hold whichever version
// came first while the next one looked different.
func TestMapEventIsDeterministic(t *testing.T) {
	target := newTestTarget(t, Config{})
	for _, tc := range mappingCases() {
		if tc.want == nil {
			continue
		}
		first, err1 := target.mapEvent(loadEvent(t, tc.fixture, tc.patch))
		second, err2 := target.mapEvent(loadEvent(t, tc.fixture, tc.patch))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v, %v", tc.name, err1, err2)
		}
		if a, b := mustJSON(t, first[0].resource), mustJSON(t, second[0].resource); a != b {
			t.Errorf("%s: mapped differently:\n%s\n%s", tc.name, a, b)
		}
	}
}

// Malformed events fail loudly: the receiver answers 5xx and the event stays in Stripe's
// retry queue and delivery log instead of vanishing.
func TestMapEventRejectsMalformed(t *testing.T) {
	target := newTestTarget(t, Config{})
	cases := map[string]struct {
		fixture string
		patch   func(event, object map[string]any)
		clinic  string
		want    string
	}{
		"no event id":     {fixture: "payment_intent.succeeded", patch: func(e, _ map[string]any) { delete(e, "id") }, want: "no id"},
		"no created time": {fixture: "payment_intent.succeeded", patch: func(e, _ map[string]any) { delete(e, "created") }, want: "no created"},
		"no clinic":       {fixture: "payment_intent.succeeded", clinic: "-", want: "no clinic"},
		"no currency":     {fixture: "payment_intent.succeeded", patch: func(_, o map[string]any) { o["currency"] = "" }, want: "currency"},
		"bad currency":    {fixture: "charge.refunded", patch: func(_, o map[string]any) { o["currency"] = "us dollars" }, want: "currency"},
		"object not a PI": {fixture: "payment_intent.succeeded", patch: func(_, o map[string]any) { o["amount"] = "lots" },
			want: "decode payment_intent"},
		"customer without id": {fixture: "customer.created", patch: func(_, o map[string]any) { delete(o, "id") }, want: "no id"},
		"fractional previous_attributes": {fixture: "charge.refunded", want: "previous_attributes",
			patch: func(e, _ map[string]any) {
				e["data"].(map[string]any)["previous_attributes"] = map[string]any{"amount_refunded": 1.5}
			}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ev := loadEvent(t, tc.fixture, tc.patch)
			if tc.clinic == "-" {
				ev.ClinicID = ""
			}
			_, err := target.mapEvent(ev)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("mapEvent error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}
