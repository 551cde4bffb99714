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
	"strings"
	"testing"
	"time"
)

// TestRunReceiverCostQuick runs the cost section briefly against a freshly built receiver and
// checks that its figures are complete and add up (every event relayed once, the dedup memory
// full at the end); it asserts nothing about how much CPU or memory the receiver used.
func TestRunReceiverCostQuick(t *testing.T) {
	t.Parallel() // the cluster, throughput and cost runs use separate processes and ports
	bin := buildCmd(t, "./cmd/receiver")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	res, err := RunReceiverCost(ctx, ReceiverCostConfig{ReceiverBin: bin, Idle: time.Second, Load: time.Second, Rates: []float64{10, 50}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Phases) != 4 || res.Phases[0].Rate != 0 || res.Phases[1].Rate != 10 || res.Phases[2].Rate != 50 || res.Phases[3].Rate >= 0 {
		t.Fatalf("phases = %+v, want idle, 10/s, 50/s and the fill", res.Phases)
	}
	acked := 0
	for _, p := range res.Phases {
		t.Logf("%+v", p)
		if p.Errors != 0 || p.Acked != p.Sent {
			t.Errorf("rate %.0f: %d sent, %d acknowledged, %d errors", p.Rate, p.Sent, p.Acked, p.Errors)
		}
		if p.RSS == 0 || p.PeakRSS < p.RSS || p.HeapInuse == 0 || p.Window <= 0 || p.Millicores < 0 {
			t.Errorf("rate %.0f: incomplete figures %+v", p.Rate, p)
		}
		acked += p.Acked
	}
	if got := res.Phases[1].Sent; got != 10 {
		t.Errorf("10 events/s for 1 s sent %d events", got)
	}
	if fill := res.Phases[3]; fill.Acked != res.DedupCapacity || fill.IDsHeld != res.DedupCapacity {
		t.Errorf("fill: %d acknowledged, %d ids held, want the capacity %d", fill.Acked, fill.IDsHeld, res.DedupCapacity)
	}
	t.Logf("dedup: heap %d B after %d events, %d B full: %.0f B per id, %d B full", res.HeapWarm, costWarmup, res.HeapFullDup,
		res.BytesPerID, res.DedupFull)
	if res.DedupEvents != costWarmup+res.DedupCapacity {
		t.Errorf("dedup accounting: %d events acknowledged, want %d", res.DedupEvents, costWarmup+res.DedupCapacity)
	}
	if acked += res.DedupEvents; res.SinkCount != acked || res.SinkDuplicates != 0 {
		t.Errorf("sink received %d relays (%d duplicated) for %d acknowledged events", res.SinkCount, res.SinkDuplicates, acked)
	}
	if res.BytesPerID <= 0 || res.DedupFull == 0 {
		t.Errorf("no dedup cost: %.0f B per id, %d B full", res.BytesPerID, res.DedupFull)
	}
	var b strings.Builder
	if err := (Report{Command: "test", Started: time.Now(), ReceiverCost: &res}).Write(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "## A clinic's cost") {
		t.Errorf("report has no cost section:\n%s", b.String())
	}
}
