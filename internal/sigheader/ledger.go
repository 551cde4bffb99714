package sigheader

// LedgerHeader signs a ledger message (internal/ledger.Message: a reconciled payout, an anomaly
// flag) the operator sends the clinic's receiver. It is keyed with the endpoint's signing secret,
// which only Stripe, the operator and the receiver hold; the Ledger scheme's domain keeps a
// Stripe-Signature or replay marker made with the same secret from passing for it.
const LedgerHeader = "Clinicpay-Ledger-Signature"

// Ledger is the ledger message scheme.
var Ledger = Scheme{Domain: "clinicpay-ledger."}
