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
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/receiver"
)

// ReceiverConfig configures RunReceiver. Zero numeric fields take the defaults named below.
type ReceiverConfig struct {
	// ReceiverBin is the path of the built cmd/receiver binary (bin/receiver). Required.
	ReceiverBin string
	// Duration is the measuring time of each configuration and of the limit; default 5 s.
	Duration time.Duration
	// Concurrency is the number of concurrent senders, each on its own keep-alive connection;
	// default 16.
	Concurrency int
	// Payloads is the number of distinct events prepared and signed up front; default 20,000.
	// When a run sends more events than that, the later ones reuse a payload under a new event
	// id, re-signed by the sender, so no event is ever a duplicate.
	Payloads int
	// QuietWait is how long the section waits at most, before it starts, for the machine's CPUs
	// to be busy less than 10% over a second; 0 only measures one second.
	QuietWait time.Duration
}

// ReceiverRun is one configuration's figures.
type ReceiverRun struct {
	// Cores is the number of CPUs the receiver process may use (GOMAXPROCS, and its CPU
	// affinity when taskset is available).
	Cores int
	// Events is the number of events the receiver acknowledged with 2xx.
	Events int
	// PerSecond is Events over the run's wall time.
	PerSecond float64
	// P50 and P99 are nearest-rank percentiles of the acknowledged requests' latencies, as the
	// sender saw them (request written to response read).
	P50, P99 time.Duration
	// Errors counts non-2xx answers and transport errors; it must be 0.
	Errors int
	// ErrorSample describes the first error, when Errors > 0.
	ErrorSample string
	// SinkCount is the number of relayed events the no-op sink received; it must equal Events
	// (each acknowledged event relayed exactly once).
	SinkCount int
	// SinkDuplicates counts Idempotency-Keys the sink received more than once; it must be 0.
	SinkDuplicates int
	// SinkConns is the number of connections the receiver opened to the sink: at most about
	// Concurrency when its relay keeps its connections alive.
	SinkConns int
	// CPUPerEvent is the receiver process's CPU time (user + system, start to exit) per
	// acknowledged event: unlike PerSecond, it barely moves when other work shares the machine.
	CPUPerEvent time.Duration
	// AllocsPerEvent and AllocBytesPerEvent are the receiver's heap allocations per acknowledged
	// event, and GCsPer1000 its GC cycles per 1,000 events, from its Go runtime metrics: the
	// figures behind its GC work, which no other load on the machine changes.
	AllocsPerEvent, AllocBytesPerEvent, GCsPer1000 float64
	// PeakRSS is the receiver's peak resident set size (VmHWM) at the end of the run, bytes.
	PeakRSS int64
	// CoresBusy is the receiver's CPU time over the run's wall time: close to Cores when the
	// receiver was the bottleneck, lower when it waited for the load generator or was preempted.
	CoresBusy float64
	// BenchCoresBusy is the same for the bench process (load generator and sink) during the run.
	BenchCoresBusy float64
	// SwitchesPerEvent is how many times, per acknowledged event, the receiver's threads gave up
	// their CPU (context switches, voluntary and involuntary, start to exit): what a receiver
	// pays for waking up, which its CPU per event includes.
	SwitchesPerEvent float64
}

// ReceiverResult is RunReceiver's report.
type ReceiverResult struct {
	// MachineBusy is the fraction of the machine's CPUs busy in the second before the section
	// started (-1: unknown), after waiting at most QuietWait for it to fall under 10%.
	MachineBusy float64
	QuietWait   time.Duration
	// Runs holds the 1-core run, then the 2-core run.
	Runs []ReceiverRun
	// LimitPerSec is what one goroutine achieves doing only the unavoidable work on the same
	// payloads: HMAC-SHA256 over "t.body", hex compare, and json.Unmarshal into stripe.Event
	// (what stripe-go's webhook.ConstructEvent decodes).
	LimitPerSec float64
	// LimitCPUPerEvent is the limit's CPU time per event (the bench process's, garbage collection
	// included): unlike LimitPerSec it does not count what else the machine ran meanwhile.
	LimitCPUPerEvent time.Duration
	// Ratio1Core is Runs[0].PerSecond / LimitPerSec; the target is at least 0.5.
	Ratio1Core float64
	// CPURatio1Core is LimitCPUPerEvent / Runs[0].CPUPerEvent: the same ratio by events per
	// CPU-second, which sharing the machine with other work disturbs far less.
	CPURatio1Core float64
	// Latency is the open-loop run at half of Runs[0].PerSecond; nil when it was not run.
	Latency *LatencyRun
	// PayloadBytes is the average size of an event body.
	PayloadBytes int
	// Method says in a few sentences how the figures were measured.
	Method string
}

// Defaults for zero ReceiverConfig fields.
const (
	defaultReceiverDuration    = 5 * time.Second
	defaultReceiverConcurrency = 16
	defaultReceiverPayloads    = 20000
)

const (
	// benchClinicID is the clinic the bench's receiver serves.
	benchClinicID = "bench-clinic"
	// benchSigningSecret signs the bench's events; it is a throwaway value.
	benchSigningSecret = "whsec_benchBENCHbench0123456789abcdefABCD"
	// receiverStartTimeout bounds the wait for a started receiver's /readyz.
	receiverStartTimeout = 15 * time.Second
	// receiverStopGrace is how long a stopped receiver gets between SIGTERM and SIGKILL.
	receiverStopGrace = 20 * time.Second
	// resignAfter is the age after which a pre-signed header is replaced by a fresh signature:
	// the receiver refuses signatures older than receiver.SignatureTolerance (300 s).
	resignAfter = receiver.SignatureTolerance - time.Minute
)

// RunReceiver measures the real receiver binary: events/s and latency for verify + dedup + relay
// to a local no-op HTTP sink, with the receiver on 1 and then 2 cores, and the single-core limit
// (HMAC-SHA256 plus JSON decode alone) of the same payloads. Errors and lost or duplicated relays
// are reported in the result, not returned: the returned error means the bench could not run.
//
// When taskset is available it changes this process's CPU affinity while it runs (restoring it
// after each phase), so nothing else should be measured in this process at the same time.
func RunReceiver(ctx context.Context, cfg ReceiverConfig) (ReceiverResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return ReceiverResult{}, err
	}
	dir, err := os.MkdirTemp("", "receiver-bench-")
	if err != nil {
		return ReceiverResult{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	secretFile := dir + "/signingSecret"
	if err := os.WriteFile(secretFile, []byte(benchSigningSecret+"\n"), 0o600); err != nil {
		return ReceiverResult{}, err
	}
	pool, err := newEventPool(cfg.Payloads)
	if err != nil {
		return ReceiverResult{}, err
	}
	cpus := planCPUs()
	res := ReceiverResult{PayloadBytes: pool.avgSize(), MachineBusy: waitQuiet(ctx, cfg.QuietWait), QuietWait: cfg.QuietWait}
	for run, cores := range []int{1, 2} {
		r, err := runReceiverOnce(ctx, cfg, cpus, pool, run, cores, secretFile, dir)
		if err != nil {
			return res, fmt.Errorf("receiver on %d core(s): %w", cores, err)
		}
		res.Runs = append(res.Runs, r)
	}
	limitCPU, err := cpus.pinSelf(1)
	if err != nil {
		return res, err
	}
	res.LimitPerSec, res.LimitCPUPerEvent, err = measureLimit(ctx, pool, cfg.Duration)
	limitCPU.restore()
	if err != nil {
		return res, err
	}
	res.Ratio1Core = res.Runs[0].PerSecond / res.LimitPerSec
	if res.Runs[0].CPUPerEvent > 0 {
		res.CPURatio1Core = float64(res.LimitCPUPerEvent) / float64(res.Runs[0].CPUPerEvent)
	}
	// Half the saturated rate of this run, on the same placement as the 1-core run; run 2
	// gives its events ids distinct from the throughput runs'.
	lat, err := runLatency(ctx, cfg, cpus, pool, 2, res.Runs[0].PerSecond/2, secretFile, dir)
	if err != nil {
		return res, fmt.Errorf("latency at half load: %w", err)
	}
	res.Latency = &lat
	res.Method = method(cfg, cpus, res.PayloadBytes)
	return res, nil
}

func (c ReceiverConfig) withDefaults() (ReceiverConfig, error) {
	if c.ReceiverBin == "" {
		return c, errors.New("bench: ReceiverConfig.ReceiverBin is required (build it with: go build -o bin/receiver ./cmd/receiver)")
	}
	if _, err := os.Stat(c.ReceiverBin); err != nil {
		return c, fmt.Errorf("bench: receiver binary: %w", err)
	}
	if c.Duration <= 0 {
		c.Duration = defaultReceiverDuration
	}
	if c.Concurrency <= 0 {
		c.Concurrency = defaultReceiverConcurrency
	}
	if c.Payloads <= 0 {
		c.Payloads = defaultReceiverPayloads
	}
	return c, nil
}

// runReceiverOnce starts a sink and a receiver restricted to cores CPUs, drives them for
// cfg.Duration and stops both. run distinguishes the event ids of successive runs.
func runReceiverOnce(ctx context.Context, cfg ReceiverConfig, cpus cpuPlan, pool *eventPool, run, cores int,
	secretFile, dir string) (ReceiverRun, error) {
	out := ReceiverRun{Cores: cores}
	sink, err := startNoopSink()
	if err != nil {
		return out, err
	}
	defer sink.close()
	proc, err := startReceiverProc(ctx, cfg.ReceiverBin, cpus.taskset, cpus.receiverCPUs(cores), cores, secretFile,
		sink.url(), fmt.Sprintf("%s/receiver-%dcore.log", dir, cores))
	if err != nil {
		return out, err
	}
	defer func() { _ = proc.stop() }() // a no-op after the explicit stop below
	// Keep the load generator and the sink off the receiver's CPUs when there are others.
	pin, err := cpus.pinSelfOutside(cores)
	if err != nil {
		return out, err
	}
	pool.stamp(run, time.Now())
	allocsBefore, err := proc.allocs(ctx)
	if err != nil {
		return out, err
	}
	benchCPU := selfCPUTime()
	st := drive(ctx, proc.webhookURL, pool, run, cfg.Concurrency, cfg.Duration)
	out.BenchCoresBusy = (selfCPUTime() - benchCPU).Seconds() / st.elapsed.Seconds()
	pin.restore()
	allocsAfter, err := proc.allocs(ctx)
	if err != nil {
		return out, err
	}
	out.PeakRSS = proc.peakRSS()
	if n := float64(len(st.latencies)); n > 0 {
		out.AllocsPerEvent = (allocsAfter.mallocs - allocsBefore.mallocs) / n
		out.AllocBytesPerEvent = (allocsAfter.bytes - allocsBefore.bytes) / n
		out.GCsPer1000 = 1000 * (allocsAfter.gcs - allocsBefore.gcs) / n
	}
	if err := proc.stop(); err != nil {
		return out, err
	}
	out.Events, out.Errors, out.ErrorSample = len(st.latencies), st.errors, st.firstError
	out.PerSecond = float64(out.Events) / st.elapsed.Seconds()
	out.P50, out.P99, _ = st.spread()
	out.SinkCount, out.SinkDuplicates = sink.counts()
	out.SinkConns = sink.connections()
	out.CPUPerEvent, out.CoresBusy, out.SwitchesPerEvent = proc.perEvent(out.Events, st.elapsed)
	return out, ctx.Err()
}

// method describes how the figures were measured, including what was and was not pinned.
func method(cfg ReceiverConfig, cpus cpuPlan, payloadBytes int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Closed loop: %d sender goroutines in the bench process POST distinct pre-signed "+
		"payment_intent.succeeded events (~%d B, pretty-printed, a new event id each, so none is deduplicated) "+
		"over keep-alive HTTP/1.1 on 127.0.0.1 to the real receiver binary, a fresh process per configuration "+
		"with GOMAXPROCS=cores, which verifies, deduplicates and relays each event to an in-process no-op HTTP sink "+
		"before answering; each configuration runs %s. ", cfg.Concurrency, payloadBytes, cfg.Duration)
	if cpus.taskset == "" {
		b.WriteString("Nothing is pinned (taskset is absent or not permitted, or fewer than 2 CPUs are available): " +
			"the generator and sink compete with the receiver for the CPUs in both runs; ")
	} else {
		fmt.Fprintf(&b, "The receiver is pinned with taskset to CPU %s (1 core) and %s (2 cores); ",
			cpuList(cpus.receiverCPUs(1)), cpuList(cpus.receiverCPUs(2)))
		for _, cores := range []int{1, 2} {
			if rest := cpus.outside(cores); len(rest) > 0 {
				fmt.Fprintf(&b, "during the %d-core run the bench process (generator and sink) is pinned to CPU %s, its GOMAXPROCS "+
					"set to match; ", cores, cpuList(rest))
			} else {
				fmt.Fprintf(&b, "during the %d-core run the bench process (generator and sink) shares the receiver's CPUs and competes with it; ", cores)
			}
		}
	}
	b.WriteString("latency is per request at saturation, so it includes queueing (about concurrency / throughput). " +
		"CoresBusy (receiver CPU time over wall time) below the core count means the receiver was preempted by other " +
		"work or waited for the generator; CPUPerEvent is the figure a noisy machine disturbs least. ")
	b.WriteString("Allocations and GC cycles per event come from the receiver's own Go runtime metrics, and connections " +
		"from the sink's count of those the receiver opened. Context switches per event are the times the receiver's threads " +
		"gave up their CPU, waiting or preempted (getrusage's nvcsw + nivcsw, start to exit): a saturated receiver always has " +
		"a next request and barely switches, one that idles between events wakes for each (part of its CPU per event). ")
	fmt.Fprintf(&b,
		"Limit: one goroutine doing HMAC-SHA256 of \"t.body\", hex compare and json.Unmarshal into stripe.Event over the same payloads for %s "+
			"(its CPU time per event is the bench process's CPU time over the loop, its garbage collection included)",
		cfg.Duration)
	if cpus.taskset != "" {
		fmt.Fprintf(&b, ", the bench process pinned to CPU %s", cpuList(cpus.receiverCPUs(1)))
	}
	b.WriteString(".")
	return b.String()
}

// ---- Events ----

// driveStats is what the senders of one run observed.
type driveStats struct {
	latencies  []time.Duration // of acknowledged (2xx) requests, sorted
	errors     int
	firstError string
	elapsed    time.Duration
}

// drive posts events to url from conc goroutines for dur, each event once, and records every
// acknowledged request's latency.
func drive(ctx context.Context, url string, pool *eventPool, run, conc int, dur time.Duration) driveStats {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, whatever the environment says
		MaxIdleConns:        conc,
		MaxIdleConnsPerHost: conc,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	// Stripe waits up to 30 s for an answer; a request taking longer is an error here too.
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var (
		next       atomic.Int64
		mu         sync.Mutex
		st         driveStats
		wg         sync.WaitGroup
		perSender  = make([][]time.Duration, conc)
		capPerSend = 2*len(pool.bodies)/conc + 16
	)
	start := time.Now()
	deadline := start.Add(dur)
	for i := range conc {
		// Preallocated so that recording a latency does not allocate in the measured loop.
		lat := make([]time.Duration, 0, capPerSend)
		wg.Go(func() {
			defer func() { perSender[i] = lat }()
			for {
				now := time.Now()
				if !now.Before(deadline) || ctx.Err() != nil {
					return
				}
				body, sig := pool.event(run, next.Add(1)-1, now)
				d, err := postEvent(ctx, client, url, body, sig)
				if err != nil {
					mu.Lock()
					if st.errors++; st.firstError == "" {
						st.firstError = err.Error()
					}
					mu.Unlock()
					continue
				}
				lat = append(lat, d)
			}
		})
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	for _, l := range perSender {
		st.latencies = append(st.latencies, l...)
	}
	slices.Sort(st.latencies)
	return st
}

// postEvent delivers one event as Stripe does and returns the request's latency; a non-2xx
// answer is an error.
func postEvent(ctx context.Context, client *http.Client, url string, body []byte, sig string) (time.Duration, error) {
	return sendEvent(ctx, client, http.MethodPost, url, body, sig)
}

// sendEvent is postEvent with another method: the latency run's bare baseline sends the same
// requests as GETs to the receiver's /healthz.
func sendEvent(ctx context.Context, client *http.Client, method, url string, body []byte, sig string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header["Content-Type"] = []string{"application/json; charset=utf-8"}
	req.Header["User-Agent"] = []string{"Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
	req.Header["Stripe-Signature"] = []string{sig}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	d := time.Since(start)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return d, fmt.Errorf("receiver answered %d: %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	return d, nil
}

// spread returns the acknowledged requests' p50, p99 and slowest latency.
func (d driveStats) spread() (p50, p99, slowest time.Duration) {
	if n := len(d.latencies); n > 0 {
		slowest = d.latencies[n-1]
	}
	return nearestRank(d.latencies, 50), nearestRank(d.latencies, 99), slowest
}

// nearestRank returns the p-th percentile of sorted by the nearest-rank method: the smallest
// value with at least p% of the values at or below it; 0 for no values.
func nearestRank(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*p + 99) / 100 // ceil(n·p/100), 1-based
	return sorted[max(rank, 1)-1]
}

// ---- The limit ----

// measureLimit runs, on this goroutine for dur, the work no receiver can avoid on the pool's
// events: HMAC-SHA256 of "t.body" with the signing secret, a constant-time compare with the
// header's hex v1, and decoding the body into stripe.Event as webhook.ConstructEvent does. It
// returns events per second of wall time and the CPU time per event of the thread doing it.
func measureLimit(ctx context.Context, pool *eventPool, dur time.Duration) (float64, time.Duration, error) {
	type signed struct {
		tsDot []byte // "<t>."
		v1    []byte // the header's hex signature
	}
	heads := make([]signed, len(pool.sigs))
	for i, sig := range pool.sigs {
		t, v1, ok := strings.Cut(strings.TrimPrefix(sig, "t="), ",v1=")
		if !ok {
			return 0, 0, fmt.Errorf("bench: unexpected signature header %q", sig)
		}
		heads[i] = signed{tsDot: []byte(t + "."), v1: []byte(v1)}
	}
	var sum [sha256.Size]byte
	var hexSum [2 * sha256.Size]byte
	n := 0
	var elapsed time.Duration
	// This process's CPU time, not the thread's: it includes the garbage collection the decode
	// causes, as the receiver's CPU time includes its own. Nothing else runs in it meanwhile.
	cpuBefore := selfCPUTime()
	err := func() error {
		start := time.Now()
		for ; ; n++ {
			if n%64 == 0 && (time.Since(start) >= dur || ctx.Err() != nil) {
				break
			}
			i := n % len(pool.bodies)
			mac := hmac.New(sha256.New, pool.key)
			mac.Write(heads[i].tsDot)
			mac.Write(pool.bodies[i])
			hex.Encode(hexSum[:], mac.Sum(sum[:0]))
			if subtle.ConstantTimeCompare(hexSum[:], heads[i].v1) != 1 {
				return fmt.Errorf("bench: limit: signature of event %d does not verify", i)
			}
			var ev stripe.Event
			if err := json.Unmarshal(pool.bodies[i], &ev); err != nil || ev.ID == "" {
				return fmt.Errorf("bench: limit: decoding event %d: %v", i, err)
			}
		}
		elapsed = time.Since(start)
		return ctx.Err()
	}()
	cpu := selfCPUTime() - cpuBefore
	if err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, errors.New("bench: limit: no event measured")
	}
	return float64(n) / elapsed.Seconds(), cpu / time.Duration(n), nil
}

// ---- No-op sink ----
