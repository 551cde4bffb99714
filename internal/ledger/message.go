package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
)

// PathPrefix is where the receiver takes ledger messages on its webhook port:
// PathPrefix + "<clinicID>". Only the operator sends there, through the receiver's Service (the
// Ingress routes only the Stripe webhook path); the body is signed in sigheader.LedgerHeader with
// the endpoint's signing secret.
const PathPrefix = "/clinicpay/ledger/"

// Message kinds.
const (
	// KindPayout carries a reconciled payout (Message.Payout).
	KindPayout = "payout.reconciled"
	// KindFlag carries an anomaly flag (Message.Flag).
	KindFlag = "anomaly.flagged"
)

// Message is what the operator POSTs to the receiver: exactly one of Payout and Flag, as Kind
// says. ID is the message's idempotency key downstream: the payout id, or the flag id.
type Message struct {
	ID       string  `json:"id"`
	Kind     string  `json:"kind"`
	ClinicID string  `json:"clinicID"`
	Livemode bool    `json:"livemode"`
	Payout   *Payout `json:"payout,omitempty"`
	Flag     *Flag   `json:"flag,omitempty"`
}

// Flag is one anomaly the operator's rules raised on the clinic's events: the rule, the figures
// that tripped it, and the Stripe event that raised it, as Stripe rendered it. It holds what
// the event holds and nothing the operator adds about the patient.
type Flag struct {
	// ID is "<rule>/<eventID>": one flag per rule and event, whatever the redeliveries.
	ID string `json:"id"`
	// Rule is RefundSpike, AmountOutlier, FailedPaymentBurst or Dispute.
	Rule string `json:"rule"`
	// Reason explains the flag in a sentence with the figure and the threshold.
	Reason string `json:"reason"`
	// Value is the figure the rule measured, Threshold the bound it crossed.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// EventID and EventType name the Stripe event that raised it; Created is its time (Unix s).
	EventID   string `json:"eventID"`
	EventType string `json:"eventType"`
	Created   int64  `json:"created"`
	// PaymentIntentID, ChargeID and DisputeID name the objects the event concerns, when it does.
	PaymentIntentID string `json:"paymentIntentID,omitempty"`
	ChargeID        string `json:"chargeID,omitempty"`
	DisputeID       string `json:"disputeID,omitempty"`
	// Amount and Currency are the event's amount, in the currency's smallest unit.
	Amount   int64  `json:"amount,omitempty"`
	Currency string `json:"currency,omitempty"`
	// Event is the Stripe event as listed from Stripe's event log.
	Event json.RawMessage `json:"event,omitempty"`
}

// FlagID is a flag's id for rule and event.
func FlagID(rule, eventID string) string { return rule + "/" + eventID }

// Result is the receiver's answer to a message it wrote to every system of record.
type Result struct {
	// Status is "written" when every target accepted the message.
	Status string `json:"status"`
	// Filled names the payments of a payout (pi_… or ch_…) that a system of record did not
	// have and that were recorded with it. Only targets that can tell (FHIR's conditional create
	// answers 201 for a new resource, 200 for an existing one) contribute.
	Filled []string `json:"filled,omitempty"`
	// FilledCount is how many payments were filled in: len(Filled), unless the receiver cut
	// Filled to MaxFilledIDs to keep its answer small (the operator reads at most 64 KiB of it).
	FilledCount int `json:"filledCount,omitempty"`
	// Message explains a failure.
	Message string `json:"message,omitempty"`
}

// MaxFilledIDs bounds Result.Filled: 1,000 Stripe ids are about 30 KB of JSON.
const MaxFilledIDs = 1000

// StatusWritten is Result.Status when every target accepted the message.
const StatusWritten = "written"

// Check reports the first way m is not a well-formed message.
func (m Message) Check() error {
	switch {
	case m.ID == "":
		return errors.New("message has no id")
	case m.ClinicID == "":
		return fmt.Errorf("message %s has no clinic id", m.ID)
	}
	switch m.Kind {
	case KindPayout:
		if m.Payout == nil || m.Flag != nil {
			return fmt.Errorf("message %s: kind %s carries exactly a payout", m.ID, m.Kind)
		}
		if m.Payout.ID != m.ID || m.Payout.ClinicID != m.ClinicID {
			return fmt.Errorf("message %s: the payout's id or clinic differs from the message's", m.ID)
		}
		return m.Payout.Check()
	case KindFlag:
		if m.Flag == nil || m.Payout != nil {
			return fmt.Errorf("message %s: kind %s carries exactly a flag", m.ID, m.Kind)
		}
		if m.Flag.ID != m.ID || m.Flag.EventID == "" || m.Flag.Rule == "" {
			return fmt.Errorf("message %s: the flag needs its id, rule and event id", m.ID)
		}
		return nil
	}
	return fmt.Errorf("message %s: unknown kind %q", m.ID, m.Kind)
}
