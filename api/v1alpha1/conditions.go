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
	// ReasonNotImplemented: this version of the operator does not manage this part yet.
	ReasonNotImplemented = "NotImplemented"
)

// Reasons for the KeysValid condition.
const (
	ReasonKeysValid = "KeysValid"
	// ReasonSecretNotFound: the Secret named in spec.credentialsSecretRef does not exist.
	ReasonSecretNotFound = "SecretNotFound"
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

// Reasons for the Connected condition when True; when False it carries the reason of the
// first condition (in the order KeysValid, Authenticated, WebhookEndpointReady, ReceiverReady)
// that is not True.
const (
	ReasonConnected = "Connected"
)
