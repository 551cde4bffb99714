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

// A clinic's cost: what one receiver process uses idle, at realistic clinic loads and with its
// dedup memory full, measured from /proc and its own /metrics, to size the pods' requests.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/clinicpay/stripe-operator/internal/receiver"
)

// ReceiverCostConfig configures RunReceiverCost. Zero fields take the defaults named below.
type ReceiverCostConfig struct {
	// ReceiverBin is the path of the built cmd/receiver binary. Required.
	ReceiverBin string
	// Idle is how long the idle receiver is watched; default 30 s.
	Idle time.Duration
	// Load is how long each rate of Rates is sent; default 15 s.
	Load time.Duration
	// Rates are the paced loads in events per second; default 1, 10 and 100.
	Rates []float64
	// Cores is the receiver's GOMAXPROCS; default 2. Nothing is pinned: a pod without a CPU
	// limit sees the node's cores.
	Cores int
	// QuietWait is as in ReceiverConfig.
	QuietWait time.Duration
}

// CostPhase is what the receiver used during one phase.
type CostPhase struct {
	// Rate is the paced load in events per second; 0 for the idle phase.
	Rate float64
	// Window is the phase's wall time.
	Window time.Duration
	// Sent, Acked and Errors count the events posted, answered 2xx, and refused or failed.
	Sent, Acked, Errors int
	// Millicores is the receiver's CPU time (procCPUTime) over Window.
	Millicores float64
	// RSS is VmRSS at the end of the phase; PeakRSS is VmHWM (the process's high-water mark so far).
	RSS, PeakRSS uint64
	// HeapInuse is go_memstats_heap_inuse_bytes at the end of the phase.
	HeapInuse uint64
	// IDsHeld is how many event ids the dedup memory holds at the end: every event relayed so
	// far, up to its capacity.
	IDsHeld int
	// P50 and P99 are the acknowledged requests' latencies.
	P50, P99 time.Duration
}

// ReceiverCostResult is RunReceiverCost's report.
type ReceiverCostResult struct {
	// MachineBusy and QuietWait are as in ReceiverResult.
	MachineBusy float64
	QuietWait   time.Duration
	// Phases are idle, then each rate of the config, then the dedup fill (Rate < 0: as fast as
	// the senders go).
	Phases []CostPhase
	// DedupCapacity is the receiver's default number of remembered event ids.
	DedupCapacity int
	// BytesPerID is the heap's growth per remembered id, measured in a second receiver process
	// run with GOGC=costGOGC (so its allocated heap stays within a few percent of the live heap):
	// heap allocated after costWarmup events, and again after DedupCapacity more. DedupFull is
	// BytesPerID times DedupCapacity.
	BytesPerID            float64
	DedupFull             uint64
	HeapWarm, HeapFullDup uint64
	// DedupEvents counts the events the second process acknowledged.
	DedupEvents int
	// SinkCount and SinkDuplicates check that every acknowledged event was relayed once.
	SinkCount, SinkDuplicates int
	Cores                     int
	ProbeEvery                time.Duration
	PayloadBytes              int
}

// Defaults for zero ReceiverCostConfig fields, and the kubelet's probe period of the receiver
// Deployment (internal/controller's receiverDeployment: readiness and liveness every 5 s).
const (
	defaultCostIdle  = 30 * time.Second
	defaultCostLoad  = 15 * time.Second
	costProbePeriod  = 5 * time.Second
	costFillSenders  = 8
	costPayloads     = 2000
	costWarmup       = 1000 // events sent before the dedup accounting's first heap reading
	costGOGC         = 5    // the heap goal, and so the allocated heap, stays within 5% above the live heap
	clockTicksPerSec = 100  // USER_HZ, the unit of /proc/<pid>/stat's utime and stime on Linux
)

// RunReceiverCost runs one receiver process through the phases a clinic's pod sees: idle with
// the kubelet's probes, paced loads relayed to a local sink, and enough distinct events to fill
// its dedup memory. The probes run throughout, as they do in a pod.
func RunReceiverCost(ctx context.Context, cfg ReceiverCostConfig) (ReceiverCostResult, error) {
	if cfg.ReceiverBin == "" {
		return ReceiverCostResult{}, errors.New("bench: ReceiverCostConfig.ReceiverBin is required")
	}
	cfg.Idle = positiveOr(cfg.Idle, defaultCostIdle)
	cfg.Load = positiveOr(cfg.Load, defaultCostLoad)
	cfg.Cores = positiveOr(cfg.Cores, 2)
	if len(cfg.Rates) == 0 {
		cfg.Rates = []float64{1, 10, 100}
	}
	dir, err := os.MkdirTemp("", "receiver-cost-")
	if err != nil {
		return ReceiverCostResult{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	secretFile := dir + "/signingSecret"
	if err := os.WriteFile(secretFile, []byte(benchSigningSecret+"\n"), 0o600); err != nil {
		return ReceiverCostResult{}, err
	}
	pool, err := newEventPool(costPayloads)
	if err != nil {
		return ReceiverCostResult{}, err
	}
	busy := waitQuiet(ctx, cfg.QuietWait)
	sink, err := startNoopSink()
	if err != nil {
		return ReceiverCostResult{}, err
	}
	defer sink.close()
	proc, err := startReceiverProc(ctx, cfg.ReceiverBin, "", nil, cfg.Cores, secretFile, sink.url(), dir+"/receiver-cost.log")
	if err != nil {
		return ReceiverCostResult{}, err
	}
	defer func() { _ = proc.stop() }()
	res := ReceiverCostResult{DedupCapacity: receiver.DefaultDedupCapacity, Cores: cfg.Cores, ProbeEvery: costProbePeriod,
		PayloadBytes: pool.avgSize(), MachineBusy: busy, QuietWait: cfg.QuietWait}

	probeCtx, stopProbes := context.WithCancel(ctx)
	probesDone := make(chan struct{})
	go func() { defer close(probesDone); probe(probeCtx, proc.opsURL) }()
	defer func() { stopProbes(); <-probesDone }()

	c := costMeter{pid: proc.cmd.Process.Pid, metrics: proc.opsURL + "/metrics", sink: sink}
	phase, err := c.measure(ctx, 0, cfg.Idle, func(context.Context) driveStats { return sleepFor(ctx, cfg.Idle) })
	if err != nil {
		return res, err
	}
	res.Phases = append(res.Phases, phase)
	for i, rate := range cfg.Rates {
		run := 10 + i // event ids distinct from every other phase's
		pool.stamp(run, time.Now())
		phase, err := c.measure(ctx, rate, cfg.Load, func(ctx context.Context) driveStats {
			return paced(ctx, proc.webhookURL, pool, run, rate, cfg.Load)
		})
		if err != nil {
			return res, err
		}
		res.Phases = append(res.Phases, phase)
	}
	// Fill: more distinct events than the memory holds, so it ends full whatever came before.
	const fillRun = 20
	pool.stamp(fillRun, time.Now())
	fill, err := c.measure(ctx, -1, 0, func(ctx context.Context) driveStats {
		return driveN(ctx, proc.webhookURL, pool, fillRun, costFillSenders, res.DedupCapacity)
	})
	if err != nil {
		return res, err
	}
	res.Phases = append(res.Phases, fill)
	stopProbes()
	<-probesDone
	if err := proc.stop(); err != nil {
		return res, err
	}
	if err := dedupCost(ctx, cfg, &res, pool, secretFile, sink, dir); err != nil {
		return res, err
	}
	res.SinkCount, res.SinkDuplicates = sink.counts()
	return res, nil
}

// dedupCost measures what a remembered event id costs on the heap, in a fresh receiver whose
// GOGC keeps the allocated heap close to the live heap: the heap after costWarmup events (every
// buffer and connection warmed up, costWarmup ids held), then after DedupCapacity more (full).
func dedupCost(ctx context.Context, cfg ReceiverCostConfig, res *ReceiverCostResult, pool *eventPool, secretFile string,
	sink *noopSink, dir string) error {
	proc, err := startReceiverProc(ctx, cfg.ReceiverBin, "", nil, cfg.Cores, secretFile, sink.url(), dir+"/receiver-dedup.log",
		"GOGC="+strconv.Itoa(costGOGC))
	if err != nil {
		return err
	}
	defer func() { _ = proc.stop() }()
	heap := func() (uint64, error) {
		m, err := scrape(ctx, proc.opsURL+"/metrics", "go_memstats_heap_alloc_bytes")
		if err != nil {
			return 0, err
		}
		return uint64(m[0]), nil
	}
	const run = 30
	pool.stamp(run, time.Now())
	warm := driveN(ctx, proc.webhookURL, pool, run, costFillSenders, costWarmup)
	if res.HeapWarm, err = heap(); err != nil {
		return err
	}
	const fullRun = 31
	pool.stamp(fullRun, time.Now())
	full := driveN(ctx, proc.webhookURL, pool, fullRun, costFillSenders, res.DedupCapacity)
	if res.HeapFullDup, err = heap(); err != nil {
		return err
	}
	if n := warm.errors + full.errors; n > 0 {
		return fmt.Errorf("bench: dedup cost: %d events refused, first: %s%s", n, warm.firstError, full.firstError)
	}
	res.DedupEvents = len(warm.latencies) + len(full.latencies)
	added := min(costWarmup+res.DedupCapacity, res.DedupCapacity) - costWarmup
	if res.HeapFullDup > res.HeapWarm {
		res.BytesPerID = float64(res.HeapFullDup-res.HeapWarm) / float64(added)
		res.DedupFull = uint64(res.BytesPerID * float64(res.DedupCapacity))
	}
	return proc.stop()
}

func positiveOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// costMeter reads one receiver process's CPU time and memory.
type costMeter struct {
	pid     int
	metrics string
	sink    *noopSink
}

// measure runs load and reports what the receiver used meanwhile. rate and window describe the
// phase (window 0: as long as load takes).
func (c costMeter) measure(ctx context.Context, rate float64, window time.Duration, load func(context.Context) driveStats) (CostPhase, error) {
	cpu0, err := procCPUTime(c.pid)
	if err != nil {
		return CostPhase{}, err
	}
	st := load(ctx)
	cpu1, err := procCPUTime(c.pid)
	if err != nil {
		return CostPhase{}, err
	}
	if err := ctx.Err(); err != nil {
		return CostPhase{}, err
	}
	out := CostPhase{Rate: rate, Window: st.elapsed, Sent: len(st.latencies) + st.errors, Acked: len(st.latencies), Errors: st.errors}
	out.P50, out.P99, _ = st.spread()
	if window > 0 && out.Window < window {
		out.Window = window
	}
	out.Millicores = 1000 * (cpu1 - cpu0).Seconds() / out.Window.Seconds()
	out.RSS, out.PeakRSS, err = procRSS(c.pid)
	if err != nil {
		return out, err
	}
	m, err := scrape(ctx, c.metrics, "go_memstats_heap_inuse_bytes")
	if err != nil {
		return out, err
	}
	out.HeapInuse = uint64(m[0])
	relayed, _ := c.sink.counts()
	out.IDsHeld = min(relayed, receiver.DefaultDedupCapacity)
	return out, nil
}

// sleepFor waits d (the idle phase: only the probes talk to the receiver).
func sleepFor(ctx context.Context, d time.Duration) driveStats {
	start := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	return driveStats{elapsed: time.Since(start)}
}

// probe asks /readyz and /healthz every costProbePeriod, as the kubelet does, until ctx ends.
func probe(ctx context.Context, opsURL string) {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	tick := time.NewTicker(costProbePeriod)
	defer tick.Stop()
	for {
		for _, path := range []string{"/readyz", "/healthz"} {
			if req, err := http.NewRequestWithContext(ctx, http.MethodGet, opsURL+path, nil); err == nil {
				if resp, err := client.Do(req); err == nil {
					_ = resp.Body.Close()
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// paced posts rate events per second to url for dur, each on its own schedule (an open loop, as
// Stripe sends: a slow answer does not delay the next event), and waits for the last answer.
func paced(ctx context.Context, url string, pool *eventPool, run int, rate float64, dur time.Duration) driveStats {
	client, done := costClient()
	defer done()
	var (
		mu sync.Mutex
		st driveStats
		wg sync.WaitGroup
	)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for k := int64(0); ; k++ {
		due := start.Add(time.Duration(k) * interval)
		if !due.Before(start.Add(dur)) {
			break
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			st.elapsed = time.Since(start)
			return st
		case <-time.After(time.Until(due)):
		}
		body, sig := pool.event(run, k, time.Now())
		wg.Go(func() {
			d, err := postEvent(ctx, client, url, body, sig)
			mu.Lock()
			defer mu.Unlock()
			st.record(d, err)
		})
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	slices.Sort(st.latencies)
	return st
}

// driveN posts n distinct events from conc senders as fast as the receiver answers.
func driveN(ctx context.Context, url string, pool *eventPool, run, conc, n int) driveStats {
	client, done := costClient()
	defer done()
	var (
		mu   sync.Mutex
		st   driveStats
		wg   sync.WaitGroup
		next = make(chan int64)
	)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for k := range next {
				body, sig := pool.event(run, k, time.Now())
				d, err := postEvent(ctx, client, url, body, sig)
				mu.Lock()
				st.record(d, err)
				mu.Unlock()
			}
		})
	}
	for k := range int64(n) {
		if ctx.Err() != nil {
			break
		}
		next <- k
	}
	close(next)
	wg.Wait()
	st.elapsed = time.Since(start)
	slices.Sort(st.latencies)
	return st
}

func (st *driveStats) record(d time.Duration, err error) {
	if err != nil {
		if st.errors++; st.firstError == "" {
			st.firstError = err.Error()
		}
		return
	}
	st.latencies = append(st.latencies, d)
}

func costClient() (*http.Client, func()) {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: costFillSenders, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, tr.CloseIdleConnections
}

// method describes how the cost figures were measured.
func (r ReceiverCostResult) method() string {
	return fmt.Sprintf("One receiver process (the real binary, GOMAXPROCS=%d, nothing pinned, no GOMEMLIMIT) runs through the phases below "+
		"in order, relaying to a no-op HTTP sink on loopback; /readyz and /healthz are asked every %s throughout, as the "+
		"kubelet's probes do. Paced phases send distinct signed payment_intent.succeeded events (~%d B) on a fixed schedule "+
		"(open loop); the fill phase sends %d more distinct events from %d senders as fast as they are answered, so the dedup "+
		"memory (capacity %d ids per replica) ends full. CPU is the run time of the receiver's threads from "+
		"/proc/<pid>/task/*/schedstat (nanoseconds) over the phase; RSS is VmRSS and peak RSS VmHWM from /proc/<pid>/status, "+
		"heap in use comes from the receiver's /metrics, read once at the end of each phase. "+
		"A remembered id's cost is measured in a second receiver run with GOGC=%d, whose "+
		"allocated heap stays within %d%% above the live heap: go_memstats_heap_alloc_bytes after %d events, then after %d more.",
		r.Cores, r.ProbeEvery, r.PayloadBytes, r.DedupCapacity, costFillSenders, r.DedupCapacity, costGOGC, costGOGC, costWarmup, r.DedupCapacity)
}
