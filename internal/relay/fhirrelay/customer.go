package fhirrelay

import (
	"encoding/json"
	"errors"

	stripe "github.com/stripe/stripe-go/v76"
)

// mapCustomer records a Stripe customer as an Account: a customer is a payer's billing
// account at the clinic, not necessarily a patient, so no Patient is created or changed.
// The patient it pays for (metadata) is the Account's subject; the clinic owns it. Only the
// name is copied: contact details stay in Stripe.
//
// customer.created and customer.updated both conditionally create on the customer id: the
// first delivered creates the Account from the customer as it then was, later ones find it
// and change nothing. Updating it instead would need ordering Stripe does not give (an older
// update can arrive last) and a conditional update the target contract does not cover.
func (t *Target) mapCustomer(ev eventFacts, raw json.RawMessage) ([]write, error) {
	var c stripe.Customer
	if err := decodeObject(raw, &c, "customer"); err != nil {
		return nil, err
	}
	if c.ID == "" {
		return nil, errors.New("customer has no id")
	}
	if c.Deleted {
		return nil, nil
	}
	key := Identifier{System: SystemStripeCustomer, Value: c.ID}
	clinic := ev.clinic
	account := &Account{
		ResourceType: "Account",
		Extension:    ev.apiVersion,
		Identifier:   []Identifier{key},
		Status:       accountStatusActive,
		Name:         c.Name,
		Owner:        &clinic,
	}
	if patient := t.keys.refs(c.Metadata).patient; patient != nil {
		account.Subject = []Reference{*patient}
	}
	return []write{{resourceType: "Account", key: key, resource: account}}, nil
}
