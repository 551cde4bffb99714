package stripeclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

func TestAuthReason(t *testing.T) {
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
			err:         &stripe.Error{HTTPStatusCode: 401, Msg: "Invalid API Key provided: sk_test_****" + maskedTail},
			wantReason:  v1alpha1.ReasonInvalidKey,
			wantMessage: "Stripe rejected the secret key as invalid, revoked or expired; put a current key in the Secret",
		},
		"permission named": {
			err: fmt.Errorf("list webhook endpoints: %w", &stripe.Error{HTTPStatusCode: 403,
				Msg: "The provided key 'rk_test_***" + maskedTail + "' does not have the required permissions for this endpoint on account 'acct_1'. Having the 'rak_webhook_read' permission would allow this request to continue."}),
			wantReason:  v1alpha1.ReasonPermissionDenied,
			wantMessage: "the restricted key lacks rak_webhook_read; grant it in the Stripe dashboard or use another key",
		},
		"permission unnamed": {
			err:          &stripe.Error{HTTPStatusCode: 403, Msg: "This API call cannot be made with a publishable API key " + "pk_test_" + testKeyBody},
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
			err: errors.New("weird " + skTest), wantReason: v1alpha1.ReasonProbeFailed, wantContains: "weird sk_test_…",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reason, msg := AuthReason(tc.err)
			if reason != tc.wantReason {
				t.Errorf("reason = %q, want %q (message %q)", reason, tc.wantReason, msg)
			}
			if tc.wantMessage != "" && msg != tc.wantMessage {
				t.Errorf("message = %q, want %q", msg, tc.wantMessage)
			}
			if !strings.Contains(msg, tc.wantContains) || msg == "" {
				t.Errorf("message = %q, want it to contain %q", msg, tc.wantContains)
			}
			assertNoKeyMaterial(t, "message", msg)
		})
	}
}
