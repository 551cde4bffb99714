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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/clinicpay/stripe-operator/internal/sigheader"
)

// Delivery is one webhook delivery attempt.
type Delivery struct {
	EventID    string
	EventType  string
	EndpointID string
	URL        string
	// StatusCode is the receiver's HTTP status, or 0 if none was received.
	StatusCode int
	// Err is the transport error (refused, timeout, ...), nil if the receiver
	// answered, whatever the status.
	Err error
	// At is the fake-clock time of the attempt, also the signature timestamp.
	At time.Time
}

// Succeeded reports whether the receiver answered 2xx, which is what marks an
// event delivered to that endpoint.
func (d Delivery) Succeeded() bool {
	return d.Err == nil && d.StatusCode >= 200 && d.StatusCode < 300
}

// deliveryJob is a rendered, signed webhook ready to send without the lock.
type deliveryJob struct {
	eventID    string
	eventType  string
	endpointID string
	url        string
	body       []byte
	signature  string
	at         time.Time
	// autoRetry marks deliveries that follow WithDeliveryRetries' schedule
	// when they fail; attempt counts the retries already made (0 = first).
	autoRetry bool
	attempt   int
}

// jobsFor renders ev for each endpoint id and marks the batch in flight.
// Callers hold s.mu.
func (s *Server) jobsFor(ev *eventRec, ids []string, now time.Time) ([]deliveryJob, error) {
	jobs := make([]deliveryJob, 0, len(ids))
	for _, id := range ids {
		e := s.endpoints[id]
		if e == nil {
			continue
		}
		j, err := renderJob(ev, e, now)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	if len(jobs) > 0 {
		s.markInflight(ev.id)
	}
	return jobs, nil
}

// renderJob renders and signs ev for endpoint e at time now.
func renderJob(ev *eventRec, e *endpoint, now time.Time) (deliveryJob, error) {
	// Stripe pretty-prints webhook bodies; a receiver that re-encodes the
	// JSON before checking the signature fails here as in production.
	body, err := json.MarshalIndent(ev.render(e.apiVersion), "", "  ")
	if err != nil {
		return deliveryJob{}, fmt.Errorf("stripefake: render event %s: %w", ev.id, err)
	}
	return deliveryJob{
		eventID: ev.id, eventType: ev.typ, endpointID: e.id, url: e.url,
		body: body, signature: signature(now, body, e.secret), at: now,
	}, nil
}

// signature builds the Stripe-Signature header, keyed with the whsec_ secret.
func signature(t time.Time, body []byte, secret string) string {
	return sigheader.Sign([]byte(secret), t, body)
}

// dispatch sends a batch (prepared by jobsFor) concurrently, inline or in the
// background depending on WithAsyncDelivery.
func (s *Server) dispatch(jobs []deliveryJob) {
	if len(jobs) == 0 {
		return
	}
	run := func() {
		defer s.batchDone(jobs[0].eventID)
		var wg sync.WaitGroup
		for _, j := range jobs {
			wg.Go(func() { s.deliver(j) })
		}
		wg.Wait()
	}
	if s.cfg.async {
		go run()
		return
	}
	run()
}

// markInflight counts a batch or retry of eventID in flight. Callers hold s.mu.
func (s *Server) markInflight(eventID string) {
	s.inflight++
	if s.inflight == 1 {
		s.idle = make(chan struct{})
	}
	if s.inflightByEvent == nil {
		s.inflightByEvent = map[string]int{}
	}
	s.inflightByEvent[eventID]++
}

func (s *Server) batchDone(eventID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if s.inflight == 0 {
		close(s.idle)
	}
	if s.inflightByEvent[eventID]--; s.inflightByEvent[eventID] <= 0 {
		delete(s.inflightByEvent, eventID)
	}
}

func (s *Server) deliver(j deliveryJob) {
	code, err := s.post(j)
	s.mu.Lock()
	defer s.mu.Unlock()
	d := Delivery{EventID: j.eventID, EventType: j.eventType, EndpointID: j.endpointID, URL: j.url, StatusCode: code, Err: err, At: j.at}
	if over := len(s.deliveries) + 1 - s.cfg.deliveryLogLimit; over > 0 {
		s.deliveries = slices.Delete(s.deliveries, 0, over)
	}
	s.deliveries = append(s.deliveries, d)
	if ev := s.events[j.eventID]; ev != nil && d.Succeeded() {
		ev.delivered[j.endpointID] = true
	}
	if !d.Succeeded() {
		s.scheduleRetry(j)
	}
}

func (s *Server) post(j deliveryJob) (int, error) {
	req, err := http.NewRequestWithContext(s.deliverCtx, http.MethodPost, j.url, bytes.NewReader(j.body))
	if err != nil {
		return 0, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Stripe-Signature", j.signature)
	resp, err := s.cfg.httpClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("deliver webhook: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyBytes))
	return resp.StatusCode, nil
}

// Redeliver re-sends an event to the endpoints that have not acknowledged it
// yet and are still enabled, like "Resend" in the dashboard. Like a manual
// resend on Stripe, a failed Redeliver does not start a new automatic retry
// schedule (see WithDeliveryRetries).
func (s *Server) Redeliver(eventID string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	ev := s.events[eventID]
	if ev == nil {
		s.mu.Unlock()
		return fmt.Errorf("event %q: %w", eventID, ErrNotFound)
	}
	var ids []string
	for _, id := range ev.targets {
		if e := s.endpoints[id]; e != nil && e.status == statusEnabled && !ev.delivered[id] {
			ids = append(ids, id)
		}
	}
	jobs, err := s.jobsFor(ev, ids, s.cfg.now())
	s.mu.Unlock()
	if err != nil {
		return err
	}
	s.dispatch(jobs)
	return nil
}

// Deliveries returns a copy of the delivery attempts, oldest first (bounded
// by WithDeliveryLogLimit).
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// WaitForEventDeliveries blocks until no delivery of event id is in flight and no automatic retry
// of it is pending, or ctx ends. Unlike WaitForDeliveries it does not wait for other events, so
// tests sharing one fake can run in parallel.
func (s *Server) WaitForEventDeliveries(ctx context.Context, id string) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := s.inflightByEvent[id]
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("stripefake: waiting for deliveries of %s: %w", id, ctx.Err())
		}
	}
}

// WaitForDeliveries blocks until no delivery is in flight and no automatic
// retry is pending, or ctx ends. With synchronous delivery (the default) and
// no retries it returns at once.
func (s *Server) WaitForDeliveries(ctx context.Context) error {
	s.mu.Lock()
	if s.inflight == 0 {
		s.mu.Unlock()
		return nil
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stripefake: waiting for deliveries: %w", ctx.Err())
	}
}
