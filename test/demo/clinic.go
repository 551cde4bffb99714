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

package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The clinic's two systems of record, by the host name the receivers forward to.
const (
	systemBilling = "billing"
	systemFHIR    = "fhir"
)

// Received is one request the demo clinic system accepted.
type Received struct {
	// System is "billing" (the plain HTTP envelope) or "fhir" (an R4 resource).
	System string
	Method string
	Path   string
	// Key is the Idempotency-Key (billing) or the If-None-Exist condition (FHIR).
	Key string
	// ResourceType is the FHIR resource type, "" for billing; ID the server's id of the
	// resource created or found.
	ResourceType string
	ID           string
	// Created is false when a FHIR conditional create found the resource already there.
	Created bool
	Body    json.RawMessage
}

// clinicSystem is the clinic's system of record: a billing endpoint that takes the HTTP envelope
// and a FHIR R4 server that honours conditional create. It prints what it receives.
type clinicSystem struct {
	out *printer

	mu       sync.Mutex
	received []Received
	fhir     fhirStore

	billingSrv, fhirSrv *http.Server
	billingAddr         string
	fhirAddr            string
}

const maxClinicBody = 1 << 20

func startClinicSystem(out *printer) (*clinicSystem, error) {
	c := &clinicSystem{out: out}
	var err error
	if c.billingSrv, c.billingAddr, err = serve(http.HandlerFunc(c.serveBilling)); err != nil {
		return nil, err
	}
	if c.fhirSrv, c.fhirAddr, err = serve(http.HandlerFunc(c.serveFHIR)); err != nil {
		_ = c.billingSrv.Close()
		return nil, err
	}
	return c, nil
}

// serve runs h on a new loopback port.
func serve(h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends with ErrServerClosed on shutdown
	return srv, ln.Addr().String(), nil
}

func (c *clinicSystem) close(ctx context.Context) error {
	return errors.Join(c.billingSrv.Shutdown(ctx), c.fhirSrv.Shutdown(ctx))
}

func (c *clinicSystem) serveBilling(w http.ResponseWriter, r *http.Request) {
	body, ok := readJSON(w, r)
	if !ok {
		return
	}
	rec := Received{System: systemBilling, Method: r.Method, Path: r.URL.Path, Key: r.Header.Get("Idempotency-Key"), Created: true, Body: body}
	c.record(rec)
	w.WriteHeader(http.StatusAccepted)
}

// serveFHIR is a small FHIR R4 server (https://hl7.org/fhir/R4/http.html) under any base path:
//   - POST [base]/[type] creates; with If-None-Exist it is a conditional create: the condition
//     is a search on identifier (a token: system|value, or a value in any system, matching a
//     resource when any one of its identifiers does), and one match is answered 200 with the
//     stored resource instead of creating a second, several 412;
//   - GET [base]/[type]/[id] reads, GET [base]/[type]?identifier=… searches (a searchset Bundle),
//     for exploring with curl.
func (c *clinicSystem) serveFHIR(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		c.fhirCreate(w, r)
	case http.MethodGet:
		c.fhirRead(w, r)
	default:
		fhirError(w, http.StatusMethodNotAllowed, "not-supported", "this server creates, reads and searches")
	}
}

func (c *clinicSystem) fhirCreate(w http.ResponseWriter, r *http.Request) {
	body, ok := readJSON(w, r)
	if !ok {
		return
	}
	var res struct {
		ResourceType string `json:"resourceType"`
	}
	base, typ := path.Split(strings.TrimSuffix(r.URL.Path, "/"))
	if err := json.Unmarshal(body, &res); err != nil || res.ResourceType == "" || res.ResourceType != typ {
		fhirError(w, http.StatusBadRequest, "invalid", "expected a POST of a FHIR resource to [base]/[its resourceType]")
		return
	}
	cond := r.Header.Get("If-None-Exist")
	var match tokenMatch
	if cond != "" {
		var err error
		if match, err = parseIdentifierSearch(cond); err != nil {
			fhirError(w, http.StatusBadRequest, "invalid", "If-None-Exist: "+err.Error())
			return
		}
	}
	c.mu.Lock()
	var found []*fhirResource
	if cond != "" {
		found = c.fhir.search(typ, match)
	}
	var stored *fhirResource
	var err error
	if len(found) == 0 {
		stored, err = c.fhir.create(typ, body)
	}
	c.mu.Unlock()
	switch {
	case err != nil:
		fhirError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	case len(found) > 1:
		// https://hl7.org/fhir/R4/http.html#ccreate: several matches fail the create.
		fhirError(w, http.StatusPreconditionFailed, "duplicate", fmt.Sprintf("%d %s resources match %s", len(found), typ, cond))
		return
	}
	created := stored != nil
	if !created {
		stored = found[0]
	}
	c.record(Received{System: systemFHIR, Method: r.Method, Path: r.URL.Path, Key: cond, ResourceType: typ, ID: stored.id,
		Created: created, Body: body})
	w.Header().Set("Content-Type", "application/fhir+json")
	w.Header().Set("Location", base+typ+"/"+stored.id+"/_history/1")
	if created {
		w.WriteHeader(http.StatusCreated)
	}
	_, _ = w.Write(stored.body)
}

func (c *clinicSystem) fhirRead(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	c.mu.Lock()
	defer c.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+json")
	if n := len(parts); n >= 2 && c.fhir.known(parts[n-2]) {
		if res := c.fhir.read(parts[n-2], parts[n-1]); res != nil {
			_, _ = w.Write(res.body)
			return
		}
		fhirError(w, http.StatusNotFound, "not-found", parts[n-2]+"/"+parts[n-1]+" is not known")
		return
	}
	typ := parts[len(parts)-1]
	var match tokenMatch
	if q := r.URL.RawQuery; q != "" {
		var err error
		if match, err = parseIdentifierSearch(q); err != nil {
			fhirError(w, http.StatusBadRequest, "invalid", err.Error())
			return
		}
	}
	type entry struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
	}
	bundle := struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Total        int     `json:"total"`
		Entry        []entry `json:"entry"`
	}{ResourceType: "Bundle", Type: "searchset", Entry: []entry{}}
	for _, res := range c.fhir.search(typ, match) {
		bundle.Entry = append(bundle.Entry, entry{FullURL: typ + "/" + res.id, Resource: res.body})
	}
	bundle.Total = len(bundle.Entry)
	_ = json.NewEncoder(w).Encode(bundle)
}

// fhirError answers an OperationOutcome.
func fhirError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []map[string]string{{"severity": "error", "code": code, "diagnostics": msg}},
	})
}

// fhirStore holds the FHIR server's resources; the clinic system's mutex guards it.
type fhirStore struct {
	byType map[string][]*fhirResource
	nextID int
}

type fhirResource struct {
	id          string
	identifiers []fhirIdentifier
	body        json.RawMessage // as stored: with id and meta
}

type fhirIdentifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

// tokenMatch is an identifier search: system|value, |value (no system), or value (any system).
type tokenMatch struct {
	system, value string
	anySystem     bool
}

func (m tokenMatch) matches(id fhirIdentifier) bool {
	return id.Value == m.value && (m.anySystem || id.System == m.system)
}

// parseIdentifierSearch parses the one search parameter the server supports, identifier; an
// empty query matches everything.
func parseIdentifierSearch(query string) (tokenMatch, error) {
	q, err := url.ParseQuery(query)
	if err != nil {
		return tokenMatch{}, fmt.Errorf("search %q: %w", query, err)
	}
	for k := range q {
		if k != "identifier" {
			return tokenMatch{}, fmt.Errorf("search parameter %q is not supported (only identifier)", k)
		}
	}
	if len(q["identifier"]) != 1 || q.Get("identifier") == "" {
		return tokenMatch{}, fmt.Errorf("search %q: want exactly one identifier=[system|]value", query)
	}
	system, value, ok := strings.Cut(q.Get("identifier"), "|")
	if !ok {
		return tokenMatch{value: system, anySystem: true}, nil
	}
	return tokenMatch{system: system, value: value}, nil
}

func (s *fhirStore) known(typ string) bool { _, ok := s.byType[typ]; return ok }

func (s *fhirStore) search(typ string, m tokenMatch) []*fhirResource {
	var out []*fhirResource
	for _, res := range s.byType[typ] {
		if m.value == "" || slices.ContainsFunc(res.identifiers, m.matches) {
			out = append(out, res)
		}
	}
	return out
}

func (s *fhirStore) read(typ, id string) *fhirResource {
	for _, res := range s.byType[typ] {
		if res.id == id {
			return res
		}
	}
	return nil
}

// create stores a resource under a new id, as version 1.
func (s *fhirStore) create(typ string, body json.RawMessage) (*fhirResource, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	res := &fhirResource{}
	if raw, ok := fields["identifier"]; ok {
		// An array in most resources, a single Identifier in a few (Bundle, QuestionnaireResponse).
		if json.Unmarshal(raw, &res.identifiers) != nil {
			var one fhirIdentifier
			if err := json.Unmarshal(raw, &one); err != nil {
				return nil, fmt.Errorf("identifier: %w", err)
			}
			res.identifiers = []fhirIdentifier{one}
		}
	}
	if s.byType == nil {
		s.byType = map[string][]*fhirResource{}
	}
	s.nextID++
	res.id = strconv.Itoa(s.nextID)
	fields["id"], _ = json.Marshal(res.id) // strings always marshal
	fields["meta"], _ = json.Marshal(map[string]string{"versionId": "1", "lastUpdated": time.Now().UTC().Format(time.RFC3339)})
	var err error
	if res.body, err = json.Marshal(fields); err != nil {
		return nil, err
	}
	s.byType[typ] = append(s.byType[typ], res)
	return res, nil
}

func readJSON(w http.ResponseWriter, r *http.Request) (json.RawMessage, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxClinicBody+1))
	switch {
	case err != nil:
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return nil, false
	case len(body) > maxClinicBody:
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return nil, false
	case !json.Valid(body):
		http.Error(w, "body is not JSON", http.StatusBadRequest)
		return nil, false
	}
	return body, true
}

func (c *clinicSystem) record(rec Received) {
	c.mu.Lock()
	c.received = append(c.received, rec)
	c.mu.Unlock()
	var b strings.Builder
	switch rec.System {
	case systemBilling:
		fmt.Fprintf(&b, "clinic billing system ← %s %s (Idempotency-Key: %s)\n", rec.Method, rec.Path, rec.Key)
	default:
		verb := "created " + rec.ResourceType + "/" + rec.ID
		if !rec.Created {
			verb = "found " + rec.ResourceType + "/" + rec.ID + " already there, not duplicated"
		}
		fmt.Fprintf(&b, "clinic FHIR server ← %s %s %s (If-None-Exist: %s): %s\n", rec.Method, rec.Path, rec.ResourceType, rec.Key, verb)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, rec.Body, "    ", "  "); err == nil {
		b.WriteString("    " + pretty.String() + "\n")
	}
	c.out.detail(b.String())
}

// snapshot returns what was received so far.
func (c *clinicSystem) snapshot() []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Received(nil), c.received...)
}
