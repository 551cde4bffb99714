package fhirrelay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/relay"
)

var _ relay.LedgerWriter = (*Target)(nil)

// noticeWorkers bounds the gap-filling PaymentNotice creates of one payout in flight at once:
// a payout of a busy month settles thousands of payments, each one conditional create.
const noticeWorkers = 8

// WriteLedger records a ledger message (relay.LedgerWriter):
//   - a payout first makes sure each payment it settles has its PaymentNotice (a conditional
//     create keyed as the event relay keys it, so an existing notice is found and left alone),
//     then writes the payout's PaymentReconciliation, keyed on the payout id;
//   - a flag becomes a Flag resource keyed on the flag id.
//
// filled are the payments whose PaymentNotice this payout created: 201 Created now, or, when an
// earlier attempt of the same message created it and failed later, a 200 whose stored notice
// says it was filled in by this payout.
func (t *Target) WriteLedger(ctx context.Context, msg ledger.Message) ([]string, error) {
	if err := msg.Check(); err != nil {
		return nil, fmt.Errorf("fhir: %w", err)
	}
	switch msg.Kind {
	case ledger.KindPayout:
		return t.writePayout(ctx, *msg.Payout)
	case ledger.KindFlag:
		w, err := anomalyFlag(msg.ClinicID, *msg.Flag)
		if err != nil {
			return nil, fmt.Errorf("fhir: flag %s: %w", msg.ID, err)
		}
		if _, err := t.conditionalCreate(ctx, w); err != nil {
			return nil, fmt.Errorf("fhir: flag %s: %w", msg.ID, err)
		}
		return nil, nil
	}
	return nil, fmt.Errorf("fhir: message %s: unknown kind %q", msg.ID, msg.Kind)
}

// writePayout writes the payout's missing PaymentNotices, then its PaymentReconciliation: the
// reconciliation references the notices, so they exist by the time it is stored.
func (t *Target) writePayout(ctx context.Context, p ledger.Payout) ([]string, error) {
	recon, err := payoutReconciliation(p)
	if err != nil {
		return nil, fmt.Errorf("fhir: payout %s: %w", p.ID, err)
	}
	notices, err := gapFillNotices(p)
	if err != nil {
		return nil, fmt.Errorf("fhir: payout %s: %w", p.ID, err)
	}
	filled, err := t.writeNotices(ctx, p.ID, notices)
	if err != nil {
		return nil, fmt.Errorf("fhir: payout %s: %w", p.ID, err)
	}
	if _, err := t.conditionalCreate(ctx, recon); err != nil {
		return nil, fmt.Errorf("fhir: payout %s: %w", p.ID, err)
	}
	t.payouts.forget(p.ID)
	return filled, nil
}

// writeNotices runs the notices' conditional creates, at most noticeWorkers at once, and returns
// the keys (pi_… or ch_…) of those this payout filled in, sorted. The first error stops the
// writes not yet started; those done stay done and are remembered (payoutProgress), so the
// operator's retry of a payout too large for one forward timeout resumes where this one stopped
// instead of starting over.
func (t *Target) writeNotices(ctx context.Context, payoutID string, notices []write) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := t.payouts.get(payoutID)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan write)
	for range min(noticeWorkers, len(notices)) {
		wg.Go(func() {
			for w := range next {
				c, err := t.conditionalCreate(ctx, w)
				if err == nil {
					done.settle(w.key, c.now || filledBy(c.existing, payoutID))
					continue
				}
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("PaymentNotice of %s: %w", w.key.Value, err)
					cancel()
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, w := range notices {
		if done.settled(w.key) {
			continue
		}
		select {
		case next <- w:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return done.filled(), nil
}

// maxPayoutsInProgress bounds the payouts whose progress is remembered; the operator writes one
// payout at a time per clinic, so more are only payouts abandoned half written.
const maxPayoutsInProgress = 16

// payoutProgress remembers, per payout not yet written whole, which of its PaymentNotices are
// settled (created, or found) and which of them it filled in. It is dropped once the payout's
// reconciliation is written. A restart or another replica forgets it, which costs only a request
// per notice again: the notices' conditional creates and the filled-from-payout extension give
// the same answer.
type payoutProgress struct {
	mu    sync.Mutex
	by    map[string]*noticesDone
	order []string // oldest first, for eviction
}

func (p *payoutProgress) get(payoutID string) *noticesDone {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.by[payoutID]; d != nil {
		return d
	}
	if p.by == nil {
		p.by = map[string]*noticesDone{}
	}
	if len(p.order) >= maxPayoutsInProgress {
		delete(p.by, p.order[0])
		p.order = p.order[1:]
	}
	d := &noticesDone{keys: map[Identifier]bool{}}
	p.by[payoutID] = d
	p.order = append(p.order, payoutID)
	return d
}

func (p *payoutProgress) forget(payoutID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.by[payoutID]; !ok {
		return
	}
	delete(p.by, payoutID)
	p.order = slices.DeleteFunc(p.order, func(id string) bool { return id == payoutID })
}

// noticesDone is one payout's settled notices: key → filled in by this payout.
type noticesDone struct {
	mu   sync.Mutex
	keys map[Identifier]bool
}

func (d *noticesDone) settle(key Identifier, filled bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keys[key] = filled
}

func (d *noticesDone) settled(key Identifier) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.keys[key]
	return ok
}

func (d *noticesDone) filled() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for key, filled := range d.keys {
		if filled {
			out = append(out, key.Value)
		}
	}
	sort.Strings(out)
	return out
}

// filledBy reports whether a stored PaymentNotice was written by this package to fill in a
// payment of payout (it carries ExtensionFilledFromPayout with the payout id).
func filledBy(stored []byte, payout string) bool {
	if len(stored) == 0 {
		return false
	}
	var n struct {
		Extension []Extension `json:"extension"`
	}
	if json.Unmarshal(stored, &n) != nil {
		return false
	}
	for _, e := range n.Extension {
		if e.URL == ExtensionFilledFromPayout && e.ValueString == payout {
			return true
		}
	}
	return false
}

// settledPayment is one payment a payout settles, as gapFillNotices builds its notice.
type settledPayment struct {
	key     Identifier
	ids     []Identifier
	gross   int64
	created int64
}

// gapFillNotices builds, for each payment the payout settles (isPaymentItem), the PaymentNotice
// the event relay would have written had its payment event reached the FHIR server, keyed on
// exactly the identifier the event relay keys it on: the PaymentIntent id when the payment has
// one, else the Charge id (newPayment). The If-None-Exist search is a token search on
// identifier, which matches a resource when any of its identifiers has that system and value
// (https://hl7.org/fhir/R4/search.html#token), and an event-written notice lists the
// PaymentIntent and Charge ids, so it is found whichever the item carries; a notice filled in
// here lists both too, so the payment's event, arriving late, finds it instead of writing a
// second one. The shape is R4's PaymentNotice (https://hl7.org/fhir/R4/paymentnotice.html):
// payment (1..1) points at the contained PaymentReconciliation, as in the event-written one.
//
// Two items of one payment (a PaymentIntent charged twice) make one notice of their sum, as the
// PaymentIntent's amount_received would be.
//
// What differs from the event-written notice, because a balance transaction carries less than
// the payment event: no Stripe API version extension (there is no event) but
// ExtensionFilledFromPayout naming the payout; created, paymentDate and the contained
// reconciliation's dates are the balance transaction's time, not the event's; no request and no
// allocation detail (the Stripe metadata naming the Claim or Invoice is not in the payout); no
// Invoice id among the identifiers. Amount (gross), currency, payee, recipient and
// paymentStatus "paid" are the same.
func gapFillNotices(p ledger.Payout) ([]write, error) {
	code, err := currencyCode(p.Currency)
	if err != nil {
		return nil, err
	}
	byKey := map[Identifier]*settledPayment{}
	var order []*settledPayment
	for _, it := range p.Items {
		if !isPaymentItem(it) {
			continue
		}
		ref := paymentRef(it)
		if ref == nil {
			// No id the event relay could have keyed a notice on: nothing to look up or fill
			// in. The reconciliation still records the item by its balance transaction id.
			continue
		}
		key := *ref.Identifier
		sp := byKey[key]
		if sp == nil {
			sp = &settledPayment{key: key, created: it.Created}
			byKey[key] = sp
			order = append(order, sp)
		}
		sp.gross += it.Amount
		sp.created = min(sp.created, it.Created)
		sp.ids = addIdentifier(sp.ids, SystemStripePaymentIntent, it.PaymentIntentID)
		sp.ids = addIdentifier(sp.ids, SystemStripeCharge, it.ChargeID)
	}
	clinic := Reference{Type: "Organization", Identifier: &Identifier{System: SystemClinicID, Value: p.ClinicID}}
	writes := make([]write, 0, len(order))
	for _, sp := range order {
		writes = append(writes, gapFillNotice(p.ID, sp, clinic, code))
	}
	return writes, nil
}

// addIdentifier appends system|value unless value is empty or already there; the PaymentIntent
// goes first, as in the event-written notice.
func addIdentifier(ids []Identifier, system, value string) []Identifier {
	if value == "" {
		return ids
	}
	for _, id := range ids {
		if id.System == system && id.Value == value {
			return ids
		}
	}
	return append(ids, Identifier{System: system, Value: value})
}

func gapFillNotice(payoutID string, sp *settledPayment, clinic Reference, code string) write {
	at := time.Unix(sp.created, 0).UTC()
	created, date := at.Format(time.RFC3339), at.Format(time.DateOnly)
	amount := moneyIn(sp.gross, code)
	key := sp.key
	ids := append([]Identifier{key}, withoutIdentifier(sp.ids, key)...)
	recon := &PaymentReconciliation{
		ResourceType:      "PaymentReconciliation",
		ID:                containedPaymentID,
		Status:            fmStatusActive,
		Created:           created,
		Outcome:           outcomeComplete,
		PaymentDate:       date,
		PaymentAmount:     amount,
		PaymentIdentifier: &key,
	}
	payee := clinic
	notice := &PaymentNotice{
		ResourceType:  "PaymentNotice",
		Extension:     []Extension{{URL: ExtensionFilledFromPayout, ValueString: payoutID}},
		Contained:     []*PaymentReconciliation{recon},
		Identifier:    ids,
		Status:        fmStatusActive,
		Created:       created,
		Payment:       Reference{Reference: "#" + containedPaymentID},
		PaymentDate:   date,
		Payee:         &payee,
		Recipient:     clinic,
		Amount:        amount,
		PaymentStatus: &CodeableConcept{Coding: []Coding{{System: paymentStatusSystem, Code: "paid", Display: "Paid"}}},
	}
	return write{resourceType: "PaymentNotice", key: key, resource: notice, wantExisting: true}
}

func withoutIdentifier(ids []Identifier, drop Identifier) []Identifier {
	out := make([]Identifier, 0, len(ids))
	for _, id := range ids {
		if id != drop {
			out = append(out, id)
		}
	}
	return out
}

// Flag codes: the category is HL7's "admin" (https://hl7.org/fhir/R4/codesystem-flag-category.html),
// the code the operator's rule in CodeSystemAnomalyRule. Flag.status is a required binding to
// flag-status, of which "active" is the flag in force (https://hl7.org/fhir/R4/flag.html).
const (
	flagStatusActive   = "active"
	flagCategorySystem = "http://terminology.hl7.org/CodeSystem/flag-category"
)

// ruleDisplay names the operator's rules (internal/anomaly) for CodeSystemAnomalyRule codings.
var ruleDisplay = map[string]string{
	"RefundSpike":        "Refund spike",
	"AmountOutlier":      "Amount outlier",
	"FailedPaymentBurst": "Failed-payment burst",
	"Dispute":            "Dispute",
}

// anomalyFlag maps an anomaly flag to a FHIR R4 Flag about the clinic's Organization, written
// once per flag id.
//
// The Stripe event and the payment it concerns are carried in extensions, not as identifiers:
// Flag.identifier is the Flag's own business identifier (https://hl7.org/fhir/R4/flag-definitions.html#Flag.identifier),
// and a Flag holding https://stripe.com/payment_intents|pi_… among its identifiers would be
// returned by every search for that payment by identifier ([base]?identifier=… across types, or
// a client that searches without a type), as if it were the payment's record, next to the
// PaymentNotice keyed on it. The rule's text (Flag.code.text) is the flag's reason, with the
// figure and threshold.
func anomalyFlag(clinicID string, f ledger.Flag) (write, error) {
	if f.ID == "" || f.Rule == "" || f.EventID == "" {
		return write{}, errors.New("flag needs its id, rule and event id")
	}
	key := Identifier{System: SystemAnomalyFlag, Value: f.ID}
	display := ruleDisplay[f.Rule]
	if display == "" {
		display = f.Rule
	}
	text := f.Reason
	if text == "" {
		text = display
	}
	ext := []Extension{{URL: ExtensionStripeEventID, ValueString: f.EventID}}
	if f.EventType != "" {
		ext = append(ext, Extension{URL: ExtensionStripeEventType, ValueString: f.EventType})
	}
	for _, e := range []struct{ url, value string }{
		{ExtensionStripePaymentIntent, f.PaymentIntentID},
		{ExtensionStripeCharge, f.ChargeID},
		{ExtensionStripeDispute, f.DisputeID},
	} {
		if e.value != "" {
			ext = append(ext, Extension{URL: e.url, ValueString: e.value})
		}
	}
	if f.Currency != "" {
		amount, err := stripeMoney(f.Amount, f.Currency)
		if err != nil {
			return write{}, err
		}
		ext = append(ext, Extension{URL: ExtensionStripeAmount, ValueMoney: &amount})
	}
	flag := &Flag{
		ResourceType: "Flag",
		Extension:    ext,
		Identifier:   []Identifier{key},
		Status:       flagStatusActive,
		Category: []CodeableConcept{{Coding: []Coding{{System: flagCategorySystem, Code: "admin", Display: "Administrative"}},
			Text: "Payment anomaly"}},
		Code:    CodeableConcept{Coding: []Coding{{System: CodeSystemAnomalyRule, Code: f.Rule, Display: display}}, Text: text},
		Subject: Reference{Type: "Organization", Identifier: &Identifier{System: SystemClinicID, Value: clinicID}},
	}
	if f.Created > 0 {
		// The event's time: when the anomaly happened, not when the operator noticed it.
		flag.Period = &Period{Start: time.Unix(f.Created, 0).UTC().Format(time.RFC3339)}
	}
	return write{resourceType: "Flag", key: key, resource: flag}, nil
}
