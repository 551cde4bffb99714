package receiver

import (
	"container/list"
	"context"
	"sync"
)

// maxTargets bounds the targets a receiver relays to: dedup keeps which of them accepted an
// event in one uint64.
const maxTargets = 64

// targetSet is a set of target indexes (bit i is r.targets[i]).
type targetSet uint64

// dedup remembers, per event id, which targets accepted the event, in a bounded LRU, and the ids
// being relayed right now. Stripe delivers at least once and retries on timeouts, so the same
// event can arrive twice, even concurrently; the targets are idempotent, but not relaying twice
// saves them the work. When one target fails and another accepts, Stripe's retry goes only to
// the ones that have not accepted yet. Replicas do not share the memory: a duplicate reaching
// another replica is relayed again, which idempotent targets absorb.
type dedup struct {
	mu       sync.Mutex
	capacity int
	all      targetSet  // every target
	order    *list.List // of *seenEntry; front is the most recently relayed or seen
	seen     map[string]*list.Element
	inflight map[string]*flight
}

// seenEntry is what the targets accepted of one event.
type seenEntry struct {
	id       string
	accepted targetSet
}

// flight is one relay in progress; done closes once ok is set. skip holds the targets the
// leader need not relay to (they accepted an earlier delivery).
type flight struct {
	done chan struct{}
	ok   bool
	skip targetSet
}

func newDedup(capacity, targets int) *dedup {
	return &dedup{capacity: capacity, all: targetSet(1)<<targets - 1, order: list.New(),
		seen: map[string]*list.Element{}, inflight: map[string]*flight{}}
}

// claimState is what begin found for an event id.
type claimState int

const (
	claimLeader   claimState = iota // not relayed to every target: the caller relays (minus f.skip), then calls finish
	claimSeen                       // already accepted by every target
	claimFollower                   // being relayed by another request: wait for its outcome
)

// begin claims id for relaying to the targets that have not accepted it and to those in force
// (a replay, the operator's deliberate re-send, forces every target), or reports that every
// target needed holds it, or that it is being relayed: a delivery, replay or not, joins a relay
// in flight rather than relaying alongside it.
func (d *dedup) begin(id string, force targetSet) (claimState, *flight) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var accepted targetSet
	if el, ok := d.seen[id]; ok {
		d.order.MoveToFront(el)
		accepted = el.Value.(*seenEntry).accepted
	}
	skip := accepted &^ force
	if skip == d.all {
		return claimSeen, nil
	}
	if f, ok := d.inflight[id]; ok {
		return claimFollower, f
	}
	f := &flight{done: make(chan struct{}), skip: skip}
	d.inflight[id] = f
	return claimLeader, f
}

// finish ends the leader's flight with the targets that accepted it, remembers them, and reports
// whether every target now holds the event. A target that failed stays out of the memory, so
// Stripe's next delivery relays to it (and only to it) again.
func (d *dedup) finish(id string, f *flight, accepted targetSet) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inflight, id)
	f.ok = (accepted | f.skip) == d.all
	close(f.done)
	if accepted == 0 {
		return f.ok
	}
	if el, seen := d.seen[id]; seen {
		el.Value.(*seenEntry).accepted |= accepted
		d.order.MoveToFront(el)
		return f.ok
	}
	d.seen[id] = d.order.PushFront(&seenEntry{id: id, accepted: accepted})
	for d.order.Len() > d.capacity {
		oldest := d.order.Back()
		d.order.Remove(oldest)
		delete(d.seen, oldest.Value.(*seenEntry).id)
	}
	return f.ok
}

// wait blocks until the flight ends and reports whether it succeeded; false if ctx ended first.
func (f *flight) wait(ctx context.Context) (ok, done bool) {
	select {
	case <-f.done:
		return f.ok, true
	case <-ctx.Done():
		return false, false
	}
}

// len returns the number of remembered ids, for tests.
func (d *dedup) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.order.Len()
}
