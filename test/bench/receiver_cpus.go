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

// CPU pinning for the receiver bench: the receiver and the load generator on separate cores.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// cpuPlan is how the bench places the receiver and itself on the CPUs this process may use.
type cpuPlan struct {
	taskset  string // empty: nothing is pinned
	allowed  []int  // CPUs this process may use, ascending
	original string // this process's affinity list, to restore
}

// planCPUs reads this process's allowed CPUs; pinning is used only when taskset exists and at
// least two CPUs are allowed.
func planCPUs() cpuPlan {
	var plan cpuPlan
	path, err := exec.LookPath("taskset")
	if err != nil {
		return plan
	}
	original, allowed, err := allowedCPUs()
	if err != nil || len(allowed) < 2 {
		return plan
	}
	plan = cpuPlan{taskset: path, allowed: allowed, original: original}
	// Setting the affinity this process already has tells whether taskset is permitted here
	// (a seccomp profile may refuse sched_setaffinity); if not, nothing is pinned.
	if plan.setSelf(original) != nil {
		return cpuPlan{}
	}
	return plan
}

// receiverCPUs returns the CPUs the receiver is pinned to when it may use cores of them; nil
// when nothing is pinned.
func (c cpuPlan) receiverCPUs(cores int) []int {
	if c.taskset == "" || cores > len(c.allowed) {
		return nil
	}
	return c.allowed[:cores]
}

// outside returns the allowed CPUs the receiver does not use when it has cores of them.
func (c cpuPlan) outside(cores int) []int {
	if c.taskset == "" || cores >= len(c.allowed) {
		return nil
	}
	return c.allowed[cores:]
}

// pinning is a change of this process's CPU affinity, and of its GOMAXPROCS to match; restore
// undoes both. The Go runtime sizes GOMAXPROCS from the affinity at start only, so pinned to one
// CPU the process kept two Ps whose threads the kernel time-sliced; with one, the generator keeps
// the 1-core receiver busier (0.95–0.99 of its core against 0.81–0.93 in quiet runs).
type pinning struct {
	plan       cpuPlan
	changed    bool
	gomaxprocs int // before the pinning
}

func (p pinning) restore() {
	if p.changed {
		_ = p.plan.setSelf(p.plan.original)
		runtime.GOMAXPROCS(p.gomaxprocs)
	}
}

// pinned pins this process to cpus and sets GOMAXPROCS to their number.
func (c cpuPlan) pinned(cpus []int) (pinning, error) {
	p := pinning{plan: c, changed: true, gomaxprocs: runtime.GOMAXPROCS(0)}
	if err := c.setSelf(cpuList(cpus)); err != nil {
		return p, err
	}
	runtime.GOMAXPROCS(len(cpus))
	return p, nil
}

// pinSelfOutside pins this process (the load generator and sink) to the CPUs the receiver does
// not use; it changes nothing when there are none.
func (c cpuPlan) pinSelfOutside(cores int) (pinning, error) {
	rest := c.outside(cores)
	if len(rest) == 0 {
		return pinning{plan: c}, nil
	}
	return c.pinned(rest)
}

// pinSelf pins this process to the first n allowed CPUs, those a receiver on n cores uses.
func (c cpuPlan) pinSelf(n int) (pinning, error) {
	cpus := c.receiverCPUs(n)
	if len(cpus) == 0 {
		return pinning{plan: c}, nil
	}
	return c.pinned(cpus)
}

// setSelf sets the affinity of every thread of this process (taskset -a); threads started later
// inherit it from the thread that starts them.
func (c cpuPlan) setSelf(list string) error {
	out, err := exec.Command(c.taskset, "-a", "-p", "-c", list, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: taskset -a -p -c %s: %v: %s", list, err, bytes.TrimSpace(out))
	}
	return nil
}

// allowedCPUs parses Cpus_allowed_list (e.g. "0-3,8") from /proc/self/status.
func allowedCPUs() (string, []int, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		list, ok := strings.CutPrefix(sc.Text(), "Cpus_allowed_list:")
		if !ok {
			continue
		}
		list = strings.TrimSpace(list)
		cpus, err := parseCPUList(list)
		return list, cpus, err
	}
	return "", nil, errors.New("no Cpus_allowed_list in /proc/self/status")
}

// parseCPUList parses a Linux CPU list such as "0-3,8,10-11".
func parseCPUList(list string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, errA := strconv.Atoi(lo)
		b, errB := strconv.Atoi(hi)
		if errA != nil || errB != nil || a > b {
			return nil, fmt.Errorf("invalid CPU list %q", list)
		}
		for cpu := a; cpu <= b; cpu++ {
			cpus = append(cpus, cpu)
		}
	}
	return cpus, nil
}

// cpuList renders CPUs as taskset's -c list, e.g. "0,1".
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}
