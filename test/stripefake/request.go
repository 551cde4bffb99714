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
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Path templates of the routes the fake serves, as accepted by CallsTo.
const (
	PathAccount          = "/v1/account"
	PathWebhookEndpoints = "/v1/webhook_endpoints"
	PathWebhookEndpoint  = "/v1/webhook_endpoints/{id}"
	PathEvents           = "/v1/events"
	PathEvent            = "/v1/events/{id}"
	PathPayouts          = "/v1/payouts"
	PathPayout           = "/v1/payouts/{id}"
	PathBalanceTxns      = "/v1/balance_transactions"
	PathBalanceTxn       = "/v1/balance_transactions/{id}"
)

// maxBodyBytes bounds request bodies; Stripe's own requests are tiny.
const maxBodyBytes = 1 << 20

// route is one method and path template of the API.
type route struct {
	method string
	tmpl   string
	perm   string
	handle func(*request) (any, *apiError)
}

// request is everything a handler needs, parsed before the state lock.
type request struct {
	method        string
	path          string
	route         *route
	id            string
	rawKey        string
	params        url.Values
	idemKey       string
	stripeAccount string
	version       string
	reqID         string

	// Filled in under the lock.
	now   time.Time
	key   *apiKey
	scope scope
}

// idempotent reports whether Stripe's idempotency layer handles the request:
// a POST carrying an Idempotency-Key.
func (rq *request) idempotent() bool {
	return rq.method == http.MethodPost && rq.idemKey != ""
}

// template is the path template the call is counted under.
func (rq *request) template() string {
	if rq.route != nil {
		return rq.route.tmpl
	}
	return rq.path
}

func (s *Server) routeTable() []route {
	return []route{
		{http.MethodGet, PathAccount, PermAccountRead, s.getAccount},
		{http.MethodGet, PathWebhookEndpoints, PermWebhookRead, s.listEndpoints},
		{http.MethodPost, PathWebhookEndpoints, PermWebhookWrite, s.createEndpoint},
		{http.MethodGet, PathWebhookEndpoint, PermWebhookRead, s.getEndpoint},
		{http.MethodPost, PathWebhookEndpoint, PermWebhookWrite, s.updateEndpoint},
		{http.MethodDelete, PathWebhookEndpoint, PermWebhookWrite, s.deleteEndpoint},
		{http.MethodGet, PathEvents, PermEventRead, s.listEvents},
		{http.MethodGet, PathEvent, PermEventRead, s.getEvent},
		{http.MethodGet, PathPayouts, PermPayoutRead, s.listPayouts},
		{http.MethodGet, PathPayout, PermPayoutRead, s.getPayout},
		{http.MethodGet, PathBalanceTxns, PermBalanceRead, s.listBalanceTxns},
		{http.MethodGet, PathBalanceTxn, PermBalanceRead, s.getBalanceTxn},
	}
}

func (s *Server) match(method, path string) (*route, string) {
	for i := range s.routes {
		r := &s.routes[i]
		if r.method != method {
			continue
		}
		if id, ok := matchTemplate(r.tmpl, path); ok {
			return r, id
		}
	}
	return nil, ""
}

func matchTemplate(tmpl, path string) (string, bool) {
	prefix, ok := strings.CutSuffix(tmpl, "{id}")
	if !ok {
		return "", tmpl == path
	}
	id, ok := strings.CutPrefix(path, prefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// parseRequest extracts the request; a returned error is answered only after
// the call has been counted and faults applied, as Stripe would see it.
func (s *Server) parseRequest(r *http.Request) (*request, *apiError) {
	rq := &request{
		method:        r.Method,
		path:          r.URL.Path,
		rawKey:        bearerKey(r.Header.Get("Authorization")),
		idemKey:       strings.TrimSpace(r.Header.Get("Idempotency-Key")),
		stripeAccount: strings.TrimSpace(r.Header.Get("Stripe-Account")),
		version:       strings.TrimSpace(r.Header.Get("Stripe-Version")),
		reqID:         "req_" + randomID(14),
	}
	rq.route, rq.id = s.match(rq.method, rq.path)

	raw := r.URL.RawQuery
	if r.Method != http.MethodGet && r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
		if err != nil {
			return rq, errInvalidParam("", "Invalid request: unable to read the request body.")
		}
		raw = string(b)
	}
	params, err := url.ParseQuery(raw)
	if err != nil {
		rq.params = url.Values{}
		return rq, errInvalidParam("", "Invalid request: the request body is not valid application/x-www-form-urlencoded data.")
	}
	rq.params = params
	if len(rq.idemKey) > 255 {
		return rq, errInvalidParam("", "Idempotency-Key must be at most 255 characters long.")
	}
	if rq.version != "" && !validVersion(rq.version) {
		return rq, errInvalidParam("", "Invalid Stripe API version: %s", rq.version)
	}
	return rq, nil
}

// bearerKey returns the API key from Bearer auth, or from Basic auth where
// Stripe takes the key as the user name (curl -u sk_test_...:).
func bearerKey(h string) string {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return ""
	}
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "bearer":
		return cred
	case "basic":
		dec, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return ""
		}
		user, _, _ := strings.Cut(string(dec), ":")
		return user
	default:
		return ""
	}
}

// validVersion reports whether v has the shape of a Stripe API version, e.g.
// 2023-10-16 or 2024-09-30.acacia.
func validVersion(v string) bool {
	date, name, dotted := strings.Cut(v, ".")
	if len(date) != len("2006-01-02") {
		return false
	}
	if _, err := time.Parse("2006-01-02", date); err != nil {
		return false
	}
	if !dotted {
		return true
	}
	return name != "" && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz_") == ""
}
