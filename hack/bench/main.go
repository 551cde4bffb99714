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

// Command bench runs stripe-operator's benchmarks (test/bench) and writes a markdown report:
//
//	go run ./hack/bench -out docs/benchmarks.md            # make bench
//	go run ./hack/bench -quick -out /tmp/bench.md          # make bench BENCH_QUICK=1 (N = 50)
//	go run ./hack/bench -n 100,1000 -skip-receiver          # fewer integrations
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/clinicpay/stripe-operator/test/bench"
	"github.com/clinicpay/stripe-operator/test/envtestbins"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	ctrllog.SetLogger(logr.Discard())
	var (
		sizes     = flag.String("n", "100,1000,10000", "Comma-separated numbers of integrations, one cluster run each.")
		quick     = flag.Bool("quick", false, "Quick mode: N = 50, short phases (what make test runs).")
		resync    = flag.Duration("resync", 30*time.Second, "The manager's --resync-period; the steady-state phase lasts two periods.")
		resyncPer = flag.Int("resync-scale-above", 1000, "Above this N the resync period grows with N (resync × N / this), "+
			"so the periodic passes of every integration do not take all of the machine's 2 cores (0: never).")
		trimAbove = flag.Int("trim-above", 5000, "Above this N, skip the reaction and unrelated-load phases (measured at the "+
			"smaller sizes) and watch the steady state for one resync period, not two (0: never).")
		restartMin = flag.Int("restart-from", 1000, "Run the restart phase for N at least this (0: never).")
		baseline   = flag.String("restart-baseline", "", "Another manager binary (e.g. built from main) the restart phase "+
			"restarts into first, for a same-run comparison.")
		unrelated  = flag.Int("unrelated", 10_000, "Unrelated Secrets, and again ConfigMaps, created in the unrelated-load phase.")
		maxConc    = flag.Int("max-concurrent-reconciles", 0, "Passed to the manager (0: its default).")
		out        = flag.String("out", "docs/benchmarks.md", "Where to write the markdown report.")
		root       = flag.String("root", ".", "Repository root.")
		manager    = flag.String("manager", "bin/manager", "The manager binary.")
		receiver   = flag.String("receiver", "bin/receiver", "The receiver binary.")
		assets     = flag.String("assets", "", "envtest binaries (default: $KUBEBUILDER_ASSETS, else what `make envtest-bins` built under bin/k8s).")
		noReceiver = flag.Bool("skip-receiver", false, "Skip the receiver throughput section.")
		command    = flag.String("command", "", "How this run was started, for the report (default: the go run command line).")
		managerEnv = flag.String("manager-env", "", "Comma-separated NAME=value pairs added to the manager's environment, e.g. GOGC=50.")
		profileDir = flag.String("profile-dir", "", "Write the manager's CPU profile of each cold start (first 20 s) here.")
	)
	flag.Parse()
	if *assets == "" {
		dir, err := envtestbins.Dir()
		if err != nil {
			return err
		}
		*assets = dir
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(*root, p)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rep := bench.Report{Started: time.Now()}
	if *command != "" {
		rep.Command = *command
	} else if len(os.Args) > 1 {
		rep.Command = "go run ./hack/bench " + strings.Join(os.Args[1:], " ")
	}
	var cfgs []bench.ClusterConfig
	if *quick {
		cfgs = append(cfgs, bench.QuickClusterConfig(abs("."), abs(*assets), abs(*manager)))
	} else {
		for _, s := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				return fmt.Errorf("-n: %q is not a positive number", s)
			}
			rs := *resync
			if *resyncPer > 0 && n > *resyncPer {
				rs = time.Duration(int64(rs) * int64(n) / int64(*resyncPer))
			}
			cfg := bench.FullClusterConfig(abs("."), abs(*assets), abs(*manager), n, rs)
			cfg.Unrelated = *unrelated
			cfg.Restart = *restartMin > 0 && n >= *restartMin
			if *trimAbove > 0 && n > *trimAbove {
				cfg.Rotate, cfg.DeleteEndpoints, cfg.Unrelated, cfg.SteadyPeriods = 0, 0, 0, 1
			}
			if *baseline != "" {
				cfg.RestartBaseline = abs(*baseline)
			}
			cfgs = append(cfgs, cfg)
		}
	}
	for _, cfg := range cfgs {
		cfg.Log = os.Stderr
		cfg.MaxConcurrentReconciles = *maxConc
		cfg.ProfileDir = *profileDir
		if *managerEnv != "" {
			cfg.ManagerEnv = strings.Split(*managerEnv, ",")
		}
		fmt.Fprintf(os.Stderr, "bench: cluster run with N = %d\n", cfg.N)
		res, err := bench.RunCluster(ctx, cfg)
		if err != nil {
			return fmt.Errorf("cluster run with N = %d: %w", cfg.N, err)
		}
		rep.Clusters = append(rep.Clusters, res)
	}
	if !*noReceiver {
		rcfg := bench.ReceiverConfig{ReceiverBin: abs(*receiver), Duration: 5 * time.Second, Concurrency: 16, Payloads: 20_000}
		if *quick {
			rcfg.Duration = time.Second
		}
		fmt.Fprintln(os.Stderr, "bench: receiver throughput")
		rr, err := bench.RunReceiver(ctx, rcfg)
		if err != nil {
			return fmt.Errorf("receiver: %w", err)
		}
		rep.Receiver = &rr
	}
	rep.Duration = time.Since(rep.Started)
	rep.Notes = notes
	var buf bytes.Buffer
	if err := rep.Write(&buf); err != nil {
		return err
	}
	if err := os.WriteFile(abs(*out), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s in %s\n", *out, rep.Duration.Round(time.Second))
	return nil
}

// notes record what was optimised, with before/after figures from earlier runs of this harness on
// the same machine (2026-11-23); the tables above are this run's.
var notes = []string{
	"**Steady-state writes: 3 → 0 per integration per resync.** Every resync re-sent three no-op server-side applies " +
		"(patch deployments, services, networkpolicies in the audit log). The operator now compares the fields its field " +
		"manager owns (client-go's Extract*) with what it would apply and applies only on a difference. Quick mode, N = 50: " +
		"300 writes in 2.2 resync periods before, 0 after.",
	"**Writes at creation: 12 → 8 per integration** (N = 100): one Event per status write, listing every condition " +
		"change, instead of one Event per condition (6 → 2 Events).",
	"**Stripe calls at creation: 4 → 3 per integration** (N = 100): a pass triggered by the operator's own objects " +
		"within min(resync/2, 30 s) of a successful Stripe pass reuses what that pass saw (internal/controller/stripe_view.go). " +
		"At N = 1,000 some second passes wait in the queue longer than that, hence slightly above 3.",
	"**1,000 integrations Connected: 33.2 s → 24.5 s** by raising the default --max-concurrent-reconciles from 8 to 32. " +
		"The CPU profile of the cold start (`-profile-dir`) showed the manager busy 0.19 of a core: passes wait on apiserver " +
		"round trips, so running more of them at once is what helps.",
	"**Manager RSS at 1,000 with 10,000 unrelated Secrets and ConfigMaps: 158 MiB → 127 MiB.** (a) Secret metadata and " +
		"StripeIntegrations are cached without managedFields and without kubectl's last-applied annotation (which, on a " +
		"Secret applied with kubectl, holds its data in clear text): heap growth from the unrelated objects 7.3 MiB → none. " +
		"(b) The heap profile after a GC showed 42 MiB live against 80 MiB in use: the manager now sets GC percent 50 " +
		"(GOGC overrides it), peak RSS 174 → 134 MiB for the same run, at no visible cost in time.",
	"**Receiver CPU per event: 245 → 189 µs** (ratio to the limit 21% → about 32%). The HTTP envelope decoded " +
		"data.object a second time (16% of receiver CPU in the profile); it now reads the object stripe-go already decoded.",
	"**Manager restart: Stripe calls spread over the resync period instead of bunched at the start.** The Stripe view " +
		"(stripe_view.go) is in memory, so a restarted manager probed every integration in its first pass. Now a first pass " +
		"whose status proves a Stripe pass for the same generation, keys and webhook URL checks the Kubernetes side only and " +
		"defers its Stripe pass to the start plus a UID-hashed offset in [0, resync), requeued at normal priority so it is " +
		"not queued behind the low-priority first passes of the others (stripe_view_start.go). Same run, N = 1,000, resync 30 s, " +
		"main's manager restarted first (`go run ./hack/bench -n 1000 -skip-receiver -unrelated 0 -restart-baseline <main's " +
		"manager>`): busiest second 177 → 58 Stripe calls (5.3× → 2.0× the mean), calls in each tenth of the period " +
		"0·304·354·342·0·0·0·0·0·0 → 0·35·140·97·106·102·97·105·89·104, calls per integration in the period 1.00 → 0.88 " +
		"(the rest fall due just after it), writes 0 → 0. N = 300, resync 20 s: busiest second 121 → 29 (8.1× → 2.1×). Without " +
		"the priority, the first passes of 1,000 integrations (about 9 s here) held back the passes due meanwhile: busiest " +
		"second 159 (5.1×).",
	"**Not measured: N = 10,000.** The default run now includes it (resync 5 min there, reaction and unrelated phases " +
		"skipped, steady state one period), but on 2026-12-06 the shared machine ran at load average 20–30 and the cold start " +
		"stalled at 6,461 of 10,000 Connected after 22 min (creating the 20,000 objects alone took 3 min 54 s), so the run was " +
		"stopped; the restart targets at 10,000, the 10,000 time to Connected and its request rates are still open. At about " +
		"6,400 integrations the manager's RSS was 532 MiB, on course to exceed 600 MiB at 10,000. The heap profile after a GC " +
		"(287 MB live) shows: managed fields of the cached receiver objects 55 MB (kept for applyIfChanged; only the operator's " +
		"own entry is needed), a /metrics scrape in flight 38 MB (the bench reads the heap from /metrics every 500 ms; the " +
		"per-integration last-probe gauge makes each scrape proportional to N), cache indexes 22 MB, object metadata 55 MB. " +
		"The receiver objects are now cached with the operator's own applied managedFields entry only; in this harness the " +
		"other entry is the bench's small Deployment status write, and at N = 1,000 (two runs side by side, " +
		"`-n 1000 -restart-from 0 -unrelated 0`) peak heap was 84.8 → 81.8 MiB and peak RSS 138.9 → 141.9 MiB: no change " +
		"beyond the noise. Still to do: measure at 10,000 and, if needed, cap the heap with GOMEMLIMIT.",
	"**Harness:** envtest's default Service range (a /24) holds about 250 Services, so the bench's apiserver uses a /16.",
	"**Target missed: writes at creation (8 > 5).** Six are one per thing the operator must create or record: the " +
		"finalizer, the signing Secret, the receiver Deployment, Service and NetworkPolicy, and the status. Two are Events " +
		"(first status write, Connected).",
	"**Target missed: receiver at about a third of the limit (< 50%).** After the fix the profile shows 40% in stripe-go's " +
		"ConstructEvent (the limit's own work), 18% socket writes, about 15% other net/http and 12% GC: the two loopback HTTP " +
		"hops (Stripe → receiver → sink) cost more than the limit's whole per-event work. Skipping stripe-go's parse is ruled " +
		"out by DESIGN.md; logging each event at a higher verbosity and GOGC=200 measured 20–25% less CPU per event and are " +
		"left as options.",
}
