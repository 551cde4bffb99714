package stripeclient

import (
	"container/list"
	"sync"
	"time"
)

// lru is a concurrency-safe map bounded both by size (least recently used goes first) and by
// idleness (entries unused for longer than ttl are dropped on the next access).
type lru[V any] struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // of *lruEntry[V]; front is the most recently used
	items map[string]*list.Element
}

type lruEntry[V any] struct {
	key  string
	val  V
	used time.Time
}

func newLRU[V any](max int, ttl time.Duration, now func() time.Time) *lru[V] {
	return &lru[V]{max: max, ttl: ttl, now: now, order: list.New(), items: map[string]*list.Element{}}
}

// getOrCreate returns the value for key, creating it with create when absent.
// create runs under the lock, so it must be cheap and must not call back into the cache.
func (c *lru[V]) getOrCreate(key string, create func() V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.evictIdle(now)
	if el, ok := c.items[key]; ok {
		e := el.Value.(*lruEntry[V])
		e.used = now
		c.order.MoveToFront(el)
		return e.val
	}
	v := create()
	c.items[key] = c.order.PushFront(&lruEntry[V]{key: key, val: v, used: now})
	for c.order.Len() > c.max {
		c.remove(c.order.Back())
	}
	return v
}

// evictIdle drops entries from the least recently used end while they are idle too long.
func (c *lru[V]) evictIdle(now time.Time) {
	for el := c.order.Back(); el != nil; el = c.order.Back() {
		if now.Sub(el.Value.(*lruEntry[V]).used) <= c.ttl {
			return
		}
		c.remove(el)
	}
}

func (c *lru[V]) remove(el *list.Element) {
	c.order.Remove(el)
	delete(c.items, el.Value.(*lruEntry[V]).key)
}

func (c *lru[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
