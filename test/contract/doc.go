// Package contract holds tests that run the operator's real Stripe client against
// stripe-mock, Stripe's mock of its API built from the OpenAPI spec, to prove that every
// request the operator makes is one the real API accepts. stripe-mock is stateless: it checks
// request shapes (paths, parameter names, types and enums), not behaviour; test/stripefake
// covers behaviour.
//
// Run them with `make test`, which installs stripe-mock (`make stripe-mock`) and passes its
// path in STRIPE_MOCK; a plain `go test` falls back to bin/stripe-mock.
package contract
