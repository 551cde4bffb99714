/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package stripefake

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors returned by the direct state-access helpers.
var (
	// ErrNotFound reports an unknown endpoint, event or account id.
	ErrNotFound = errors.New("stripefake: not found")
	// ErrClosed reports a call made after Close.
	ErrClosed = errors.New("stripefake: server closed")
)

// Stripe error types, as sent in the "type" field of the error envelope.
const (
	typeInvalidRequest = "invalid_request_error"
	typeAPI            = "api_error"
	typeIdempotency    = "idempotency_error"
)

// apiError is one Stripe error response: an HTTP status plus the body of the
// {"error": {...}} envelope.
type apiError struct {
	status  int
	typ     string
	code    string
	message string
	param   string
}

// errorEnvelope is the JSON shape stripe-go decodes into *stripe.Error.
type errorEnvelope struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code,omitempty"`
	DocURL  string `json:"doc_url,omitempty"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
	Type    string `json:"type"`
}

func (e *apiError) envelope() errorEnvelope {
	b := errorBody{Code: e.code, Message: e.message, Param: e.param, Type: e.typ}
	if e.code != "" {
		// Stripe links every coded error to its documentation page.
		b.DocURL = "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(e.code, "_", "-")
	}
	return errorEnvelope{Error: b}
}

func invalidRequest(status int, code, param, format string, args ...any) *apiError {
	return &apiError{status: status, typ: typeInvalidRequest, code: code, param: param, message: fmt.Sprintf(format, args...)}
}

func errNoKey() *apiError {
	return invalidRequest(http.StatusUnauthorized, "", "",
		"You did not provide an API key. You need to provide your API key in the Authorization header, "+
			"using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication "+
			"for details, or we can help at https://support.stripe.com/.")
}

func errInvalidKey(key string) *apiError {
	return invalidRequest(http.StatusUnauthorized, "", "", "Invalid API Key provided: %s", maskKey(key))
}

func errExpiredKey(key string) *apiError {
	return invalidRequest(http.StatusUnauthorized, "api_key_expired", "", "Expired API Key provided: %s", maskKey(key))
}

func errPublishableKey() *apiError {
	return invalidRequest(http.StatusForbidden, "secret_key_required", "",
		"This API call cannot be made with a publishable API key. Please use a secret API key. "+
			"You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys.")
}

func errPermission(key, account, perm string) *apiError {
	if perm == "" {
		return invalidRequest(http.StatusForbidden, "", "",
			"The provided key '%s' does not have the required permissions for this endpoint on account '%s'.",
			maskKey(key), account)
	}
	return invalidRequest(http.StatusForbidden, "", "",
		"The provided key '%s' does not have the required permissions for this endpoint on account '%s'. "+
			"Having the '%s' permission would allow this request to continue.", maskKey(key), account, perm)
}

func errAccountAccess(key, account string) *apiError {
	return invalidRequest(http.StatusForbidden, "", "",
		"The provided key '%s' does not have access to account '%s' (or that account does not exist). "+
			"Application access may have been revoked.", maskKey(key), account)
}

func errUnrecognizedURL(method, path string) *apiError {
	return invalidRequest(http.StatusNotFound, "", "",
		"Unrecognized request URL (%s: %s). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
		method, path)
}

func errNoSuch(status int, noun, id, param string) *apiError {
	return invalidRequest(status, "resource_missing", param, "No such %s: '%s'", noun, id)
}

func errMissingParam(param string) *apiError {
	return invalidRequest(http.StatusBadRequest, "parameter_missing", param, "Missing required param: %s.", param)
}

func errUnknownParam(param string) *apiError {
	return invalidRequest(http.StatusBadRequest, "parameter_unknown", param, "Received unknown parameter: %s", param)
}

func errInvalidParam(param, format string, args ...any) *apiError {
	return invalidRequest(http.StatusBadRequest, "", param, format, args...)
}

func errRateLimit() *apiError {
	return invalidRequest(http.StatusTooManyRequests, "rate_limit", "",
		"Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.")
}

func errLockTimeout() *apiError {
	return invalidRequest(http.StatusConflict, "lock_timeout", "",
		"This object cannot be accessed right now because another API request or Stripe process is currently accessing it. "+
			"If you see this error intermittently, retry the request. If you see this error frequently and are making "+
			"multiple concurrent requests to a single object, make your requests serially or at a lower rate.")
}

func errServer(status int) *apiError {
	return &apiError{status: status, typ: typeAPI, message: "Sorry, something went wrong. We've already been notified of the " +
		"problem, but if you need any help, you can reach us at support.stripe.com/contact."}
}

func errIdempotencyParams(key string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: typeIdempotency, message: fmt.Sprintf(
		"Keys for idempotent requests can only be used with the same parameters they were first used with. "+
			"Try using a key other than '%s' if you meant to execute a different request.", key)}
}

func errIdempotencyEndpoint(key, was, now string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: typeIdempotency, message: fmt.Sprintf(
		"Keys for idempotent requests can only be used for the same endpoint they were first used for ('%s' vs '%s'). "+
			"Try using a key other than '%s' if you meant to execute a different request.", was, now, key)}
}

// errForStatus builds the envelope an injected fault answers with, matching
// what Stripe sends for that status.
func errForStatus(status int, key, account string) *apiError {
	switch {
	case status == http.StatusUnauthorized:
		return errInvalidKey(key)
	case status == http.StatusForbidden:
		return errPermission(key, account, "")
	case status == http.StatusNotFound:
		return invalidRequest(status, "resource_missing", "", "No such object")
	case status == http.StatusConflict:
		return errLockTimeout()
	case status == http.StatusTooManyRequests:
		return errRateLimit()
	case status >= 500:
		return errServer(status)
	default:
		return invalidRequest(status, "", "", "Injected failure")
	}
}
