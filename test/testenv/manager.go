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

// Package testenv runs the operator's real manager binary against a test control plane for the
// benchmarks (test/bench) and the reliability suite (test/reliability): start, stop or
// kill it, and sample its memory. Tests and tools only; production code never imports it.
package testenv

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

// SampleEvery is how often the manager's memory is sampled.
const SampleEvery = 500 * time.Millisecond

// Manager is the real manager binary, with its memory sampled from /proc (RSS) and from its
// own /metrics (Go heap in use).
type Manager struct {
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

// ManagerOptions start one manager process.
type ManagerOptions struct {
	// Bin is the manager binary; Kubeconfig its credentials; StripeURL the Stripe (fake) base URL.
	Bin, Kubeconfig, StripeURL string
	// LogPath receives the manager's output.
	LogPath string
	// PprofAddr, if set, serves net/http/pprof there.
	PprofAddr string
	// Env is added to the manager's environment.
	Env []string
	// Resync is --resync-period.
	Resync time.Duration
	// MaxConcurrent is --max-concurrent-reconciles (0: the manager's default).
	MaxConcurrent int
	// LeaderElect turns on leader election (namespace: LeaderElectionNamespace).
	LeaderElect bool
	// LeaderElectionNamespace is where the lease lives when LeaderElect is set.
	LeaderElectionNamespace string
	// StripeCallTimeout is --stripe-call-timeout (0: the manager's default).
	StripeCallTimeout time.Duration
	// ExtraArgs are appended to the flags.
	ExtraArgs []string
}

// FreeAddrs returns n distinct, currently free 127.0.0.1 addresses: each port is held open until
// all are chosen, so they differ. Another process could take one before the caller binds it; on
// loopback that is rare, and the caller's bind then fails with a clear error.
func FreeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer func() { _ = ln.Close() }() // held open until all are chosen
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// FreeAddr returns one currently free 127.0.0.1 address (see FreeAddrs).
func FreeAddr() (string, error) {
	addrs, err := FreeAddrs(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// StartManager starts the manager binary and returns once its /readyz answers.
func StartManager(ctx context.Context, o ManagerOptions) (*Manager, error) {
	addrs, err := FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	metricsAddr, probeAddr := addrs[0], addrs[1]
	lf, err := os.Create(o.LogPath)
	if err != nil {
		return nil, err
	}
	args := []string{
		"--stripe-api-url=" + o.StripeURL,
		"--metrics-bind-address=" + metricsAddr,
		"--metrics-secure=false",
		"--health-probe-bind-address=" + probeAddr,
		"--resync-period=" + o.Resync.String(),
		"--zap-log-level=error",
	}
	if o.PprofAddr != "" {
		args = append(args, "--pprof-bind-address="+o.PprofAddr)
	}
	if o.MaxConcurrent > 0 {
		args = append(args, "--max-concurrent-reconciles="+strconv.Itoa(o.MaxConcurrent))
	}
	if o.StripeCallTimeout > 0 {
		args = append(args, "--stripe-call-timeout="+o.StripeCallTimeout.String())
	}
	if o.LeaderElect {
		args = append(args, "--leader-elect=true", "--leader-election-namespace="+o.LeaderElectionNamespace)
	}
	args = append(args, o.ExtraArgs...)
	cmd := exec.Command(o.Bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(append(os.Environ(), o.Env...), "KUBECONFIG="+o.Kubeconfig)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		_ = lf.Close()
		return nil, fmt.Errorf("start manager: %w", err)
	}
	m := &Manager{cmd: cmd, logPath: o.LogPath, metrics: "http://" + metricsAddr + "/metrics", done: make(chan struct{})}
	if o.PprofAddr != "" {
		m.pprof = "http://" + o.PprofAddr + "/debug/pprof"
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
			return nil, fmt.Errorf("the manager exited at start; log: %s", o.LogPath)
		case <-readyCtx.Done():
			_ = m.Stop()
			return nil, fmt.Errorf("the manager was not ready within a minute; log: %s", o.LogPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
	sctx, scancel := context.WithCancel(context.Background())
	m.stopSampling, m.samplingDone = scancel, make(chan struct{})
	go m.sample(sctx)
	return m, nil
}

func (m *Manager) Exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

func (m *Manager) Stop() error {
	if m.stopSampling != nil {
		m.stopSampling()
		<-m.samplingDone
		m.stopSampling = nil
	}
	if m.Exited() {
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

func (m *Manager) sample(ctx context.Context) {
	defer close(m.samplingDone)
	tick := time.NewTicker(SampleEvery)
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

func (m *Manager) ResetPeaks() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peakRSS, m.peakHeap = m.lastRSS, m.lastHeap
}

func (m *Manager) Peaks() (rss, heap uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peakRSS, m.peakHeap
}

func (m *Manager) Current() (rss, heap uint64) {
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
func (m *Manager) CPUProfile(d time.Duration, path string) <-chan error {
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
func (m *Manager) HeapProfile(path string) error {
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

// Kill ends the manager with SIGKILL, as a node failure or an OOM kill would: no lease release,
// no graceful shutdown.
func (m *Manager) Kill() {
	if m.stopSampling != nil {
		m.stopSampling()
		<-m.samplingDone
		m.stopSampling = nil
	}
	if !m.Exited() {
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// LogPath is the file with the manager's output.
func (m *Manager) LogPath() string { return m.logPath }

// MetricsURL is the manager's plain-HTTP /metrics endpoint.
func (m *Manager) MetricsURL() string { return m.metrics }

// TailFile returns the last n bytes of a log file, for failure messages (the error, if it cannot
// be read).
func TailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(info.Size()-n, 0)
	buf := make([]byte, info.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, os.ErrClosed) {
		return string(buf)
	}
	return string(buf)
}
