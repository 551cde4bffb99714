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
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Fault makes matching requests fail (or slow down) before they reach the
// API logic. Empty match fields match anything.
type Fault struct {
	// Key matches requests made with this API key.
	Key string
	// Account matches requests whose (registered) key belongs to this account.
	Account string
	// Method matches the HTTP method, e.g. "POST".
	Method string
	// PathPrefix matches the request path, e.g. "/v1/webhook_endpoints".
	PathPrefix string

	// Status is the HTTP status to answer with, using the error envelope Stripe
	// sends for it (429 rate_limit, 5xx api_error, ...). 0 answers normally
	// after Latency, to simulate a slow API.
	Status int
	// Code and Message override the envelope's code and message when set.
	Code    string
	Message string
	// Times is how many matching calls fail; 0 means until ClearFaults.
	Times int
	// Latency delays the answer; a cancelled request context or Close cuts it
	// short and no answer is written.
	Latency time.Duration
	// AfterExecute runs the request normally first and then holds its answer
	// for Latency: the call takes effect even if the client gives up or dies
	// meanwhile (a lost response, as when a connection drops mid-answer). With
	// Status set, the call takes effect and is answered with that error, as
	// when Stripe fails after committing.
	//
	// Stripe saves an idempotent POST's answer once execution began, 500s
	// included (see savedStatus): a 5xx Status on a POST with an
	// Idempotency-Key, and any AfterExecute answer, is saved under the key and
	// replayed for 24 h. Other statuses (429, 4xx) are answered before
	// execution and saved nowhere.
	AfterExecute bool
	// Probability makes the fault fire on that fraction of matching calls
	// (drawn per call from the server's seeded source, see WithFaultSeed);
	// 0 or ≥ 1 fires on every one. A call it does not fire on goes on to the
	// next matching fault.
	Probability float64
	// RetryAfter sets a Retry-After header (whole seconds) on the error
	// answer, as Stripe may on 429 and 503.
	RetryAfter time.Duration
}

// injection is a failure injected into one request's execution: it answers
// instead of the handler, or after it with afterRun.
type injection struct {
	err      *apiError
	afterRun bool
}

type faultEntry struct {
	f         Fault
	remaining int
}

// firedFault is what a matched fault does to one request.
type firedFault struct {
	latency      time.Duration
	err          *apiError
	afterExecute bool
	retryAfter   time.Duration
}

// InjectFault adds a fault; faults are checked in the order added and the
// first match wins.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultEntry{f: f, remaining: f.Times})
}

// ClearFaults removes all faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// ClearFaultsFor removes the faults injected for key, leaving other tests' faults in place (tests
// sharing one fake run in parallel, each with its own keys).
func (s *Server) ClearFaultsFor(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.faults[:0]
	for _, fe := range s.faults {
		if fe.f.Key != key {
			kept = append(kept, fe)
		}
	}
	s.faults = kept
}

func (fe *faultEntry) matches(rq *request, account string) bool {
	f := fe.f
	return (f.Key == "" || f.Key == rq.rawKey) &&
		(f.Account == "" || f.Account == account) &&
		(f.Method == "" || strings.EqualFold(f.Method, rq.method)) &&
		strings.HasPrefix(rq.path, f.PathPrefix)
}

// beginCall counts the request and consumes the first matching fault.
func (s *Server) beginCall(rq *request) *firedFault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters.record(rq.rawKey, rq.method, rq.template(), time.Now())
	if len(s.faults) == 0 {
		return nil
	}
	account := ""
	if k := s.keys[rq.rawKey]; k != nil {
		account = k.account
	}
	i := slices.IndexFunc(s.faults, func(fe *faultEntry) bool {
		if !fe.matches(rq, account) {
			return false
		}
		p := fe.f.Probability
		return p <= 0 || p >= 1 || s.faultRand.Float64() < p
	})
	if i < 0 {
		return nil
	}
	fe := s.faults[i]
	s.faultsFired++
	if fe.f.Times > 0 {
		fe.remaining--
		if fe.remaining <= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
	}
	fired := &firedFault{latency: fe.f.Latency, afterExecute: fe.f.AfterExecute, retryAfter: fe.f.RetryAfter}
	if fe.f.Status != 0 {
		fired.err = errForStatus(fe.f.Status, rq.rawKey, account)
		if fe.f.Code != "" {
			fired.err.code = fe.f.Code
		}
		if fe.f.Message != "" {
			fired.err.message = fe.f.Message
		}
	}
	return fired
}

// allowRate applies the optional per-account, per-mode token bucket. It uses
// the real clock: a frozen fake clock would never refill. Callers hold s.mu.
func (s *Server) allowRate(sc scope) bool {
	perSec := s.cfg.testRate
	if sc.live {
		perSec = s.cfg.liveRate
	}
	if perSec <= 0 {
		return true
	}
	l := s.limiters[sc]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(perSec), perSec)
		s.limiters[sc] = l
	}
	return l.Allow()
}

// FaultsFired returns how many calls an injected fault has answered so far.
func (s *Server) FaultsFired() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faultsFired
}
