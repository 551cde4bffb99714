package fhirrelay

// Identifier systems. Stripe ids are unique across Stripe, so one system per Stripe object
// type names them unambiguously; the URLs are names, never fetched. These values are part of
// the contract with the clinic's FHIR server: conditional creates search on them, so changing
// one would let a redelivered event create a duplicate.
const (
	// SystemStripeEvent holds Stripe event ids (evt_…): the key of refund records, one per
	// charge.refunded event.
	SystemStripeEvent = "https://stripe.com/events"
	// SystemStripePaymentIntent holds PaymentIntent ids (pi_…): the key of a PaymentNotice
	// whenever the payment has a PaymentIntent.
	SystemStripePaymentIntent = "https://stripe.com/payment_intents"
	// SystemStripeCharge holds Charge ids (ch_…, py_…).
	SystemStripeCharge = "https://stripe.com/charges"
	// SystemStripeInvoice holds Stripe Invoice ids (in_…).
	SystemStripeInvoice = "https://stripe.com/invoices"
	// SystemStripeCustomer holds Customer ids (cus_…): the key of an Account.
	SystemStripeCustomer = "https://stripe.com/customers"
	// SystemStripePayout holds payout ids (po_…): the key of a payout's PaymentReconciliation.
	SystemStripePayout = "https://stripe.com/payouts"
	// SystemStripeBalanceTransaction holds balance transaction ids (txn_…): the identifier of each
	// PaymentReconciliation.detail of a payout.
	SystemStripeBalanceTransaction = "https://stripe.com/balance_transactions"
	// SystemClinicID holds the clinic ids the operator assigns; the clinic's Organization is
	// referenced logically through it because its server id is not known here.
	SystemClinicID = "https://clinicpay.dev/clinic-id"
	// ExtensionStripeAPIVersion is the URL of the extension on each written resource naming the
	// Stripe API version its event was rendered in ("2023-10-16"): a replayed event comes in
	// the version of its creation, so records may be mapped from different shapes.
	ExtensionStripeAPIVersion = "https://clinicpay.dev/fhir/StructureDefinition/stripe-api-version"

	// SystemAnomalyFlag holds anomaly flag ids ("<rule>/<eventID>"): the key of a Flag.
	SystemAnomalyFlag = "https://clinicpay.dev/anomaly-flag"
	// CodeSystemAnomalyRule names the operator's anomaly rules (RefundSpike, AmountOutlier,
	// FailedPaymentBurst, Dispute): Flag.code.
	CodeSystemAnomalyRule = "https://clinicpay.dev/fhir/CodeSystem/anomaly-rule"
	// ExtensionFilledFromPayout marks a PaymentNotice written from a payout's balance transaction
	// because the payment's own event never reached the FHIR server; its valueString is the
	// payout id (po_…).
	ExtensionFilledFromPayout = "https://clinicpay.dev/fhir/StructureDefinition/filled-from-payout"
	// The extensions of a Flag naming what it concerns, each a valueString: the Stripe event
	// that raised it (id and type) and the PaymentIntent, Charge and Dispute ids; and
	// ExtensionStripeAmount, a valueMoney, the event's amount.
	ExtensionStripeEventID       = "https://clinicpay.dev/fhir/StructureDefinition/stripe-event-id"
	ExtensionStripeEventType     = "https://clinicpay.dev/fhir/StructureDefinition/stripe-event-type"
	ExtensionStripePaymentIntent = "https://clinicpay.dev/fhir/StructureDefinition/stripe-payment-intent"
	ExtensionStripeCharge        = "https://clinicpay.dev/fhir/StructureDefinition/stripe-charge"
	ExtensionStripeDispute       = "https://clinicpay.dev/fhir/StructureDefinition/stripe-dispute"
	ExtensionStripeAmount        = "https://clinicpay.dev/fhir/StructureDefinition/stripe-amount"
)

// FHIR code systems and codes the mapping uses.
const (
	// fmStatusActive is the financial resource status (required binding, fm-status).
	fmStatusActive = "active"
	// outcomeComplete is PaymentReconciliation.outcome (required binding, remittance-outcome).
	outcomeComplete = "complete"
	// accountStatusActive is Account.status (required binding, account-status).
	accountStatusActive = "active"

	paymentStatusSystem = "http://terminology.hl7.org/CodeSystem/paymentstatus"
	// paymentTypePayment and paymentTypeAdjustment are payment-type codes of a
	// PaymentReconciliation.detail.
	paymentTypePayment    = "payment"
	paymentTypeAdjustment = "adjustment"
	paymentTypeSystem     = "http://terminology.hl7.org/CodeSystem/payment-type"
)

// containedPaymentID is the local id of the PaymentReconciliation contained in a
// PaymentNotice; PaymentNotice.payment points at it as "#payment".
const containedPaymentID = "payment"
