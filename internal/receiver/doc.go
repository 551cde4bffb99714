// Package receiver is the per-clinic Stripe webhook receiver: it verifies each delivery to
// POST /stripe/webhook/<clinicID> (Live mode) or /stripe/webhook-test/<clinicID> (Test mode; the
// Live-style path is still served there while endpoints registered before the split are moved)
// with the clinic's signing secret, drops duplicates, hands the
// event to the clinic's systems of record (relay.Target) and answers Stripe 2xx only once every
// target accepted it, 5xx otherwise so that Stripe, the durable queue, retries. It remembers per
// target what was accepted, so a retry goes only to the targets that failed.
//
// The receiver holds only its own signing secret, read from a mounted file, and never a Stripe
// API key: it uses stripe-go's types and webhook package, nothing that calls the API.
//
// Status codes:
//
//	404  the path is not the mode's path for the configured clinicID (see WebhookPath)
//	405  not a POST (Allow: POST)
//	413  body larger than Config.MaxBodyBytes
//	400  missing, malformed, forged, stale (older than 300 s) or future-dated Stripe-Signature;
//	     malformed event JSON; livemode contradicting Config.Mode. Never relayed. Events of
//	     every API version are accepted (replays come in the version of their creation).
//	503  no signing secret loaded yet, or a target did not accept the event (Stripe retries)
//	200  relayed to every target, acknowledged (no target configured), or a duplicate of an
//	     event already relayed by this replica (a replay the operator marked with a valid
//	     sigheader.ReplayHeader is relayed again instead; an invalid marker is ignored)
//
// Bodies are {"status":"…","message":"…"} and never contain secrets or payloads.
//
// The same port takes the operator's ledger messages (package ledger: a reconciled payout, an
// anomaly flag) at POST ledger.PathPrefix + <clinicID>, signed in sigheader.LedgerHeader with the
// signing secret (any line of the file; the Ledger scheme's domain keeps a Stripe-Signature or
// replay marker made with the same secret from passing). Checked in this order:
//
//	405  not a POST
//	404  the path's clinic is not Config.ClinicID
//	413  body larger than LedgerMaxBodyBytes (16 MiB; a 10,000-item payout is about 3 MiB)
//	401  missing, malformed or forged Clinicpay-Ledger-Signature, or its timestamp more than
//	     300 s from the receiver's clock
//	400  not a JSON ledger.Message, Message.Check fails, another clinic's message, or livemode
//	     (the message's, the payout's, the flagged event's) contradicting Config.Mode
//	503  no signing secret loaded yet, or a target did not write the message
//	200  every target wrote it: {"status":"written","filled":[…],"filledCount":n}, filled the
//	     payments a target had to record with the payout (relay.LedgerWriter), sorted, at most
//	     ledger.MaxFilledIDs of them (filledCount counts them all)
//
// Ledger messages are not deduplicated (the targets are idempotent on the message id) and are
// counted in stripe_receiver_ledger_messages_total{kind,result}.
//
// The signing secret file may hold several secrets, one per line, while a secret is rolled; a
// signature from any of them is accepted. The file is stat'ed at most once per
// Config.SecretCheckInterval and re-read when its inode, size or mtime changed (the kubelet
// swaps a symlink), and once more, immediately, when no loaded secret verifies a delivery. A
// file that vanished, grew too large or holds no secret keeps the secrets in use (package
// secretfile has the policy, shared with the relays' key and token files).
//
// Metrics (registered on the registry passed to New): stripe_receiver_events_total{type,result},
// stripe_receiver_signature_failures_total{cause}, stripe_receiver_relay_duration_seconds{target},
// stripe_receiver_duplicates_total, stripe_receiver_signing_secret_reloads_total and
// stripe_receiver_ledger_messages_total{kind,result}. The type
// label is the event type when verified and Stripe-shaped, "other" when verified but not, and
// "unknown" when not verified.
package receiver
