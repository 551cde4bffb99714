package stripeclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
)

func TestClassify(t *testing.T) {
	own := &Error{Kind: KindNotFound, Message: "gone"}
	tests := map[string]struct {
		err           error
		wantNil       bool
		wantKind      ErrorKind
		wantStatus    int
		wantSame      *Error
		wantContains  string
		wantTransient bool
	}{
		"nil":                {err: nil, wantNil: true},
		"own error, wrapped": {err: fmt.Errorf("get account: %w", own), wantKind: KindNotFound, wantSame: own},
		"stripe 403 direct": {err: &stripe.Error{HTTPStatusCode: 403,
			Msg: "Having the 'rak_account_read' permission would allow this request to continue."}, wantKind: KindPermissionDenied, wantStatus: 403},
		"stripe 401 wrapped": {err: fmt.Errorf("x: %w", &stripe.Error{HTTPStatusCode: 401, Msg: "Invalid API Key provided: " + skTest}),
			wantKind: KindInvalidKey, wantStatus: 401},
		"stripe 409": {err: &stripe.Error{HTTPStatusCode: 409}, wantKind: KindConflict, wantStatus: 409, wantTransient: true,
			wantContains: "HTTP 409 Conflict"},
		"deadline exceeded": {err: &url.Error{Op: "Get", URL: "https://api.stripe.com/v1/account", Err: context.DeadlineExceeded},
			wantKind: KindUnavailable, wantTransient: true, wantContains: "in time"},
		"canceled": {err: context.Canceled, wantKind: KindUnavailable, wantTransient: true},
		"connection refused": {err: &url.Error{Op: "Get", URL: "https://api.stripe.com",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}}, wantKind: KindUnavailable, wantTransient: true,
			wantContains: "connection refused"},
		"bare net error": {err: &net.DNSError{Err: "no such host", Name: "api.stripe.com"}, wantKind: KindUnavailable,
			wantTransient: true},
		"undecodable 503 body": {err: errors.New(
			"Couldn't deserialize JSON (response status: 503, body sample: '<html>" + skTest + "'): invalid character"), wantKind: KindUnavailable,
			wantStatus: 503, wantTransient: true},
		"undecodable 200 body": {err: errors.New("Couldn't deserialize JSON (response status: 200, body sample: 'x'): invalid character"),
			wantKind: KindOther, wantStatus: 200},
		"anything else": {err: errors.New("boom with " + rkTest), wantKind: KindOther, wantContains: "boom with rk_test_…"},
		"endpoint limit, fake's wording": {err: &stripe.Error{HTTPStatusCode: 400, Type: stripe.ErrorTypeInvalidRequest,
			Msg: "You have reached the maximum of 16 test webhook endpoints."}, wantKind: KindLimitReached, wantStatus: 400, wantContains: "maximum of 16"},
		"endpoint limit, rephrased": {err: &stripe.Error{HTTPStatusCode: 400,
			Msg: "Webhook endpoint limit reached: an account may have at most 16 live endpoints."}, wantKind: KindLimitReached, wantStatus: 400},
		"endpoint limit, wrapped": {err: fmt.Errorf("create webhook endpoint: %w",
			&stripe.Error{HTTPStatusCode: 400, Msg: "You've hit the max of 16 webhook_endpoints"}), wantKind: KindLimitReached, wantStatus: 400},
		"400 naming endpoints, no limit": {err: &stripe.Error{HTTPStatusCode: 400, Param: "url",
			Msg: "Invalid URL: webhook endpoints must use HTTPS."}, wantKind: KindInvalidRequest, wantStatus: 400},
		"400 naming a limit, no endpoints": {err: &stripe.Error{HTTPStatusCode: 400, Param: "metadata",
			Msg: "You have reached the maximum of 50 metadata keys."}, wantKind: KindInvalidRequest, wantStatus: 400},
		"429 naming the endpoint limit": {err: &stripe.Error{HTTPStatusCode: 429, Msg: "rate limit for webhook endpoints"},
			wantKind: KindRateLimited, wantStatus: 429, wantTransient: true},
		"idempotency error": {err: &stripe.Error{HTTPStatusCode: 400, Type: stripe.ErrorTypeIdempotency,
			Msg: "Keys for idempotent requests can only be used with the same parameters they were first used with."}, wantKind: KindIdempotencyConflict,
			wantStatus: 400},
		"idempotency error, other endpoint": {err: &stripe.Error{HTTPStatusCode: 400, Type: stripe.ErrorTypeIdempotency,
			Msg: "Keys for idempotent requests can only be used for the same endpoint they were first used for"}, wantKind: KindIdempotencyConflict,
			wantStatus: 400},
		"idempotency key in use is transient": {err: &stripe.Error{HTTPStatusCode: 409, Type: stripe.ErrorTypeInvalidRequest,
			Code: stripe.ErrorCodeIdempotencyKeyInUse}, wantKind: KindConflict, wantStatus: 409, wantTransient: true},
		"secret in a message is redacted": {err: &stripe.Error{HTTPStatusCode: 400, Msg: "bad secret whsec_" + whsecBody},
			wantKind: KindInvalidRequest, wantStatus: 400, wantContains: "whsec_…"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Classify(tc.err)
			if tc.wantNil {
				if got != nil {
					t.Fatalf("Classify(nil) = %v", got)
				}
				return
			}
			if got == nil || got.Kind != tc.wantKind || got.HTTPStatus != tc.wantStatus || got.Transient() != tc.wantTransient {
				t.Fatalf("Classify() = %+v", got)
			}
			if tc.wantSame != nil && got != tc.wantSame {
				t.Error("an *Error was not returned as is")
			}
			if !strings.Contains(got.Error(), tc.wantContains) {
				t.Errorf("Error() = %q, want it to contain %q", got.Error(), tc.wantContains)
			}
			if errors.Is(got, context.DeadlineExceeded) != errors.Is(tc.err, context.DeadlineExceeded) {
				t.Error("errors.Is(context.DeadlineExceeded) does not see through the redacted cause")
			}
			assertNoKeyMaterial(t, "Error()", got.Error())
			if got.Err != nil {
				assertNoKeyMaterial(t, "cause", got.Err.Error())
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := map[string]struct {
		err  *Error
		want string
	}{
		"all details": {
			err:  &Error{Kind: KindInvalidRequest, HTTPStatus: 400, Code: "url_invalid", Param: "url", Message: "Invalid URL"},
			want: "stripe InvalidRequest (HTTP 400, code url_invalid, param url): Invalid URL",
		},
		"no status": {
			err:  &Error{Kind: KindUnavailable, Message: "could not reach Stripe"},
			want: "stripe Unavailable: could not reach Stripe",
		},
		"unredacted message is redacted on output": {
			err:  &Error{Kind: KindOther, Message: "leaked " + skLive},
			want: "stripe Other: leaked sk_live_…",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
	var nilErr *Error
	if nilErr.Transient() {
		t.Error("nil *Error is transient")
	}
}

// TestClassifyAnswered: only an error body from Stripe itself counts as answered (Stripe saves it
// under the Idempotency-Key); a timeout, a dropped connection or a proxy's page does not.
func TestClassifyAnswered(t *testing.T) {
	cases := map[string]struct {
		err  error
		want bool
	}{
		"stripe 500":     {&stripe.Error{HTTPStatusCode: 500, Type: stripe.ErrorTypeAPI, Msg: "boom"}, true},
		"stripe 400":     {&stripe.Error{HTTPStatusCode: 400, Type: stripe.ErrorTypeInvalidRequest}, true},
		"timeout":        {context.DeadlineExceeded, false},
		"proxy 502 page": {errors.New("Couldn't deserialize JSON (response status: 502, body sample: '<html>'): invalid character"), false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := Classify(tc.err).Answered; got != tc.want {
				t.Errorf("Classify(%v).Answered = %t, want %t", tc.err, got, tc.want)
			}
		})
	}
}
