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

// The receiver bench's latency run: an open-loop generator at a fixed rate, so that a slow
// answer cannot hold back the requests scheduled after it (no coordinated omission).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// LatencyRun is the open-loop run's figures: the receiver on 1 core, events sent on a fixed
// schedule, each latency measured from the event's scheduled send time to its answer.
type LatencyRun struct {
	// Rate is the scheduled rate, events per second: half the 1-core saturated throughput of
	// the same bench run.
	Rate float64
	// Sent is the number of events scheduled and sent.
	Sent int
	// Events is the number acknowledged with 2xx; Errors the rest (non-2xx and transport
	// errors), ErrorSample the first one.
	Events, Errors int
	ErrorSample    string
	// P50, P99 and Max are nearest-rank percentiles of the acknowledged events' latencies,
	// from the scheduled send time to the answer read.
	P50, P99, Max time.Duration
	// Late is how many events the generator sent more than 1 ms after their scheduled time
	// (it was descheduled); their wait counts in their latency. LateMax is the furthest behind
	// schedule one was sent: a stall of the bench's own CPU, or of the whole machine, that long.
	Late    int
	LateMax time.Duration
	// WarmupEvents were sent at the same rate in the latencyWarmup before the measured events
	// (as many of them acknowledged as WarmupAcked), WarmupMax the slowest of them: they open the
	// connections a steady sender keeps (Stripe does), and are not in the percentiles above.
	WarmupEvents, WarmupAcked int
	WarmupMax                 time.Duration
	// SinkCount and SinkDuplicates are as in ReceiverRun.
	SinkCount, SinkDuplicates int
	// Conns is the number of connections the generator opened to the receiver, SinkConns the
	// number the receiver opened to the sink.
	Conns, SinkConns int
	// CPUPerEvent, CoresBusy and SwitchesPerEvent are the receiver's, as in ReceiverRun.
	CPUPerEvent      time.Duration
	CoresBusy        float64
	SwitchesPerEvent float64
	// RunDelay is how long the receiver's busiest thread (the one that ran its Go code) waited,
	// runnable, for its CPU during the run, warm-up included (schedstat); -1 when the kernel
	// does not tell. Its CPU running another process or another of the receiver's threads shows
	// here, and every event the receiver held waited with it.
	RunDelay time.Duration
	// Stalls is what a thread spinning on each CPU of the run (the receiver's, then the bench's)
	// saw, all at once, just before the run; Others what else ran on the machine meanwhile.
	Stalls []CPUStalls
	Others []TaskTime
	// Bare is the same load against a receiver's /healthz, after the run.
	Bare BareRun
}

// CPUStalls is what a thread spinning alone on one CPU saw: each gap longer than StallThreshold
// between two consecutive clock reads is time the CPU was taken away from it (another task on
// the machine, an interrupt, or in a VM the host running something else on the physical core). A
// stall freezes whatever runs on that CPU, so every event the receiver holds then, or is sent
// meanwhile, waits with it.
type CPUStalls struct {
	CPU            int           // -1: not pinned
	Window         time.Duration // how long it spun
	Count, Over1ms int           // stalls longer than StallThreshold, and than 1 ms
	Total, Longest time.Duration
}

// TaskTime is the CPU time a process (by its command name; threads of every process of that
// name summed) ran during the stall probe.
type TaskTime struct {
	Comm string
	Ran  time.Duration
}

// StallThreshold is the shortest gap measureStalls counts; reading the clock takes well under
// a microsecond.
const StallThreshold = 200 * time.Microsecond

// stallWindow is how long the stall probe spins before the latency run, at most.
const stallWindow = 2 * time.Second

// probeStalls spins one thread on each of cpus at once for window (one unpinned thread when cpus
// is empty) and reports each one's gaps, with the CPU time every other process on the machine
// ran meanwhile, the most first. Every CPU must be busy at once: a probe of the receiver's CPU
// alone saw no stall at all on this VM, because the machine's periodic work (its process agent,
// the kernel's DAMON reclaim) then ran on the idle other CPU, while during the run, with both
// CPUs busy, it took 2.5 to 6.5 ms at a time from one of them.
func probeStalls(cpus []int, window time.Duration) ([]CPUStalls, []TaskTime, error) {
	if len(cpus) == 0 {
		cpus = []int{-1}
	}
	// One P per spinning thread, or the spinners would wait for each other.
	if n := len(cpus); runtime.GOMAXPROCS(0) < n {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
	}
	before := machineTaskTimes()
	out := make([]CPUStalls, len(cpus))
	errs := make([]error, len(cpus))
	var wg sync.WaitGroup
	for i, cpu := range cpus {
		wg.Go(func() {
			// The thread stays locked to this goroutine to its end, so the runtime discards it
			// with its affinity rather than reusing it.
			runtime.LockOSThread()
			if cpu >= 0 {
				var set unix.CPUSet
				set.Set(cpu)
				if err := unix.SchedSetaffinity(0, &set); err != nil {
					errs[i] = fmt.Errorf("bench: stall probe: pinning a thread to CPU %d: %w", cpu, err)
					return
				}
			}
			out[i] = measureStalls(window, time.Now)
			out[i].CPU = cpu
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return out, othersRan(before, machineTaskTimes(), os.Getpid()), nil
}

// measureStalls spins on this goroutine for window, reading the clock (now), and reports the gaps.
func measureStalls(window time.Duration, now func() time.Time) CPUStalls {
	s := CPUStalls{CPU: -1}
	start := now()
	last := start
	for last.Sub(start) < window {
		now := now()
		if gap := now.Sub(last); gap > StallThreshold {
			s.Count++
			s.Total += gap
			s.Longest = max(s.Longest, gap)
			if gap > time.Millisecond {
				s.Over1ms++
			}
		}
		last = now
	}
	s.Window = last.Sub(start)
	return s
}

// procTimes is the run time of every process on the machine, by pid.
type procTimes map[int]procTime

// procTime is one process's run time, with its command name and start time (which tells a
// reused pid; a kernel worker's name changes with the work it does).
type procTime struct {
	comm  string
	start string // field 22 of /proc/<pid>/stat, clock ticks after boot
	ran   time.Duration
}

// machineTaskTimes reads the run time of every process's threads from /proc (kernel threads
// included); nil when the kernel keeps no schedstat.
func machineTaskTimes() procTimes {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	m := procTimes{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		threads := threadTimes(pid)
		comm, rest, err := procStat(pid)
		if threads == nil || err != nil || len(rest) < 20 {
			continue // gone meanwhile, or no schedstat
		}
		t := procTime{comm: comm, start: rest[19]} // field 22, the start time
		for _, th := range threads {
			t.ran += th[0]
		}
		m[pid] = t
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// othersRan is what every process but self ran between two readings, summed by command name (as
// the second reading has it), the most first; a process started meanwhile counts from zero, one
// gone is left out.
func othersRan(before, after procTimes, self int) []TaskTime {
	if before == nil || after == nil {
		return nil
	}
	byComm := map[string]time.Duration{}
	for pid, a := range after {
		if pid == self {
			continue
		}
		ran := a.ran
		if b, ok := before[pid]; ok && b.start == a.start {
			ran -= b.ran
		}
		if ran > 0 {
			byComm[a.comm] += ran
		}
	}
	out := make([]TaskTime, 0, len(byComm))
	for comm, ran := range byComm {
		out = append(out, TaskTime{Comm: comm, Ran: ran})
	}
	slices.SortFunc(out, func(x, y TaskTime) int {
		if c := cmp.Compare(y.Ran, x.Ran); c != 0 {
			return c
		}
		return strings.Compare(x.Comm, y.Comm)
	})
	return out
}

// latencyWarmup is how long events are sent at the run's rate before the measured ones. Without
// it the p99 of a 5 s run was the first 300 ms: up to 256 connections to the receiver and 64
// from it to the sink being opened while events already queued behind them.
const latencyWarmup = time.Second

// pacer sleeps with the kernel's timer precision. time.Sleep is not precise enough for a
// schedule of one event every few hundred microseconds: when the Go runtime has nothing else to
// run it waits for its next timer in epoll_wait, whose timeout is in whole milliseconds
// (runtime.netpoll rounds any wait under 1 ms up to 1 ms), so the generator slept up to 1 ms
// past an event's time, then sent the events due meanwhile at once, and their latencies (which
// run from the scheduled time) carried that error. A timerfd expires on time, and the runtime
// waits for it as for a socket, so the process's other goroutines (the sink) run meanwhile.
type pacer struct {
	fd   int
	file *os.File
}

func newPacer() (*pacer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("bench: timerfd_create: %w", err)
	}
	return &pacer{fd: fd, file: os.NewFile(uintptr(fd), "pacer")}, nil
}

// sleepUntil returns at due, or at once if it has passed.
func (p *pacer) sleepUntil(due time.Time) error {
	wait := time.Until(due)
	if wait <= 0 {
		return nil
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(wait.Nanoseconds())}
	if err := unix.TimerfdSettime(p.fd, 0, &spec, nil); err != nil {
		return fmt.Errorf("bench: timerfd_settime: %w", err)
	}
	var expirations [8]byte
	if _, err := p.file.Read(expirations[:]); err != nil {
		return fmt.Errorf("bench: reading the timerfd: %w", err)
	}
	return nil
}

func (p *pacer) close() { _ = p.file.Close() }

// lateAfter is how far behind schedule a send counts as late.
const lateAfter = time.Millisecond

// openLoopConns is how many keep-alive connections the open-loop generator keeps to the
// receiver, and the most it opens: when every one is busy, the next event waits for one, and
// its wait counts in its latency (which runs from the scheduled time). Without the bound, Go's
// transport dialed a new connection for every event that found none idle and, past 256 kept,
// closed it after that one request: once the receiver fell behind, nearly every event came on a
// new TCP connection (6978 connections for 7500 events at 1500/s), which cost the receiver more
// than the event, the accept queue overflowed, and the dropped SYNs, retried after 1, 3 and 7 s,
// made the latencies seconds.
const openLoopConns = 256

// openLoopMaxConns bounds the generator's connections; a variable so that an experiment can
// lift the bound (0).
var openLoopMaxConns = openLoopConns

// runLatency starts a sink and a 1-core receiver placed as in the 1-core throughput run and
// sends events at rate for cfg.Duration on a fixed schedule.
func runLatency(ctx context.Context, cfg ReceiverConfig, cpus cpuPlan, pool *eventPool, run int, rate float64,
	secretFile, dir string) (LatencyRun, error) {
	out := LatencyRun{Rate: rate}
	if rate <= 0 {
		return out, fmt.Errorf("bench: latency run needs a positive rate, got %.1f", rate)
	}
	// The stall probe first, on the CPUs the run will use, with nothing else of the bench
	// running: the machine's own share of the latencies below.
	var err error
	probeCPUs := slices.Concat(cpus.receiverCPUs(1), cpus.outside(1))
	if out.Stalls, out.Others, err = probeStalls(probeCPUs, min(stallWindow, cfg.Duration)); err != nil {
		return out, err
	}
	sink, err := startNoopSink()
	if err != nil {
		return out, err
	}
	defer sink.close()
	proc, err := startReceiverProc(ctx, cfg.ReceiverBin, cpus.taskset, cpus.receiverCPUs(1), 1, secretFile,
		sink.url(), dir+"/receiver-latency.log")
	if err != nil {
		return out, err
	}
	defer func() { _ = proc.stop() }() // a no-op after the explicit stop below
	pin, err := cpus.pinSelfOutside(1)
	if err != nil {
		return out, err
	}
	pool.stamp(run, time.Now())
	threads0 := threadTimes(proc.cmd.Process.Pid)
	st := driveOpenLoop(ctx, http.MethodPost, proc.webhookURL, pool, run, rate, latencyWarmup, cfg.Duration)
	out.RunDelay = busiestWait(threads0, threadTimes(proc.cmd.Process.Pid))
	pin.restore()
	if err := proc.stop(); err != nil {
		return out, err
	}
	out.Sent, out.Events, out.Errors, out.ErrorSample, out.Late = st.sent, len(st.latencies), st.errors, st.firstError, st.late
	out.LateMax = st.lateMax
	out.P50, out.P99, out.Max = st.spread()
	out.WarmupEvents, out.WarmupAcked, out.WarmupMax = st.warmSent, st.warmAcked, st.warmMax
	out.SinkCount, out.SinkDuplicates = sink.counts()
	out.Conns, out.SinkConns = st.conns, sink.connections()
	out.CPUPerEvent, out.CoresBusy, out.SwitchesPerEvent = proc.perEvent(out.Events, st.elapsed)
	if out.Bare, err = runBare(ctx, cfg, cpus, pool, run, rate, secretFile, sink.url(), dir); err != nil {
		return out, err
	}
	return out, ctx.Err()
}

// BareRun is the open-loop generator against a receiver's /healthz: the same requests (bodies,
// headers) at the same rate, from the same process to a receiver process on the same CPU, as
// GETs that the receiver answers without verifying, deduplicating or relaying anything. Its
// latencies are the machine's and the harness's share of the latency run's.
type BareRun struct {
	Sent, Answered, Errors, Late int
	P50, P99, Max                time.Duration
	LateMax                      time.Duration // as LatencyRun's
}

// runBare starts a fresh receiver placed as the latency run's (its CPU figures must not mix
// with that run's) and drives its /healthz at rate.
func runBare(ctx context.Context, cfg ReceiverConfig, cpus cpuPlan, pool *eventPool, run int, rate float64,
	secretFile, sinkURL, dir string) (BareRun, error) {
	var out BareRun
	proc, err := startReceiverProc(ctx, cfg.ReceiverBin, cpus.taskset, cpus.receiverCPUs(1), 1, secretFile, sinkURL,
		dir+"/receiver-bare.log")
	if err != nil {
		return out, err
	}
	defer func() { _ = proc.stop() }()
	pin, err := cpus.pinSelfOutside(1)
	if err != nil {
		return out, err
	}
	st := driveOpenLoop(ctx, http.MethodGet, proc.opsURL+"/healthz", pool, run, rate, latencyWarmup, cfg.Duration)
	pin.restore()
	out.Sent, out.Answered, out.Errors, out.Late, out.LateMax = st.sent, len(st.latencies), st.errors, st.late, st.lateMax
	out.P50, out.P99, out.Max = st.spread()
	return out, proc.stop()
}

// openLoopMemoryLimit bounds the bench process's heap while its collector is paused: at the
// half-load rates of this machine it allocates about 120 MB/s (each event's request, the sink's
// handling of its relay), 1 GB for a 5 s run with its warm-up.
const openLoopMemoryLimit = 4 << 30

// pauseGC collects once, then turns the bench process's collector off (up to
// openLoopMemoryLimit) until the returned function restores it. The generator and the sink
// share one P during the open-loop runs, and with the collector on, a mark phase there lasted
// 12–21 ms of wall time every 0.5–1.2 s (GODEBUG=gctrace=1 during a half-load run: a 60 MB live
// heap, one P, the sink's and the generator's allocations paying assists), time in which the
// generator may send late and the sink answer late, inside the latencies measured. How much of
// the p99 that was is not settled: in the slowest 1% of events, the generator's median lateness
// was 2.4 and 4.9 ms in two runs with it on, 39 µs and 3.0 ms in two with it off (the
// machine's own stalls, which the stall probe reports, delay it too).
func pauseGC() (restore func()) {
	runtime.GC()
	percent := debug.SetGCPercent(-1)
	limit := debug.SetMemoryLimit(openLoopMemoryLimit)
	return func() {
		debug.SetMemoryLimit(limit)
		debug.SetGCPercent(percent)
	}
}

// openLoopStats is what the open-loop generator observed.
type openLoopStats struct {
	driveStats
	sent, late int
	lateMax    time.Duration // the furthest behind schedule a measured event was sent
	// The warm-up's events: sent, acknowledged, the slowest (not in latencies).
	warmSent, warmAcked int
	warmMax             time.Duration
	conns               int // connections dialed to the receiver
}

// driveOpenLoop sends event k at start + k/rate, each on its own goroutine, whether or not
// earlier events were answered, until warmup and then dur have passed, then waits for the
// answers. A latency runs from the scheduled time, so a generator that fell behind adds its delay
// to the figure rather than hiding it. The warm-up's events are counted apart.
func driveOpenLoop(ctx context.Context, method, url string, pool *eventPool, run int, rate float64, warmup, dur time.Duration) openLoopStats {
	var dials atomic.Int64
	dialer := &net.Dialer{}
	tr := &http.Transport{
		Proxy: nil, // loopback only, whatever the environment says
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        openLoopConns,
		MaxIdleConnsPerHost: openLoopConns, // Stripe, too, opens more connections when answers are slow
		MaxConnsPerHost:     openLoopMaxConns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	interval := time.Duration(float64(time.Second) / rate)
	warm := int(warmup / interval)
	total := warm + int(dur/interval)
	var (
		mu sync.Mutex
		st = openLoopStats{driveStats: driveStats{latencies: make([]time.Duration, 0, total-warm)}}
		wg sync.WaitGroup
	)
	pace, err := newPacer()
	if err != nil {
		st.errors, st.firstError = 1, err.Error()
		return st
	}
	defer pace.close()
	defer pauseGC()()
	start := time.Now()
	for k := range total {
		due := start.Add(time.Duration(k) * interval)
		if err := pace.sleepUntil(due); err != nil {
			mu.Lock()
			st.errors, st.firstError = st.errors+1, err.Error()
			mu.Unlock()
			break
		}
		now := time.Now()
		if ctx.Err() != nil {
			break
		}
		warming := k < warm
		switch {
		case warming:
			st.warmSent++
		case now.Sub(due) > lateAfter:
			st.late++
			st.sent++
			st.lateMax = max(st.lateMax, now.Sub(due))
		default:
			st.sent++
		}
		body, sig := pool.event(run, int64(k), now)
		wg.Go(func() {
			_, err := sendEvent(ctx, client, method, url, body, sig)
			d := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				if st.errors++; st.firstError == "" {
					st.firstError = err.Error()
				}
			case warming:
				st.warmAcked++
				st.warmMax = max(st.warmMax, d)
			default:
				st.latencies = append(st.latencies, d)
			}
		})
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	st.conns = int(dials.Load())
	slices.Sort(st.latencies)
	return st
}
