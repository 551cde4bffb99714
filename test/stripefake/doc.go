/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package stripefake is a stateful, in-memory fake of the small slice of the
// Stripe HTTP API that the stripe-operator talks to. It exists for the
// operator's tests, benchmarks and demo; production code must never import it.
//
// The fake speaks the same wire format as api.stripe.com, so the real
// stripe-go v76 clients can be pointed at it through
// stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{URL: ...}):
// form-encoded requests (enabled_events[0]=..., metadata[k]=v, limit,
// starting_after, ending_before), Bearer (or Basic) authentication, the
// Idempotency-Key and Stripe-Version headers, the {"error":{...}} envelope and
// the {"object":"list",...} list envelope.
//
// # Covered
//
//   - GET /v1/account
//   - GET, POST /v1/webhook_endpoints and GET, POST, DELETE
//     /v1/webhook_endpoints/{id}, with Stripe's validation (absolute http(s)
//     URL, https in live mode, known event types, 16 endpoints per account and
//     mode), metadata unsetting, and the signing secret returned only on
//     create.
//   - GET /v1/events and GET /v1/events/{id} with the type, types[],
//     delivery_success and created filters, over a 30-day window.
//   - API keys (sk_/rk_/pk_, test/live) registered with [Server.AddKey], per
//     key account and mode scoping, revocation and expiry (401), rak_…
//     permissions for restricted keys (403), and publishable keys refused
//     with 403 secret_key_required as Stripe does today. Error messages mask
//     keys like Stripe: the last 4 characters stay visible, 6 for rk_ keys.
//   - Idempotency keys scoped per account and mode, replayed for 24 hours of
//     fake time. As on Stripe, the first answer is saved once execution began,
//     500s included (an injected 5xx on an idempotent POST counts as one), and
//     validation 400s, 401/403 and 429s are not; [Server.ExpireIdempotencyKey]
//     and [Server.ExpireAllIdempotencyKeys] prune keys early.
//   - Payouts and balance transactions, per account and mode: seeded with
//     [Server.AddBalanceTransaction] (charges, payments, refunds, disputes as
//     adjustments on a dp_ source, Stripe fees; net = amount - fee; amounts
//     in the currency's smallest unit, zero- and three-decimal currencies
//     included, see [MinorUnitDigits]) and [Server.CreatePayout] (an automatic
//     payout settles given available transactions and debits the balance with
//     its own payout transaction; a manual payout settles none), moved by
//     [Server.SendPayoutInTransit], [Server.PayPayout] and [Server.FailPayout]
//     (even once paid, returning the amount as a payout_failure transaction)
//     with the events payout.created, payout.updated, payout.paid,
//     payout.reconciliation_completed and payout.failed. GET /v1/payouts (status, arrival_date,
//     created, destination; status=in_transit ignored as on Stripe) and GET
//     /v1/payouts/{id} need rak_payout_read; GET /v1/balance_transactions
//     (payout, type, source, currency, created) and GET
//     /v1/balance_transactions/{id} need rak_balance_read. Lists are newest
//     first by created time. ?payout= refuses a manual payout with Stripe's
//     400, an unknown one with a 404 on the payout parameter, and lists what
//     an automatic payout settled only once its reconciliation completed
//     (before that, its debit alone). A transaction reads pending until its
//     available_on.
//   - Fault injection ([Server.InjectFault]), optional token-bucket rate limits
//     and call counters for assertions.
//   - Events created with [Server.TriggerEvent] and delivered to matching
//     endpoints with a real Stripe-Signature header; past events (an outage's
//     history, for replays) recorded with [Server.RecordPastEvent]. GET
//     /v1/events lists newest first by created time and takes Stripe's
//     created[gt|gte|lt|lte], types[], delivery_success and paging filters.
//
// # Delivery model
//
// By default [Server.TriggerEvent] and [Server.Redeliver] deliver
// synchronously: they return only after every matching endpoint has answered
// (or the HTTP client timed out), so tests can assert right away. With
// [WithAsyncDelivery] deliveries run in the background and tests wait with
// [Server.WaitForDeliveries]. By default the fake never retries on its own;
// failed deliveries stay pending until [Server.Redeliver] is called. With
// [WithDeliveryRetries] a failed delivery of a triggered event is retried in
// the background on the given schedule, like Stripe's automatic retries
// (which are spread over 3 days in live mode). Webhook bodies
// are pretty-printed like Stripe's, so receivers that re-encode JSON before
// verifying the signature fail here as they would in production.
//
// # Limits
//
// Objects are not versioned: the api_version field of events and endpoints is
// echoed but the payload shape never changes with it. Stripe-Account
// (Connect) requests are only accepted for the key's own account, connect
// endpoints never receive events, expand[] is accepted and ignored (except a
// balance transaction's source, which is expanded to the fields that name its
// payment: see [BalanceTransactionSeed]), and
// rate limits use the real clock even when [WithClock] is set. Only the event
// types listed in [KnownEventTypes] (plus any added with [WithEventTypes])
// are accepted. The fake never logs, and in particular never logs API keys.
package stripefake
