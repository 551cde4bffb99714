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
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/clinicpay/stripe-operator/test/envtestbins"
	"github.com/clinicpay/stripe-operator/test/testbin"
)

// buildCmd returns the binary of one of the operator's commands (testbin.Build).
func buildCmd(t *testing.T, pkg string) string {
	t.Helper()
	bin, err := testbin.Build("../..", pkg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestClusterQuick runs the cluster bench in its quick mode (the one `make bench BENCH_QUICK=1`
// uses) so the harness cannot rot: every phase must complete and measure something.
func TestClusterQuick(t *testing.T) {
	t.Parallel() // the cluster, throughput and cost runs use separate processes and ports
	ctrllog.SetLogger(logr.Discard())
	assets, err := envtestbins.Dir()
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	mgr := buildCmd(t, "./cmd")
	cfg := QuickClusterConfig(root, assets, mgr)
	var log strings.Builder
	cfg.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := RunCluster(ctx, cfg)
	if err != nil {
		t.Fatalf("RunCluster: %v\n%s", err, log.String())
	}
	t.Logf("%s", log.String())
	n := float64(cfg.N)
	switch {
	case res.ColdTotal <= 0 || res.ColdP50 <= 0 || res.ColdP99 < res.ColdP50:
		t.Errorf("cold start times: total %s p50 %s p99 %s", res.ColdTotal, res.ColdP50, res.ColdP99)
	case res.ColdWrites.Total < cfg.N || res.ColdStripeCalls < cfg.N:
		t.Errorf("cold start counted %d writes and %d Stripe calls for %d integrations", res.ColdWrites.Total, res.ColdStripeCalls, cfg.N)
	case res.Floor.SmallPerSec() <= 0 || res.Floor.ServicesPerSec() <= 0 || res.ColdPass.Integrations != cfg.N || res.ColdBenchWrites < 2*cfg.N:
		t.Errorf("cold start breakdown: floor %+v, %d bench writes, first passes %s", res.Floor, res.ColdBenchWrites, res.ColdPass)
	case res.ColdPeakRSS == 0 || res.ColdPeakHeap == 0:
		t.Errorf("manager memory not sampled: RSS %d heap %d", res.ColdPeakRSS, res.ColdPeakHeap)
	case float64(res.SteadyStripeCalls)/n < 1:
		t.Errorf("steady state: %d Stripe calls in %s for %d integrations: no resync happened", res.SteadyStripeCalls, res.SteadyWindow, cfg.N)
	case res.RotateP99 <= 0 || res.RestoreTotal <= 0:
		t.Errorf("reaction: rotation p99 %s, restore %s", res.RotateP99, res.RestoreTotal)
	case res.RSSAfterUnrelated == 0:
		t.Error("manager memory after unrelated load not sampled")
	case len(res.Restarts) != 1 || res.Restarts[0].StripeCalls == 0 || res.Restarts[0].PeakRSS == 0:
		t.Errorf("restart phase measured nothing: %+v", res.Restarts)
	case len(res.Rates) < 3 || res.Rates[0].PerKey == 0:
		t.Errorf("request rates not recorded: %+v", res.Rates)
	case res.Replay.N != cfg.N || res.Replay.Took <= 0 || res.Replay.BenchWrites < 3*cfg.N || len(res.Replay.Steps) != 9:
		t.Errorf("replay measured nothing: %+v", res.Replay)
	}
	// The replay sent what the cold start's manager sent: each kind of write it made for every
	// integration, once per integration, and nothing else.
	for kind, got := range res.Replay.Writes.ByResource {
		if got != cfg.N || res.ColdWrites.ByResource[kind] < cfg.N {
			t.Errorf("replay: %d × %q, the cold start %d, for %d integrations", got, kind, res.ColdWrites.ByResource[kind], cfg.N)
		}
	}
	for kind, got := range res.ColdWrites.ByResource {
		if _, ok := res.Replay.Writes.ByResource[kind]; got >= cfg.N && !ok {
			t.Errorf("replay: no %q, which the cold start made %d times", kind, got)
		}
	}
	for _, s := range res.Replay.Steps {
		if s.Took <= 0 {
			t.Errorf("replay step %q not timed", s.Name)
		}
	}
	// The report renders what was measured.
	var md strings.Builder
	if err := (Report{Command: "make bench BENCH_QUICK=1", Started: time.Now(), Clusters: []ClusterResult{res}}).Write(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| N = 50 |", "apiserver writes per integration", "Stripe calls per integration per resync",
		"manager RSS before → after", "Manager restart under connected integrations", "Largest Stripe request rates",
		"cold start / the replayed writes", "The replayed writes"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
	// The steady-state goal is part of the design (DESIGN.md: a resync writes nothing).
	if res.SteadyWrites.Total != 0 {
		t.Errorf("steady state wrote %d times: %s", res.SteadyWrites.Total, res.SteadyWrites.Summary())
	}
}
