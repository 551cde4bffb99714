package v1alpha1

// Condition types reported in status.conditions.
const (
	// ConditionKeysValid is True when the referenced Secret holds a well-formed publishable key
	// and secret (or restricted) key whose modes agree with each other and with spec.mode.
	ConditionKeysValid = "KeysValid"
	// ConditionAuthenticated is True when Stripe accepted the secret key on the last probe.
	ConditionAuthenticated = "Authenticated"
	// ConditionWebhookEndpointReady is True when the clinic's webhook endpoint is registered
	// in Stripe as specified and its signing secret is stored.
	ConditionWebhookEndpointReady = "WebhookEndpointReady"
	// ConditionReceiverReady is True when the clinic's webhook receiver is available.
	ConditionReceiverReady = "ReceiverReady"
	// ConditionConnected summarises the others: True only when all four are True.
	ConditionConnected = "Connected"
)

// Reasons shared by several conditions.
const (
	// ReasonSuspended: spec.suspend is true, so the operator makes no Stripe calls.
	ReasonSuspended = "Suspended"
	// ReasonKeysNotValid: the step was skipped because KeysValid is not True.
	ReasonKeysNotValid = "KeysNotValid"
	// ReasonNotAuthenticated: the step was skipped because Authenticated is not True.
	ReasonNotAuthenticated = "NotAuthenticated"
)

// Reasons for the KeysValid condition.
const (
	ReasonKeysValid = "KeysValid"
	// ReasonSecretNotFound: the Secret named in spec.credentialsSecretRef does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretTerminating: the credentials Secret is being deleted and this integration had not
	// protected it yet, so no Stripe call is made with keys that could not remove the endpoint later.
	ReasonSecretTerminating = "SecretTerminating"
	// ReasonSecretReadFailed: the Secret could not be read (apiserver error); retried with backoff.
	ReasonSecretReadFailed = "SecretReadFailed"
	// ReasonKeyMissing: the Secret lacks one of the expected data keys.
	ReasonKeyMissing = "KeyMissing"
	// ReasonKeyEmpty: a key value is empty.
	ReasonKeyEmpty = "KeyEmpty"
	// ReasonKeyWhitespace: a key value has leading/trailing whitespace beyond one trailing newline.
	ReasonKeyWhitespace = "KeyWhitespace"
	// ReasonKeyMalformed: a key value is not a Stripe API key.
	ReasonKeyMalformed = "KeyMalformed"
	// ReasonWrongKeyType: a publishable key sits in the secret slot or vice versa.
	ReasonWrongKeyType = "WrongKeyType"
	// ReasonKeyModesDisagree: the publishable and secret keys are from different modes.
	ReasonKeyModesDisagree = "KeyModesDisagree"
	// ReasonModeMismatch: the keys' mode differs from spec.mode.
	ReasonModeMismatch = "ModeMismatch"
)

// Reasons for the Authenticated condition.
const (
	ReasonAuthenticated = "Authenticated"
	// ReasonInvalidKey: Stripe rejected the key as invalid, revoked or expired (HTTP 401).
	ReasonInvalidKey = "InvalidKey"
	// ReasonPermissionDenied: a restricted key lacks a permission the operator needs (HTTP 403).
	ReasonPermissionDenied = "PermissionDenied"
	// ReasonRateLimited: Stripe answered 429; the operator backs off and retries.
	ReasonRateLimited = "RateLimited"
	// ReasonStripeUnavailable: Stripe could not be reached or answered 5xx; retried with backoff.
	ReasonStripeUnavailable = "StripeUnavailable"
	// ReasonProbeFailed: Stripe answered the probe with an unexpected error.
	ReasonProbeFailed = "ProbeFailed"
)

// Reasons for the WebhookEndpointReady condition (PermissionDenied, RateLimited and
// StripeUnavailable are shared with Authenticated).
const (
	// ReasonEndpointReady: the endpoint matches the spec and its signing secret is stored.
	ReasonEndpointReady = "EndpointReady"
	// ReasonSigningSecretRotated: the signing secret was lost (Stripe shows it only at creation), so
	// the endpoint was deliberately re-created with a new secret.
	ReasonSigningSecretRotated = "SigningSecretRotated"
	// ReasonNoWebhookURL: neither spec.webhook nor the operator's --webhook-base-url gives a URL.
	ReasonNoWebhookURL = "NoWebhookURL"
	// ReasonEndpointLimitReached: the Stripe account already has the maximum of 16 endpoints.
	ReasonEndpointLimitReached = "EndpointLimitReached"
	// ReasonInvalidWebhookConfig: Stripe rejected the URL or an event type (HTTP 400); the message
	// carries Stripe's explanation.
	ReasonInvalidWebhookConfig = "InvalidWebhookConfig"
	// ReasonEndpointModeMismatch: the endpoint's livemode contradicts spec.mode.
	ReasonEndpointModeMismatch = "EndpointModeMismatch"
	// ReasonEndpointFailed: Stripe answered an endpoint call with an unexpected error.
	ReasonEndpointFailed = "EndpointFailed"
	// ReasonSigningSecretNameConflict: a Secret the operator did not create already has the name the
	// signing Secret needs; the operator never takes it over and creates no endpoint until it is gone.
	ReasonSigningSecretNameConflict = "SigningSecretNameConflict"
	// ReasonWebhookURLConflict: an older StripeIntegration (in any namespace) already registers the
	// same webhook URL; this one registers nothing until its URL is made unique.
	ReasonWebhookURLConflict = "WebhookURLConflict"
)

// Reasons for the ReceiverReady condition.
const (
	// ReasonReceiverAvailable: the receiver Deployment is available with all replicas updated.
	ReasonReceiverAvailable = "ReceiverAvailable"
	// ReasonReceiverProgressing: the receiver Deployment is rolling out or not yet available.
	ReasonReceiverProgressing = "ReceiverProgressing"
	// ReasonReceiverScaledToZero: spec.receiver.replicas is 0, so nothing receives events.
	ReasonReceiverScaledToZero = "ReceiverScaledToZero"
	// ReasonWaitingForSigningSecret: the receiver is deployed once the endpoint's signing secret exists.
	ReasonWaitingForSigningSecret = "WaitingForSigningSecret"
	// ReasonReceiverApplyFailed: the apiserver rejected or failed a receiver object; retried.
	ReasonReceiverApplyFailed = "ReceiverApplyFailed"
	// ReasonForwardCredentialNotAllowed: a forward credential (spec.receiver.forward.*SecretRef) names
	// a Secret that an admin has not bound to that target with the forward-to annotation, or a Secret
	// that may never leave the operator (Stripe credentials, signing secrets). Nothing is mounted.
	ReasonForwardCredentialNotAllowed = "ForwardCredentialNotAllowed"
	// ReasonIngressAnnotationNotAllowed: spec.webhook.ingress.annotations holds a key the operator's
	// --ingress-annotation-allowlist does not allow; the Ingress is not applied.
	ReasonIngressAnnotationNotAllowed = "IngressAnnotationNotAllowed"
)

// Reasons used only on Events (condition reasons are Events too when a condition changes).
const (
	// EventEndpointCreated is no longer recorded: the status Event of the pass that creates the
	// first endpoint names it. Kept so that tooling filtering on it still compiles.
	EventEndpointCreated         = "EndpointCreated"
	EventEndpointRepaired        = "EndpointRepaired"
	EventEndpointRecreated       = "EndpointRecreated"
	EventDuplicateEndpointDelete = "DuplicateEndpointDeleted"
	EventSigningSecretRecovered  = "SigningSecretRecovered"
	EventEndpointDeleted         = "EndpointDeleted"
	EventOldEndpointRemoved      = "OldEndpointRemoved"
	EventManualRemovalRequired   = "ManualRemovalRequired"
	EventReplayCompleted         = "ReplayCompleted"
	// EventEndpointRetiring: a replaced endpoint is kept, with its secret still accepted, until
	// Stripe has no pending deliveries for it; EventRetiredEndpointDeleted when it goes.
	EventEndpointRetiring       = "EndpointRetiring"
	EventRetiredEndpointDeleted = "RetiredEndpointDeleted"
	// EventEndpointReplacedAtLimit: the successor could not be created at Stripe's 16-endpoint
	// cap, so the old endpoint was deleted first and the gap is re-delivered.
	EventEndpointReplacedAtLimit = "EndpointReplacedAtLimit"
	// EventGapRedelivered: the events a replacement could not hand over were re-delivered
	// through the replay path.
	EventGapRedelivered = "GapRedelivered"
)

// Annotations the operator keeps on a StripeIntegration.
const (
	// AnnotationCreateAttempt counts deliberate endpoint creations; with the object's UID it forms
	// the Idempotency-Key, so a retried create (after a crash or a lost response) never makes a
	// second endpoint, and a deliberate re-creation gets a fresh key. A create that Stripe answered
	// with a 5xx also moves it on, since Stripe replays that saved answer for the key for 24 h.
	AnnotationCreateAttempt = "payments.clinicpay.dev/webhook-create-attempt"
	// AnnotationReplacedEndpoint names the lost or replaced endpoint the current attempt number
	// was taken for, so that every reconcile that sees the same loss uses the same key.
	AnnotationReplacedEndpoint = "payments.clinicpay.dev/webhook-replaced-endpoint"
	// AnnotationDeletionAttempts counts failed endpoint removals during deletion; past the limit
	// the finalizer is released and the endpoint is reported for manual removal.
	AnnotationDeletionAttempts = "payments.clinicpay.dev/deletion-attempts"
	// AnnotationReplaySince requests a replay: set it to an RFC 3339 time and the operator lists
	// the clinic's events since then (at most 30 days back, enabled types only) from Stripe and
	// re-delivers them to the receiver, signed with the clinic's signing secret. Each value runs
	// once; the result is in status.replay.
	AnnotationReplaySince = "payments.clinicpay.dev/replay-since"
	// AnnotationWebhookEndpointID on the signing Secret names the endpoint whose secret it holds.
	AnnotationWebhookEndpointID = "payments.clinicpay.dev/webhook-endpoint-id"
	// AnnotationRetiringEndpointID on the signing Secret names a replaced endpoint that is kept
	// until Stripe has no pending deliveries for it; its secret is the Secret's second line, so
	// the receiver still accepts its retries. AnnotationRetiringSince is when it was replaced
	// (RFC 3339); it is deleted at the latest once Stripe's retry window has passed since then.
	AnnotationRetiringEndpointID = "payments.clinicpay.dev/retiring-endpoint-id"
	AnnotationRetiringSince      = "payments.clinicpay.dev/retiring-since"
	// AnnotationRedeliverUndeliveredSince, kept by the operator on a StripeIntegration after a
	// replacement that could not keep the old endpoint (its secret was lost, or Stripe's endpoint
	// cap forced deleting it first), asks for the events created since then that Stripe has not
	// delivered to every endpoint to be re-delivered through the replay path with the new secret.
	// AnnotationRedeliverAllSince asks the same for every event created since then (the time the
	// old endpoint was deleted before its successor existed). Both go once re-delivered.
	AnnotationRedeliverUndeliveredSince = "payments.clinicpay.dev/redeliver-undelivered-since"
	AnnotationRedeliverAllSince         = "payments.clinicpay.dev/redeliver-all-since"
	// AnnotationForwardTo, set by an admin on a Secret, binds it as a forward credential to the
	// targets it may be sent to: whitespace-separated URL prefixes (scheme://host[:port][/path]).
	// A Secret without it is never mounted into a receiver.
	AnnotationForwardTo = "payments.clinicpay.dev/forward-to"
)

// CredentialsInUseFinalizer is put on a credentials Secret while a StripeIntegration that uses it
// exists, so that deleting the Secret first (kubectl delete -f, a namespace deletion) waits until the
// integration has removed its Stripe endpoint. Like kubernetes.io/pvc-protection, it is the one
// change the operator makes to an object it did not create.
const CredentialsInUseFinalizer = "payments.clinicpay.dev/credentials-in-use"

// SigningSecretKey is the data key of the signing secret in the Secret named by status.signingSecretName.
const SigningSecretKey = "signingSecret"

// Reasons for the Connected condition when True; when False it carries the reason of the
// first condition (in the order KeysValid, Authenticated, WebhookEndpointReady, ReceiverReady)
// that is not True.
const (
	ReasonConnected = "Connected"
)

// Informational conditions: reported beside the four above, never part of Connected. Each is
// present only while the feature it reports is enabled (spec.finance) or, for
// DeliveriesArriving, once the integration is connected.
const (
	// ConditionPayoutsReconciled is True when the last payout check listed the clinic's paid
	// payouts and every reconciled one reached the system of record.
	ConditionPayoutsReconciled = "PayoutsReconciled"
	// ConditionAnomaliesChecked is True when the last anomaly check read the clinic's events up to
	// status.finance.anomalies.checkedUntil.
	ConditionAnomaliesChecked = "AnomaliesChecked"
	// ConditionDeliveriesArriving is True when a signed probe sent through the registered public
	// URL reached this clinic's receiver and Stripe reports no failed deliveries.
	ConditionDeliveriesArriving = "DeliveriesArriving"
)

// Reasons for the finance conditions (PermissionDenied, RateLimited, StripeUnavailable, Suspended,
// KeysNotValid and NotAuthenticated apply too).
const (
	// ReasonPayoutsReconciled: every reconciled payout up to status.finance.payouts.lastArrivalDate
	// was written to the system of record.
	ReasonPayoutsReconciled = "PayoutsReconciled"
	// ReasonPayoutPermissionMissing: the restricted key may not read payouts or balance
	// transactions; the message names the permission (rak_payout_read, rak_balance_read).
	ReasonPayoutPermissionMissing = "PayoutPermissionMissing"
	// ReasonPayoutWriteFailed: the receiver did not accept a payout record; retried next check.
	ReasonPayoutWriteFailed = "PayoutWriteFailed"
	// ReasonPayoutInvalid: Stripe listed a payout whose items do not add up to it (or another
	// inconsistency ledger.Payout.Check names); it is not recorded as if whole.
	ReasonPayoutInvalid = "PayoutInvalid"
	// ReasonPayoutCheckFailed: Stripe answered a payout listing with an unexpected error (not a
	// missing permission, not a transient failure); the message has Stripe's answer.
	ReasonPayoutCheckFailed = "PayoutCheckFailed"
	// ReasonAnomaliesChecked: the clinic's events were checked up to checkedUntil.
	ReasonAnomaliesChecked = "AnomaliesChecked"
	// ReasonEventPermissionMissing: the restricted key may not read events (rak_event_read).
	ReasonEventPermissionMissing = "EventPermissionMissing"
	// ReasonFlagWriteFailed: the receiver did not accept a flag; retried next check.
	ReasonFlagWriteFailed = "FlagWriteFailed"
	// ReasonNotConnected: the feature waits for the integration to be Connected.
	ReasonNotConnected = "NotConnected"
)

// Reasons for the DeliveriesArriving condition (NotConnected, Suspended, RateLimited,
// StripeUnavailable and EventPermissionMissing apply too). The check behind it runs at its own
// cadence (the manager's --delivery-check-interval): a signed probe through the registered public
// URL, and one read of the events Stripe has not delivered.
const (
	// ReasonDeliveriesArriving: a signed probe posted to the registered public URL, as Stripe
	// posts, was answered by this clinic's receiver with the probe's nonce, and Stripe lists no
	// undelivered events of the endpoint's types created since the previous check.
	ReasonDeliveriesArriving = "DeliveriesArriving"
	// ReasonPublicURLUnreachable: the operator could not reach the public URL from inside the
	// cluster (DNS, connection refused, timeout, TLS); the message names the error class. This
	// says nothing about Stripe's path, which may well work: the message says what Stripe reports.
	ReasonPublicURLUnreachable = "PublicURLUnreachable"
	// ReasonProbeAnsweredByOther: something answered the probe at the public URL, but not this
	// clinic's receiver (no nonce in the answer: an ingress 404, another service, a redirect,
	// another clinic's receiver); the message carries the HTTP status.
	ReasonProbeAnsweredByOther = "ProbeAnsweredByOther"
	// ReasonStripeDeliveriesFailing: Stripe lists events of the endpoint's types, created since
	// the previous check, that it has not delivered (GET /v1/events?delivery_success=false). This
	// is Stripe's own view and wins over the probe's.
	ReasonStripeDeliveriesFailing = "StripeDeliveriesFailing"
	// ReasonDeliveryCheckFailed: the check could not run (the signing secret could not be read,
	// or Stripe answered the events list with an unexpected error); retried at the next check.
	ReasonDeliveryCheckFailed = "DeliveryCheckFailed"
)
