package controller

import (
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/keys"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// This file is the one home of the mapping from what a pass found (a key policy result, a Stripe
// answer, a Deployment's status) to the conditions status shows, as cluster-api keeps its
// conditions in one _status.go. The phases call these functions and never spell a reason or a
// message themselves; computeStatus (stripeintegration_status.go) then folds the conditions into
// Ready and the status.

// condition is a condition without bookkeeping (times, generation), as the phases produce it.
type condition struct {
	Type    string
	Status  metav1.ConditionStatus
	Reason  string
	Message string
	// Transient marks an outcome of a transient Stripe failure (429, 5xx, timeout), or a check
	// skipped because of one: within the grace it does not overturn a True condition.
	Transient bool
}

func trueCond(t, reason, msg string) condition {
	return condition{Type: t, Status: metav1.ConditionTrue, Reason: reason, Message: msg}
}

func falseCond(t, reason, msg string) condition {
	return condition{Type: t, Status: metav1.ConditionFalse, Reason: reason, Message: msg}
}

func unknown(t, reason, msg string) condition {
	return condition{Type: t, Status: metav1.ConditionUnknown, Reason: reason, Message: msg}
}

func keysCondition(res keys.Result) condition {
	if res.OK() {
		return trueCond(paymentsv1alpha1.ConditionKeysValid, paymentsv1alpha1.ReasonKeysValid,
			fmt.Sprintf("publishable and %s key are well-formed %s keys", res.Secret.Kind, res.Secret.Mode))
	}
	return falseCond(paymentsv1alpha1.ConditionKeysValid, res.Reason, res.Message)
}

// authCondition maps the outcome of the authentication probe (ListWebhookEndpoints) to the
// Authenticated condition. Messages are redacted.
func authCondition(err error) condition {
	const ct = paymentsv1alpha1.ConditionAuthenticated
	e := stripeclient.Classify(err)
	if e == nil {
		return trueCond(ct, paymentsv1alpha1.ReasonAuthenticated, "Stripe accepted the secret key")
	}
	switch e.Kind {
	case stripeclient.KindInvalidKey:
		return falseCond(ct, paymentsv1alpha1.ReasonInvalidKey,
			"Stripe rejected the secret key as invalid, revoked or expired; put a current key in the Secret")
	case stripeclient.KindPermissionDenied:
		if e.Permission != "" {
			return falseCond(ct, paymentsv1alpha1.ReasonPermissionDenied, fmt.Sprintf(
				"the restricted key lacks %s; grant it in the Stripe dashboard or use another key", e.Permission))
		}
		return falseCond(ct, paymentsv1alpha1.ReasonPermissionDenied, stripeclient.Redact(fmt.Sprintf(
			"the key lacks a permission the operator needs (Stripe said: %s); grant it in the Stripe dashboard or use another key",
			e.Message)))
	case stripeclient.KindRateLimited:
		return falseCond(ct, paymentsv1alpha1.ReasonRateLimited, "Stripe rate-limited the probe; the operator retries with backoff")
	case stripeclient.KindUnavailable:
		return falseCond(ct, paymentsv1alpha1.ReasonStripeUnavailable, stripeclient.Redact(fmt.Sprintf(
			"Stripe is unavailable (%s); the operator retries with backoff", e.Message)))
	default:
		return falseCond(ct, paymentsv1alpha1.ReasonProbeFailed, stripeclient.Redact(fmt.Sprintf(
			"Stripe answered the probe with an unexpected error: %s", e.Error())))
	}
}

// receiverCondition is pure: ReceiverReady from the Deployment's status.
func receiverCondition(dep *appsv1.Deployment, want int32) condition {
	const ct = paymentsv1alpha1.ConditionReceiverReady
	if want == 0 {
		return falseCond(ct, paymentsv1alpha1.ReasonReceiverScaledToZero,
			"spec.receiver.replicas is 0: no receiver runs, Stripe's deliveries fail and are retried for up to 3 days")
	}
	st := dep.Status
	available := false
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
			available = true
		}
	}
	// A new receiver reads the same from its apply until a replica is available (just applied
	// and not cached yet, not yet observed by the Deployment controller, pods starting): one
	// status write, not one per step.
	switch {
	case st.ObservedGeneration < dep.Generation && st.AvailableReplicas > 0:
		return falseCond(ct, paymentsv1alpha1.ReasonReceiverProgressing, "receiver Deployment change not yet observed by its controller")
	case !available || st.AvailableReplicas < 1:
		return falseCond(ct, paymentsv1alpha1.ReasonReceiverProgressing,
			fmt.Sprintf("receiver Deployment %s not available yet (%d/%d replicas available)", dep.Name, st.AvailableReplicas, want))
	case st.UpdatedReplicas < want:
		return falseCond(ct, paymentsv1alpha1.ReasonReceiverProgressing,
			fmt.Sprintf("receiver Deployment %s rolling out (%d/%d replicas updated)", dep.Name, st.UpdatedReplicas, want))
	}
	return trueCond(ct, paymentsv1alpha1.ReasonReceiverAvailable,
		fmt.Sprintf("receiver Deployment %s available (%d/%d replicas)", dep.Name, st.AvailableReplicas, want))
}

func signingSecretConflictCondition(si *paymentsv1alpha1.StripeIntegration) condition {
	return falseCond(paymentsv1alpha1.ConditionWebhookEndpointReady, paymentsv1alpha1.ReasonSigningSecretNameConflict, fmt.Sprintf(
		"Secret %q exists but was not created by the operator for this StripeIntegration; it is left untouched and no endpoint is registered until it "+
			"is renamed or removed",
		signingSecretName(si.Name)))
}

// endpointErrorCondition maps a Stripe error from the webhook phase to WebhookEndpointReady.
func endpointErrorCondition(err error) condition {
	const ct = paymentsv1alpha1.ConditionWebhookEndpointReady
	var se *stripeclient.Error
	if !errors.As(err, &se) {
		return unknown(ct, paymentsv1alpha1.ReasonEndpointFailed, "updating cluster objects failed; retrying: "+stripeclient.Redact(err.Error()))
	}
	switch se.Kind {
	case stripeclient.KindLimitReached:
		return falseCond(ct, paymentsv1alpha1.ReasonEndpointLimitReached,
			"the Stripe account already has the maximum number of webhook endpoints (16); delete unused ones in the dashboard: "+se.Message)
	case stripeclient.KindInvalidRequest:
		msg := "Stripe rejected the endpoint: " + se.Message
		if se.Param != "" {
			msg += " (parameter " + se.Param + ")"
		}
		return falseCond(ct, paymentsv1alpha1.ReasonInvalidWebhookConfig, msg)
	case stripeclient.KindPermissionDenied:
		perm := se.Permission
		if perm == "" {
			perm = "rak_webhook_write"
		}
		return falseCond(ct, paymentsv1alpha1.ReasonPermissionDenied,
			fmt.Sprintf("the restricted key lacks %s; grant it in the Stripe dashboard or use another key", perm))
	case stripeclient.KindRateLimited:
		return falseCond(ct, paymentsv1alpha1.ReasonRateLimited, "Stripe rate limit reached; retrying with backoff")
	case stripeclient.KindUnavailable:
		return falseCond(ct, paymentsv1alpha1.ReasonStripeUnavailable, "Stripe unavailable; retrying with backoff: "+se.Message)
	default:
		return falseCond(ct, paymentsv1alpha1.ReasonEndpointFailed, se.Message)
	}
}
