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
	"net/http"
	"time"
)

// idempotencyTTL is how long Stripe guarantees a key is remembered.
const idempotencyTTL = 24 * time.Hour

// idemKey scopes idempotency keys per account and mode, as Stripe does.
type idemKey struct {
	sc  scope
	key string
}

// idemEntry is a stored response to replay.
type idemEntry struct {
	endpoint string
	params   string
	status   int
	body     []byte
	reqID    string
	at       time.Time
	id       uint64
}

type idemQueued struct {
	k  idemKey
	id uint64
}

// idempotencyStore is a map with FIFO eviction by age and by count.
type idempotencyStore struct {
	limit   int
	nextID  uint64
	entries map[idemKey]*idemEntry
	order   []idemQueued
	head    int
}

func newIdempotencyStore(limit int) idempotencyStore {
	return idempotencyStore{limit: limit, entries: make(map[idemKey]*idemEntry)}
}

func (st *idempotencyStore) get(k idemKey, now time.Time) (*idemEntry, bool) {
	e := st.entries[k]
	if e == nil {
		return nil, false
	}
	if now.Sub(e.at) >= idempotencyTTL {
		delete(st.entries, k)
		return nil, false
	}
	return e, true
}

func (st *idempotencyStore) put(k idemKey, e *idemEntry, now time.Time) {
	st.nextID++
	e.id = st.nextID
	st.entries[k] = e
	st.order = append(st.order, idemQueued{k: k, id: e.id})
	for st.head < len(st.order) {
		q := st.order[st.head]
		cur := st.entries[q.k]
		stale := cur == nil || cur.id != q.id
		expired := !stale && now.Sub(cur.at) >= idempotencyTTL
		if !stale && !expired && len(st.entries) <= st.limit {
			break
		}
		if !stale {
			delete(st.entries, q.k)
		}
		st.head++
	}
	// Compact the queue once half of it is consumed, keeping appends O(1)
	// amortised.
	if st.head > len(st.order)/2 {
		st.order = append(st.order[:0], st.order[st.head:]...)
		st.head = 0
	}
}

// savedStatus reports whether Stripe saves an answer under its Idempotency-Key. Stripe saves the
// status and body of the first request for a key once execution began, 500s included, and
// replays them for at least 24 h; requests that fail validation (400) or never began (401, 403,
// 429, a concurrent request) save nothing, so a corrected retry may reuse the key.
// https://docs.stripe.com/api/idempotent_requests, https://docs.stripe.com/error-low-level#idempotency
func savedStatus(status int) bool {
	return status < http.StatusMultipleChoices || status >= http.StatusInternalServerError
}

// executeIdempotent replays a stored response for a reused key, rejects a
// reuse on another endpoint or with other parameters, and otherwise runs the
// request (with any injected execution failure) and stores its result as
// savedStatus says. A replay executes nothing, so an injected failure cannot
// replace it. Callers hold s.mu.
func (s *Server) executeIdempotent(rq *request, inj *injection) result {
	k := idemKey{sc: rq.scope, key: rq.idemKey}
	endpoint := rq.method + " " + rq.path
	params := rq.params.Encode() // sorted by key, so order-insensitive
	if e, ok := s.idem.get(k, rq.now); ok {
		if e.endpoint != endpoint {
			return errorResult(errIdempotencyEndpoint(rq.idemKey, e.endpoint, endpoint))
		}
		if e.params != params {
			return errorResult(errIdempotencyParams(rq.idemKey))
		}
		return result{status: e.status, body: e.body, reqID: e.reqID, replayed: true}
	}
	res := s.run(rq, inj)
	if savedStatus(res.status) {
		s.idem.put(k, &idemEntry{
			endpoint: endpoint, params: params, status: res.status,
			body: res.body, reqID: rq.reqID, at: rq.now,
		}, rq.now)
	}
	return res
}

// forget drops the saved answers whose key matches, as Stripe's pruning after
// 24 h does, and returns how many it dropped. The FIFO queue skips them later.
func (st *idempotencyStore) forget(match func(idemKey) bool) int {
	n := 0
	for k := range st.entries {
		if match(k) {
			delete(st.entries, k)
			n++
		}
	}
	return n
}

// ExpireIdempotencyKey forgets the saved answer for an Idempotency-Key in
// every account and mode, as if its 24 hours had passed, so the next request
// with it executes again. It returns how many saved answers it dropped.
func (s *Server) ExpireIdempotencyKey(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idem.forget(func(k idemKey) bool { return k.key == key })
}

// ExpireAllIdempotencyKeys forgets every saved answer, as if a day had passed.
func (s *Server) ExpireAllIdempotencyKeys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idem.forget(func(idemKey) bool { return true })
}
