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
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Server is the fake Stripe API. It is an http.Handler, and Start serves it on
// a loopback port. All methods are safe for concurrent use.
type Server struct {
	cfg          config
	eventTypes   map[string]bool
	eventTypeMsg string
	routes       []route

	// mu guards all state below; handlers run entirely under it, which keeps
	// idempotency check-and-execute atomic without per-key locks.
	mu         sync.Mutex
	seq        int64
	keys       map[string]*apiKey
	accounts   map[string]*accountRec
	scopes     map[scope]*modeState
	endpoints  map[string]*endpoint
	tombstones map[string]tombstone
	events     map[string]*eventRec
	payouts    map[string]*payoutRec
	txns       map[string]*txnRec
	idem       idempotencyStore
	faults     []*faultEntry
	limiters   map[scope]*rate.Limiter
	counters   counters
	deliveries []Delivery
	inflight   int
	idle       chan struct{}
	// inflightByEvent counts, per event id, the batches and retries counted in inflight.
	inflightByEvent map[string]int
	closed          bool

	faultRand   *rand.Rand // guarded by mu
	faultsFired int        // guarded by mu

	closing       chan struct{}
	deliverCtx    context.Context
	cancelDeliver context.CancelFunc

	srvMu   sync.Mutex
	httpSrv *http.Server
	url     string
	conns   connTracker
}

// scope is one account in one mode; Stripe keeps test and live data apart.
type scope struct {
	account string
	live    bool
}

// modeState holds the objects of one scope: endpoints in creation order;
// events, payouts and balance transactions ordered by (created, seq).
type modeState struct {
	endpoints     []*endpoint
	events        []*eventRec
	payouts       []*payoutRec
	txns          []*txnRec
	bankAccountID string
}

// New returns a Server; call Start to serve it or mount it as a handler.
func New(opts ...Option) *Server {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	types := eventTypeSet(cfg.extraEventTypes)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:           cfg,
		eventTypes:    types,
		eventTypeMsg:  eventTypeList(types),
		keys:          make(map[string]*apiKey),
		accounts:      make(map[string]*accountRec),
		scopes:        make(map[scope]*modeState),
		endpoints:     make(map[string]*endpoint),
		tombstones:    make(map[string]tombstone),
		events:        make(map[string]*eventRec),
		payouts:       make(map[string]*payoutRec),
		txns:          make(map[string]*txnRec),
		idem:          newIdempotencyStore(cfg.idempotencyLimit),
		limiters:      make(map[scope]*rate.Limiter),
		counters:      newCounters(),
		closing:       make(chan struct{}),
		faultRand:     rand.New(rand.NewPCG(cfg.faultSeed, cfg.faultSeed^0x9e3779b97f4a7c15)),
		deliverCtx:    ctx,
		cancelDeliver: cancel,
	}
	s.routes = s.routeTable()
	return s
}

// Close aborts injected latencies and in-flight deliveries, then shuts the
// listener down. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()

	s.cancelDeliver()
	_ = s.WaitForDeliveries(context.Background()) // cannot fail without a deadline
	return s.stopListener()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// result is a rendered API response.
type result struct {
	status     int
	body       []byte
	reqID      string
	replayed   bool
	retryAfter time.Duration
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.adminAPI && strings.HasPrefix(r.URL.Path, AdminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	rq, parseErr := s.parseRequest(r)
	f := s.beginCall(rq)
	switch {
	case f == nil:
	case f.afterExecute && parseErr == nil:
		res := s.execute(rq, &injection{err: f.err, afterRun: true})
		res.retryAfter = f.retryAfter
		if s.sleep(r.Context(), f.latency) {
			s.write(w, rq, res)
		}
		return // else the client is gone; the call took effect all the same
	case !s.sleep(r.Context(), f.latency):
		if r.Context().Err() == nil {
			// Closing: answer like an overloaded API rather than with an
			// empty 200, which clients would misread.
			s.write(w, rq, errorResult(errServer(http.StatusServiceUnavailable)))
		}
		return // otherwise the client went away; nobody reads an answer
	case f.err != nil && parseErr == nil && f.err.status >= http.StatusInternalServerError && rq.idempotent():
		// A 5xx on an idempotent POST is a failure of the execution, which Stripe saves.
		res := s.execute(rq, &injection{err: f.err})
		res.retryAfter = f.retryAfter
		s.write(w, rq, res)
		return
	case f.err != nil:
		res := errorResult(f.err)
		res.retryAfter = f.retryAfter
		s.write(w, rq, res)
		return
	}
	if parseErr != nil {
		s.write(w, rq, errorResult(parseErr))
		return
	}
	s.write(w, rq, s.execute(rq, nil))
}

// execute authenticates and runs one request under the state lock; inj, when
// set, is a failure injected into the execution.
func (s *Server) execute(rq *request, inj *injection) result {
	s.mu.Lock()
	defer s.mu.Unlock()
	rq.now = s.cfg.now()
	if rq.route == nil {
		return errorResult(errUnrecognizedURL(rq.method, rq.path))
	}
	key, aerr := s.authenticate(rq.rawKey)
	if aerr != nil {
		return errorResult(aerr)
	}
	rq.key = key
	rq.scope = scope{account: key.account, live: key.live}
	if rq.stripeAccount != "" && rq.stripeAccount != key.account {
		return errorResult(errAccountAccess(key.raw, rq.stripeAccount))
	}
	if !key.allows(rq.route.perm) {
		return errorResult(errPermission(key.raw, key.account, rq.route.perm))
	}
	if !s.allowRate(rq.scope) {
		return errorResult(errRateLimit())
	}
	if rq.idempotent() {
		return s.executeIdempotent(rq, inj)
	}
	return s.run(rq, inj)
}

// run calls the route handler and renders its answer. An injected failure
// answers instead of the handler, or after it (its effects stay) with afterRun.
func (s *Server) run(rq *request, inj *injection) result {
	if inj != nil && inj.err != nil && !inj.afterRun {
		return errorResult(inj.err)
	}
	v, aerr := rq.route.handle(rq)
	if inj != nil && inj.err != nil {
		return errorResult(inj.err)
	}
	if aerr != nil {
		return errorResult(aerr)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return errorResult(errServer(http.StatusInternalServerError))
	}
	return result{status: http.StatusOK, body: body}
}

func errorResult(e *apiError) result {
	body, err := json.Marshal(e.envelope())
	if err != nil {
		body = []byte(`{"error":{"type":"api_error","message":"encoding failure"}}`)
	}
	return result{status: e.status, body: body}
}

func (s *Server) write(w http.ResponseWriter, rq *request, res result) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache, no-store")
	reqID := rq.reqID
	if res.reqID != "" {
		reqID = res.reqID
	}
	h.Set("Request-Id", reqID)
	version := s.cfg.apiVersion
	if rq.version != "" && validVersion(rq.version) {
		version = rq.version
	}
	h.Set("Stripe-Version", version)
	if rq.idemKey != "" {
		h.Set("Idempotency-Key", rq.idemKey)
	}
	if res.replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	if res.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(max(res.retryAfter.Round(time.Second), time.Second)/time.Second)))
	}
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

// sleep waits d, returning false if the request or the server ended first.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// nextSeq orders objects within the fake; created seconds tie too often to
// sort by. Callers hold s.mu.
func (s *Server) nextSeq() int64 {
	s.seq++
	return s.seq
}

// modeStateFor returns the scope's state, creating it. Callers hold s.mu.
func (s *Server) modeStateFor(sc scope) *modeState {
	ms := s.scopes[sc]
	if ms == nil {
		ms = &modeState{}
		s.scopes[sc] = ms
	}
	return ms
}
