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
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// eventRetention is how far back Stripe lets you list and fetch events.
const eventRetention = 30 * 24 * time.Hour

// maxTypesFilter is Stripe's limit on the types[] list filter.
const maxTypesFilter = 20

// event is a stored event and its delivery state per target endpoint.
type eventRec struct {
	seq        int64
	id         string
	sc         scope
	apiVersion string
	created    int64
	typ        string
	object     json.RawMessage
	targets    []string
	delivered  map[string]bool
}

func (ev *eventRec) pending() int {
	n := 0
	for _, id := range ev.targets {
		if !ev.delivered[id] {
			n++
		}
	}
	return n
}

// eventJSON is the wire shape of an event.
type eventJSON struct {
	ID              string           `json:"id"`
	Object          string           `json:"object"`
	APIVersion      string           `json:"api_version"`
	Created         int64            `json:"created"`
	Data            eventDataJSON    `json:"data"`
	Livemode        bool             `json:"livemode"`
	PendingWebhooks int              `json:"pending_webhooks"`
	Request         eventRequestJSON `json:"request"`
	Type            string           `json:"type"`
}

type eventDataJSON struct {
	Object json.RawMessage `json:"object"`
}

// eventRequestJSON is null-valued: fake events are not caused by API calls.
type eventRequestJSON struct {
	ID             *string `json:"id"`
	IdempotencyKey *string `json:"idempotency_key"`
}

// render shapes ev for the wire with the given api_version; webhooks use the
// endpoint's version, API reads (GET /v1/events, /v1/events/{id}) the version the
// event was created with, whatever the request's Stripe-Version header says, like Stripe.
func (ev *eventRec) render(apiVersion string) eventJSON {
	return eventJSON{
		ID:              ev.id,
		Object:          "event",
		APIVersion:      apiVersion,
		Created:         ev.created,
		Data:            eventDataJSON{Object: ev.object},
		Livemode:        ev.sc.live,
		PendingWebhooks: ev.pending(),
		Type:            ev.typ,
	}
}

// TriggerEvent records an event in the account's log for one mode and
// delivers it to every enabled endpoint of that account and mode that
// subscribes to eventType or "*". It returns after delivery unless the server
// was built WithAsyncDelivery.
func (s *Server) TriggerEvent(account string, livemode bool, eventType string, object map[string]any) (string, error) {
	return s.TriggerEventVersion(account, livemode, eventType, "", object)
}

// TriggerEventVersion is TriggerEvent for an event created while the account's API version
// was apiVersion ("" means the server's default): the event log renders it in that version
// forever, as Stripe does, while webhooks use each endpoint's version. The object is stored
// as given, so a test passes the shape of that version.
func (s *Server) TriggerEventVersion(account string, livemode bool, eventType, apiVersion string, object map[string]any) (string, error) {
	apiVersion, raw, err := s.eventInput(apiVersion, object)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return "", ErrClosed
	case !s.eventTypes[eventType]:
		s.mu.Unlock()
		return "", fmt.Errorf("stripefake: unknown event type %q", eventType)
	case s.accounts[account] == nil:
		s.mu.Unlock()
		return "", fmt.Errorf("account %q: %w", account, ErrNotFound)
	}
	now := s.cfg.now()
	sc := scope{account: account, live: livemode}
	ms := s.modeStateFor(sc)
	s.pruneEvents(ms, now)
	ev := &eventRec{
		seq: s.nextSeq(), id: "evt_" + randomID(24), sc: sc, apiVersion: apiVersion,
		created: now.Unix(), typ: eventType, object: raw, delivered: map[string]bool{},
	}
	for _, e := range ms.endpoints {
		if e.wants(eventType) {
			ev.targets = append(ev.targets, e.id)
		}
	}
	insertEvent(ms, ev)
	s.events[ev.id] = ev
	jobs, err := s.jobsFor(ev, ev.targets, now)
	s.mu.Unlock()
	if err != nil {
		return ev.id, err
	}
	for i := range jobs {
		jobs[i].autoRetry = true
	}
	s.dispatch(jobs)
	return ev.id, nil
}

// eventInput checks an event's API version ("" means the server's default) and encodes its object.
func (s *Server) eventInput(apiVersion string, object map[string]any) (string, []byte, error) {
	if apiVersion == "" {
		apiVersion = s.cfg.apiVersion
	}
	if !validVersion(apiVersion) {
		return "", nil, fmt.Errorf("stripefake: invalid API version %q", apiVersion)
	}
	if object == nil {
		object = map[string]any{}
	}
	raw, err := json.Marshal(object)
	if err != nil {
		return "", nil, fmt.Errorf("stripefake: encode event object: %w", err)
	}
	return apiVersion, raw, nil
}

// RecordPastEvent puts in the account's log an event created at the given (past) time, for
// tests of outages and replays: it is not delivered, and counts as delivered to every endpoint
// that subscribes to its type (Stripe delivered it then; the clinic lost it downstream). Lists
// order it by created time among the other events, as Stripe does. apiVersion "" means the
// server's default; an event older than the 30-day log is refused.
func (s *Server) RecordPastEvent(account string, livemode bool, eventType, apiVersion string, created time.Time,
	object map[string]any) (string, error) {
	apiVersion, raw, err := s.eventInput(apiVersion, object)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.now()
	switch {
	case s.closed:
		return "", ErrClosed
	case !s.eventTypes[eventType]:
		return "", fmt.Errorf("stripefake: unknown event type %q", eventType)
	case s.accounts[account] == nil:
		return "", fmt.Errorf("account %q: %w", account, ErrNotFound)
	case created.After(now) || created.Before(now.Add(-eventRetention)):
		return "", fmt.Errorf("stripefake: created %s is not within the 30-day event log", created.UTC().Format(time.RFC3339))
	}
	sc := scope{account: account, live: livemode}
	ms := s.modeStateFor(sc)
	s.pruneEvents(ms, now)
	ev := &eventRec{
		seq: s.nextSeq(), id: "evt_" + randomID(24), sc: sc, apiVersion: apiVersion,
		created: created.Unix(), typ: eventType, object: raw, delivered: map[string]bool{},
	}
	for _, e := range ms.endpoints {
		if e.wants(eventType) {
			ev.targets = append(ev.targets, e.id)
			ev.delivered[e.id] = true
		}
	}
	insertEvent(ms, ev)
	s.events[ev.id] = ev
	return ev.id, nil
}

// insertEvent keeps the log ordered by (created, seq), oldest first, whatever order events
// were recorded in (a past event, or a clock moved back). Callers hold s.mu.
func insertEvent(ms *modeState, ev *eventRec) {
	i := len(ms.events)
	for i > 0 && ms.events[i-1].created > ev.created {
		i--
	}
	ms.events = slices.Insert(ms.events, i, ev)
}

// pruneEvents drops events older than the retention window from the front of
// the log. Callers hold s.mu.
func (s *Server) pruneEvents(ms *modeState, now time.Time) {
	cutoff := now.Add(-eventRetention).Unix()
	n := 0
	for n < len(ms.events) && ms.events[n].created < cutoff {
		delete(s.events, ms.events[n].id)
		n++
	}
	ms.events = ms.events[n:]
}

func (s *Server) getEvent(rq *request) (any, *apiError) {
	if err := checkParams(rq.params, "expand"); err != nil {
		return nil, err
	}
	ev := s.events[rq.id]
	if ev == nil || ev.sc != rq.scope || ev.created < rq.now.Add(-eventRetention).Unix() {
		return nil, errNoSuch(http.StatusNotFound, "event", rq.id, "id")
	}
	return ev.render(ev.apiVersion), nil
}

func (s *Server) listEvents(rq *request) (any, *apiError) {
	p := rq.params
	if err := checkParams(p, append(listBaseParams(), "type", "types", "delivery_success", "created")...); err != nil {
		return nil, err
	}
	lr, aerr := parseListReq(p)
	if aerr != nil {
		return nil, aerr
	}
	f, aerr := parseEventFilter(p)
	if aerr != nil {
		return nil, aerr
	}
	// Stripe lists events newest first by created time. The log is ordered by (created, seq),
	// so an event's position in it is the list order, and the cursor is the position of the
	// starting_after/ending_before event.
	ms := s.scopes[rq.scope]
	var cursorPos int64
	if param, id := lr.cursorParam(); id != "" {
		ev := s.events[id]
		if ev == nil || ev.sc != rq.scope || ms == nil {
			return nil, errNoSuch(http.StatusBadRequest, "event", id, param)
		}
		cursorPos = int64(slices.Index(ms.events, ev))
	}
	var matched []rankedEvent
	if ms != nil {
		cutoff := rq.now.Add(-eventRetention).Unix()
		for i := len(ms.events) - 1; i >= 0; i-- {
			if ev := ms.events[i]; ev.created >= cutoff && f.match(ev) {
				matched = append(matched, rankedEvent{ev: ev, pos: int64(i)})
			}
		}
	}
	page, more := paginate(matched, func(r rankedEvent) int64 { return r.pos }, lr, cursorPos)
	data := make([]eventJSON, 0, len(page))
	for _, r := range page {
		data = append(data, r.ev.render(r.ev.apiVersion))
	}
	return listJSON[eventJSON]{Object: "list", URL: PathEvents, HasMore: more, Data: data}, nil
}

// rankedEvent is a listed event with its position in the log (the list order).
type rankedEvent struct {
	ev  *eventRec
	pos int64
}

// eventFilter holds the list filters of GET /v1/events.
type eventFilter struct {
	typ     string
	types   []string
	success *bool
	created map[string]int64
}

func parseEventFilter(p url.Values) (eventFilter, *apiError) {
	var f eventFilter
	f.typ, _ = stringParam(p, "type")
	types, _, aerr := listParam(p, "types")
	if aerr != nil {
		return f, aerr
	}
	switch {
	case len(types) > maxTypesFilter:
		return f, errInvalidParam("types", "You can specify at most %d event types.", maxTypesFilter)
	case len(types) > 0 && f.typ != "":
		return f, invalidRequest(http.StatusBadRequest, "parameters_exclusive", "types",
			"You may only specify one of these parameters: type, types.")
	}
	f.types = types
	success, present, aerr := boolParam(p, "delivery_success")
	if aerr != nil {
		return f, aerr
	}
	if present {
		f.success = &success
	}
	f.created, aerr = parseCreated(p)
	return f, aerr
}

// parseCreated decodes the created filter of GET /v1/events; see parseRange.
func parseCreated(p url.Values) (map[string]int64, *apiError) {
	return parseRange(p, "created")
}

// parseRange decodes name=N and name[gt|gte|lt|lte]=N into operator -> bound,
// with "eq" for the exact form. As on Stripe, the bounds combine (a window is
// created[gte]=from&created[lt]=to) and are Unix seconds; see
// https://docs.stripe.com/api/events/list (created) and
// https://docs.stripe.com/api/payouts/list (arrival_date, created).
func parseRange(p url.Values, name string) (map[string]int64, *apiError) {
	out := map[string]int64{}
	for k, vs := range p {
		if paramBase(k) != name {
			continue
		}
		op := "eq"
		if k != name {
			inner, ok := strings.CutSuffix(strings.TrimPrefix(k, name+"["), "]")
			if !ok || (inner != "gt" && inner != "gte" && inner != "lt" && inner != "lte") {
				return nil, errUnknownParam(k) // also a malformed key such as "created[", which must not panic
			}
			op = inner
		}
		n, err := strconv.ParseInt(vs[0], 10, 64)
		if err != nil {
			return nil, invalidRequest(http.StatusBadRequest, "parameter_invalid_integer", k, "Invalid integer: %s", vs[0])
		}
		out[op] = n
	}
	return out, nil
}

func (f eventFilter) match(ev *eventRec) bool {
	if f.typ != "" && !typeMatches(f.typ, ev.typ) {
		return false
	}
	if len(f.types) > 0 && !slices.Contains(f.types, ev.typ) {
		return false
	}
	// An event with nothing left to deliver counts as delivered, so events
	// that had no subscribed endpoint never show up as failures.
	if f.success != nil && *f.success != (ev.pending() == 0) {
		return false
	}
	return createdMatches(f.created, ev.created)
}

func createdMatches(bounds map[string]int64, created int64) bool {
	for op, n := range bounds {
		ok := true
		switch op {
		case "eq":
			ok = created == n
		case "gt":
			ok = created > n
		case "gte":
			ok = created >= n
		case "lt":
			ok = created < n
		case "lte":
			ok = created <= n
		}
		if !ok {
			return false
		}
	}
	return true
}
