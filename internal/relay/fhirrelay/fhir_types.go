package fhirrelay

import "encoding/json"

// The FHIR R4 JSON shapes this package writes: only the elements the mapping fills. Every
// optional element is omitempty because FHIR JSON forbids empty strings, objects and arrays.

// Identifier is a FHIR Identifier: a business id (here a Stripe id) within a naming system.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Reference is a FHIR Reference: literal ("Claim/123", "#contained-id") or logical (type plus
// identifier) when the target's server id is unknown, as for the clinic's Organization.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Type       string      `json:"type,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
}

// Coding is a FHIR Coding: a code from a code system.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is a FHIR CodeableConcept.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Extension is a FHIR extension with a string or a Money value (exactly one is set): the Stripe
// API version the event came in (ExtensionStripeAPIVersion), the payout that filled a missing
// PaymentNotice in, and the Stripe ids and amount of an anomaly Flag.
type Extension struct {
	URL         string `json:"url"`
	ValueString string `json:"valueString,omitempty"`
	ValueMoney  *Money `json:"valueMoney,omitempty"`
}

// Money is a FHIR Money. Value is a json.Number so the decimal built exactly from Stripe's
// integer minor units reaches the wire as written ("19.99", "1.234"), never via a float64.
type Money struct {
	Value    json.Number `json:"value"`
	Currency string      `json:"currency"`
}

// PaymentNotice is a FHIR R4 PaymentNotice: notice that a payment happened.
type PaymentNotice struct {
	ResourceType  string                   `json:"resourceType"`
	Extension     []Extension              `json:"extension,omitempty"`
	Contained     []*PaymentReconciliation `json:"contained,omitempty"`
	Identifier    []Identifier             `json:"identifier,omitempty"`
	Status        string                   `json:"status"`
	Request       *Reference               `json:"request,omitempty"`
	Created       string                   `json:"created"`
	Payment       Reference                `json:"payment"`
	PaymentDate   string                   `json:"paymentDate,omitempty"`
	Payee         *Reference               `json:"payee,omitempty"`
	Recipient     Reference                `json:"recipient"`
	Amount        Money                    `json:"amount"`
	PaymentStatus *CodeableConcept         `json:"paymentStatus,omitempty"`
}

// PaymentReconciliation is a FHIR R4 PaymentReconciliation: the details of one payment and
// how it is allocated to what it pays for.
type PaymentReconciliation struct {
	ResourceType      string               `json:"resourceType"`
	Extension         []Extension          `json:"extension,omitempty"`
	ID                string               `json:"id,omitempty"`
	Identifier        []Identifier         `json:"identifier,omitempty"`
	Status            string               `json:"status"`
	Created           string               `json:"created"`
	PaymentIssuer     *Reference           `json:"paymentIssuer,omitempty"`
	Outcome           string               `json:"outcome,omitempty"`
	Disposition       string               `json:"disposition,omitempty"`
	PaymentDate       string               `json:"paymentDate"`
	PaymentAmount     Money                `json:"paymentAmount"`
	PaymentIdentifier *Identifier          `json:"paymentIdentifier,omitempty"`
	Detail            []ReconciliationItem `json:"detail,omitempty"`
}

// ReconciliationItem is one PaymentReconciliation.detail: an amount allocated to a payable.
type ReconciliationItem struct {
	Identifier  *Identifier     `json:"identifier,omitempty"`
	Predecessor *Identifier     `json:"predecessor,omitempty"`
	Type        CodeableConcept `json:"type"`
	Request     *Reference      `json:"request,omitempty"`
	Date        string          `json:"date,omitempty"`
	Payee       *Reference      `json:"payee,omitempty"`
	Amount      *Money          `json:"amount,omitempty"`
}

// Account is a FHIR R4 Account: here, the billing account a Stripe customer is.
type Account struct {
	ResourceType string       `json:"resourceType"`
	Extension    []Extension  `json:"extension,omitempty"`
	Identifier   []Identifier `json:"identifier,omitempty"`
	Status       string       `json:"status"`
	Name         string       `json:"name,omitempty"`
	Subject      []Reference  `json:"subject,omitempty"`
	Owner        *Reference   `json:"owner,omitempty"`
}

// Period is a FHIR Period; only its start is used.
type Period struct {
	Start string `json:"start,omitempty"`
}

// Flag is a FHIR R4 Flag (https://hl7.org/fhir/R4/flag.html): a prospective warning about a
// subject, here an anomaly the operator's rules raised on the clinic's Stripe account.
type Flag struct {
	ResourceType string            `json:"resourceType"`
	Extension    []Extension       `json:"extension,omitempty"`
	Identifier   []Identifier      `json:"identifier,omitempty"`
	Status       string            `json:"status"`
	Category     []CodeableConcept `json:"category,omitempty"`
	Code         CodeableConcept   `json:"code"`
	Subject      Reference         `json:"subject"`
	Period       *Period           `json:"period,omitempty"`
}
