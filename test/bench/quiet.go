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
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// quietBusy is how busy the machine may be, as a fraction of all its CPUs over one second, for
// a receiver section to start: the receiver's CPU per event on one pinned core is what other
// work on that core disturbs most (a build's writeback, a control plane going down).
const quietBusy = 0.10

// waitQuiet measures the machine's CPUs over one-second windows until one is busy less than
// quietBusy, or wait has passed, and returns the last window's busy fraction. wait 0 measures one
// window. Where /proc/stat cannot be read it returns -1 at once.
func waitQuiet(ctx context.Context, wait time.Duration) float64 {
	deadline := time.Now().Add(wait)
	prev, err := readCPUTimes()
	if err != nil {
		return -1
	}
	for {
		select {
		case <-ctx.Done():
			return -1
		case <-time.After(time.Second):
		}
		cur, err := readCPUTimes()
		if err != nil {
			return -1
		}
		busy := cur.busySince(prev)
		if busy < quietBusy || !time.Now().Before(deadline) {
			return busy
		}
		prev = cur
	}
}

// cpuTimes is the aggregate "cpu" line of /proc/stat, in clock ticks.
type cpuTimes struct{ idle, total uint64 }

func (c cpuTimes) busySince(prev cpuTimes) float64 {
	total := c.total - prev.total
	if total == 0 {
		return 0
	}
	return 1 - float64(c.idle-prev.idle)/float64(total)
}

func readCPUTimes() (cpuTimes, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	defer func() { _ = f.Close() }()
	return parseCPUTimes(f)
}

// parseCPUTimes reads the "cpu" line: user nice system idle iowait irq softirq steal ...; idle
// and iowait count as idle.
func parseCPUTimes(r io.Reader) (cpuTimes, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[0] != "cpu" {
			continue
		}
		var c cpuTimes
		for i, s := range f[1:] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return cpuTimes{}, fmt.Errorf("bench: /proc/stat cpu field %d: %w", i+1, err)
			}
			c.total += v
			if i == 3 || i == 4 {
				c.idle += v
			}
		}
		return c, nil
	}
	if err := sc.Err(); err != nil {
		return cpuTimes{}, err
	}
	return cpuTimes{}, errors.New("bench: no cpu line in /proc/stat")
}
