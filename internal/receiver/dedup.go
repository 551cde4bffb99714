package receiver

import (
	"container/list"
	"context"
	"sync"
)

// dedup remembers the ids of events this replica relayed, in a bounded LRU, and the ids being
// relayed right now. Stripe delivers at least once and retries on timeouts, so the same event
// can arrive twice, even concurrently; the targets are idempotent, but not relaying twice saves
// them the work. Replicas do not share the set: a duplicate reaching another replica is relayed
// again, which idempotent targets absorb.
type dedup struct {
	mu       sync.Mutex
	capacity int
	order    *list.List // of string ids; front is the most recently relayed or seen
	seen     map[string]*list.Element
	inflight map[string]*flight
}

// flight is one relay in progress; done closes once ok is set.
type flight struct {
	done chan struct{}
	ok   bool
}

func newDedup(capacity int) *dedup {
	return &dedup{capacity: capacity, order: list.New(), seen: map[string]*list.Element{}, inflight: map[string]*flight{}}
}

// claimState is what begin found for an event id.
type claimState int

const (
	claimLeader   claimState = iota // nobody relays it: the caller must, then call finish
	claimSeen                       // already relayed successfully
	claimFollower                   // being relayed by another request: wait for its outcome
)

// begin claims id for relaying, or reports that it was relayed or is being relayed. A replay
// (the operator's deliberate re-send) is relayed even when seen; it still joins a relay in flight.
func (d *dedup) begin(id string, replay bool) (claimState, *flight) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if el, ok := d.seen[id]; ok && !replay {
		d.order.MoveToFront(el)
		return claimSeen, nil
	}
	if f, ok := d.inflight[id]; ok {
		return claimFollower, f
	}
	f := &flight{done: make(chan struct{})}
	d.inflight[id] = f
	return claimLeader, f
}

// finish ends the leader's flight. Only a successful relay enters the seen set: after a failure
// Stripe's next delivery must relay again.
func (d *dedup) finish(id string, f *flight, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.inflight, id)
	f.ok = ok
	close(f.done)
	if !ok {
		return
	}
	if el, seen := d.seen[id]; seen { // a replay of a remembered id
		d.order.MoveToFront(el)
		return
	}
	d.seen[id] = d.order.PushFront(id)
	for d.order.Len() > d.capacity {
		oldest := d.order.Back()
		d.order.Remove(oldest)
		delete(d.seen, oldest.Value.(string))
	}
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
