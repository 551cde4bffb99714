package stripeclient

import (
	"fmt"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// AuthReason maps the outcome of the authentication probe (ListWebhookEndpoints) to the
// Authenticated condition's reason and message. Messages are redacted.
func AuthReason(err error) (reason, message string) {
	e := Classify(err)
	if e == nil {
		return v1alpha1.ReasonAuthenticated, "Stripe accepted the secret key"
	}
	switch e.Kind {
	case KindInvalidKey:
		return v1alpha1.ReasonInvalidKey,
			"Stripe rejected the secret key as invalid, revoked or expired; put a current key in the Secret"
	case KindPermissionDenied:
		if e.Permission != "" {
			return v1alpha1.ReasonPermissionDenied, fmt.Sprintf(
				"the restricted key lacks %s; grant it in the Stripe dashboard or use another key", e.Permission)
		}
		return v1alpha1.ReasonPermissionDenied, Redact(fmt.Sprintf(
			"the key lacks a permission the operator needs (Stripe said: %s); grant it in the Stripe dashboard or use another key",
			e.Message))
	case KindRateLimited:
		return v1alpha1.ReasonRateLimited,
			"Stripe rate-limited the probe; the operator retries with backoff"
	case KindUnavailable:
		return v1alpha1.ReasonStripeUnavailable, Redact(fmt.Sprintf(
			"Stripe is unavailable (%s); the operator retries with backoff", e.Message))
	default:
		return v1alpha1.ReasonProbeFailed, Redact(fmt.Sprintf(
			"Stripe answered the probe with an unexpected error: %s", e.Error()))
	}
}
