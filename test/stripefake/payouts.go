/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package stripefake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Payout statuses and reconciliation statuses, from
// https://docs.stripe.com/api/payouts/object.
const (
	PayoutPending   = "pending"
	PayoutInTransit = "in_transit"
	PayoutPaid      = "paid"
	PayoutFailed    = "failed"
	PayoutCanceled  = "canceled"

	ReconciliationNotApplicable = "not_applicable"
	ReconciliationInProgress    = "in_progress"
	ReconciliationCompleted     = "completed"
)

// defaultArrivalDelay is the standard payout's trip to the bank; Stripe
// quotes arrival_date with weekends and holidays factored in, which the fake
// leaves out.
const defaultArrivalDelay = 2 * 24 * time.Hour

// PayoutSeed describes a payout for CreatePayout.
type PayoutSeed struct {
	// Automatic marks a payout made by the account's payout schedule. Only
	// automatic payouts know which balance transactions they settle
	// (https://docs.stripe.com/payouts/reconciliation): they take
	// TransactionIDs and their amount is the sum of those transactions' nets.
	Automatic      bool
	TransactionIDs []string
	// Amount and Currency are those of a manual payout; for an automatic one
	// the currency comes from its transactions and Amount must stay 0.
	Amount   int64
	Currency string
	// Method is standard (the default) or instant.
	Method      string
	Description string
	// Created defaults to the fake clock's now, ArrivalDate to two days later.
	Created     time.Time
	ArrivalDate time.Time
}

// payoutRec is a stored payout.
type payoutRec struct {
	seq            int64
	id             string
	sc             scope
	amount         int64
	currency       string
	automatic      bool
	method         string
	description    string
	destination    string
	created        int64
	arrivalDate    int64
	status         string
	reconciliation string
	// txn is the payout's own balance transaction (type payout, -amount).
	txn string
	// failureTxn returns a failed payout's amount to the balance.
	failureTxn     string
	failureCode    string
	failureMessage string
}

// CreatePayout makes a pending payout, as Stripe's payout schedule (or a
// manual payout request) does, and returns its po_ id. An automatic payout
// settles the given balance transactions: each must be in the same account,
// mode and currency, available by the payout's creation and not settled yet,
// and their nets must add up to a positive amount. Every payout debits the
// balance with its own balance transaction of type payout, which lists among
// the payout's transactions. A payout.created event follows.
func (s *Server) CreatePayout(account string, livemode bool, seed PayoutSeed) (string, error) {
	s.mu.Lock()
	if s.accounts[account] == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("account %q: %w", account, ErrNotFound)
	}
	p, err := s.newPayout(scope{account: account, live: livemode}, seed)
	if err != nil {
		s.mu.Unlock()
		return "", err
	}
	obj, err := p.eventObject()
	s.mu.Unlock()
	if err != nil {
		return p.id, err
	}
	if _, err := s.TriggerEvent(account, livemode, "payout.created", obj); err != nil {
		return p.id, err
	}
	return p.id, nil
}

// newPayout validates seed, settles its transactions and stores the payout.
// Callers hold s.mu.
func (s *Server) newPayout(sc scope, seed PayoutSeed) (*payoutRec, error) {
	now := s.cfg.now()
	created := seed.Created
	if created.IsZero() {
		created = now
	}
	arrival := seed.ArrivalDate
	if arrival.IsZero() {
		arrival = created.Add(defaultArrivalDelay)
	}
	method := seed.Method
	if method == "" {
		method = "standard"
	}
	if method != "standard" && method != "instant" {
		return nil, fmt.Errorf("stripefake: payout method %q is not standard or instant", method)
	}
	p := &payoutRec{
		sc: sc, automatic: seed.Automatic, method: method, description: seed.Description,
		created: created.Unix(), arrivalDate: arrival.Unix(), status: PayoutPending,
		reconciliation: ReconciliationNotApplicable, destination: s.modeStateFor(sc).bankAccount(),
	}
	var settled []*txnRec
	if seed.Automatic {
		var err error
		if settled, err = s.settleable(sc, seed, created); err != nil {
			return nil, err
		}
		p.currency = settled[0].currency
		for _, t := range settled {
			p.amount += t.net()
		}
		if p.amount <= 0 {
			return nil, fmt.Errorf("stripefake: the transactions net to %d %s: Stripe pays out only a positive balance", p.amount, p.currency)
		}
		p.reconciliation = ReconciliationInProgress
	} else {
		if len(seed.TransactionIDs) > 0 {
			return nil, errors.New("stripefake: a manual payout settles no particular transactions " +
				"(https://docs.stripe.com/payouts/reconciliation): give Amount and Currency")
		}
		if err := checkCurrency(seed.Currency); err != nil {
			return nil, err
		}
		if seed.Amount <= 0 {
			return nil, fmt.Errorf("stripefake: a payout amount must be positive, got %d", seed.Amount)
		}
		p.amount, p.currency = seed.Amount, seed.Currency
	}
	p.seq = s.nextSeq()
	p.id = "po_" + randomID(24)
	debit := &txnRec{
		seq: s.nextSeq(), id: "txn_" + randomID(24), sc: sc, typ: "payout", amount: -p.amount, currency: p.currency,
		source: p.id, category: "payout", created: p.created, availableOn: p.created, payout: p.id,
	}
	p.txn = debit.id
	s.storeTxn(debit)
	for _, t := range settled {
		t.payout = p.id
	}
	ms := s.modeStateFor(sc)
	ms.payouts = insertByCreated(ms.payouts, p, func(x *payoutRec) int64 { return x.created })
	s.payouts[p.id] = p
	return p, nil
}

// settleable resolves an automatic payout's transactions. Callers hold s.mu.
func (s *Server) settleable(sc scope, seed PayoutSeed, created time.Time) ([]*txnRec, error) {
	if seed.Amount != 0 {
		return nil, errors.New("stripefake: an automatic payout's amount is the sum of its transactions' nets: leave Amount 0")
	}
	if len(seed.TransactionIDs) == 0 {
		return nil, errors.New("stripefake: an automatic payout settles at least one balance transaction")
	}
	seen := map[string]bool{}
	out := make([]*txnRec, 0, len(seed.TransactionIDs))
	for _, id := range seed.TransactionIDs {
		t := s.txns[id]
		switch {
		case t == nil || t.sc != sc:
			return nil, fmt.Errorf("balance transaction %q in this account and mode: %w", id, ErrNotFound)
		case seen[id]:
			return nil, fmt.Errorf("stripefake: balance transaction %s is listed twice", id)
		case t.payout != "":
			return nil, fmt.Errorf("stripefake: balance transaction %s is already in payout %s", id, t.payout)
		case t.availableOn > created.Unix():
			return nil, fmt.Errorf("stripefake: balance transaction %s is pending until %s: a payout settles only available funds",
				id, time.Unix(t.availableOn, 0).UTC().Format(time.RFC3339))
		case len(out) > 0 && t.currency != out[0].currency:
			return nil, fmt.Errorf("stripefake: a payout is in one currency; %s is %s, not %s", id, t.currency, out[0].currency)
		}
		seen[id] = true
		out = append(out, t)
	}
	return out, nil
}

// bankAccount is the scope's payout destination, made on first use.
func (ms *modeState) bankAccount() string {
	if ms.bankAccountID == "" {
		ms.bankAccountID = "ba_" + randomID(24)
	}
	return ms.bankAccountID
}

// PayPayout marks a pending or in-transit payout paid, as the bank's
// confirmation does, and sends payout.paid. An automatic payout's
// reconciliation then completes and payout.reconciliation_completed follows;
// only from then on does GET /v1/balance_transactions?payout= list everything
// it settled (https://docs.stripe.com/api/payouts/object#payout_object-reconciliation_status),
// so a consumer that lists on payout.paid sees the payout's debit alone, as
// it could on Stripe. A manual payout's reconciliation stays not_applicable.
func (s *Server) PayPayout(account string, livemode bool, id string) error {
	obj, err := s.movePayout(account, livemode, id, func(p *payoutRec) error {
		if p.status != PayoutPending && p.status != PayoutInTransit {
			return fmt.Errorf("stripefake: payout %s is %s, not pending or in transit", id, p.status)
		}
		p.status = PayoutPaid
		return nil
	})
	if err != nil {
		return err
	}
	if _, err := s.TriggerEvent(account, livemode, "payout.paid", obj); err != nil {
		return err
	}
	obj, err = s.movePayout(account, livemode, id, func(p *payoutRec) error {
		if !p.automatic {
			return errNotReconciled
		}
		p.reconciliation = ReconciliationCompleted
		return nil
	})
	switch {
	case errors.Is(err, errNotReconciled):
		return nil
	case err != nil:
		return err
	}
	_, err = s.TriggerEvent(account, livemode, "payout.reconciliation_completed", obj)
	return err
}

// errNotReconciled ends PayPayout for a manual payout, which has no reconciliation.
var errNotReconciled = errors.New("stripefake: manual payouts are not reconciled")

// SendPayoutInTransit moves a pending payout to in_transit, as its submission
// to the bank does; Stripe sends payout.updated.
func (s *Server) SendPayoutInTransit(account string, livemode bool, id string) error {
	obj, err := s.movePayout(account, livemode, id, func(p *payoutRec) error {
		if p.status != PayoutPending {
			return fmt.Errorf("stripefake: payout %s is %s, not pending", id, p.status)
		}
		p.status = PayoutInTransit
		return nil
	})
	if err != nil {
		return err
	}
	_, err = s.TriggerEvent(account, livemode, "payout.updated", obj)
	return err
}

// FailPayout fails a payout with a Stripe failure code (account_closed,
// no_account, could_not_process, ...; "" means could_not_process) and sends
// payout.failed. As on Stripe, a payout already paid can still fail ("Some
// payouts that fail might initially show as paid, then change to failed",
// https://docs.stripe.com/api/payouts/object#payout_object-status), and a
// payout_failure balance transaction returns the amount to the balance
// (failure_balance_transaction), where a later payout can settle it.
func (s *Server) FailPayout(account string, livemode bool, id, failureCode string) error {
	if failureCode == "" {
		failureCode = "could_not_process"
	}
	obj, err := s.movePayout(account, livemode, id, func(p *payoutRec) error {
		if p.status != PayoutPending && p.status != PayoutInTransit && p.status != PayoutPaid {
			return fmt.Errorf("stripefake: payout %s is %s and cannot fail", id, p.status)
		}
		now := s.cfg.now().Unix()
		back := &txnRec{
			seq: s.nextSeq(), id: "txn_" + randomID(24), sc: p.sc, typ: "payout_failure", amount: p.amount,
			currency: p.currency, source: p.id, category: "payout_reversal", created: now, availableOn: now,
		}
		s.storeTxn(back)
		p.status, p.failureTxn, p.failureCode = PayoutFailed, back.id, failureCode
		p.failureMessage = "The bank could not process this payout (" + failureCode + ")."
		return nil
	})
	if err != nil {
		return err
	}
	_, err = s.TriggerEvent(account, livemode, "payout.failed", obj)
	return err
}

// movePayout applies change to a payout under the lock and returns the
// payout's new state as an event object.
func (s *Server) movePayout(account string, livemode bool, id string, change func(*payoutRec) error) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.payouts[id]
	if p == nil || p.sc != (scope{account: account, live: livemode}) {
		return nil, fmt.Errorf("payout %q in this account and mode: %w", id, ErrNotFound)
	}
	if err := change(p); err != nil {
		return nil, err
	}
	return p.eventObject()
}

// eventObject renders p as an event's data.object, numbers kept exact.
// Callers hold s.mu.
func (p *payoutRec) eventObject() (map[string]any, error) {
	raw, err := json.Marshal(p.render())
	if err != nil {
		return nil, fmt.Errorf("stripefake: render payout %s: %w", p.id, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("stripefake: render payout %s: %w", p.id, err)
	}
	return obj, nil
}
