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
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sampleEvery is how often the manager's memory is sampled.
const sampleEvery = 500 * time.Millisecond

// managerProc is the real manager binary, with its memory sampled from /proc (RSS) and from its
// own /metrics (Go heap in use).
type managerProc struct {
	cmd     *exec.Cmd
	logPath string
	metrics string
	pprof   string // base URL of net/http/pprof, "" when off
	done    chan struct{}

	mu                sync.Mutex
	peakRSS, peakHeap uint64
	lastRSS, lastHeap uint64
	stopSampling      context.CancelFunc
	samplingDone      chan struct{}
}

type managerOptions struct {
	bin, kubeconfig, stripeURL, logPath string
	pprofAddr                           string
	env                                 []string
	resync                              time.Duration
	maxConcurrent                       int
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func startManager(ctx context.Context, o managerOptions) (*managerProc, error) {
	metricsAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	probeAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	lf, err := os.Create(o.logPath)
	if err != nil {
		return nil, err
	}
	args := []string{
		"--stripe-api-url=" + o.stripeURL,
		"--leader-elect=false",
		"--metrics-bind-address=" + metricsAddr,
		"--metrics-secure=false",
		"--health-probe-bind-address=" + probeAddr,
		"--resync-period=" + o.resync.String(),
		"--zap-log-level=error",
	}
	if o.pprofAddr != "" {
		args = append(args, "--pprof-bind-address="+o.pprofAddr)
	}
	if o.maxConcurrent > 0 {
		args = append(args, "--max-concurrent-reconciles="+strconv.Itoa(o.maxConcurrent))
	}
	cmd := exec.Command(o.bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(append(os.Environ(), o.env...), "KUBECONFIG="+o.kubeconfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		_ = lf.Close()
		return nil, fmt.Errorf("start manager: %w", err)
	}
	m := &managerProc{cmd: cmd, logPath: o.logPath, metrics: "http://" + metricsAddr + "/metrics", done: make(chan struct{})}
	if o.pprofAddr != "" {
		m.pprof = "http://" + o.pprofAddr + "/debug/pprof"
	}
	go func() {
		_ = cmd.Wait()
		_ = lf.Close()
		close(m.done)
	}()
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if resp, err := http.Get("http://" + probeAddr + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("the manager exited at start; log: %s", o.logPath)
		case <-readyCtx.Done():
			_ = m.stop()
			return nil, fmt.Errorf("the manager was not ready within a minute; log: %s", o.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
	sctx, scancel := context.WithCancel(context.Background())
	m.stopSampling, m.samplingDone = scancel, make(chan struct{})
	go m.sample(sctx)
	return m, nil
}

func (m *managerProc) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

func (m *managerProc) stop() error {
	if m.stopSampling != nil {
		m.stopSampling()
		<-m.samplingDone
	}
	if m.exited() {
		return nil
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
	return nil
}

func (m *managerProc) sample(ctx context.Context) {
	defer close(m.samplingDone)
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for {
		rss := readRSS(m.cmd.Process.Pid)
		heap := readHeap(m.metrics)
		m.mu.Lock()
		if rss > 0 {
			m.lastRSS, m.peakRSS = rss, max(m.peakRSS, rss)
		}
		if heap > 0 {
			m.lastHeap, m.peakHeap = heap, max(m.peakHeap, heap)
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (m *managerProc) resetPeaks() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peakRSS, m.peakHeap = m.lastRSS, m.lastHeap
}

func (m *managerProc) peaks() (rss, heap uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peakRSS, m.peakHeap
}

func (m *managerProc) current() (rss, heap uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastRSS, m.lastHeap
}

// readRSS returns VmRSS of pid in bytes, 0 if unknown.
func readRSS(pid int) uint64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// readHeap returns go_memstats_heap_inuse_bytes from a Prometheus text endpoint, 0 if unknown.
func readHeap(url string) uint64 {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return uint64(f)
			}
		}
	}
	return 0
}

// cpuProfile records the manager's CPU profile for d into path (in the background); the returned
// channel yields the error once done.
func (m *managerProc) cpuProfile(d time.Duration, path string) <-chan error {
	done := make(chan error, 1)
	if m.pprof == "" {
		done <- nil
		return done
	}
	go func() {
		c := http.Client{Timeout: d + 30*time.Second}
		resp, err := c.Get(fmt.Sprintf("%s/profile?seconds=%d", m.pprof, int(d.Seconds())))
		if err != nil {
			done <- err
			return
		}
		defer func() { _ = resp.Body.Close() }()
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		done <- errors.Join(err, f.Close())
	}()
	return done
}

// heapProfile saves the manager's heap profile (after a GC, as net/http/pprof does with gc=1).
func (m *managerProc) heapProfile(path string) error {
	if m.pprof == "" {
		return nil
	}
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(m.pprof + "/heap?gc=1")
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}
