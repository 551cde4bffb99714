// Package stripeclient is the operator's only way to talk to Stripe: a narrow Client per
// clinic key, built by a Factory that owns the HTTP transport, the per-account rate limiters
// and the routing of stripe-go's logs.
//
// The Client lists, reads, creates, updates and deletes webhook endpoints and reads the
// account. Every call waits for the account's limiter, then runs under its own timeout; every
// failure is an *Error whose Kind tells the controller what to do (see Classify and
// Error.Transient). Creates are idempotent: the caller supplies the Idempotency-Key, so a
// create whose answer was lost can be replayed to get the same endpoint and its secret back.
//
// It never touches stripe-go's globals (stripe.Key, the default backends, the default
// logger): every client carries its own backend and key, so clinics cannot leak into each
// other. Key material never appears in errors or logs; see Redact. Logs never hold a response
// body, an event payload, Stripe's error text or a query string; see logger.go. A webhook endpoint's
// signing secret is only ever the second result of CreateWebhookEndpoint: Endpoint has no
// field for it, and errors and logs redact it like a key.
//
// Tests may use the stateful fake in test/stripefake; production code must not import it.
// The request shapes are checked against Stripe's OpenAPI spec by the stripe-mock contract
// test in test/contract.
package stripeclient
