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

// What the cost section reads of a running receiver: CPU time and memory from /proc, series from
// its /metrics.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// threadTimes maps each of pid's threads to its run time and run-queue wait (the first two
// fields of /proc/<pid>/task/<tid>/schedstat, nanoseconds); nil when the kernel keeps no
// schedstat.
func threadTimes(pid int) map[string][2]time.Duration {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil
	}
	var m map[string][2]time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread exited meanwhile, or there is no schedstat
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		run, err1 := strconv.ParseInt(f[0], 10, 64)
		wait, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if m == nil {
			m = map[string][2]time.Duration{}
		}
		m[t.Name()] = [2]time.Duration{time.Duration(run), time.Duration(wait)}
	}
	return m
}

// busiestWait returns how long, between two threadTimes readings, the thread that ran most
// waited runnable for a CPU; -1 when either reading is missing.
func busiestWait(before, after map[string][2]time.Duration) time.Duration {
	if before == nil || after == nil {
		return -1
	}
	var most, wait time.Duration = -1, -1
	for tid, a := range after {
		b := before[tid] // a thread started since counts from zero
		if run := a[0] - b[0]; run > most {
			most, wait = run, a[1]-b[1]
		}
	}
	return wait
}

// procCPUTime returns the CPU time pid's threads have run: the sum of their
// /proc/<pid>/task/<tid>/schedstat (nanoseconds; a Go program's threads do not exit), or, when
// the kernel keeps no schedstat, utime + stime from /proc/<pid>/stat (clock ticks).
func procCPUTime(pid int) (time.Duration, error) {
	threads := threadTimes(pid)
	if threads == nil {
		ticks, err := procCPUTicks(pid)
		return time.Duration(ticks) * time.Second / clockTicksPerSec, err
	}
	var sum time.Duration
	for _, t := range threads {
		sum += t[0]
	}
	return sum, nil
}

// procCPUTicks returns utime + stime of pid, every thread included, in clock ticks.
func procCPUTicks(pid int) (uint64, error) {
	_, f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	utime, errU := strconv.ParseUint(f[11], 10, 64) // field 14
	stime, errS := strconv.ParseUint(f[12], 10, 64) // field 15
	if errU != nil || errS != nil {
		return 0, fmt.Errorf("bench: /proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return utime + stime, nil
}

// procStat reads /proc/<pid>/stat: the command name (field 2) and the fields after it, from
// field 3 on (fields[0] is field 3).
func procStat(pid int) (comm string, fields []string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", nil, err
	}
	// The name is in parentheses and may hold spaces or parentheses itself: it ends at the last one.
	open, closing := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return "", nil, fmt.Errorf("bench: unexpected /proc/%d/stat", pid)
	}
	return string(b[open+1 : closing]), strings.Fields(string(b[closing+1:])), nil
}

// procRSS returns VmRSS and VmHWM of pid in bytes.
func procRSS(pid int) (rss, peak uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		for _, f := range []struct {
			prefix string
			to     *uint64
		}{{"VmRSS:", &rss}, {"VmHWM:", &peak}} {
			if v, ok := strings.CutPrefix(line, f.prefix); ok {
				kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("bench: /proc/%d/status %s %q", pid, f.prefix, v)
				}
				*f.to = kb << 10
			}
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, fmt.Errorf("bench: no VmRSS or VmHWM in /proc/%d/status", pid)
	}
	return rss, peak, nil
}

// scrape reads the named unlabelled series from a Prometheus text endpoint; a missing one is an error.
func scrape(ctx context.Context, url string, names ...string) ([]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: scraping the receiver: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(names))
	found := make([]bool, len(names))
	for line := range strings.SplitSeq(string(body), "\n") {
		for i, name := range names {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				if out[i], err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
					return nil, fmt.Errorf("bench: %s: %w", name, err)
				}
				found[i] = true
			}
		}
	}
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("bench: the receiver's /metrics has no %s", names[i])
		}
	}
	return out, nil
}
