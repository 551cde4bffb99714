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

// The cost section of the report: the receiver's measured use and what the operator's default
// receiver objects ask of the cluster per 1,000 clinics.

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/controller"
)

// The receiver defaults before issue 16, for the before/after comparison: two replicas in both
// modes, each requesting 10m CPU and 32Mi.
const (
	beforeReplicas = 2
	beforeCPU      = "10m"
	beforeMemory   = "32Mi"
)

// noFigure fills a cell that has no figure (no events in the phase).
const noFigure = "–"

// costModes are the report's columns.
var costModes = []paymentsv1alpha1.Mode{paymentsv1alpha1.ModeTest, paymentsv1alpha1.ModeLive}

// ClinicRequests is what the receiver pods of 1,000 clinics of one mode ask the cluster for.
type ClinicRequests struct {
	Mode     paymentsv1alpha1.Mode
	Replicas int32
	// CPU and Memory are one pod's requests; Cores and GiB are 1,000 clinics' total.
	CPU, Memory resource.Quantity
	Cores, GiB  float64
}

// requestsPer1000 computes 1,000 clinics' requests from a pod's requests and the replicas.
func requestsPer1000(mode paymentsv1alpha1.Mode, replicas int32, cpu, mem resource.Quantity) ClinicRequests {
	pods := 1000 * float64(replicas)
	return ClinicRequests{Mode: mode, Replicas: replicas, CPU: cpu, Memory: mem,
		Cores: pods * float64(cpu.MilliValue()) / 1000, GiB: pods * float64(mem.Value()) / (1 << 30)}
}

// RequestsBefore and RequestsAfter are the per-1,000-clinic requests of the old defaults and of
// the operator's current ones (internal/controller's defaults, not a copy of them).
func RequestsBefore() []ClinicRequests {
	out := make([]ClinicRequests, 0, len(costModes))
	for _, m := range costModes {
		out = append(out, requestsPer1000(m, beforeReplicas, resource.MustParse(beforeCPU), resource.MustParse(beforeMemory)))
	}
	return out
}

func RequestsAfter() []ClinicRequests {
	out := make([]ClinicRequests, 0, len(costModes))
	req := controller.DefaultReceiverResources().Requests
	for _, m := range costModes {
		out = append(out, requestsPer1000(m, controller.DefaultReceiverReplicas(m), req[corev1.ResourceCPU], req[corev1.ResourceMemory]))
	}
	return out
}

// write renders the cost section.
func (rc ReceiverCostResult) write(p func(format string, args ...any)) {
	p("## A clinic's cost: one receiver's CPU and memory")
	p("")
	p("%s", rc.method())
	p("")
	p("%s", quietLine(rc.MachineBusy, rc.QuietWait))
	p("")
	p("| Phase | events sent (errors) | receiver CPU | CPU per event | RSS (peak so far) | heap in use | ids remembered | p50 / p99 |")
	p("| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, ph := range rc.Phases {
		name := fmt.Sprintf("%g events/s for %s", ph.Rate, ph.Window.Round(100e6))
		switch {
		case ph.Rate == 0:
			name = fmt.Sprintf("idle for %s", ph.Window.Round(100e6))
		case ph.Rate < 0:
			name = fmt.Sprintf("fill: %d events in %s", ph.Sent, ph.Window.Round(100e6))
		}
		lat, perEvent := noFigure, noFigure
		if ph.Acked > 0 {
			lat = us(ph.P50) + " / " + us(ph.P99)
			perEvent = us(time.Duration(ph.Millicores / 1000 * float64(ph.Window) / float64(ph.Acked)))
		}
		p("| %s | %d (%d) | %.1f m | %s | %s (%s) | %s | %d | %s |", name, ph.Sent, ph.Errors, ph.Millicores, perEvent,
			mib(ph.RSS), mib(ph.PeakRSS), mib(ph.HeapInuse), ph.IDsHeld, lat)
	}
	p("")
	p("Every acknowledged event reached the sink once: %d relays (%d of them from the dedup accounting's process), %d duplicates.",
		rc.SinkCount, rc.DedupEvents, rc.SinkDuplicates)
	if rc.BytesPerID > 0 {
		p("Dedup memory: at most **%d event ids per replica**. With GOGC=%d the heap went from %s (%d ids) to %s (full): "+
			"%.0f B per remembered id, so the full memory costs about **%s**.", rc.DedupCapacity, costGOGC, mib(rc.HeapWarm),
			costWarmup, mib(rc.HeapFullDup), rc.BytesPerID, mib(rc.DedupFull))
	}
	p("")
	dr := controller.DefaultReceiverResources()
	p("Requests per 1,000 clinics, receiver pods only (the operator's defaults; `spec.receiver.replicas` and " +
		"`spec.receiver.resources` override them per clinic):")
	p("")
	p("| | Test mode | Live mode |")
	p("| --- | --- | --- |")
	row := func(name string, rs []ClinicRequests) {
		cells := make([]string, len(rs))
		for i, r := range rs {
			cells[i] = fmt.Sprintf("%d × %s CPU / %s → **%.1f cores, %.1f GiB**", r.Replicas, r.CPU.String(), r.Memory.String(), r.Cores, r.GiB)
		}
		p("| %s | %s |", name, strings.Join(cells, " | "))
	}
	row("before (2 replicas, 10m / 32Mi)", RequestsBefore())
	row("now", RequestsAfter())
	p("")
	p("Limits now: memory %s (GOMEMLIMIT %s), CPU %s.", quantityOr(dr.Limits, corev1.ResourceMemory),
		controller.GoMemLimit(dr), quantityOr(dr.Limits, corev1.ResourceCPU))
	p("")
}

func quantityOr(l corev1.ResourceList, name corev1.ResourceName) string {
	if q, ok := l[name]; ok {
		return q.String()
	}
	return "none"
}
