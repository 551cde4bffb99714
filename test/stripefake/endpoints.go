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
	"fmt"
	"net/http"
	"net/url"
	"slices"
)

// endpoint is a stored webhook endpoint.
type endpoint struct {
	seq         int64
	id          string
	sc          scope
	apiVersion  string
	created     int64
	description *string
	events      []string
	metadata    map[string]string
	secret      string
	status      string
	url         string
	connect     bool
}

// tombstone remembers a deleted endpoint so an iterator whose cursor was just
// deleted (list-then-delete loops) can still page on, as it can on Stripe.
type tombstone struct {
	sc  scope
	seq int64
}

// endpointJSON is the wire shape of a webhook endpoint.
type endpointJSON struct {
	ID            string            `json:"id"`
	Object        string            `json:"object"`
	APIVersion    *string           `json:"api_version"`
	Application   *string           `json:"application"`
	Created       int64             `json:"created"`
	Description   *string           `json:"description"`
	EnabledEvents []string          `json:"enabled_events"`
	Livemode      bool              `json:"livemode"`
	Metadata      map[string]string `json:"metadata"`
	Secret        string            `json:"secret,omitempty"`
	Status        string            `json:"status"`
	URL           string            `json:"url"`
}

type deletedJSON struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

// render copies e for the wire; the secret is only revealed on create.
func (e *endpoint) render(withSecret bool) endpointJSON {
	out := endpointJSON{
		ID:            e.id,
		Object:        "webhook_endpoint",
		Created:       e.created,
		Description:   e.description,
		EnabledEvents: slices.Clone(e.events),
		Livemode:      e.sc.live,
		Metadata:      e.metadata,
		Status:        e.status,
		URL:           e.url,
	}
	if e.apiVersion != "" {
		out.APIVersion = &e.apiVersion
	}
	if withSecret {
		out.Secret = e.secret
	}
	return out
}

func (e *endpoint) wants(eventType string) bool {
	return e.status == statusEnabled && !e.connect &&
		(slices.Contains(e.events, "*") || slices.Contains(e.events, eventType))
}

// lookupEndpoint finds id within the caller's scope only, so test keys never
// see live endpoints and vice versa.
func (s *Server) lookupEndpoint(sc scope, id string) (*endpoint, *apiError) {
	e := s.endpoints[id]
	if e == nil || e.sc != sc {
		return nil, errNoSuch(http.StatusNotFound, "webhook endpoint", id, "id")
	}
	return e, nil
}

func (s *Server) listEndpoints(rq *request) (any, *apiError) {
	if err := checkParams(rq.params, listBaseParams()...); err != nil {
		return nil, err
	}
	lr, aerr := parseListReq(rq.params)
	if aerr != nil {
		return nil, aerr
	}
	var cursorSeq int64
	if param, id := lr.cursorParam(); id != "" {
		if e := s.endpoints[id]; e != nil && e.sc == rq.scope {
			cursorSeq = e.seq
		} else if t, ok := s.tombstones[id]; ok && t.sc == rq.scope {
			cursorSeq = t.seq
		} else {
			return nil, errNoSuch(http.StatusBadRequest, "webhook endpoint", id, param)
		}
	}
	var all []*endpoint
	if ms := s.scopes[rq.scope]; ms != nil {
		all = slices.Clone(ms.endpoints)
		slices.Reverse(all) // newest first, like Stripe
	}
	page, more := paginate(all, func(e *endpoint) int64 { return e.seq }, lr, cursorSeq)
	data := make([]endpointJSON, 0, len(page))
	for _, e := range page {
		data = append(data, e.render(false))
	}
	return listJSON[endpointJSON]{Object: "list", URL: PathWebhookEndpoints, HasMore: more, Data: data}, nil
}

func (s *Server) getEndpoint(rq *request) (any, *apiError) {
	if err := checkParams(rq.params, "expand"); err != nil {
		return nil, err
	}
	e, aerr := s.lookupEndpoint(rq.scope, rq.id)
	if aerr != nil {
		return nil, aerr
	}
	return e.render(false), nil
}

func (s *Server) createEndpoint(rq *request) (any, *apiError) {
	p := rq.params
	if err := checkParams(p, "url", "enabled_events", "description", "metadata", "api_version", "connect", "expand"); err != nil {
		return nil, err
	}
	rawURL, _ := stringParam(p, "url")
	if rawURL == "" {
		return nil, errMissingParam("url")
	}
	events, _, aerr := listParam(p, "enabled_events")
	if aerr != nil {
		return nil, aerr
	}
	if len(events) == 0 {
		return nil, errMissingParam("enabled_events")
	}
	e := &endpoint{sc: rq.scope, url: rawURL, events: events, status: statusEnabled, apiVersion: s.cfg.apiVersion}
	if aerr := s.validateEndpoint(e); aerr != nil {
		return nil, aerr
	}
	if v, ok := stringParam(p, "api_version"); ok && v != "" {
		if !validVersion(v) {
			return nil, errInvalidParam("api_version", "Invalid api_version: %s", v)
		}
		e.apiVersion = v
	}
	if d, _ := stringParam(p, "description"); d != "" {
		e.description = &d
	}
	connect, _, aerr := boolParam(p, "connect")
	if aerr != nil {
		return nil, aerr
	}
	e.connect = connect
	md, aerr := metadataParam(p)
	if aerr != nil {
		return nil, aerr
	}
	if e.metadata, aerr = md.apply(nil); aerr != nil {
		return nil, aerr
	}
	ms := s.modeStateFor(rq.scope)
	if len(ms.endpoints) >= s.cfg.endpointLimit {
		mode := "test"
		if rq.scope.live {
			mode = "live"
		}
		return nil, errInvalidParam("", "You have reached the maximum of %d %s webhook endpoints.", s.cfg.endpointLimit, mode)
	}
	e.seq = s.nextSeq()
	e.id = "we_" + randomID(24)
	e.secret = "whsec_" + randomID(32)
	e.created = rq.now.Unix()
	ms.endpoints = append(ms.endpoints, e)
	s.endpoints[e.id] = e
	return e.render(true), nil
}

// validateEndpoint applies Stripe's url and enabled_events rules.
func (s *Server) validateEndpoint(e *endpoint) *apiError {
	u, err := url.Parse(e.url)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return invalidRequest(http.StatusBadRequest, "url_invalid", "url",
			"Invalid URL: %s. Webhook endpoint URLs must be absolute http or https URLs.", e.url)
	}
	if e.sc.live && u.Scheme != "https" {
		return invalidRequest(http.StatusBadRequest, "url_invalid", "url",
			"Invalid URL: %s. Live mode webhook endpoints must use HTTPS.", e.url)
	}
	for i, ev := range e.events {
		if ev != "*" && !s.eventTypes[ev] {
			return errInvalidParam(fmt.Sprintf("enabled_events[%d]", i),
				"Invalid enabled_events[%d]: must be one of %s", i, s.eventTypeMsg)
		}
	}
	return nil
}

func (s *Server) updateEndpoint(rq *request) (any, *apiError) {
	p := rq.params
	e, aerr := s.lookupEndpoint(rq.scope, rq.id)
	if aerr != nil {
		return nil, aerr
	}
	if err := checkParams(p, "url", "enabled_events", "description", "disabled", "metadata", "expand"); err != nil {
		return nil, err
	}
	// Validate everything on a copy first so a bad request changes nothing.
	next := *e
	if v, ok := stringParam(p, "url"); ok {
		next.url = v
	}
	events, present, aerr := listParam(p, "enabled_events")
	if aerr != nil {
		return nil, aerr
	}
	if present {
		if len(events) == 0 {
			return nil, errInvalidParam("enabled_events", "Invalid enabled_events: must contain at least one event type.")
		}
		next.events = events
	}
	if aerr := s.validateEndpoint(&next); aerr != nil {
		return nil, aerr
	}
	if d, ok := stringParam(p, "description"); ok {
		next.description = nil
		if d != "" {
			next.description = &d
		}
	}
	disabled, present, aerr := boolParam(p, "disabled")
	if aerr != nil {
		return nil, aerr
	}
	if present {
		next.status = statusFor(disabled)
	}
	md, aerr := metadataParam(p)
	if aerr != nil {
		return nil, aerr
	}
	if md.present {
		if next.metadata, aerr = md.apply(e.metadata); aerr != nil {
			return nil, aerr
		}
	}
	*e = next
	return e.render(false), nil
}

func (s *Server) deleteEndpoint(rq *request) (any, *apiError) {
	e, aerr := s.lookupEndpoint(rq.scope, rq.id)
	if aerr != nil {
		return nil, aerr
	}
	if err := checkParams(rq.params, "expand"); err != nil {
		return nil, err
	}
	s.removeEndpoint(e)
	return deletedJSON{ID: e.id, Object: "webhook_endpoint", Deleted: true}, nil
}

// removeEndpoint deletes e and leaves a tombstone. Callers hold s.mu.
func (s *Server) removeEndpoint(e *endpoint) {
	if ms := s.scopes[e.sc]; ms != nil {
		ms.endpoints = slices.DeleteFunc(ms.endpoints, func(x *endpoint) bool { return x == e })
	}
	delete(s.endpoints, e.id)
	s.tombstones[e.id] = tombstone{sc: e.sc, seq: e.seq}
}

// Stripe's webhook endpoint statuses.
const (
	statusEnabled  = "enabled"
	statusDisabled = "disabled"
)

func statusFor(disabled bool) string {
	if disabled {
		return statusDisabled
	}
	return statusEnabled
}
