package receiver

import (
	"context"
	"crypto/sha256"
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
//
// The memory holds no pointers (idKey, seenEntry and the index are plain values), so the garbage
// collector allocates it as pointer-free and never scans it. Held as strings in a linked list,
// the 10,000 ids of a full memory were about 2 MB of the collector's marking work in every cycle,
// and on one core the cycle's mark phase (about 10 ms, most of it that memory) is when a busy
// receiver's latency peaks (docs/benchmarks.md).
type dedup struct {
	mu       sync.Mutex
	capacity int
	all      targetSet // every target
	// seen indexes entries; entries is the LRU as a doubly linked list of indexes into it,
	// newest at head. Entries are only ever replaced: a full memory reuses its oldest.
	seen       map[idKey]int32
	entries    []seenEntry
	head, tail int32 // noEntry when empty
	inflight   map[string]*flight
}

// noEntry is the index of no entry.
const noEntry = -1

// idKey is an event id as a map key without pointers: the id itself when it fits (Stripe's
// event ids are "evt_" and 24 characters), else the first 31 bytes of its SHA-256 (n = hashedID),
// which two distinct ids share with negligible probability. 32 bytes a key, 48 an entry.
type idKey struct {
	n uint8
	b [idKeyBytes]byte
}

const (
	idKeyBytes = 31
	hashedID   = 0xff
)

func keyOf(id string) idKey {
	var k idKey
	if len(id) <= idKeyBytes {
		k.n = uint8(len(id))
		copy(k.b[:], id)
		return k
	}
	k.n = hashedID
	sum := sha256.Sum256([]byte(id))
	copy(k.b[:], sum[:])
	return k
}

// seenEntry is what the targets accepted of one event, and its neighbours in the LRU.
type seenEntry struct {
	key        idKey
	accepted   targetSet
	prev, next int32 // towards head (newer) and tail (older)
}

// flight is one relay in progress; done closes once ok is set. skip holds the targets the
// leader need not relay to (they accepted an earlier delivery).
type flight struct {
	done chan struct{}
	ok   bool
	skip targetSet
	key  idKey // the id's key in the memory, computed once by begin for finish
}

func newDedup(capacity, targets int) *dedup {
	return &dedup{capacity: capacity, all: targetSet(1)<<targets - 1, head: noEntry, tail: noEntry,
		seen: map[idKey]int32{}, inflight: map[string]*flight{}}
}

// unlink takes entry i out of the LRU's order.
func (d *dedup) unlink(i int32) {
	e := &d.entries[i]
	if e.prev == noEntry {
		d.head = e.next
	} else {
		d.entries[e.prev].next = e.next
	}
	if e.next == noEntry {
		d.tail = e.prev
	} else {
		d.entries[e.next].prev = e.prev
	}
}

// pushFront makes entry i, unlinked, the most recent.
func (d *dedup) pushFront(i int32) {
	e := &d.entries[i]
	e.prev, e.next = noEntry, d.head
	if d.head != noEntry {
		d.entries[d.head].prev = i
	}
	d.head = i
	if d.tail == noEntry {
		d.tail = i
	}
}

// touch makes entry i the most recent.
func (d *dedup) touch(i int32) {
	if d.head != i {
		d.unlink(i)
		d.pushFront(i)
	}
}

// remember adds key, not in the memory, as the most recent entry, replacing the oldest when the
// memory is full. A memory of no capacity remembers nothing.
func (d *dedup) remember(key idKey, accepted targetSet) {
	var i int32
	switch {
	case d.capacity < 1:
		return
	case len(d.entries) < d.capacity:
		d.entries = append(d.entries, seenEntry{})
		i = int32(len(d.entries) - 1)
	default:
		i = d.tail
		d.unlink(i)
		delete(d.seen, d.entries[i].key)
	}
	d.entries[i].key, d.entries[i].accepted = key, accepted
	d.pushFront(i)
	d.seen[key] = i
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
	key := keyOf(id)
	d.mu.Lock()
	defer d.mu.Unlock()
	var accepted targetSet
	if i, ok := d.seen[key]; ok {
		d.touch(i)
		accepted = d.entries[i].accepted
	}
	skip := accepted &^ force
	if skip == d.all {
		return claimSeen, nil
	}
	if f, ok := d.inflight[id]; ok {
		return claimFollower, f
	}
	f := &flight{done: make(chan struct{}), skip: skip, key: key}
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
	if i, seen := d.seen[f.key]; seen {
		d.entries[i].accepted |= accepted
		d.touch(i)
		return f.ok
	}
	d.remember(f.key, accepted)
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
	return len(d.seen)
}
