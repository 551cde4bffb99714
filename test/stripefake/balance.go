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
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// FeeDetail is one line of a balance transaction's fee breakdown.
type FeeDetail struct {
	// Amount is positive when a fee is charged, in the transaction's currency.
	Amount int64
	// Type is one of application_fee, payment_method_passthrough_fee,
	// stripe_fee or tax.
	Type        string
	Description string
}

// BalanceTransactionSeed describes a balance transaction for
// AddBalanceTransaction: what Stripe records when money moves (a payment, a
// refund, a dispute, a fee). Net is never given: Stripe computes it as
// amount - fee (https://docs.stripe.com/api/balance_transactions/object).
type BalanceTransactionSeed struct {
	// Type is a Stripe balance transaction type: charge, payment, refund,
	// payment_refund, adjustment, stripe_fee, ... (a dispute is an adjustment
	// whose Source is a dp_ id). payout is reserved to CreatePayout.
	Type string
	// Amount is the gross amount in the currency's smallest unit: positive
	// for charges and payments, negative for refunds and Stripe fees.
	Amount   int64
	Currency string
	Fees     []FeeDetail
	// Source is the id of the object the transaction belongs to (ch_, py_,
	// re_, dp_, ...); one with the type's usual prefix is made up when empty.
	Source string
	// SourcePaymentIntent and SourceCharge are what the source object names
	// when it is expanded (expand[]=data.source): a charge's payment intent; a
	// refund's or a dispute's charge and payment intent. The fake keeps no
	// charges of its own, so the seed says what they would be.
	SourcePaymentIntent, SourceCharge string
	// ReportingCategory defaults to the type's category (charge, refund,
	// dispute, fee, other_adjustment, ...).
	ReportingCategory string
	Description       string
	// Created defaults to the fake clock's now; AvailableOn to Created.
	Created     time.Time
	AvailableOn time.Time
}

// txnRec is a stored balance transaction.
type txnRec struct {
	seq         int64
	id          string
	sc          scope
	typ         string
	amount      int64
	currency    string
	fees        []FeeDetail
	source      string
	sourcePI    string
	sourceCh    string
	category    string
	description string
	created     int64
	availableOn int64
	// payout is the po_ id of the automatic payout that settled the
	// transaction, or of the payout the transaction is the debit of.
	payout string
}

func (t *txnRec) fee() int64 {
	var sum int64
	for _, f := range t.fees {
		sum += f.Amount
	}
	return sum
}

// net is what the transaction adds to the balance: amount - fee, as Stripe
// defines it (https://docs.stripe.com/api/balance_transactions/object#balance_transaction_object-net).
func (t *txnRec) net() int64 { return t.amount - t.fee() }

// txnTypes describes the seedable types: the usual source prefix, the
// reporting category (https://docs.stripe.com/reports/reporting-categories)
// and the sign Stripe gives the gross amount
// (https://docs.stripe.com/reports/balance-transaction-types).
var txnTypes = map[string]struct {
	prefix   string
	category string
	sign     int // +1 positive, -1 negative, 0 either
}{
	"charge":                 {"ch_", "charge", +1},
	"payment":                {"py_", "charge", +1},
	"refund":                 {"re_", "refund", -1},
	"payment_refund":         {"pyr_", "refund", -1},
	"refund_failure":         {"re_", "refund_failure", +1},
	"payment_failure_refund": {"pyr_", "refund_failure", +1},
	"adjustment":             {"", "other_adjustment", 0},
	"stripe_fee":             {"", "fee", -1},
	"tax_fee":                {"", "tax", -1},
	"application_fee":        {"fee_", "platform_earning", +1},
	"transfer":               {"tr_", "transfer", 0},
	"topup":                  {"tu_", "topup", +1},
}

// feeTypes are the fee_details types stripe-go v76 documents.
var feeTypes = []string{"application_fee", "payment_method_passthrough_fee", "stripe_fee", "tax"}

// AddBalanceTransaction records a balance transaction in an account's balance
// for one mode, as Stripe does when a payment, refund, dispute or fee moves
// money, and returns its txn_ id. The account must be known (AddKey).
func (s *Server) AddBalanceTransaction(account string, livemode bool, seed BalanceTransactionSeed) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accounts[account] == nil {
		return "", fmt.Errorf("account %q: %w", account, ErrNotFound)
	}
	t, err := s.newTxn(scope{account: account, live: livemode}, seed)
	if err != nil {
		return "", err
	}
	s.storeTxn(t)
	return t.id, nil
}

// newTxn validates a seed against Stripe's rules and builds the record.
// Callers hold s.mu.
func (s *Server) newTxn(sc scope, seed BalanceTransactionSeed) (*txnRec, error) {
	kind, ok := txnTypes[seed.Type]
	if !ok {
		return nil, fmt.Errorf("stripefake: balance transaction type %q cannot be seeded (payout is made by CreatePayout)", seed.Type)
	}
	if err := checkCurrency(seed.Currency); err != nil {
		return nil, err
	}
	switch {
	case seed.Amount == 0:
		return nil, errors.New("stripefake: a balance transaction moves a non-zero amount")
	case kind.sign > 0 && seed.Amount < 0, kind.sign < 0 && seed.Amount > 0:
		return nil, fmt.Errorf("stripefake: a %s has a %s amount on Stripe, got %d", seed.Type, signWord(kind.sign), seed.Amount)
	}
	if seed.Type == "charge" || seed.Type == "payment" {
		if err := checkChargeAmount(seed.Currency, seed.Amount); err != nil {
			return nil, err
		}
	}
	for _, f := range seed.Fees {
		if !slices.Contains(feeTypes, f.Type) {
			return nil, fmt.Errorf("stripefake: fee type %q is not one of %v", f.Type, feeTypes)
		}
	}
	now := s.cfg.now()
	created := seed.Created
	if created.IsZero() {
		created = now
	}
	available := seed.AvailableOn
	if available.IsZero() {
		available = created
	}
	t := &txnRec{
		seq: s.nextSeq(), id: "txn_" + randomID(24), sc: sc, typ: seed.Type, amount: seed.Amount,
		currency: seed.Currency, fees: slices.Clone(seed.Fees), source: seed.Source, sourcePI: seed.SourcePaymentIntent,
		sourceCh: seed.SourceCharge, category: seed.ReportingCategory,
		description: seed.Description, created: created.Unix(), availableOn: available.Unix(),
	}
	if t.source == "" && kind.prefix != "" {
		t.source = kind.prefix + randomID(24)
	}
	if t.category == "" {
		t.category = kind.category
		if seed.Type == "adjustment" && strings.HasPrefix(t.source, "dp_") {
			// A dispute's withdrawal and reinstatement are adjustments whose
			// source is the dispute (https://docs.stripe.com/reports/balance-transaction-types).
			t.category = "dispute"
		}
	}
	return t, nil
}

func signWord(sign int) string {
	if sign > 0 {
		return "positive"
	}
	return "negative"
}

// storeTxn indexes t. Callers hold s.mu.
func (s *Server) storeTxn(t *txnRec) {
	ms := s.modeStateFor(t.sc)
	ms.txns = insertByCreated(ms.txns, t, func(x *txnRec) int64 { return x.created })
	s.txns[t.id] = t
}

// insertByCreated keeps a log ordered by (created, seq), oldest first, so a
// record seeded with a past time lists where Stripe would list it.
func insertByCreated[T any](log []T, rec T, created func(T) int64) []T {
	i := len(log)
	for i > 0 && created(log[i-1]) > created(rec) {
		i--
	}
	return slices.Insert(log, i, rec)
}
