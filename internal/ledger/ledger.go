// Package ledger is what the operator tells a clinic's receiver about the clinic's books: a paid
// payout of the clinic's Stripe account and every balance transaction it settles. The operator
// (which holds the Stripe keys) lists them; the receiver (which holds the forward credentials)
// writes them to the clinic's system of record. The package holds data only: no client, no I/O,
// so both binaries may import it without crossing DESIGN.md's boundaries.
package ledger

import (
	"errors"
	"fmt"
)

// Payout is one paid automatic payout: the bank deposit the clinic's finance team sees, with
// what it settles.
type Payout struct {
	// ID is Stripe's payout id (po_…), the key the system of record deduplicates on.
	ID string `json:"id"`
	// ClinicID is the clinic the payout belongs to.
	ClinicID string `json:"clinicID"`
	// Amount is the deposit, in the currency's smallest unit as Stripe sends it.
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// ArrivalDate is when the deposit reaches the bank, and Created when Stripe made the
	// payout, both Unix seconds.
	ArrivalDate int64 `json:"arrivalDate"`
	Created     int64 `json:"created"`
	Livemode    bool  `json:"livemode"`
	// Items are the balance transactions the payout settles, the payout's own excluded: their
	// nets add up to Amount.
	Items []Item `json:"items"`
}

// Item is one balance transaction a payout settles.
type Item struct {
	// ID is the balance transaction id (txn_…).
	ID string `json:"id"`
	// Type is Stripe's transaction type (charge, payment, refund, adjustment, stripe_fee, ...)
	// and ReportingCategory its accounting category (charge, refund, dispute, fee, ...).
	Type              string `json:"type"`
	ReportingCategory string `json:"reportingCategory,omitempty"`
	// Amount is the gross, Fee what Stripe kept, Net = Amount - Fee, all in the smallest unit
	// of Currency.
	Amount   int64  `json:"amount"`
	Fee      int64  `json:"fee"`
	Net      int64  `json:"net"`
	Currency string `json:"currency"`
	// Created is Unix seconds.
	Created int64 `json:"created"`
	// SourceID is what the transaction belongs to (ch_…, re_…, dp_…), empty for fees booked
	// without one. ChargeID and PaymentIntentID name the payment it belongs to, when known:
	// the system of record knows payments by them.
	SourceID        string `json:"sourceID,omitempty"`
	ChargeID        string `json:"chargeID,omitempty"`
	PaymentIntentID string `json:"paymentIntentID,omitempty"`
}

// Check reports the first way p cannot be a payout record: missing ids, an item in another
// currency, or items whose nets do not add up to the deposit (a payout listed only in part
// must not be recorded as if whole).
func (p Payout) Check() error {
	switch {
	case p.ID == "":
		return errors.New("payout has no id")
	case p.ClinicID == "":
		return fmt.Errorf("payout %s has no clinic id", p.ID)
	case p.Currency == "":
		return fmt.Errorf("payout %s has no currency", p.ID)
	}
	var sum int64
	for _, it := range p.Items {
		switch {
		case it.ID == "":
			return fmt.Errorf("payout %s: an item has no id", p.ID)
		case it.Currency != p.Currency:
			return fmt.Errorf("payout %s: item %s is in %q, the payout in %q", p.ID, it.ID, it.Currency, p.Currency)
		case it.Net != it.Amount-it.Fee:
			return fmt.Errorf("payout %s: item %s: net %d is not amount %d less fee %d", p.ID, it.ID, it.Net, it.Amount, it.Fee)
		}
		sum += it.Net
	}
	if sum != p.Amount {
		return fmt.Errorf("payout %s: items add up to %d, the payout is %d", p.ID, sum, p.Amount)
	}
	return nil
}
