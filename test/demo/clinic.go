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
	// ResourceType is the FHIR resource type, "" for billing.
	ResourceType string
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
	fhirKeys map[string]bool

	billing, fhir *http.Server
	billingAddr   string
	fhirAddr      string
}

const maxClinicBody = 1 << 20

func startClinicSystem(out *printer) (*clinicSystem, error) {
	c := &clinicSystem{out: out, fhirKeys: map[string]bool{}}
	var err error
	if c.billing, c.billingAddr, err = serve(http.HandlerFunc(c.serveBilling)); err != nil {
		return nil, err
	}
	if c.fhir, c.fhirAddr, err = serve(http.HandlerFunc(c.serveFHIR)); err != nil {
		_ = c.billing.Close()
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
	return errors.Join(c.billing.Shutdown(ctx), c.fhir.Shutdown(ctx))
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

func (c *clinicSystem) serveFHIR(w http.ResponseWriter, r *http.Request) {
	body, ok := readJSON(w, r)
	if !ok {
		return
	}
	var res struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(body, &res); err != nil || res.ResourceType == "" || r.Method != http.MethodPost {
		http.Error(w, "expected a POST of a FHIR resource", http.StatusBadRequest)
		return
	}
	cond := r.Header.Get("If-None-Exist")
	c.mu.Lock()
	created := cond == "" || !c.fhirKeys[res.ResourceType+"?"+cond]
	if cond != "" {
		c.fhirKeys[res.ResourceType+"?"+cond] = true
	}
	c.mu.Unlock()
	c.record(Received{System: systemFHIR, Method: r.Method, Path: r.URL.Path, Key: cond, ResourceType: res.ResourceType, Created: created, Body: body})
	w.Header().Set("Content-Type", "application/fhir+json")
	if created {
		w.WriteHeader(http.StatusCreated)
	}
	_, _ = w.Write(body) // the receiver does not need the echo
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
		verb := "created"
		if !rec.Created {
			verb = "already there, not duplicated"
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
