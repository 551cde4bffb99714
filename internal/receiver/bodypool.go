package receiver

import (
	"bytes"
	"sync"
)

// maxPooledBody is the largest buffer kept for reuse. Stripe's events are a few KB; a buffer
// grown by a rare large body (up to MaxBodyBytes) is dropped rather than pinned in the pool.
const maxPooledBody = 64 << 10

// maxPresizedBody is the largest declared Content-Length a buffer is grown to before reading;
// larger bodies grow as their bytes arrive.
const maxPresizedBody = 16 << 10

// bodyPool recycles the buffers webhook bodies are read into. io.ReadAll grew a fresh slice
// five times for a 2 KB body, which was the largest allocation per event and a good part of
// the receiver's GC work.
//
// A buffer may go back only when nothing points into it any more: serveWebhook returns it
// after the answer is written, and what outlives the request (the relayed stripe.Event, the
// dedup memory) holds copies, because encoding/json copies strings and json.RawMessage.
type bodyPool struct{ pool sync.Pool }

func (p *bodyPool) get() *bytes.Buffer {
	if b, ok := p.pool.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

// put zeroes the buffer before keeping it, so that a reference that wrongly outlived its
// request reads zeros at once (which the tests catch) instead of, later, another event.
func (p *bodyPool) put(b *bytes.Buffer) {
	if b.Cap() > maxPooledBody {
		return
	}
	clear(b.Bytes())
	b.Reset()
	p.pool.Put(b)
}
