// Package fhirrelay is the FHIR R4 system-of-record target of the webhook receiver: it maps
// verified Stripe events to FHIR R4 financial resources and writes each with a conditional
// create (POST [base]/<Type> with If-None-Exist: identifier=<system>|<value>), so a
// redelivered event creates nothing new.
//
// FHIR R4 has no Payment resource. A payment that happened becomes a PaymentNotice with its
// PaymentReconciliation contained; a refund becomes a standalone PaymentReconciliation issued
// by the clinic; a Stripe customer becomes an Account (a payer's billing account, not a
// Patient). Events that record no money movement, and event types the mapping does not know,
// are acknowledged without a write. docs/fhir-mapping.md has the full table and the reasons.
package fhirrelay
