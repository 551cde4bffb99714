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
	"strings"
	"time"
)

// callKey identifies calls for CallsTo. Counters live only in memory and are
// never logged, so holding raw keys here does not leak them.
type callKey struct {
	key    string
	method string
	tmpl   string
}

type counters struct {
	byCall map[callKey]int
	byKey  map[string]int
	total  int

	// Request rates, by wall-clock second (not the fake's clock, which tests may stop): Stripe's
	// limits are per account and per second (https://docs.stripe.com/rate-limits), and the bench
	// reports the largest rate the operator produced against one key and against the fake.
	bySecond  map[int64]int
	keyRate   map[string]*secondCount
	maxPerKey int
}

// secondCount counts one key's requests in the wall-clock second sec.
type secondCount struct {
	sec int64
	n   int
}

func newCounters() counters {
	return counters{byCall: make(map[callKey]int), byKey: make(map[string]int), bySecond: make(map[int64]int),
		keyRate: make(map[string]*secondCount)}
}

func (c *counters) record(key, method, tmpl string, at time.Time) {
	c.total++
	sec := at.Unix()
	c.bySecond[sec]++
	if key == "" {
		return
	}
	c.byKey[key]++
	c.byCall[callKey{key: key, method: method, tmpl: tmpl}]++
	r := c.keyRate[key]
	if r == nil {
		r = &secondCount{sec: sec}
		c.keyRate[key] = r
	}
	if r.sec != sec {
		r.sec, r.n = sec, 0
	}
	r.n++
	c.maxPerKey = max(c.maxPerKey, r.n)
}

// Calls returns how many requests used key, whatever their outcome
// (including rejected, faulted and replayed ones).
func (s *Server) Calls(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counters.byKey[key]
}

// CallsTo returns how many requests used key on method and pathTemplate, e.g.
// CallsTo(k, "POST", PathWebhookEndpoint). Unrouted requests are counted under
// their literal path.
func (s *Server) CallsTo(key, method, pathTemplate string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counters.byCall[callKey{key: key, method: strings.ToUpper(method), tmpl: pathTemplate}]
}

// TotalCalls returns the number of requests received, with or without a key.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counters.total
}

// ResetCounters zeroes all call counters.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters = newCounters()
}

// CallsBySecond returns how many requests arrived in each wall-clock second (Unix time) since the
// counters were last reset.
func (s *Server) CallsBySecond() map[int64]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64]int, len(s.counters.bySecond))
	for sec, n := range s.counters.bySecond {
		out[sec] = n
	}
	return out
}

// MaxRates returns the most requests that arrived within one wall-clock second with one key
// (perKey), and at the whole fake (overall), since the counters were last reset.
func (s *Server) MaxRates() (perKey, overall int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.counters.bySecond {
		overall = max(overall, n)
	}
	return s.counters.maxPerKey, overall
}
