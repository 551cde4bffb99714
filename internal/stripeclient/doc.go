// Package stripeclient is the operator's only way to talk to Stripe: a narrow Client per
// clinic key, built by a Factory that owns the HTTP transport, the per-account rate limiters
// and the routing of stripe-go's logs.
//
// It never touches stripe-go's globals (stripe.Key, the default backends, the default
// logger): every client carries its own backend and key, so clinics cannot leak into each
// other. Key material never appears in errors or logs; see Redact.
package stripeclient
