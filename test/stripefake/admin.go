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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// AdminPrefix is the path prefix of the admin API that WithAdminAPI mounts
// next to the Stripe API. Stripe's own paths all start with /v1/, so the two
// never overlap.
const AdminPrefix = "/_fake/"

// maxAdminBody bounds admin request bodies.
const maxAdminBody = 1 << 20

// WithAdminAPI serves a small JSON admin API under AdminPrefix on the same
// listener, for people and scripts driving the demo with curl. It does what
// the Stripe dashboard and Stripe's own systems do and the Stripe API cannot:
//
//	POST   /_fake/events          {"key": "sk_test_…", "type": "payment_intent.succeeded", "object": {…}}
//	                              or {"account": "acct_…", "livemode": false, …}; "object" is optional
//	                              for payment_intent.* and charge.* (a sample is used). Answers
//	                              {"id": "evt_…", "account": …, "deliveries": [{endpoint, url, status, error}]}.
//	GET    /_fake/deliveries      ?event=evt_… (optional): the delivery attempts, oldest first.
//	POST   /_fake/keys/revoke     {"key": "sk_test_…"}: later calls with it get 401 Invalid API Key.
//	POST   /_fake/keys/expire     {"key": "sk_test_…"}: later calls get 401 Expired API Key.
//	POST   /_fake/faults          {"key"|"account"|"method"|"pathPrefix", "status": 503, "times": 3,
//	                              "latency": "2s", "code", "message", "probability": 0.2,
//	                              "retryAfter": "1s", "afterExecute": true}: see Fault.
//	DELETE /_fake/faults          removes every fault.
//	POST   /_fake/idempotency-keys/expire {"idempotencyKey": "…"} or {"all": true}: forgets saved
//	                              answers as if their 24 h had passed. Answers {"expired": n}.
//	GET    /_fake/calls           {"total": n}, or {"key": n} for ?key=sk_…: Stripe API calls counted.
//	POST   /_fake/payouts         {"key"|"account", "livemode", "transactions": [{"type": "charge",
//	                              "amount": 12500, "currency": "usd", "fees": [{"amount": 393,
//	                              "type": "stripe_fee"}], "source": "ch_…"}, …], "pay": true}: records
//	                              the transactions, settles them in an automatic payout and, with
//	                              "pay", pays it (payout.paid, payout.reconciliation_completed).
//	                              Answers {"id": "po_…", "transactions": ["txn_…", …]}.
//
// Listing, disabling and deleting endpoints need no admin API: use the real
// Stripe paths with the clinic's key, as the dashboard would. The admin API
// never echoes a key. It has no authentication: use it on loopback only.
func WithAdminAPI() Option {
	return func(c *config) { c.adminAPI = true }
}

// adminError is the admin API's error body.
type adminError struct {
	Error string `json:"error"`
}

// adminDelivery is one delivery attempt as the admin API shows it.
type adminDelivery struct {
	EventID    string `json:"event"`
	EventType  string `json:"type"`
	EndpointID string `json:"endpoint"`
	URL        string `json:"url"`
	StatusCode int    `json:"status"`
	Error      string `json:"error,omitempty"`
	At         int64  `json:"at"`
}

func toAdminDelivery(d Delivery) adminDelivery {
	out := adminDelivery{EventID: d.EventID, EventType: d.EventType, EndpointID: d.EndpointID, URL: d.URL, StatusCode: d.StatusCode, At: d.At.Unix()}
	if d.Err != nil {
		out.Error = d.Err.Error()
	}
	return out
}

// serveAdmin answers one admin API request.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, AdminPrefix), "/")
	var (
		status = http.StatusOK
		out    any
		err    error
	)
	switch {
	case path == "events" && r.Method == http.MethodPost:
		out, err = s.adminTrigger(r)
	case path == "deliveries" && r.Method == http.MethodGet:
		out = s.adminDeliveries(r.URL.Query().Get("event"))
	case (path == "keys/revoke" || path == "keys/expire") && r.Method == http.MethodPost:
		out, err = s.adminKey(r, path == "keys/revoke")
	case path == "faults" && r.Method == http.MethodPost:
		out, err = s.adminFault(r)
	case path == "faults" && r.Method == http.MethodDelete:
		s.ClearFaults()
		out = map[string]string{"result": "all faults removed"}
	case path == "idempotency-keys/expire" && r.Method == http.MethodPost:
		out, err = s.adminExpireIdempotency(r)
	case path == "payouts" && r.Method == http.MethodPost:
		out, err = s.adminPayout(r)
	case path == "calls" && r.Method == http.MethodGet:
		if key := r.URL.Query().Get("key"); key != "" {
			out = map[string]int{"key": s.Calls(key)}
		} else {
			out = map[string]int{"total": s.TotalCalls()}
		}
	default:
		err = badf(http.StatusNotFound, "no admin route %s %s%s (see docs/demo.md)", r.Method, AdminPrefix, path)
	}
	var bad *badRequest
	switch {
	case errors.As(err, &bad):
		status, out = bad.status, adminError{Error: bad.msg}
	case err != nil:
		status, out = http.StatusInternalServerError, adminError{Error: err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out) // the client went away; nothing to do
}

// badRequest is an admin error caused by the caller.
type badRequest struct {
	status int
	msg    string
}

func (b *badRequest) Error() string { return b.msg }

func badf(status int, format string, args ...any) error {
	return &badRequest{status: status, msg: fmt.Sprintf(format, args...)}
}

func decodeAdmin(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	return nil
}

type triggerRequest struct {
	Key      string         `json:"key"`
	Account  string         `json:"account"`
	Livemode bool           `json:"livemode"`
	Type     string         `json:"type"`
	Object   map[string]any `json:"object"`
}

type triggerResponse struct {
	ID         string          `json:"id"`
	Account    string          `json:"account"`
	Livemode   bool            `json:"livemode"`
	Deliveries []adminDelivery `json:"deliveries"`
}

func (s *Server) adminTrigger(r *http.Request) (any, error) {
	var req triggerRequest
	if err := decodeAdmin(r, &req); err != nil {
		return nil, err
	}
	if req.Type == "" {
		return nil, badf(http.StatusBadRequest, `"type" is required, e.g. "payment_intent.succeeded"`)
	}
	account, live, err := s.adminScope(req.Key, req.Account, req.Livemode)
	if err != nil {
		return nil, err
	}
	obj := req.Object
	if obj == nil {
		obj = sampleObject(req.Type, s.cfg.now())
		if obj == nil {
			return nil, badf(http.StatusBadRequest, `"object" is required for %s (samples exist for payment_intent.* and charge.*)`, req.Type)
		}
	}
	id, err := s.TriggerEvent(account, live, req.Type, obj)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, badf(http.StatusNotFound, "%v", err)
	case err != nil && id == "":
		return nil, badf(http.StatusBadRequest, "%v", err)
	case err != nil:
		return nil, err
	}
	return triggerResponse{ID: id, Account: account, Livemode: live, Deliveries: s.adminDeliveries(id)}, nil
}

// adminScope resolves the account and mode an admin request names, by key
// (whose prefix gives the mode) or by account and livemode.
func (s *Server) adminScope(key, account string, live bool) (string, bool, error) {
	if key != "" {
		_, keyLive, ok := parseKey(key)
		if !ok {
			return "", false, badf(http.StatusBadRequest, `"key" must be a Stripe API key (sk_ or rk_, test or live)`)
		}
		account = s.AccountForKey(key)
		if account == "" {
			return "", false, badf(http.StatusNotFound, "no account for that key yet: the fake learns a key when it is first used against the API")
		}
		live = keyLive
	}
	if account == "" {
		return "", false, badf(http.StatusBadRequest, `"key" or "account" is required`)
	}
	return account, live, nil
}

func (s *Server) adminDeliveries(eventID string) []adminDelivery {
	out := []adminDelivery{}
	for _, d := range s.Deliveries() {
		if eventID == "" || d.EventID == eventID {
			out = append(out, toAdminDelivery(d))
		}
	}
	return out
}

func (s *Server) adminKey(r *http.Request, revoke bool) (any, error) {
	var req struct {
		Key string `json:"key"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		return nil, err
	}
	if _, _, ok := parseKey(req.Key); !ok {
		return nil, badf(http.StatusBadRequest, `"key" must be a Stripe API key (sk_, rk_ or pk_, test or live)`)
	}
	if revoke {
		s.RevokeKey(req.Key)
		return map[string]string{"result": "key revoked"}, nil
	}
	s.ExpireKey(req.Key)
	return map[string]string{"result": "key expired"}, nil
}

func (s *Server) adminExpireIdempotency(r *http.Request) (any, error) {
	var req struct {
		IdempotencyKey string `json:"idempotencyKey"`
		All            bool   `json:"all"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		return nil, err
	}
	switch {
	case req.All && req.IdempotencyKey == "":
		return map[string]int{"expired": s.ExpireAllIdempotencyKeys()}, nil
	case !req.All && req.IdempotencyKey != "":
		return map[string]int{"expired": s.ExpireIdempotencyKey(req.IdempotencyKey)}, nil
	}
	return nil, badf(http.StatusBadRequest, `give either "idempotencyKey" (one key) or "all": true (every key)`)
}

type faultRequest struct {
	Key          string  `json:"key"`
	Account      string  `json:"account"`
	Method       string  `json:"method"`
	PathPrefix   string  `json:"pathPrefix"`
	Status       int     `json:"status"`
	Code         string  `json:"code"`
	Message      string  `json:"message"`
	Times        int     `json:"times"`
	Latency      string  `json:"latency"`
	AfterExecute bool    `json:"afterExecute"`
	Probability  float64 `json:"probability"`
	RetryAfter   string  `json:"retryAfter"`
}

func (s *Server) adminFault(r *http.Request) (any, error) {
	var req faultRequest
	if err := decodeAdmin(r, &req); err != nil {
		return nil, err
	}
	f := Fault{Key: req.Key, Account: req.Account, Method: req.Method, PathPrefix: req.PathPrefix,
		Status: req.Status, Code: req.Code, Message: req.Message, Times: req.Times,
		AfterExecute: req.AfterExecute, Probability: req.Probability}
	if req.RetryAfter != "" {
		d, err := time.ParseDuration(req.RetryAfter)
		if err != nil || d < 0 {
			return nil, badf(http.StatusBadRequest, `"retryAfter" must be a duration such as "2s"`)
		}
		f.RetryAfter = d
	}
	if req.Latency != "" {
		d, err := time.ParseDuration(req.Latency)
		if err != nil || d < 0 {
			return nil, badf(http.StatusBadRequest, `"latency" must be a duration such as "1500ms"`)
		}
		f.Latency = d
	}
	switch {
	case f.Status != 0 && (f.Status < 400 || f.Status > 599):
		return nil, badf(http.StatusBadRequest, `"status" must be a 4xx or 5xx code (or 0 for latency only)`)
	case f.Status == 0 && f.Latency == 0:
		return nil, badf(http.StatusBadRequest, `a fault needs "status", "latency" or both`)
	case f.Probability < 0 || f.Probability > 1:
		return nil, badf(http.StatusBadRequest, `"probability" must be between 0 and 1`)
	case f.Times < 0:
		return nil, badf(http.StatusBadRequest, `"times" must be ≥ 0 (0: until DELETE /_fake/faults)`)
	}
	s.InjectFault(f)
	return map[string]string{"result": "fault added"}, nil
}

// sampleObject is a plausible object for the demo's payment events, with the
// metadata keys the FHIR relay reads by default; nil for other types.
func sampleObject(eventType string, now time.Time) map[string]any {
	id := randomID(14)
	meta := map[string]any{"patient_id": "pat-1001", "claim_id": "claim-" + id[:6], "invoice_id": "inv-" + id[:6]}
	switch {
	case strings.HasPrefix(eventType, "payment_intent."):
		status := strings.TrimPrefix(eventType, "payment_intent.")
		if status == "payment_failed" {
			status = "requires_payment_method"
		}
		received := 0
		if status == "succeeded" {
			received = 12500
		}
		return map[string]any{
			"id": "pi_" + id, "object": "payment_intent", "amount": 12500, "amount_received": received,
			"currency": "usd", "status": status, "customer": "cus_demo1001", "created": now.Unix(), "metadata": meta,
		}
	case strings.HasPrefix(eventType, "charge."):
		refunded := 0
		if eventType == "charge.refunded" {
			refunded = 5000
		}
		return map[string]any{
			"id": "ch_" + id, "object": "charge", "amount": 12500, "amount_captured": 12500, "amount_refunded": refunded,
			"currency": "usd", "status": "succeeded", "paid": true, "refunded": false, "payment_intent": "pi_" + id,
			"customer": "cus_demo1001", "created": now.Unix(), "metadata": meta,
		}
	}
	return nil
}
