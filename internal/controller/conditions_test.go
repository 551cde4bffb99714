package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
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
