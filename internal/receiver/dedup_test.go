package receiver

import (
	"context"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

func TestDuplicateRelayedOnce(t *testing.T) {
	target := &fakeTarget{name: "fake"}
	f := newFixture(t, secretOld, []relay.Target{target})
	body := goodBody(t, "evt_dup")
	for i, want := range []string{resultRelayed, resultDuplicate, resultDuplicate} {
		// Stripe re-signs each attempt; the event id is what identifies a duplicate.
		rec, resp := post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now().Add(time.Duration(i)*time.Second)))
		if rec.Code != http.StatusOK || resp.Status != want {
			t.Fatalf("delivery %d: %d %+v, want 200 %s", i, rec.Code, resp, want)
		}
	}
	if n := len(target.calls()); n != 1 {
		t.Errorf("relayed %d times, want 1", n)
	}
	if got := counter(t, f.r.metrics.duplicates); got != 2 {
		t.Errorf("duplicates = %v, want 2", got)
	}
}

func TestConcurrentDuplicatesRelayOnce(t *testing.T) {
	gate := make(chan struct{})
	target := &fakeTarget{name: "fake", gate: gate}
	f := newFixture(t, secretOld, []relay.Target{target})
	body := goodBody(t, "evt_concurrent")
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec, _ := post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now()))
			codes[i] = rec.Code
		})
	}
	// Hold the first relay until every other delivery is waiting on it.
	eventually(t, "the first relay to start", func() bool { return len(target.calls()) == 1 })
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("delivery %d answered %d", i, c)
		}
	}
	if got := len(target.calls()); got != 1 {
		t.Errorf("relayed %d times, want 1", got)
	}
	if got := counter(t, f.r.metrics.duplicates); got != n-1 {
		t.Errorf("duplicates = %v, want %d", got, n-1)
	}
}

func TestFailedRelayIsRetriedOnRedelivery(t *testing.T) {
	target := &fakeTarget{name: "fake", fail: func(call int) error {
		if call == 0 {
			return errDown
		}
		return nil
	}}
	f := newFixture(t, secretOld, []relay.Target{target})
	body := goodBody(t, "evt_retry")
	rec, resp := post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now()))
	if rec.Code != http.StatusServiceUnavailable || resp.Status != resultFailed {
		t.Fatalf("failing target: %d %+v, want 503 failed", rec.Code, resp)
	}
	if f.r.dedup.len() != 0 {
		t.Fatal("a failed relay entered the dedup set")
	}
	rec, resp = post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now()))
	if rec.Code != http.StatusOK || resp.Status != resultRelayed {
		t.Fatalf("redelivery: %d %+v, want 200 relayed", rec.Code, resp)
	}
	if got := len(target.calls()); got != 2 {
		t.Errorf("target called %d times, want 2", got)
	}
	if got := counter(t, f.r.metrics.events.WithLabelValues("payment_intent.succeeded", resultFailed)); got != 1 {
		t.Errorf("failed events = %v, want 1", got)
	}
}

func TestConcurrentDuplicateOfFailingRelayFails(t *testing.T) {
	gate := make(chan struct{})
	target := &fakeTarget{name: "fake", gate: gate, fail: func(int) error { return errDown }}
	f := newFixture(t, secretOld, []relay.Target{target})
	body := goodBody(t, "evt_both_fail")
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			rec, _ := post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now()))
			codes[i] = rec.Code
		})
	}
	eventually(t, "the first relay to start", func() bool { return len(target.calls()) == 1 })
	time.Sleep(20 * time.Millisecond)
	close(gate)
	wg.Wait()
	if codes[0] != http.StatusServiceUnavailable || codes[1] != http.StatusServiceUnavailable {
		t.Errorf("codes = %v, want both 503 (the waiting duplicate shares the failure)", codes)
	}
	if got := len(target.calls()); got != 1 {
		t.Errorf("relayed %d times, want 1", got)
	}
}

func TestAllTargetsMustAccept(t *testing.T) {
	ok := &fakeTarget{name: "http"}
	failing := &fakeTarget{name: "fhir", fail: func(int) error {
		return errString("POST https://user:hunter2@fhir.example/r4/PaymentNotice?access_token=abc: Bearer tok.en refused " + secretOld)
	}}
	f := newFixture(t, secretOld, []relay.Target{ok, failing})
	body := goodBody(t, "evt_two_targets")
	rec, _ := post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now()))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("got %d, want 503", rec.Code)
	}
	if len(ok.calls()) != 1 || len(failing.calls()) != 1 {
		t.Errorf("calls: http %d fhir %d, want 1 each", len(ok.calls()), len(failing.calls()))
	}
	logs := f.logs.String()
	assertNoSecrets(t, "logs", logs, secretOld, "hunter2", "access_token=abc", "tok.en")
	assertNoSecrets(t, "response", rec.Body.String(), "fhir.example", secretOld)
	for _, want := range []string{`"target":"fhir"`, "Relay to system of record failed"} {
		if !contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestForwardTimeout(t *testing.T) {
	target := &fakeTarget{name: "slow", gate: make(chan struct{})} // never opened
	f := newFixture(t, secretOld, []relay.Target{target}, func(c *Config) { c.ForwardTimeout = 50 * time.Millisecond })
	body := goodBody(t, "evt_slow")
	start := time.Now()
	rec, _ := post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now()))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("got %d, want 503", rec.Code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v despite a 50ms forward timeout", d)
	}
	if !contains(f.logs.String(), "no answer within 50ms") {
		t.Errorf("logs do not name the timeout:\n%s", f.logs.String())
	}
}

func TestPanickingTargetIsAFailure(t *testing.T) {
	f := newFixture(t, secretOld, []relay.Target{panicTarget{}})
	body := goodBody(t, "evt_panic")
	rec, _ := post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now()))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("got %d, want 503", rec.Code)
	}
}

func TestDedupEvictsOldest(t *testing.T) {
	d := newDedup(2, 1)
	for _, id := range []string{"a", "b", "c"} {
		st, f := d.begin(id, 0)
		if st != claimLeader {
			t.Fatalf("begin(%s) = %v", id, st)
		}
		d.finish(id, f, 1)
	}
	if d.len() != 2 {
		t.Errorf("len = %d, want 2", d.len())
	}
	if st, _ := d.begin("c", 0); st != claimSeen {
		t.Errorf("c: %v, want seen", st)
	}
	if st, f := d.begin("a", 0); st != claimLeader {
		t.Errorf("a: %v, want leader (evicted)", st)
	} else {
		d.finish("a", f, 0)
	}
	st, f := d.begin("x", 0)
	if st != claimLeader {
		t.Fatal(st)
	}
	if st2, f2 := d.begin("x", 0); st2 != claimFollower || f2 != f {
		t.Errorf("second begin(x) = %v", st2)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, done := f.wait(ctx); done {
		t.Error("wait returned done for a flight still in progress")
	}
}

type panicTarget struct{}

func (panicTarget) Name() string { return "panic" }
func (panicTarget) Deliver(context.Context, relay.Event) error {
	panic("boom")
}

type errString string

func (e errString) Error() string { return string(e) }

// TestDedupRemembersPerTarget: a partial success is remembered per target, so the next delivery
// skips the targets that accepted; a replay skips none.
func TestDedupRemembersPerTarget(t *testing.T) {
	d := newDedup(10, 2)
	st, f := d.begin("e", 0)
	if st != claimLeader || f.skip != 0 {
		t.Fatalf("first begin = %v skip %b", st, f.skip)
	}
	if d.finish("e", f, 0b01) {
		t.Error("finish reported success with one of two targets")
	}
	st, f = d.begin("e", 0)
	if st != claimLeader || f.skip != 0b01 {
		t.Fatalf("retry begin = %v skip %b, want leader skipping target 0", st, f.skip)
	}
	if !d.finish("e", f, 0b10) {
		t.Error("finish did not report success once both targets accepted")
	}
	if st, _ := d.begin("e", 0); st != claimSeen {
		t.Errorf("after both accepted: %v, want seen", st)
	}
	st, f = d.begin("e", d.all)
	if st != claimLeader || f.skip != 0 {
		t.Errorf("replay begin = %v skip %b, want leader skipping nothing", st, f.skip)
	}
	d.finish("e", f, 0b11)
	if d.len() != 1 {
		t.Errorf("len = %d, want 1", d.len())
	}
}

// TestDedupLRUOrder: a duplicate delivery refreshes its id, so a full memory forgets the id
// least recently relayed or seen, slot after slot as the memory turns over.
func TestDedupLRUOrder(t *testing.T) {
	d := newDedup(3, 1)
	relayed := func(id string) {
		t.Helper()
		st, f := d.begin(id, 0)
		if st != claimLeader {
			t.Fatalf("begin(%s) = %v, want leader", id, st)
		}
		d.finish(id, f, 1)
	}
	seen := func(id string) bool {
		t.Helper()
		st, f := d.begin(id, 0)
		if st == claimLeader {
			d.finish(id, f, 0) // nothing accepted: nothing remembered
		}
		return st == claimSeen
	}
	relayed("a")
	relayed("b")
	relayed("c")
	if !seen("a") { // a is now the newest, b the oldest
		t.Fatal("a forgotten before the memory was full")
	}
	relayed("d") // evicts b
	if seen("b") || !seen("c") || !seen("a") || !seen("d") {
		t.Fatal("a full memory did not forget the least recently seen id (b)")
	}
	// c, a, d refreshed in that order: c is the oldest now. Turn the memory over twice.
	for i, id := range []string{"e", "f", "g", "h", "i", "j"} {
		relayed(id)
		if d.len() != 3 {
			t.Fatalf("after %d more: len = %d, want 3", i+1, d.len())
		}
	}
	for _, id := range []string{"a", "c", "d", "e", "f", "g"} {
		if seen(id) {
			t.Errorf("%s remembered after the memory turned over", id)
		}
	}
	for _, id := range []string{"h", "i", "j"} {
		if !seen(id) {
			t.Errorf("%s, among the newest three, forgotten", id)
		}
	}
}

// TestDedupLongIDs: ids longer than a key holds are told apart by their digest, even when they
// share every byte a key could hold.
func TestDedupLongIDs(t *testing.T) {
	d := newDedup(10, 1)
	long := "evt_" + strings.Repeat("x", 100)
	for _, id := range []string{long + "1", long + "2", long[:idKeyBytes], long[:idKeyBytes+1]} {
		st, f := d.begin(id, 0)
		if st != claimLeader {
			t.Fatalf("begin(%q) = %v, want leader: taken for another id", id, st)
		}
		d.finish(id, f, 1)
	}
	if st, _ := d.begin(long+"1", 0); st != claimSeen {
		t.Errorf("a long id was not remembered: %v", st)
	}
	if d.len() != 4 {
		t.Errorf("len = %d, want 4", d.len())
	}
}

// TestDedupMemoryHoldsNoPointers guards the reason for the memory's layout: the garbage
// collector scans nothing of a full memory, so its 10,000 ids add no marking work per cycle.
func TestDedupMemoryHoldsNoPointers(t *testing.T) {
	d := newDedup(1, 1)
	for _, typ := range []reflect.Type{reflect.TypeOf(d.seen), reflect.TypeOf(d.entries)} {
		if p := pointerIn(typ); p != "" {
			t.Errorf("%v holds a pointer (%s): the collector scans the whole memory every cycle", typ, p)
		}
	}
}

// pointerIn names a part of typ the garbage collector must scan, or returns "".
func pointerIn(typ reflect.Type) string {
	switch typ.Kind() {
	case reflect.Map:
		if p := pointerIn(typ.Key()); p != "" {
			return "key: " + p
		}
		return pointerIn(typ.Elem())
	case reflect.Slice:
		return pointerIn(typ.Elem())
	case reflect.Array:
		return pointerIn(typ.Elem())
	case reflect.Struct:
		for i := range typ.NumField() {
			if p := pointerIn(typ.Field(i).Type); p != "" {
				return typ.Field(i).Name + ": " + p
			}
		}
		return ""
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	default:
		return typ.String()
	}
}

// TestDedupCapacityBounds: the memory's size is refused outside 1..MaxDedupCapacity (its
// indexes are 32-bit), with the value named.
func TestDedupCapacityBounds(t *testing.T) {
	valid := Config{ClinicID: testClinic, Mode: ModeTest, SigningSecretFile: "/x"}
	for _, n := range []int{-1, MaxDedupCapacity + 1} {
		cfg := valid
		cfg.DedupCapacity = n
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "dedup capacity "+strconv.Itoa(n)) {
			t.Errorf("capacity %d: Validate = %v, want an error naming it", n, err)
		}
	}
	for _, n := range []int{0, 1, MaxDedupCapacity} { // 0: the default
		cfg := valid
		cfg.DedupCapacity = n
		if err := cfg.Validate(); err != nil {
			t.Errorf("capacity %d: %v", n, err)
		}
	}
}

// TestDedupMatchesModel drives the memory with random deliveries, replays and partial successes
// over a few ids (so it fills, evicts and refreshes all the time) and checks every answer
// against a plain model: an LRU kept as a slice, newest first.
func TestDedupMatchesModel(t *testing.T) {
	const capacity, targets = 5, 3
	type modelEntry struct {
		id       string
		accepted targetSet
	}
	var model []modelEntry // newest first
	find := func(id string) int {
		return slices.IndexFunc(model, func(e modelEntry) bool { return e.id == id })
	}
	toFront := func(i int) {
		e := model[i]
		model = append([]modelEntry{e}, slices.Delete(model, i, i+1)...)
	}
	d := newDedup(capacity, targets)
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 20000 {
		id := "evt_" + strconv.Itoa(rng.IntN(12))
		if rng.IntN(20) == 0 {
			id += strings.Repeat("x", 40) // a hashed key now and then
		}
		var force targetSet
		if rng.IntN(10) == 0 {
			force = d.all
		}
		// The model's answer.
		var accepted targetSet
		if i := find(id); i >= 0 {
			accepted = model[i].accepted
			toFront(i)
		}
		wantSeen := accepted&^force == d.all
		st, f := d.begin(id, force)
		var skip targetSet
		if f != nil {
			skip = f.skip
		}
		if wantSeen != (st == claimSeen) || (st == claimLeader && skip != accepted&^force) {
			t.Fatalf("step %d, %s (force %b): begin = %v skip %b; the model has accepted %b", step, id, force, st, skip, accepted)
		}
		if st != claimLeader {
			continue
		}
		got := targetSet(rng.IntN(1 << targets)) // what the targets accepted this time
		d.finish(id, f, got)
		if got == 0 {
			continue
		}
		if i := find(id); i >= 0 {
			model[i].accepted |= got
			toFront(i)
		} else {
			model = append([]modelEntry{{id, got}}, model...)
			if len(model) > capacity {
				model = model[:capacity]
			}
		}
		if d.len() != len(model) {
			t.Fatalf("step %d: %d ids remembered, the model %d", step, d.len(), len(model))
		}
	}
}

// TestDedupOfNoCapacity: a memory built with no room (Config fills in the default before it is
// built, but newDedup stands alone) relays every delivery and remembers nothing.
func TestDedupOfNoCapacity(t *testing.T) {
	d := newDedup(0, 1)
	for range 2 {
		st, f := d.begin("evt_a", 0)
		if st != claimLeader {
			t.Fatalf("begin = %v, want leader", st)
		}
		d.finish("evt_a", f, 1)
	}
	if d.len() != 0 {
		t.Errorf("len = %d, want 0", d.len())
	}
}
