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
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// payoutJSON is the wire shape of a payout
// (https://docs.stripe.com/api/payouts/object) at stripe-go v76's API version
// 2023-10-16 (later versions add payout_method and trace_id); the fields the
// fake does not model are sent as Stripe sends them when unset.
type payoutJSON struct {
	ID                        string            `json:"id"`
	Object                    string            `json:"object"`
	Amount                    int64             `json:"amount"`
	ApplicationFee            *string           `json:"application_fee"`
	ApplicationFeeAmount      *int64            `json:"application_fee_amount"`
	ArrivalDate               int64             `json:"arrival_date"`
	Automatic                 bool              `json:"automatic"`
	BalanceTransaction        string            `json:"balance_transaction"`
	Created                   int64             `json:"created"`
	Currency                  string            `json:"currency"`
	Description               *string           `json:"description"`
	Destination               string            `json:"destination"`
	FailureBalanceTransaction *string           `json:"failure_balance_transaction"`
	FailureCode               *string           `json:"failure_code"`
	FailureMessage            *string           `json:"failure_message"`
	Livemode                  bool              `json:"livemode"`
	Metadata                  map[string]string `json:"metadata"`
	Method                    string            `json:"method"`
	OriginalPayout            *string           `json:"original_payout"`
	ReconciliationStatus      string            `json:"reconciliation_status"`
	ReversedBy                *string           `json:"reversed_by"`
	SourceType                string            `json:"source_type"`
	StatementDescriptor       *string           `json:"statement_descriptor"`
	Status                    string            `json:"status"`
	Type                      string            `json:"type"`
}

func (p *payoutRec) render() payoutJSON {
	out := payoutJSON{
		ID: p.id, Object: "payout", Amount: p.amount, ArrivalDate: p.arrivalDate, Automatic: p.automatic,
		BalanceTransaction: p.txn, Created: p.created, Currency: p.currency, Destination: p.destination,
		Livemode: p.sc.live, Metadata: map[string]string{}, Method: p.method, ReconciliationStatus: p.reconciliation,
		SourceType: "card", Status: p.status, Type: "bank_account",
	}
	if p.description != "" {
		d := p.description
		out.Description = &d
	}
	if p.failureTxn != "" {
		txn, code, msg := p.failureTxn, p.failureCode, p.failureMessage
		out.FailureBalanceTransaction, out.FailureCode, out.FailureMessage = &txn, &code, &msg
	}
	return out
}

// txnJSON is the wire shape of a balance transaction
// (https://docs.stripe.com/api/balance_transactions/object).
type txnJSON struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Amount            int64           `json:"amount"`
	AvailableOn       int64           `json:"available_on"`
	Created           int64           `json:"created"`
	Currency          string          `json:"currency"`
	Description       *string         `json:"description"`
	ExchangeRate      *float64        `json:"exchange_rate"`
	Fee               int64           `json:"fee"`
	FeeDetails        []feeDetailJSON `json:"fee_details"`
	Net               int64           `json:"net"`
	ReportingCategory string          `json:"reporting_category"`
	// Source is the source's id, or the object itself when expanded (sourceJSON).
	Source any    `json:"source"`
	Status string `json:"status"`
	Type   string `json:"type"`
}

type feeDetailJSON struct {
	Amount      int64   `json:"amount"`
	Application *string `json:"application"`
	Currency    string  `json:"currency"`
	Description *string `json:"description"`
	Type        string  `json:"type"`
}

// sourceJSON is an expanded source: the fields of the charge, refund or dispute
// that name the payment it belongs to. Stripe returns the whole object; these are
// the fields reconciliation reads (https://docs.stripe.com/expand, and
// https://docs.stripe.com/payouts/reconciliation, which lists a payout's
// transactions with expand[]=data.source).
type sourceJSON struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"`
	PaymentIntent *string `json:"payment_intent"`
	Charge        *string `json:"charge,omitempty"`
}

// sourceObjects maps id prefixes to the object an expanded source is.
var sourceObjects = []struct{ prefix, object string }{
	{"ch_", "charge"}, {"py_", "charge"}, {"re_", "refund"}, {"pyr_", "refund"}, {"dp_", "dispute"}, {"du_", "dispute"}, {"po_", "payout"},
}

// expandedSource renders t's source as an object, nil when it has none or its
// kind is not one the fake models.
func (t *txnRec) expandedSource() *sourceJSON {
	for _, so := range sourceObjects {
		if !strings.HasPrefix(t.source, so.prefix) {
			continue
		}
		out := &sourceJSON{ID: t.source, Object: so.object}
		if t.sourcePI != "" {
			pi := t.sourcePI
			out.PaymentIntent = &pi
		}
		if so.object == "refund" || so.object == "dispute" {
			ch := t.sourceCh
			out.Charge = &ch
		}
		return out
	}
	return nil
}

// wantsExpanded reports whether the request's expand[] names field.
func wantsExpanded(p url.Values, field string) (bool, *apiError) {
	expand, _, aerr := listParam(p, "expand")
	if aerr != nil {
		return false, aerr
	}
	return slices.Contains(expand, field), nil
}

// render shapes t at time now: status is pending until available_on passes,
// as on Stripe, so the same transaction reads differently over time; the source
// is an object when expand asks for it.
func (t *txnRec) renderExpanded(now int64, expandSource bool) txnJSON {
	out := t.render(now)
	if src := t.expandedSource(); expandSource && src != nil {
		out.Source = src
	}
	return out
}

// render shapes t at time now: status is pending until available_on passes,
// as on Stripe, so the same transaction reads differently over time.
func (t *txnRec) render(now int64) txnJSON {
	out := txnJSON{
		ID: t.id, Object: "balance_transaction", Amount: t.amount, AvailableOn: t.availableOn, Created: t.created,
		Currency: t.currency, Fee: t.fee(), FeeDetails: make([]feeDetailJSON, 0, len(t.fees)), Net: t.net(),
		ReportingCategory: t.category, Status: "available", Type: t.typ,
	}
	if t.availableOn > now {
		out.Status = "pending"
	}
	if t.description != "" {
		d := t.description
		out.Description = &d
	}
	if t.source != "" {
		out.Source = t.source
	}
	for _, f := range t.fees {
		fd := feeDetailJSON{Amount: f.Amount, Currency: t.currency, Type: f.Type}
		if f.Description != "" {
			d := f.Description
			fd.Description = &d
		}
		out.FeeDetails = append(out.FeeDetails, fd)
	}
	return out
}

func (s *Server) getPayout(rq *request) (any, *apiError) {
	if err := checkParams(rq.params, "expand"); err != nil {
		return nil, err
	}
	p := s.payouts[rq.id]
	if p == nil || p.sc != rq.scope {
		return nil, errNoSuch(http.StatusNotFound, "payout", rq.id, "id")
	}
	return p.render(), nil
}

// payoutStatusFilters are the values GET /v1/payouts documents for status
// (https://docs.stripe.com/api/payouts/list). in_transit is not among them:
// Stripe ignores it and lists every payout
// (https://github.com/stripe/stripe-node/issues/1509), and so does the fake.
// Other values get a 400: Stripe's OpenAPI spec leaves status a free string,
// so that answer is the fake's guess, made to catch a client's typo early.
var payoutStatusFilters = []string{PayoutPending, PayoutPaid, PayoutFailed, PayoutCanceled}

// listPayouts serves GET /v1/payouts: newest first by created time, with the
// status, arrival_date, created and destination filters of
// https://docs.stripe.com/api/payouts/list.
func (s *Server) listPayouts(rq *request) (any, *apiError) {
	p := rq.params
	if err := checkParams(p, append(listBaseParams(), "status", "arrival_date", "created", "destination")...); err != nil {
		return nil, err
	}
	lr, aerr := parseListReq(p)
	if aerr != nil {
		return nil, aerr
	}
	status, _ := stringParam(p, "status")
	if status != "" && status != PayoutInTransit && !slices.Contains(payoutStatusFilters, status) {
		return nil, errInvalidParam("status", "Invalid status: must be one of pending, paid, failed, or canceled")
	}
	if status == PayoutInTransit {
		status = ""
	}
	destination, _ := stringParam(p, "destination")
	arrival, aerr := parseRange(p, "arrival_date")
	if aerr != nil {
		return nil, aerr
	}
	created, aerr := parseRange(p, "created")
	if aerr != nil {
		return nil, aerr
	}
	ms := s.scopes[rq.scope]
	var log []*payoutRec
	if ms != nil {
		log = ms.payouts
	}
	cursorPos, aerr := cursorPosition(lr, "payout", log, func(x *payoutRec) string { return x.id })
	if aerr != nil {
		return nil, aerr
	}
	var matched []ranked[*payoutRec]
	for i := len(log) - 1; i >= 0; i-- {
		x := log[i]
		if (status == "" || x.status == status) && (destination == "" || x.destination == destination) &&
			createdMatches(arrival, x.arrivalDate) && createdMatches(created, x.created) {
			matched = append(matched, ranked[*payoutRec]{rec: x, pos: int64(i)})
		}
	}
	page, more := paginate(matched, func(r ranked[*payoutRec]) int64 { return r.pos }, lr, cursorPos)
	data := make([]payoutJSON, 0, len(page))
	for _, r := range page {
		data = append(data, r.rec.render())
	}
	return listJSON[payoutJSON]{Object: "list", URL: PathPayouts, HasMore: more, Data: data}, nil
}

func (s *Server) getBalanceTxn(rq *request) (any, *apiError) {
	if err := checkParams(rq.params, "expand"); err != nil {
		return nil, err
	}
	t := s.txns[rq.id]
	if t == nil || t.sc != rq.scope {
		return nil, errNoSuch(http.StatusNotFound, "balance transaction", rq.id, "id")
	}
	expand, aerr := wantsExpanded(rq.params, "source")
	if aerr != nil {
		return nil, aerr
	}
	return t.renderExpanded(rq.now.Unix(), expand), nil
}

// errManualPayoutFilter is Stripe's answer to ?payout= with a manual payout,
// whose transactions Stripe cannot tell (https://docs.stripe.com/payouts/reconciliation,
// and the payout parameter of https://docs.stripe.com/api/balance_transactions/list:
// "For automatic Stripe payouts only"). The message is the one Stripe sends,
// as integrations quote it; the status is a 400 invalid_request_error.
func errManualPayoutFilter() *apiError {
	return invalidRequest(http.StatusBadRequest, "", "",
		"Balance transaction history can only be filtered on automatic transfers, not manual.")
}

// listBalanceTxns serves GET /v1/balance_transactions: newest first by
// created time, pages of 1..100 (10 by default), with the payout, type,
// source, currency and created filters of
// https://docs.stripe.com/api/balance_transactions/list.
func (s *Server) listBalanceTxns(rq *request) (any, *apiError) {
	p := rq.params
	if err := checkParams(p, append(listBaseParams(), "payout", "type", "source", "currency", "created")...); err != nil {
		return nil, err
	}
	lr, aerr := parseListReq(p)
	if aerr != nil {
		return nil, aerr
	}
	payoutID, _ := stringParam(p, "payout")
	typ, _ := stringParam(p, "type")
	source, _ := stringParam(p, "source")
	currency, _ := stringParam(p, "currency")
	created, aerr := parseRange(p, "created")
	if aerr != nil {
		return nil, aerr
	}
	var po *payoutRec
	if payoutID != "" {
		if po = s.payouts[payoutID]; po == nil || po.sc != rq.scope {
			return nil, errNoSuch(http.StatusNotFound, "payout", payoutID, "payout")
		}
		if !po.automatic {
			return nil, errManualPayoutFilter()
		}
	}
	ms := s.scopes[rq.scope]
	var log []*txnRec
	if ms != nil {
		log = ms.txns
	}
	cursorPos, aerr := cursorPosition(lr, "balance transaction", log, func(x *txnRec) string { return x.id })
	if aerr != nil {
		return nil, aerr
	}
	var matched []ranked[*txnRec]
	for i := len(log) - 1; i >= 0; i-- {
		t := log[i]
		if po != nil && !po.lists(t) {
			continue
		}
		if (typ == "" || t.typ == typ) && (source == "" || t.source == source) &&
			(currency == "" || t.currency == currency) && createdMatches(created, t.created) {
			matched = append(matched, ranked[*txnRec]{rec: t, pos: int64(i)})
		}
	}
	expand, aerr := wantsExpanded(p, "data.source")
	if aerr != nil {
		return nil, aerr
	}
	page, more := paginate(matched, func(r ranked[*txnRec]) int64 { return r.pos }, lr, cursorPos)
	data := make([]txnJSON, 0, len(page))
	for _, r := range page {
		data = append(data, r.rec.renderExpanded(rq.now.Unix(), expand))
	}
	return listJSON[txnJSON]{Object: "list", URL: PathBalanceTxns, HasMore: more, Data: data}, nil
}

// lists reports whether ?payout=p lists t: the payout's own debit always,
// what it settled only once its reconciliation completed ("If completed, you
// can use the Balance Transactions API to list all balance transactions that
// are paid out in this payout", https://docs.stripe.com/api/payouts/object).
func (p *payoutRec) lists(t *txnRec) bool {
	if t.payout != p.id {
		return false
	}
	return t.id == p.txn || p.reconciliation == ReconciliationCompleted
}

// ranked is a listed record with its position in its scope's log, which is
// the list order (newest first is descending position).
type ranked[T any] struct {
	rec T
	pos int64
}

// cursorPosition finds the starting_after/ending_before object in log. As
// on Stripe, a cursor that names no object of the caller's scope is a 400
// resource_missing on the cursor parameter.
func cursorPosition[T any](lr listReq, noun string, log []T, id func(T) string) (int64, *apiError) {
	param, cursor := lr.cursorParam()
	if cursor == "" {
		return 0, nil
	}
	i := slices.IndexFunc(log, func(x T) bool { return id(x) == cursor })
	if i < 0 {
		return 0, errNoSuch(http.StatusBadRequest, noun, cursor, param)
	}
	return int64(i), nil
}
