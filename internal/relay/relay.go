// Package relay defines what the webhook receiver hands to a clinic's systems of record: a
// verified Stripe event, and the Target interface each system of record (plain HTTP, FHIR R4)
// implements. It is a leaf package so the receiver and every target can share it.
package relay

import (
	"context"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/ledger"
)

// Event is a Stripe event whose signature, age, clinic and mode the receiver has verified.
type Event struct {
	// ClinicID is the clinic the event was delivered for (the last path segment).
	ClinicID string
	// Stripe is the event as stripe-go's webhook.ConstructEvent parses it, except that the
	// receiver leaves Stripe.Data.Object (the object decoded into a map) nil: Stripe.Data.Raw
	// holds the object's raw JSON, and each target decodes what it reads.
	Stripe stripe.Event
}

// Target is one of the clinic's systems of record.
type Target interface {
	// Name identifies the target in metrics and logs, e.g. "http" or "fhir".
	Name() string
	// Deliver hands the event over and returns nil only once the target durably accepted it. It
	// must be idempotent on the Stripe event id: delivering the same event again creates nothing
	// new downstream. A non-nil error makes the receiver answer 5xx so Stripe retries.
	Deliver(ctx context.Context, ev Event) error
}

// LedgerWriter is implemented by targets that record the operator's ledger messages (package
// ledger: a reconciled payout with every item it settles, or an anomaly flag). The receiver
// hands a verified message to every target and answers the operator "written" only once each
// returned nil.
type LedgerWriter interface {
	// WriteLedger records msg durably and returns nil only once the target accepted all of it.
	// It must be idempotent on msg.ID: writing the same message again creates nothing new
	// downstream (the operator re-sends until every target accepted it). filled names the
	// payments (pi_… or ch_…) of a payout that the target did not have and recorded with it; a
	// target that cannot tell returns none.
	WriteLedger(ctx context.Context, msg ledger.Message) (filled []string, err error)
}
