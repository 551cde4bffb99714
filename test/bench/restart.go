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

// The restart phase: the manager is stopped (SIGTERM) and started again under N connected,
// unchanged integrations, and the bench counts what the new process writes and asks Stripe in
// its first resync period, and how its Stripe calls spread over that period.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/clinicpay/stripe-operator/test/testenv"
)

// restartBuckets is how many slices of the window the calls' spread is reported in.
const restartBuckets = 10

// RestartResult is what the restart phase measured.
type RestartResult struct {
	// Binary names the manager binary started: "baseline" (ClusterConfig.RestartBaseline) or "manager".
	Binary  string
	Stopped time.Duration // SIGTERM until the old process exited
	Ready   time.Duration // start until the new process's /readyz answered
	// Window is how long after the start the new process was watched: one resync period.
	Window      time.Duration
	Writes      Writes
	StripeCalls int
	// MaxPerSecond and MeanPerSecond are the Stripe calls of the busiest second of the window
	// and the window's mean; Buckets counts calls in each tenth of the window.
	MaxPerSecond  int
	MeanPerSecond float64
	Buckets       [restartBuckets]int
	// MaxPerKey is the largest number of calls with one key within one second.
	MaxPerKey         int
	PeakRSS, PeakHeap uint64
}

// PhaseRate is the largest Stripe request rate of one phase.
type PhaseRate struct {
	Phase             string
	PerKey, WholeFake int // requests within one wall-clock second
}

// noteRates records the largest request rates the fake saw since its counters were reset.
func (c *cluster) noteRates(res *ClusterResult, phase string) {
	perKey, whole := c.fake.MaxRates()
	res.Rates = append(res.Rates, PhaseRate{Phase: phase, PerKey: perKey, WholeFake: whole})
}

// restart stops the manager with SIGTERM, as a rolling update does, starts it again with the
// same flags, and watches it for one resync period. With a baseline binary it first restarts into
// the baseline and then into the manager under test, so both are measured in the same run.
func (c *cluster) restart(ctx context.Context, res *ClusterResult) error {
	if c.cfg.RestartBaseline != "" {
		if err := c.restartInto(ctx, res, "baseline", c.cfg.RestartBaseline); err != nil {
			return err
		}
	}
	return c.restartInto(ctx, res, "manager", c.cfg.Manager)
}

func (c *cluster) restartInto(ctx context.Context, res *ClusterResult, label, bin string) error {
	rr := &RestartResult{Binary: label, Window: c.cfg.Resync}
	auditStart, err := c.audit.offset()
	if err != nil {
		return err
	}
	c.fake.ResetCounters()
	c.logf("restart: stopping the manager (SIGTERM) under %d connected integrations; starting %s", c.cfg.N, bin)
	t0 := time.Now()
	if err := c.mgr.Stop(); err != nil {
		return err
	}
	rr.Stopped = time.Since(t0)
	opts := c.mgrOpts
	opts.Bin = bin
	opts.LogPath = filepath.Join(filepath.Dir(opts.LogPath), "manager-restarted-"+label+".log")
	start := time.Now()
	if c.mgr, err = testenv.StartManager(ctx, opts); err != nil {
		return fmt.Errorf("starting the manager again: %w", err)
	}
	rr.Ready = time.Since(start)
	c.logf("restart: ready after %s; watching for %s", rr.Ready.Round(time.Millisecond), rr.Window)
	deadline := start.Add(rr.Window)
	c.watchingRestart = true
	defer func() { c.watchingRestart = false }()
	if err := c.waitFor(ctx, rr.Window+time.Second, func() (bool, string) {
		return !time.Now().Before(deadline), fmt.Sprintf("%d Stripe calls and %d passes since the restart", c.fake.TotalCalls(),
			reconciles(c.mgr.MetricsURL()))
	}); err != nil {
		return err
	}
	if rr.Writes, err = c.audit.countSince(auditStart); err != nil {
		return err
	}
	rr.StripeCalls = c.fake.TotalCalls()
	rr.MaxPerKey, _ = c.fake.MaxRates()
	rr.PeakRSS, rr.PeakHeap = c.mgr.Peaks()
	rr.MaxPerSecond, rr.MeanPerSecond, rr.Buckets = spread(c.fake.CallsBySecond(), start, rr.Window)
	c.noteRates(res, "restart ("+label+")")
	res.Restarts = append(res.Restarts, *rr)
	c.logf("restart (%s): %d writes (%s), %.2f Stripe calls per integration, busiest second %d calls (mean %.1f), by tenth %v",
		label, rr.Writes.Total, rr.Writes.Summary(), float64(rr.StripeCalls)/float64(c.cfg.N), rr.MaxPerSecond, rr.MeanPerSecond, rr.Buckets)
	return nil
}

// spread summarises calls per second over [start, start+window): the busiest second, the mean
// per second, and the calls in each tenth of the window.
func spread(bySecond map[int64]int, start time.Time, window time.Duration) (maxSec int, mean float64, buckets [restartBuckets]int) {
	secs := max(int64(window/time.Second), 1)
	from := start.Unix()
	total := 0
	for sec, n := range bySecond {
		off := sec - from
		if off < 0 || off >= secs {
			continue
		}
		total += n
		maxSec = max(maxSec, n)
		buckets[off*restartBuckets/secs] += n
	}
	return maxSec, float64(total) / float64(secs), buckets
}

// writeRestart renders the restart phase and the request rates of every phase.
func writeRestart(p func(string, ...any), clusters []ClusterResult) {
	type column struct {
		n int
		r RestartResult
	}
	var cols []column
	baseline := false
	for _, c := range clusters {
		for _, r := range c.Restarts {
			cols = append(cols, column{c.Config.N, r})
			baseline = baseline || r.Binary == "baseline"
		}
	}
	if len(cols) > 0 {
		p("## Manager restart under connected integrations")
		p("")
		p("The manager is stopped with SIGTERM after the steady-state phase and started again with the same flags; the new")
		p("process is watched for one resync period from its start. Nothing changed meanwhile, so every write is overhead.")
		if baseline {
			p("A *baseline* column is the binary given with `-restart-baseline`, restarted first under the same integrations in the")
			p("same run; the *manager* column is the binary under test, restarted right after it.")
		}
		p("")
		p("| | %s |", strings.Join(mapN(cols, func(c column) string {
			if !baseline {
				return fmt.Sprintf("N = %d", c.n)
			}
			return fmt.Sprintf("N = %d, %s", c.n, c.r.Binary)
		}), " | "))
		p("|%s", strings.Repeat(" --- |", len(cols)+1))
		row := func(name string, f func(n int, r RestartResult) string) {
			p("| %s | %s |", name, strings.Join(mapN(cols, func(c column) string { return f(c.n, c.r) }), " | "))
		}
		row("stopped after SIGTERM / ready again after", func(_ int, r RestartResult) string {
			return ms(r.Stopped) + " / " + ms(r.Ready)
		})
		row("window watched (one resync period)", func(_ int, r RestartResult) string { return r.Window.String() })
		row("apiserver writes (per integration)", func(n int, r RestartResult) string {
			return fmt.Sprintf("%d (%s)", r.Writes.Total, per(r.Writes.Total, n))
		})
		row("Stripe calls per integration", func(n int, r RestartResult) string { return per(r.StripeCalls, n) })
		row("Stripe calls per second: busiest / mean (ratio)", func(_ int, r RestartResult) string {
			if r.MeanPerSecond == 0 {
				return fmt.Sprintf("%d / 0", r.MaxPerSecond)
			}
			return fmt.Sprintf("%d / %.1f (%.1f×)", r.MaxPerSecond, r.MeanPerSecond, float64(r.MaxPerSecond)/r.MeanPerSecond)
		})
		row("Stripe calls in each tenth of the window", func(_ int, r RestartResult) string {
			return strings.Join(mapN(r.Buckets[:], func(n int) string { return fmt.Sprint(n) }), " · ")
		})
		row("largest calls per second with one key", func(_ int, r RestartResult) string { return fmt.Sprint(r.MaxPerKey) })
		row("new manager peak RSS / heap", func(_ int, r RestartResult) string {
			return mib(r.PeakRSS) + " / " + mib(r.PeakHeap)
		})
		p("")
		p("Writes after the restart: %s.", strings.Join(mapN(cols, func(c column) string {
			return fmt.Sprintf("N = %d %s: %s", c.n, c.r.Binary, c.r.Writes.Summary())
		}), "; "))
		p("")
	}
	var rated []ClusterResult
	for _, c := range clusters {
		if len(c.Rates) > 0 {
			rated = append(rated, c)
		}
	}
	if len(rated) == 0 {
		return
	}
	p("## Largest Stripe request rates")
	p("")
	p("Requests the fake received within one wall-clock second, with one key (one clinic's account; Stripe allows 25/s")
	p("in test mode, the operator's limiter 20/s) and in all; per phase.")
	p("")
	for _, c := range rated {
		p("- N = %d: %s", c.Config.N, strings.Join(mapN(c.Rates, func(r PhaseRate) string {
			return fmt.Sprintf("%s %d per key, %d in all", r.Phase, r.PerKey, r.WholeFake)
		}), "; "))
	}
	p("")
}

// reconciles reads how many passes the manager's StripeIntegration controller finished, from its
// /metrics (controller-runtime's controller_runtime_reconcile_total); 0 when unknown.
func reconciles(metricsURL string) int {
	return int(max(0, metricSum(metricsURL, "controller_runtime_reconcile_total{", `controller="stripeintegration"`)))
}

// apiserverReads is how many requests with method GET the manager's clients have sent to the
// apiserver (client-go's rest_client_requests_total), or -1 if it cannot be read: its Secret reads
// past the cache, and the informers' lists and watch restarts (a few over a resync period).
func apiserverReads(metricsURL string) int {
	return int(metricSum(metricsURL, "rest_client_requests_total{", `method="GET"`))
}

// metricSum adds up the samples of one metric family on a Prometheus text page whose labels
// contain match; -1 if the page cannot be read.
func metricSum(metricsURL, prefix, match string) float64 {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(metricsURL)
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) || !strings.Contains(line, match) {
			continue
		}
		if f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			total += f
		}
	}
	return total
}

// logEvery is how often waitFor logs progress: every 10 s, every second while a restart is watched.
func (c *cluster) logEvery() time.Duration {
	if c.watchingRestart {
		return time.Second
	}
	return 10 * time.Second
}
