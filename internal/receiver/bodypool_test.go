package receiver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// TestPooledBodyNotRetained relays events one after another and in parallel, so body buffers
// are zeroed and reused while the target keeps every event it got, and checks that each kept
// event still reads as it was signed: nothing that outlives a request may point into its
// pooled body.
func TestPooledBodyNotRetained(t *testing.T) {
	target := &fakeTarget{name: "keeper"}
	f := newFixture(t, secretOld+"\n", []relay.Target{target})
	h := f.r.WebhookHandler()
	want := map[string]stripe.Event{}
	var mu sync.Mutex
	deliver := func(id string) {
		body := goodBody(t, id)
		var ev stripe.Event
		if err := json.Unmarshal(slices.Clone(body), &ev); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		want[id] = ev
		mu.Unlock()
		if rec, resp := post(t, h, testPath, body, sign(body, secretOld, time.Now())); rec.Code != http.StatusOK {
			t.Errorf("%s: answered %d %+v", id, rec.Code, resp)
		}
		clear(body) // what the sender does with its copy must not matter either
	}
	for i := range 20 {
		deliver(fmt.Sprintf("evt_seq_%02d", i))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				deliver(fmt.Sprintf("evt_par_%d_%02d", g, i))
			}
		})
	}
	wg.Wait()
	got := target.calls()
	if len(got) != len(want) {
		t.Fatalf("target got %d events, want %d", len(got), len(want))
	}
	for _, ev := range got {
		w, ok := want[ev.Stripe.ID]
		if !ok {
			t.Fatalf("target got an event with id %q, which was never sent", ev.Stripe.ID)
		}
		// Data.Raw is what the relays read (the receiver leaves Data.Object nil: decodeEvent).
		if string(ev.Stripe.Type) != string(w.Type) || !bytes.Equal(ev.Stripe.Data.Raw, w.Data.Raw) {
			t.Errorf("event %s changed after its request: type %q, data %q", w.ID, ev.Stripe.Type, ev.Stripe.Data.Raw)
		}
	}
}

// TestBodyPoolZeroesReturnedBuffers: a slice still held after put reads zeros (so a misuse shows
// at once in TestPooledBodyNotRetained), the next get starts empty, and a buffer grown past
// maxPooledBody is not kept.
func TestBodyPoolZeroesReturnedBuffers(t *testing.T) {
	var p bodyPool
	b := p.get()
	b.WriteString(`{"id":"evt_1"}`)
	held := b.Bytes()
	p.put(b)
	if !bytes.Equal(held, make([]byte, len(held))) {
		t.Errorf("a returned buffer still reads %q", held)
	}
	if n := p.get().Len(); n != 0 {
		t.Errorf("a buffer from the pool holds %d bytes", n)
	}
	big := p.get()
	big.Grow(maxPooledBody + 1)
	big.WriteString("large")
	heldBig := big.Bytes()
	p.put(big)
	if string(heldBig) != "large" {
		t.Errorf("an oversized buffer was zeroed, so it was taken back: %q", heldBig)
	}
}
