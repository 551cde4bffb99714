package stripeclient

import (
	"context"
	"fmt"
	"net/http"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"
)

// Payout is a transfer of the account's balance to its bank account.
type Payout struct {
	ID string
	// Amount is in the currency's smallest unit, as Stripe sends it.
	Amount   int64
	Currency string
	// Status is pending, in_transit, paid, failed or canceled.
	Status string
	// ReconciliationStatus is not_applicable, in_progress or completed: the payout's balance
	// transactions are final once it is completed.
	ReconciliationStatus string
	// Automatic payouts are the ones Stripe's payout schedule made; only their balance
	// transactions can be listed by payout.
	Automatic bool
	// ArrivalDate and Created are Unix seconds.
	ArrivalDate, Created int64
	Livemode             bool
}

// BalanceTransaction is one movement of the account's balance that a payout settles: a
// payment, a refund, a dispute, a fee, an adjustment, or the payout itself.
type BalanceTransaction struct {
	ID string
	// Type is Stripe's (charge, payment, refund, adjustment, stripe_fee, payout, ...), and
	// ReportingCategory its coarser accounting category (charge, refund, dispute, fee, payout, ...).
	Type, ReportingCategory string
	// Amount, Fee and Net (Amount - Fee) are in the currency's smallest unit.
	Amount, Fee, Net int64
	Currency         string
	// Created and AvailableOn are Unix seconds.
	Created, AvailableOn int64
	// SourceID is the object the transaction belongs to (ch_…, re_…, dp_…, po_…), empty for
	// fees Stripe books without one.
	SourceID string
	// ChargeID and PaymentIntentID are the payment the source belongs to, when Stripe's expanded
	// source names it: a charge is its own charge and names its payment intent; a refund or a
	// dispute names both. The system of record knows payments by these ids.
	ChargeID, PaymentIntentID string
}

// maxPayoutPages and maxPayoutTransactionPages bound listing: 5,000 payouts in one window and
// 100,000 transactions in one payout are far beyond a clinic's, and a server that keeps
// answering has_more must not keep the operator paging forever.
const (
	maxPayoutPages            = 50
	maxPayoutTransactionPages = 1000
)

// ListPaidPayouts lists the account's paid payouts that arrived at or after since, newest
// first as Stripe lists them: GET /v1/payouts?status=paid&arrival_date[gte]=…, pages of 100
// (https://docs.stripe.com/api/payouts/list). Restricted keys need rak_payout_read.
func (c *client) ListPaidPayouts(ctx context.Context, since time.Time) ([]Payout, error) {
	params := &stripe.PayoutListParams{
		Status:           stripe.String(string(stripe.PayoutStatusPaid)),
		ArrivalDateRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()},
	}
	params.Limit = stripe.Int64(listPageSize)
	var out []Payout
	for range maxPayoutPages {
		var page stripe.PayoutList
		if err := c.list(ctx, "/v1/payouts", params, &page); err != nil {
			return nil, fmt.Errorf("list payouts: %w", err)
		}
		for _, p := range page.Data {
			out = append(out, Payout{ID: p.ID, Amount: p.Amount, Currency: string(p.Currency), Status: string(p.Status),
				ReconciliationStatus: string(p.ReconciliationStatus), Automatic: p.Automatic, ArrivalDate: p.ArrivalDate,
				Created: p.Created, Livemode: p.Livemode})
		}
		if !page.HasMore || len(page.Data) == 0 {
			return out, nil
		}
		params.StartingAfter = stripe.String(page.Data[len(page.Data)-1].ID)
	}
	return nil, fmt.Errorf("list payouts: %w", &Error{Kind: KindOther,
		Message: fmt.Sprintf("Stripe kept reporting more payouts after %d pages", maxPayoutPages)})
}

// ListPayoutTransactions lists every balance transaction an automatic payout settles, the
// payout's own included: GET /v1/balance_transactions?payout=po_…&expand[]=data.source, pages
// of 100 (https://docs.stripe.com/api/balance_transactions/list: the payout filter works for
// automatic payouts only). The source is expanded so that each item names the payment it
// belongs to. Restricted keys need rak_balance_read (and read access to what the sources are).
func (c *client) ListPayoutTransactions(ctx context.Context, payoutID string) ([]BalanceTransaction, error) {
	if payoutID == "" {
		return nil, &Error{Kind: KindInvalidRequest, Param: "payout", Message: "a payout id is required"}
	}
	params := &stripe.BalanceTransactionListParams{Payout: stripe.String(payoutID)}
	params.Limit = stripe.Int64(listPageSize)
	params.AddExpand("data.source")
	var out []BalanceTransaction
	for range maxPayoutTransactionPages {
		var page stripe.BalanceTransactionList
		if err := c.list(ctx, "/v1/balance_transactions", params, &page); err != nil {
			return nil, fmt.Errorf("list balance transactions of payout %s: %w", payoutID, err)
		}
		for _, bt := range page.Data {
			out = append(out, toBalanceTransaction(bt))
		}
		if !page.HasMore || len(page.Data) == 0 {
			return out, nil
		}
		params.StartingAfter = stripe.String(page.Data[len(page.Data)-1].ID)
	}
	return nil, fmt.Errorf("list balance transactions of payout %s: %w", payoutID, &Error{Kind: KindOther,
		Message: fmt.Sprintf("Stripe kept reporting more balance transactions after %d pages", maxPayoutTransactionPages)})
}

// list makes one rate-limited list request with params as its query string through CallRaw, as
// stripe-go's iterators send them, and decodes the page into out (events, payouts, balance
// transactions).
func (c *client) list(ctx context.Context, path string, params stripe.ListParamsContainer, out stripe.LastResponseSetter) error {
	return c.do(ctx, func(base stripe.Params) error {
		query := &form.Values{}
		form.AppendTo(query, params)
		return c.backend.CallRaw(http.MethodGet, path, c.key, query, &base, out)
	})
}

func toBalanceTransaction(bt *stripe.BalanceTransaction) BalanceTransaction {
	out := BalanceTransaction{ID: bt.ID, Type: string(bt.Type), ReportingCategory: string(bt.ReportingCategory),
		Amount: bt.Amount, Fee: bt.Fee, Net: bt.Net, Currency: string(bt.Currency), Created: bt.Created, AvailableOn: bt.AvailableOn}
	src := bt.Source
	if src == nil {
		return out
	}
	out.SourceID = src.ID
	switch {
	case src.Charge != nil:
		out.ChargeID = src.Charge.ID
		if src.Charge.PaymentIntent != nil {
			out.PaymentIntentID = src.Charge.PaymentIntent.ID
		}
	case src.Refund != nil:
		if src.Refund.Charge != nil {
			out.ChargeID = src.Refund.Charge.ID
		}
		if src.Refund.PaymentIntent != nil {
			out.PaymentIntentID = src.Refund.PaymentIntent.ID
		}
	case src.Dispute != nil:
		if src.Dispute.Charge != nil {
			out.ChargeID = src.Dispute.Charge.ID
		}
		if src.Dispute.PaymentIntent != nil {
			out.PaymentIntentID = src.Dispute.PaymentIntent.ID
		}
	}
	return out
}
