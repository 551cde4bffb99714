// Package httprelay is the plain HTTP system of record: it POSTs a compact, signed JSON
// envelope of each verified Stripe event to the clinic's URL.
//
// # Request
//
//	POST <--http-target-url>
//	Content-Type: application/json
//	Idempotency-Key: <Stripe event id>
//	webhook-id: <Stripe event id>                                 (these four only when a key file is set)
//	webhook-timestamp: <unix seconds>
//	webhook-signature: v1,<base64 HMAC-SHA256>
//	Clinicpay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>   (deprecated, see below)
//	User-Agent: clinicpay-stripe-receiver
//
// Any 2xx answer means the clinic accepted the event; anything else, a redirect (redirects are
// not followed, so the body and signature never go to another host), a network error or a
// timeout is a failure: the receiver answers Stripe 503 and Stripe delivers the event again, so
// the clinic may see the same event more than once and must deduplicate on Idempotency-Key
// (equal to the envelope's id for events; a flag's envelope is keyed on the flag id, see
// "Ledger envelopes").
//
// # Envelope
//
//	{
//	  "id":       "evt_…",                    // Stripe event id, also the Idempotency-Key
//	  "type":     "payment_intent.succeeded", // Stripe event type
//	  "created":  1700000000,                 // event creation, Unix seconds
//	  "livemode": false,                      // false for Test, true for Live
//	  "clinicID": "clinic-a",                 // the clinic the receiver serves
//	  "apiVersion": "2023-10-16",             // Stripe API version the event was rendered in
//	  "object": {                             // a subset of the event's data.object
//	    "id": "pi_…", "object": "payment_intent", "amount": 1234, "amountDecimal": "12.34",
//	    "currency": "usd", "status": "succeeded", "customer": "cus_…", "metadata": {"patient_id": "p-1"}
//	  }
//	}
//
// The top-level fields are always present ("apiVersion" is "" only for events older than
// Stripe's api_version field). A replayed event comes in the API version in force when it was
// created, which may be older or newer than the one live deliveries use; the "object" fields
// below mean the same in every version, so only their presence varies. Inside "object", a field is copied only when the
// Stripe object has it with the expected JSON type, so absent fields are omitted, never null:
//
//	id, object, currency, status    strings, every object that has them
//	amount                          integer, minor units as Stripe sends it (1234 = 12.34 USD):
//	                                payment_intent, charge, refund, …
//	amountDecimal                   string, amount in major units ("12.34"; "1234" for JPY;
//	                                "1.234" for KWD), present when amount and currency are;
//	                                Stripe's zero-decimal currencies have no fraction, its
//	                                three-decimal ones (BHD, JOD, KWD, OMR, TND) have three, all
//	                                others two
//	amount_received                 integer, payment_intent: amount collected
//	amount_captured                 integer, charge: amount captured
//	amount_refunded                 integer, charge: amount refunded so far (charge.refunded
//	                                carries the cumulative refund here; "refunded" turns true
//	                                once the whole amount is refunded)
//	refunded, paid                  booleans, charge (paid also on invoice)
//	amount_due, amount_paid,        integers, invoice, minor units
//	amount_remaining
//	customer, payment_intent,       strings, ids of related objects; an expanded object is
//	charge, invoice                 reduced to its id
//	metadata                        object of strings, the Stripe object's metadata (the clinic's
//	                                own keys, e.g. patient and invoice ids); omitted when empty
//
// A customer object carries id, object and metadata only: names, e-mail addresses and any
// other personal data Stripe holds stay out of the envelope.
//
// # Signature
//
// With a key file configured, each request is signed with the Standard Webhooks scheme
// (https://www.standardwebhooks.com/), so the clinic verifies it with an off-the-shelf library
// (Go, Python, JavaScript, Java, C#, Ruby, PHP, Rust, Elixir, Kotlin) rather than our code:
// webhook-signature is "v1," followed by the standard base64 HMAC-SHA256 of
// "<webhook-id>.<webhook-timestamp>.<exact request body>". The clinic configures its library
// with the key file's content when that is a Standard Webhooks secret ("whsec_" and base64, the
// recommended form: e.g. "whsec_" + `openssl rand -base64 32`); any other content (a plain key
// from before the migration) is the raw HMAC key, which the libraries take as
// "whsec_" + base64(content) or through their raw-key constructor. A trailing "\n" or "\r\n"
// of the file is not part of the key. The libraries also reject timestamps more than 5 minutes
// from the clinic's clock, which stops replays. webhook-id is the event id, the same on every
// redelivery: it is the deduplication key, like Idempotency-Key.
//
// # Clinicpay-Signature (deprecated; sent for one more release)
//
// Clinicpay-Signature is "t=<t>,v1=<hex>", where <t> is the send time in Unix seconds (decimal
// ASCII) and <hex> is the lower-case hex HMAC-SHA256, keyed with the key file's bytes as they
// are (a trailing "\n" or "\r\n" removed; a whsec_ secret is used as the string it is, as
// Stripe's own scheme does), of the bytes "<t>." followed by the exact request body. To verify:
// split the header on ",", take t and every v1 value, recompute the HMAC over "<t>.<raw body>"
// before parsing the JSON, compare in constant time, and reject timestamps more than 5 minutes
// from the clinic's clock. [VerifySignature] does exactly this.
//
// Migrating: both headers are sent, from one key file, during this release. A clinic that
// verifies Clinicpay-Signature switches its verification to a Standard Webhooks library (the
// secret: the key file's content if it starts with whsec_, else "whsec_" + base64 of it), then,
// optionally, rotates the key file to a whsec_ secret. The next release stops sending
// Clinicpay-Signature.
//
// # Ledger envelopes
//
// The operator's ledger messages (package ledger) reach the clinic as envelopes of the same
// format and signatures ([Target.WriteLedger], [LedgerEnvelope]):
//   - a paid payout: type "payout.reconciled", id and Idempotency-Key the payout id, object the
//     deposit (id, object "payout", amount, amountDecimal, currency, status "paid"), apiVersion
//     "", and an added "payout" field: {"arrivalDate": <unix>, "items": [<every balance
//     transaction the payout settles, with amount, fee and net in minor and major units>]};
//   - an anomaly flag: the envelope of the Stripe event that raised it, with an added "flags"
//     array holding the flag (id, rule, reason, value, threshold, the event's id, type and time,
//     the payment's ids and amount). Its id is the event's; Idempotency-Key and webhook-id are
//     the flag id, so a clinic that already took the event's envelope takes this one too.
//
// An endpoint answers only accepted or not, so this target reports no filled-in payments. See
// docs/envelope.md for examples.
package httprelay
