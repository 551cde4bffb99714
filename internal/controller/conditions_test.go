package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// Key material the condition messages must never carry: the bodies of the keys the errors quote.
const (
	condKeyBody    = "51TESTkeyBODYa1b2c3d4e5f6g7QQZZ"
	condMaskedTail = "QQZZ"
	condSkTest     = "sk_test_" + condKeyBody
)

func TestAuthCondition(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		err          error
		wantReason   string
		wantMessage  string
		wantContains string
	}{
		"accepted": {
			err: nil, wantReason: v1alpha1.ReasonAuthenticated,
		},
		"invalid key": {
			err:         &stripe.Error{HTTPStatusCode: 401, Msg: "Invalid API Key provided: sk_test_****" + condMaskedTail},
			wantReason:  v1alpha1.ReasonInvalidKey,
			wantMessage: "Stripe rejected the secret key as invalid, revoked or expired; put a current key in the Secret",
		},
		"permission named": {
			err: fmt.Errorf("list webhook endpoints: %w", &stripe.Error{HTTPStatusCode: 403,
				Msg: "The provided key 'rk_test_***" + condMaskedTail + "' does not have the required permissions for this endpoint on account 'acct_1'. " +
					"Having the 'rak_webhook_read' permission would allow this request to continue."}),
			wantReason:  v1alpha1.ReasonPermissionDenied,
			wantMessage: "the restricted key lacks rak_webhook_read; grant it in the Stripe dashboard or use another key",
		},
		"permission unnamed": {
			err:          &stripe.Error{HTTPStatusCode: 403, Msg: "This API call cannot be made with a publishable API key " + "pk_test_" + condKeyBody},
			wantReason:   v1alpha1.ReasonPermissionDenied,
			wantContains: "publishable API key pk_test_…",
		},
		"rate limited": {
			err: &stripe.Error{HTTPStatusCode: 429, Code: "rate_limit"}, wantReason: v1alpha1.ReasonRateLimited,
		},
		"unavailable": {
			err: &stripe.Error{HTTPStatusCode: 503}, wantReason: v1alpha1.ReasonStripeUnavailable,
			wantContains: "retries with backoff",
		},
		"timeout": {
			err: context.DeadlineExceeded, wantReason: v1alpha1.ReasonStripeUnavailable,
		},
		"unexpected 400": {
			err:        &stripe.Error{HTTPStatusCode: 400, Code: "parameter_unknown", Param: "limit", Msg: "Received unknown parameter: limit"},
			wantReason: v1alpha1.ReasonProbeFailed, wantContains: "param limit",
		},
		"unexpected other": {
			err: errors.New("weird " + condSkTest), wantReason: v1alpha1.ReasonProbeFailed, wantContains: "weird sk_test_…",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := authCondition(tc.err)
			reason, msg := c.Reason, c.Message
			if want := metav1.ConditionFalse; tc.err == nil && c.Status != metav1.ConditionTrue || tc.err != nil && c.Status != want {
				t.Errorf("status = %s for error %v", c.Status, tc.err)
			}
			if reason != tc.wantReason {
				t.Errorf("reason = %q, want %q (message %q)", reason, tc.wantReason, msg)
			}
			if tc.wantMessage != "" && msg != tc.wantMessage {
				t.Errorf("message = %q, want %q", msg, tc.wantMessage)
			}
			if !strings.Contains(msg, tc.wantContains) || msg == "" {
				t.Errorf("message = %q, want it to contain %q", msg, tc.wantContains)
			}
			for _, b := range []string{condKeyBody, condKeyBody[:12], condMaskedTail} {
				if strings.Contains(msg, b) {
					t.Errorf("message carries key material %q: %s", b, msg)
				}
			}
		})
	}
}

// TestNewReceiverReadsTheSameUntilAvailable: a new receiver Deployment, from its apply until a
// replica is available, gives one ReceiverReady condition, so its status is written once, not at
// each step (not cached yet, not yet observed by the Deployment controller, pods starting). A
// change to a running receiver still says that its controller has not observed it yet.
func TestNewReceiverReadsTheSameUntilAvailable(t *testing.T) {
	t.Parallel()
	dep := func(gen, observed int64, available int32) *appsv1.Deployment {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "c-receiver", Generation: gen}}
		d.Status.ObservedGeneration, d.Status.AvailableReplicas, d.Status.UpdatedReplicas = observed, available, available
		if available > 0 {
			d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue}}
		}
		return d
	}
	first := receiverCondition(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "c-receiver"}}, 2)
	for name, d := range map[string]*appsv1.Deployment{
		"not yet observed":   dep(1, 0, 0),
		"observed, starting": dep(1, 1, 0),
	} {
		if got := receiverCondition(d, 2); got != first {
			t.Errorf("%s: %+v, want what the apply's own pass said: %+v", name, got, first)
		}
	}
	if first.Reason != v1alpha1.ReasonReceiverProgressing {
		t.Errorf("new receiver: reason %s, want %s", first.Reason, v1alpha1.ReasonReceiverProgressing)
	}
	if got := receiverCondition(dep(2, 1, 2), 2); !strings.Contains(got.Message, "not yet observed") {
		t.Errorf("change to a running receiver: %q, want it not yet observed", got.Message)
	}
}
