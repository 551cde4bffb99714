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

package bench

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// TestRunReceiverQuick runs the receiver bench briefly against a freshly built receiver and
// checks that its figures are complete and its bookkeeping adds up; it asserts nothing about
// speed.
func TestRunReceiverQuick(t *testing.T) {
	t.Parallel() // the cluster, throughput and cost runs use separate processes and ports
	bin := buildCmd(t, "./cmd/receiver")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res, err := RunReceiver(ctx, ReceiverConfig{ReceiverBin: bin, Duration: 500 * time.Millisecond, Concurrency: 4, Payloads: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 2 || res.Runs[0].Cores != 1 || res.Runs[1].Cores != 2 {
		t.Fatalf("runs = %+v, want a 1-core and a 2-core run", res.Runs)
	}
	for _, r := range res.Runs {
		t.Logf("%d core(s): %d events, %.0f events/s, p50 %s, p99 %s", r.Cores, r.Events, r.PerSecond, r.P50, r.P99)
		if r.Events <= 0 || r.PerSecond <= 0 {
			t.Errorf("%d core(s): no events acknowledged: %+v", r.Cores, r)
		}
		if r.Errors != 0 {
			t.Errorf("%d core(s): %d errors, first: %s", r.Cores, r.Errors, r.ErrorSample)
		}
		if r.SinkCount != r.Events || r.SinkDuplicates != 0 {
			t.Errorf("%d core(s): sink received %d relays (%d duplicated) for %d acknowledged events",
				r.Cores, r.SinkCount, r.SinkDuplicates, r.Events)
		}
		if r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("%d core(s): p50 %s, p99 %s", r.Cores, r.P50, r.P99)
		}
	}
	for _, r := range res.Runs {
		// Every event allocates (the body, stripe-go's decode); the counters must have moved.
		if r.AllocsPerEvent <= 0 || r.AllocBytesPerEvent <= 0 || r.PeakRSS <= 0 || r.SinkConns <= 0 {
			t.Errorf("%d core(s): allocations %.0f (%.0f B) per event, peak RSS %d, %d sink connections",
				r.Cores, r.AllocsPerEvent, r.AllocBytesPerEvent, r.PeakRSS, r.SinkConns)
		}
		// A process that starts, serves and stops gives up its CPU at least while it waits for
		// its first request.
		if r.SwitchesPerEvent <= 0 {
			t.Errorf("%d core(s): %.3f context switches per event", r.Cores, r.SwitchesPerEvent)
		}
	}
	if res.LimitPerSec <= 0 || res.Ratio1Core <= 0 || res.LimitCPUPerEvent <= 0 || res.CPURatio1Core <= 0 {
		t.Errorf("limit %.0f/s (%s CPU per event), ratio %.2f (by CPU %.2f)", res.LimitPerSec, res.LimitCPUPerEvent,
			res.Ratio1Core, res.CPURatio1Core)
	}
	l := res.Latency
	if l == nil {
		t.Fatal("no latency run")
	}
	t.Logf("latency at %.0f/s: %d sent, p50 %s, p99 %s, max %s, %d late", l.Rate, l.Sent, l.P50, l.P99, l.Max, l.Late)
	if want := res.Runs[0].PerSecond / 2; l.Rate != want {
		t.Errorf("latency run at %.1f/s, want half the 1-core throughput, %.1f/s", l.Rate, want)
	}
	if l.Sent <= 0 || l.Events != l.Sent || l.Errors != 0 || l.WarmupEvents <= 0 || l.WarmupAcked != l.WarmupEvents || l.WarmupMax <= 0 {
		t.Errorf("latency run: %d sent, %d acknowledged, %d errors (first: %s); warm-up %d sent, %d acknowledged, slowest %s", l.Sent,
			l.Events, l.Errors, l.ErrorSample, l.WarmupEvents, l.WarmupAcked, l.WarmupMax)
	}
	if acked := l.Events + l.WarmupAcked; l.SinkCount != acked || l.SinkDuplicates != 0 {
		t.Errorf("latency run: sink received %d relays (%d duplicated) for %d acknowledged events", l.SinkCount, l.SinkDuplicates, acked)
	}
	if l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P99 {
		t.Errorf("latency run: p50 %s, p99 %s, max %s", l.P50, l.P99, l.Max)
	}
	// An event sent late waited at least that long before it was sent: the latest lateness is no
	// more than the slowest latency, and there is one exactly when some event was late.
	for _, r := range []struct {
		late          int
		latest, limit time.Duration
	}{{l.Late, l.LateMax, l.Max}, {l.Bare.Late, l.Bare.LateMax, l.Bare.Max}} {
		if (r.late > 0) != (r.latest > lateAfter) || r.latest > r.limit {
			t.Errorf("latency run: %d sent late, the latest by %s, slowest latency %s", r.late, r.latest, r.limit)
		}
	}
	if l.SwitchesPerEvent <= 0 {
		t.Errorf("latency run: %.3f context switches per event", l.SwitchesPerEvent)
	}
	if b := l.Bare; b.Sent <= 0 || b.Answered != b.Sent || b.Errors != 0 || b.P50 <= 0 || b.P99 < b.P50 || b.Max < b.P99 {
		t.Errorf("latency run: bare baseline %+v", b)
	}
	if len(l.Stalls) == 0 {
		t.Error("latency run: no stall probe")
	}
	for _, st := range l.Stalls {
		if st.Window < 500*time.Millisecond || st.Count < st.Over1ms || st.Total < st.Longest {
			t.Errorf("latency run: stall probe %+v", st)
		}
	}
	if cpus := planCPUs(); cpus.taskset != "" && len(l.Stalls) != 2 {
		t.Errorf("latency run: stall probe of %d CPUs, want the receiver's and the bench's: %+v", len(l.Stalls), l.Stalls)
	}
	if l.Others == nil {
		t.Error("latency run: the stall probe saw no other process run (the bench's receivers exited meanwhile at least)")
	}
	if l.Conns <= 0 || l.Conns > openLoopConns || l.SinkConns <= 0 {
		t.Errorf("latency run: %d connections to the receiver (at most %d), %d to the sink", l.Conns, openLoopConns, l.SinkConns)
	}
	if res.Method == "" {
		t.Error("no method description")
	}
	t.Logf("limit %.0f events/s, ratio %.2f; %s", res.LimitPerSec, res.Ratio1Core, res.Method)
}

// TestOthersRan sums what other processes ran between two readings by command name, leaves out
// the bench itself and processes gone meanwhile, counts a new one (or a reused pid) from zero,
// follows a kernel worker whose name changed, and puts the most first.
func TestOthersRan(t *testing.T) {
	ms := time.Millisecond
	before := procTimes{
		1:  {comm: "agent", start: "1", ran: 100 * ms},
		2:  {comm: "kworker/0:1-events", start: "2", ran: 10 * ms},
		3:  {comm: "kworker/0:1-events", start: "3", ran: 5 * ms},
		4:  {comm: "gone", start: "4", ran: 1 * ms},
		5:  {comm: "old", start: "5", ran: 50 * ms},
		7:  {comm: "bench", start: "7", ran: 900 * ms},
		8:  {comm: "idle", start: "8", ran: 3 * ms},
		9:  {comm: "tie-b", start: "9", ran: 0},
		10: {comm: "tie-a", start: "10", ran: 0},
		11: {comm: "kworker/1:2-events", start: "11", ran: 400 * ms},
	}
	after := procTimes{
		1:  {comm: "agent", start: "1", ran: 106 * ms},
		2:  {comm: "kworker/0:1-events", start: "2", ran: 12 * ms},
		3:  {comm: "kworker/0:1-events", start: "3", ran: 6 * ms},
		5:  {comm: "new", start: "900", ran: 2 * ms}, // pid 5 reused
		6:  {comm: "started", start: "901", ran: 4 * ms},
		7:  {comm: "bench", start: "7", ran: 2900 * ms},
		8:  {comm: "idle", start: "8", ran: 3 * ms},
		9:  {comm: "tie-b", start: "9", ran: ms},
		10: {comm: "tie-a", start: "10", ran: ms},
		11: {comm: "kworker/1:2-mm_percpu_wq", start: "11", ran: 401 * ms}, // renamed by its work
	}
	got := othersRan(before, after, 7)
	want := []TaskTime{{"agent", 6 * ms}, {"started", 4 * ms}, {"kworker/0:1-events", 3 * ms}, {"new", 2 * ms},
		{"kworker/1:2-mm_percpu_wq", ms}, {"tie-a", ms}, {"tie-b", ms}}
	if !slices.Equal(got, want) {
		t.Errorf("othersRan = %v, want %v", got, want)
	}
	if got := othersRan(nil, after, 7); got != nil {
		t.Errorf("othersRan without a first reading = %v, want nil", got)
	}
}

// TestMachineTaskTimes reads this process's own entry: its name, start time and run time.
func TestMachineTaskTimes(t *testing.T) {
	m := machineTaskTimes()
	if m == nil {
		t.Fatal("no process read: this kernel keeps no schedstat (the probe would name no process)")
	}
	self, ok := m[os.Getpid()]
	if !ok || self.comm == "" || self.start == "" || self.ran <= 0 {
		t.Errorf("this process's entry %+v (found %v)", self, ok)
	}
	if len(m) < 2 {
		t.Errorf("only %d processes read", len(m))
	}
}

// TestStallsText names every probed CPU and the processes that ran most.
func TestStallsText(t *testing.T) {
	ms := time.Millisecond
	text := stallsText([]CPUStalls{
		{CPU: 0, Window: 2 * time.Second, Count: 3, Over1ms: 1, Total: 4 * ms, Longest: 3 * ms},
		{CPU: 1, Window: 2 * time.Second},
	}, []TaskTime{{"agent", 9 * ms}, {"kdamond.0", 3 * ms}, {"a", ms}, {"b", ms}, {"c", ms}})
	for _, want := range []string{"CPU 0, 3 (1 over 1 ms), 4.00 ms in all (0.20% of the time), the longest 3.00 ms;",
		"CPU 1, 0 (0 over 1 ms)", "ran 15.00 ms: agent 9.00 ms, kdamond.0 3.00 ms, a 1.00 ms, b 1.00 ms."} {
		if !strings.Contains(text, want) {
			t.Errorf("stallsText lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, " c ") {
		t.Errorf("stallsText names more than four processes:\n%s", text)
	}
	if strings.Contains(text, "ran no process") {
		t.Errorf("stallsText counts gaps no process explains when the processes ran longer than the gaps:\n%s", text)
	}
	host := stallsText([]CPUStalls{{CPU: 0, Window: 2 * time.Second, Count: 2, Over1ms: 2, Total: 10 * ms, Longest: 8 * ms}},
		[]TaskTime{{"agent", 3 * ms}})
	if want := "The other 7.00 ms of the gaps ran no process of this machine's"; !strings.Contains(host, want) {
		t.Errorf("stallsText lacks %q:\n%s", want, host)
	}
}

// TestMeasureStalls feeds the stall probe a clock that jumps: it counts the gaps over the
// threshold, and only those.
func TestMeasureStalls(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	steps := []time.Duration{0, 50 * time.Microsecond, 250 * time.Microsecond, 10 * time.Microsecond, 3 * time.Millisecond,
		StallThreshold, 100 * time.Microsecond, 2 * time.Millisecond}
	now, i := t0, 0
	clock := func() time.Time {
		step := time.Microsecond
		if i < len(steps) {
			step = steps[i]
			i++
		}
		now = now.Add(step)
		return now
	}
	got := measureStalls(10*time.Millisecond, clock)
	want := CPUStalls{CPU: -1, Count: 3, Over1ms: 2, Total: 250*time.Microsecond + 5*time.Millisecond, Longest: 3 * time.Millisecond}
	got.Window = 0
	if got != want {
		t.Errorf("measureStalls = %+v, want %+v", got, want)
	}
}

// TestPacerNeverWakesEarly: the generator's pacer returns at or after the time asked for (how
// soon after is the machine's, and is what the bare baseline shows), and at once for a past time.
func TestPacerNeverWakesEarly(t *testing.T) {
	pace, err := newPacer()
	if err != nil {
		t.Fatal(err)
	}
	defer pace.close()
	for range 20 {
		due := time.Now().Add(300 * time.Microsecond)
		if err := pace.sleepUntil(due); err != nil {
			t.Fatal(err)
		}
		if early := time.Until(due); early > 0 {
			t.Fatalf("woke %s early", early)
		}
	}
	if err := pace.sleepUntil(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestEventPool checks that the bench sends what the receiver accepts: realistic sizes, unique
// ids, valid Stripe signatures, the pinned API version and test mode, including for events past
// the first pass over the pool.
func TestEventPool(t *testing.T) {
	pool, err := newEventPool(50)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	pool.stamp(1, now)
	if size := pool.avgSize(); size < 1500 || size > 3000 {
		t.Errorf("average payload is %d B, want 1.5–3 KB", size)
	}
	ids := make([]string, 0, 120)
	for k := range int64(120) { // more than two passes
		body, sig := pool.event(1, k, now)
		ev, err := webhook.ConstructEvent(body, sig, benchSigningSecret)
		if err != nil {
			t.Fatalf("event %d: %v", k, err)
		}
		if ev.APIVersion != stripe.APIVersion || ev.Livemode || ev.Type != "payment_intent.succeeded" || len(ev.ID) != eventIDLen {
			t.Fatalf("event %d: api_version %q, livemode %t, type %q, id %q", k, ev.APIVersion, ev.Livemode, ev.Type, ev.ID)
		}
		var pi stripe.PaymentIntent
		if err := json.Unmarshal(ev.Data.Raw, &pi); err != nil || pi.Amount <= 0 || pi.Metadata["patient_id"] == "" {
			t.Fatalf("event %d: data.object %v: %+v", k, err, pi)
		}
		ids = append(ids, ev.ID)
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != 120 {
		t.Error("event ids repeat")
	}
	// A pre-signature about to leave the receiver's tolerance is replaced by a fresh one.
	body, sig := pool.event(1, 0, now.Add(resignAfter))
	if _, err := webhook.ConstructEventWithOptions(body, sig, benchSigningSecret,
		webhook.ConstructEventOptions{IgnoreTolerance: true}); err != nil || sig == pool.sigs[0] {
		t.Errorf("late event: %v (re-signed: %t)", err, sig != pool.sigs[0])
	}
}

func TestNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(i))
	}
	for _, tc := range []struct {
		values []time.Duration
		p      int
		want   time.Duration
	}{
		{nil, 50, 0},
		{d[:1], 99, 1},
		{d[:2], 50, 1},
		{d[:100], 50, 50},
		{d[:100], 99, 99},
		{d, 99, 198},
		{d, 100, 200},
	} {
		if got := nearestRank(tc.values, tc.p); got != tc.want {
			t.Errorf("nearestRank(%d values, %d) = %d, want %d", len(tc.values), tc.p, got, tc.want)
		}
	}
}

func TestParseCPUList(t *testing.T) {
	got, err := parseCPUList("0-2,5,8-9")
	if err != nil || !slices.Equal(got, []int{0, 1, 2, 5, 8, 9}) {
		t.Errorf("parseCPUList = %v, %v", got, err)
	}
	if _, err := parseCPUList("3-1"); err == nil {
		t.Error("parseCPUList accepted 3-1")
	}
}

// TestPauseGCStopsCollection allocates well past the heap goal while the collector is paused
// and sees no cycle; restoring brings back the GC percent that was set.
func TestPauseGCStopsCollection(t *testing.T) {
	cycles := func() uint64 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return uint64(m.NumGC)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	restore := pauseGC()
	before := cycles()
	var keep [][]byte
	for i := range 256 { // 256 MiB of garbage, 1 MiB kept at a time
		b := make([]byte, 1<<20)
		b[i%len(b)] = byte(i)
		keep = append(keep[:0], b)
	}
	after := cycles()
	restore()
	if after != before {
		t.Errorf("%d collections while paused", after-before)
	}
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("GC percent after restore = %d, want 150", got)
	}
	_ = keep
}
