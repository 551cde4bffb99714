package fhirrelay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/clinicpay/stripe-operator/internal/ledger"
)

// payoutMessage is testPayout (pi_1 with ch_1, the bare charge ch_2, a refund of pi_1, a dispute
// of ch_2 and a lone Stripe fee) as the operator sends it, for the test clinic.
func payoutMessage(currency string, scale int64) ledger.Message {
	p := testPayout(currency, scale)
	p.ClinicID = testClinic
	return ledger.Message{ID: p.ID, Kind: ledger.KindPayout, ClinicID: testClinic, Payout: &p}
}

// flagMessage is a refund spike raised by a charge.refunded event.
func flagMessage() ledger.Message {
	f := ledger.Flag{ID: ledger.FlagID("RefundSpike", "evt_rf1"), Rule: "RefundSpike",
		Reason: "refunds of 1200.00 USD in the last 24h exceed 3 times the trailing daily mean of 150.00 USD", Value: 1200, Threshold: 450,
		EventID: "evt_rf1", EventType: "charge.refunded", Created: 1_705_400_000, PaymentIntentID: "pi_1", ChargeID: "ch_1",
		Amount: 120000, Currency: "usd", Event: json.RawMessage(`{"id":"evt_rf1","object":"event"}`)}
	return ledger.Message{ID: f.ID, Kind: ledger.KindFlag, ClinicID: testClinic, Flag: &f}
}

// relayPayment writes the PaymentNotice of a payment_intent.succeeded event for piID (charge
// chID), as the event relay does when Stripe's delivery reaches the receiver.
func relayPayment(t *testing.T, target *Target, piID, chID string) {
	t.Helper()
	ev := loadEvent(t, "payment_intent.succeeded", func(_, o map[string]any) { o["id"], o["latest_charge"] = piID, chID })
	if err := target.Deliver(context.Background(), ev); err != nil {
		t.Fatalf("Deliver %s: %v", piID, err)
	}
}

func fhirTarget(t *testing.T, f *fakeFHIR) *Target {
	t.Helper()
	return newTestTarget(t, Config{BaseURL: f.baseURL()})
}

// TestWriteLedgerPayoutAfterEveryPaymentWasRelayed: both payments' events reached the FHIR server
// before the payout; the payout writes its PaymentReconciliation and fills nothing in.
func TestWriteLedgerPayoutAfterEveryPaymentWasRelayed(t *testing.T) {
	f := newFakeFHIR(t, "")
	target := fhirTarget(t, f)
	relayPayment(t, target, "pi_1", "ch_1")
	// ch_2 is a legacy charge: charge.succeeded writes it, keyed on the charge.
	if err := target.Deliver(context.Background(), loadEvent(t, "charge.succeeded", func(_, o map[string]any) {
		o["id"], o["payment_intent"], o["invoice"], o["captured"] = "ch_2", nil, nil, true
	})); err != nil {
		t.Fatal(err)
	}
	filled, err := target.WriteLedger(context.Background(), payoutMessage("usd", 100))
	if err != nil {
		t.Fatal(err)
	}
	if len(filled) != 0 {
		t.Errorf("filled %v, want nothing: every payment was relayed", filled)
	}
	if n := f.count("PaymentNotice"); n != 2 {
		t.Errorf("%d PaymentNotices, want the 2 the events wrote", n)
	}
	if n := f.count("PaymentReconciliation"); n != 1 {
		t.Errorf("%d PaymentReconciliations, want 1", n)
	}
}

// TestWriteLedgerPayoutFillsInAMissingPayment: the event of pi_1 never reached the FHIR server;
// the payout writes its PaymentNotice and reports it. The bare charge ch_2, relayed before, is
// left alone. Writing the payout again changes nothing and reports the same.
func TestWriteLedgerPayoutFillsInAMissingPayment(t *testing.T) {
	f := newFakeFHIR(t, "")
	target := fhirTarget(t, f)
	if err := target.Deliver(context.Background(), loadEvent(t, "charge.succeeded", func(_, o map[string]any) {
		o["id"], o["payment_intent"], o["invoice"], o["captured"] = "ch_2", nil, nil, true
	})); err != nil {
		t.Fatal(err)
	}
	for attempt := range 2 {
		filled, err := target.WriteLedger(context.Background(), payoutMessage("usd", 100))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(filled, []string{"pi_1"}) {
			t.Errorf("attempt %d: filled %v, want [pi_1]", attempt, filled)
		}
	}
	if n, r := f.count("PaymentNotice"), f.count("PaymentReconciliation"); n != 2 || r != 1 {
		t.Fatalf("%d PaymentNotices and %d PaymentReconciliations, want 2 and 1", n, r)
	}
	notice := f.stored["PaymentNotice"][1]
	if got := mustJSON(t, notice["identifier"]); got !=
		`[{"system":"https://stripe.com/payment_intents","value":"pi_1"},{"system":"https://stripe.com/charges","value":"ch_1"}]` {
		t.Errorf("filled notice identifiers = %s", got)
	}
	if got := mustJSON(t, notice["amount"]); got != `{"currency":"USD","value":6000}` {
		t.Errorf("filled notice amount = %s, want the gross 6000.00 USD", got)
	}
	// The payment's event, arriving late, finds the filled-in notice.
	relayPayment(t, target, "pi_1", "ch_1")
	if n := f.count("PaymentNotice"); n != 2 {
		t.Errorf("%d PaymentNotices after the late event, want 2", n)
	}
}

// TestWriteLedgerPayoutRetryReportsWhatTheFailedAttemptFilled: the first attempt fills in pi_1
// and ch_2, then the PaymentReconciliation fails; the retry finds both notices (200) and still
// reports them, because they say they were filled in by this payout.
func TestWriteLedgerPayoutRetryReportsWhatTheFailedAttemptFilled(t *testing.T) {
	f := newFakeFHIR(t, "")
	failRecon := true
	f.override = func(w http.ResponseWriter, r *http.Request) bool {
		if failRecon && strings.HasSuffix(r.URL.Path, "/PaymentReconciliation") {
			outcome(w, http.StatusServiceUnavailable, "transient", "database restarting")
			return true
		}
		return false
	}
	target := fhirTarget(t, f)
	if _, err := target.WriteLedger(context.Background(), payoutMessage("jpy", 1)); err == nil ||
		!strings.Contains(err.Error(), "PaymentReconciliation") || !strings.Contains(err.Error(), "po_1") {
		t.Fatalf("err = %v, want the reconciliation's failure named", err)
	}
	failRecon = false
	filled, err := target.WriteLedger(context.Background(), payoutMessage("jpy", 1))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(filled, []string{"ch_2", "pi_1"}) {
		t.Errorf("filled %v, want [ch_2 pi_1]", filled)
	}
	// A notice filled in by another payout is not this one's doing.
	other := payoutMessage("jpy", 1)
	other.ID, other.Payout.ID = "po_2", "po_2"
	if filled, err := target.WriteLedger(context.Background(), other); err != nil || len(filled) != 0 {
		t.Errorf("another payout: filled %v, err %v; want nothing", filled, err)
	}
}

// TestWriteLedgerFlag: a flag becomes one Flag resource, whatever the redeliveries.
func TestWriteLedgerFlag(t *testing.T) {
	f := newFakeFHIR(t, "")
	target := fhirTarget(t, f)
	for range 2 {
		if filled, err := target.WriteLedger(context.Background(), flagMessage()); err != nil || filled != nil {
			t.Fatalf("WriteLedger = %v, %v", filled, err)
		}
	}
	if n := f.total(); n != 1 {
		t.Fatalf("%d resources stored, want 1 Flag", n)
	}
	flag := f.stored["Flag"][0]
	for _, want := range []string{`"status":"active"`, `"code":"admin"`, `"code":"RefundSpike"`, `"text":"refunds of 1200.00 USD`,
		`"start":"2024-01-16T10:13:20Z"`, `{"system":"https://clinicpay.dev/clinic-id","value":"clinic-northside"}`,
		`"valueString":"evt_rf1"`, `"valueString":"pi_1"`, `"valueString":"ch_1"`, `"valueMoney":{"currency":"USD","value":1200}`} {
		if !strings.Contains(mustJSON(t, flag), want) {
			t.Errorf("Flag lacks %s: %s", want, mustJSON(t, flag))
		}
	}
	// The flag's identifier is its own, never a Stripe payment's.
	if got := mustJSON(t, flag["identifier"]); got != `[{"system":"https://clinicpay.dev/anomaly-flag","value":"RefundSpike/evt_rf1"}]` {
		t.Errorf("identifier = %s", got)
	}
}

// TestWriteLedgerRefusesAnInvalidMessage: a message that fails Check writes nothing.
func TestWriteLedgerRefusesAnInvalidMessage(t *testing.T) {
	f := newFakeFHIR(t, "")
	msg := payoutMessage("usd", 100)
	msg.Payout.Items = msg.Payout.Items[:2]
	if _, err := fhirTarget(t, f).WriteLedger(context.Background(), msg); err == nil || !strings.Contains(err.Error(), "add up") {
		t.Errorf("err = %v", err)
	}
	if len(f.requestLog()) != 0 {
		t.Errorf("%d requests for an invalid message", len(f.requestLog()))
	}
}

// TestLedgerResourcesAreValidR4: the gap-filled PaymentNotices (USD, zero-decimal JPY and
// three-decimal KWD), the payouts' PaymentReconciliations and Flags pass FHIR.js and the R4 rules
// it does not check.
func TestLedgerResourcesAreValidR4(t *testing.T) {
	all := make([]emitted, 0, 16)
	for _, c := range []struct {
		currency string
		scale    int64
	}{{"usd", 100}, {"jpy", 1}, {"kwd", 1}} {
		msg := payoutMessage(c.currency, c.scale)
		notices, err := gapFillNotices(*msg.Payout)
		if err != nil {
			t.Fatal(err)
		}
		if len(notices) != 2 {
			t.Fatalf("%s: %d notices, want 2 (pi_1, ch_2)", c.currency, len(notices))
		}
		recon, err := payoutReconciliation(*msg.Payout)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range append(notices, recon) {
			all = append(all, emitted{name: c.currency + " " + w.resourceType + " " + w.key.Value, json: json.RawMessage(mustJSON(t, w.resource))})
		}
	}
	flags := []ledger.Flag{*flagMessage().Flag,
		{ID: "FailedPaymentBurst/evt_f1", Rule: "FailedPaymentBurst", Reason: "5 failed payments in 10m", EventID: "evt_f1", Created: 1_705_400_000},
		{ID: "Dispute/evt_d1", Rule: "Dispute", Reason: "dispute opened", EventID: "evt_d1", EventType: "charge.dispute.created",
			ChargeID: "ch_2", DisputeID: "dp_1", Amount: 1500, Currency: "kwd"},
		{ID: "AmountOutlier/evt_o1", Rule: "AmountOutlier", Reason: "payment of 900000 JPY", EventID: "evt_o1", Amount: 900000, Currency: "jpy",
			PaymentIntentID: "pi_9", Created: 1_705_400_000},
	}
	for _, fl := range flags {
		w, err := anomalyFlag(testClinic, fl)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, emitted{name: "Flag " + fl.ID, json: json.RawMessage(mustJSON(t, w.resource))})
	}
	raw := make([]json.RawMessage, len(all))
	for i, e := range all {
		raw[i] = e.json
		for _, problem := range fhirRules(e.json) {
			t.Errorf("%s: %s", e.name, problem)
		}
	}
	results, code := runValidator(t, raw)
	for i, r := range results {
		if !r.Valid {
			t.Errorf("%s: FHIR.js says invalid: %+v\n%s", all[i].name, r.Messages, all[i].json)
		}
		for _, m := range r.Messages {
			if m.Severity != "info" && !exampleBindingWarning(m.Location, m.Message) {
				t.Errorf("%s: FHIR.js %s at %s: %s", all[i].name, m.Severity, m.Location, m.Message)
			}
		}
	}
	if code != 0 {
		t.Errorf("validator exit code %d, want 0", code)
	}
}

// exampleBindingWarning is the one warning FHIR.js gives a Flag: its code is not in the flag-code
// value set. That binding is of strength "example" (https://hl7.org/fhir/R4/flag.html,
// Flag.code), which asks nothing of instances
// (https://hl7.org/fhir/R4/terminologies.html#example), so our own code system is allowed.
func exampleBindingWarning(location, message string) bool {
	return location == "Flag.code" && strings.Contains(message, CodeSystemAnomalyRule) && strings.Contains(message, "not found in value set")
}

// TestValidatorRejectsInvalidFlag is the negative control for Flags: FHIR.js checks the
// elements a Flag requires and its status binding, so a green TestLedgerResourcesAreValidR4 says
// something about them.
func TestValidatorRejectsInvalidFlag(t *testing.T) {
	w, err := anomalyFlag(testClinic, *flagMessage().Flag)
	if err != nil {
		t.Fatal(err)
	}
	valid := mustJSON(t, w.resource)
	edits := map[string]func(map[string]any){
		"Flag.status":  func(r map[string]any) { r["status"] = "raised" },
		"Flag.code":    func(r map[string]any) { delete(r, "code") },
		"Flag.subject": func(r map[string]any) { delete(r, "subject") },
	}
	locations := []string{"Flag.status", "Flag.code", "Flag.subject"}
	resources := []json.RawMessage{json.RawMessage(valid)}
	for _, loc := range locations {
		var r map[string]any
		if err := json.Unmarshal([]byte(valid), &r); err != nil {
			t.Fatal(err)
		}
		edits[loc](r)
		resources = append(resources, json.RawMessage(mustJSON(t, r)))
	}
	results, _ := runValidator(t, resources)
	if !results[0].Valid {
		t.Errorf("control Flag invalid: %+v", results[0].Messages)
	}
	for i, loc := range locations {
		if results[i+1].Valid {
			t.Errorf("Flag broken at %s reported valid", loc)
		}
	}
}

// TestWriteLedgerPayoutResumes: a payout whose notices the FHIR server stops taking half way (a
// timeout, an outage) is resumed by the retry: only the notices not settled before are sent
// again, and every payment filled in by either attempt is reported.
func TestWriteLedgerPayoutResumes(t *testing.T) {
	f := newFakeFHIR(t, "")
	var notices int
	failing := true
	f.override = func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/PaymentNotice") {
			return false
		}
		f.mu.Lock()
		notices++
		fail := failing && notices > 10
		f.mu.Unlock()
		if fail {
			outcome(w, http.StatusServiceUnavailable, "transient", "overloaded")
			return true
		}
		return false
	}
	items := make([]ledger.Item, 0, 20)
	var sum int64
	for i := range 20 {
		id := fmt.Sprintf("%02d", i)
		items = append(items, ledger.Item{ID: "txn_" + id, Type: "charge", ReportingCategory: "charge", Amount: 1000, Fee: 30, Net: 970,
			Currency: "eur", Created: 1_705_300_000, ChargeID: "ch_" + id, PaymentIntentID: "pi_" + id})
		sum += 970
	}
	p := ledger.Payout{ID: "po_resume", ClinicID: testClinic, Amount: sum, Currency: "eur", ArrivalDate: 1_705_536_000, Created: 1_705_363_200,
		Items: items}
	msg := ledger.Message{ID: p.ID, Kind: ledger.KindPayout, ClinicID: testClinic, Payout: &p}
	target := fhirTarget(t, f)
	if _, err := target.WriteLedger(context.Background(), msg); err == nil {
		t.Fatal("the first attempt succeeded against a failing server")
	}
	f.mu.Lock()
	failing, notices = false, 0
	f.mu.Unlock()
	filled, err := target.WriteLedger(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	sent := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := notices
		notices = 0
		return n
	}
	if len(filled) != 20 || filled[0] != "pi_00" || filled[19] != "pi_19" {
		t.Errorf("filled %v, want all 20 payments", filled)
	}
	// At least the 10 the server refused; a few more when the first attempt gave up on requests
	// the server had answered (the retry finds those, and they say this payout filled them in).
	if n := sent(); n < 10 || n >= 10+noticeWorkers {
		t.Errorf("the retry sent %d notices, want the 10 the first attempt did not settle, not all 20", n)
	}
	if n, r := f.count("PaymentNotice"), f.count("PaymentReconciliation"); n != 20 || r != 1 {
		t.Errorf("%d notices and %d reconciliations, want 20 and 1", n, r)
	}
	// Written whole, the payout's progress is forgotten: sending it again asks the server anew,
	// whose stored notices still say this payout filled them in.
	if filled, err := target.WriteLedger(context.Background(), msg); err != nil || len(filled) != 20 {
		t.Errorf("again: %d filled, err %v", len(filled), err)
	}
	if n := sent(); n != 20 {
		t.Errorf("again: %d notices sent, want 20", n)
	}
}
