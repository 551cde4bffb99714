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

// The receiver bench's processes: the receiver binary under test and the no-op sink it relays to.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/clinicpay/stripe-operator/internal/receiver"
	"github.com/clinicpay/stripe-operator/test/testenv"
)

// noopSink is the relay target: an HTTP server on loopback that reads each request, counts it
// by Idempotency-Key and answers 202.
type noopSink struct {
	srv *http.Server
	ln  net.Listener

	mu         sync.Mutex
	seen       map[string]struct{}
	requests   int
	duplicates int
	conns      int // connections accepted: the receiver's relay dials again when it drops idle ones
}

func startNoopSink() (*noopSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: sink: %w", err)
	}
	s := &noopSink{ln: ln, seen: make(map[string]struct{}, defaultReceiverPayloads)}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.mu.Lock()
				s.conns++
				s.mu.Unlock()
			}
		}}
	go func() { _ = s.srv.Serve(ln) }() // returns ErrServerClosed on close
	return s, nil
}

func (s *noopSink) url() string { return "http://" + s.ln.Addr().String() + "/events" }

func (s *noopSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/events" {
		http.Error(w, "POST /events only", http.StatusNotFound)
		return
	}
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		http.Error(w, "missing Idempotency-Key", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests++
	if _, dup := s.seen[key]; dup {
		s.duplicates++
	} else {
		s.seen[key] = struct{}{}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// counts returns the relayed requests received and how many repeated an Idempotency-Key.
func (s *noopSink) counts() (requests, duplicates int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.duplicates
}

// connections returns how many connections the sink accepted.
func (s *noopSink) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

func (s *noopSink) close() { _ = s.srv.Close() }

// ---- Receiver process ----

// receiverProc is a running cmd/receiver child process.
type receiverProc struct {
	cmd        *exec.Cmd
	logPath    string
	webhookURL string
	opsURL     string // serves /metrics, /healthz and /readyz
	done       chan struct{}
	err        error // valid once done is closed
	stopped    bool
}

// startReceiverProc starts the receiver binary with the operator's flags, bound to loopback,
// relaying to sinkURL, with GOMAXPROCS=cores and, when cpus is not empty, pinned to cpus with
// taskset. Its output goes to logPath; env is added to its environment. It returns once /readyz
// answers 200.
func startReceiverProc(ctx context.Context, bin, taskset string, cpus []int, cores int, secretFile, sinkURL, logPath string,
	env ...string) (*receiverProc, error) {
	addrs, err := testenv.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	webhookAddr, opsAddr := addrs[0], addrs[1]
	args := []string{ // as internal/controller's receiverArgs, on loopback
		"--clinic-id=" + benchClinicID,
		"--mode=" + string(receiver.ModeTest),
		"--signing-secret-file=" + secretFile,
		"--webhook-bind-address=" + webhookAddr,
		"--ops-bind-address=" + opsAddr,
		"--http-target-url=" + sinkURL,
	}
	name := bin
	if len(cpus) > 0 {
		// taskset execs the receiver, so the child is the receiver itself.
		name, args = taskset, append([]string{"-c", cpuList(cpus), bin}, args...)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }() // the child has its own descriptor
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(cores)), env...) // the last value wins
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// SIGTERM if this process dies first; SIGTERM, then SIGKILL, if ctx ends first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = receiverStopGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting %s: %w", name, err)
	}
	p := &receiverProc{cmd: cmd, logPath: logPath, done: make(chan struct{}), opsURL: "http://" + opsAddr,
		webhookURL: "http://" + webhookAddr + receiver.WebhookPath(receiver.ModeTest, benchClinicID)}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := p.waitReady(ctx, p.opsURL+"/readyz"); err != nil {
		_ = p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls readyURL until it answers 200, the process exits or receiverStartTimeout passes.
func (p *receiverProc) waitReady(ctx context.Context, readyURL string) error {
	ctx, cancel := context.WithTimeout(ctx, receiverStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyURL, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("bench: receiver exited before %s answered 200 (%v); its last output:\n%s", readyURL, p.err, p.tail())
		case <-ctx.Done():
			return fmt.Errorf("bench: receiver's %s did not answer 200 within %s; its last output:\n%s", readyURL, receiverStartTimeout, p.tail())
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, waits up to receiverStopGrace, then kills; it reports an unclean exit.
// Calling it again is a no-op.
func (p *receiverProc) stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM) // it may just have exited
		select {
		case <-p.done:
		case <-time.After(receiverStopGrace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if p.err != nil {
		return fmt.Errorf("bench: receiver did not exit cleanly (%v); its last output:\n%s", p.err, p.tail())
	}
	return nil
}

// allocStats are the receiver's own runtime counters, read from its /metrics.
type allocStats struct {
	mallocs, bytes, gcs float64
}

// allocs reads the running receiver's cumulative heap allocations (count and bytes) and
// completed GC cycles. Unlike CPU time, these do not change when other work shares the CPUs.
func (p *receiverProc) allocs(ctx context.Context) (allocStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := scrape(ctx, p.opsURL+"/metrics", "go_memstats_mallocs_total", "go_memstats_alloc_bytes_total", "go_gc_duration_seconds_count")
	if err != nil {
		return allocStats{}, err
	}
	return allocStats{mallocs: v[0], bytes: v[1], gcs: v[2]}, nil
}

// peakRSS returns the running receiver's peak resident set size (VmHWM); 0 when unknown.
func (p *receiverProc) peakRSS() int64 {
	_, peak, err := procRSS(p.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return int64(peak)
}

// cpuTime returns the CPU time the exited receiver used, user and system.
func (p *receiverProc) cpuTime() time.Duration {
	ps := p.cmd.ProcessState
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// switches returns how many times the exited receiver's threads gave up their CPU, waiting
// (voluntary) or preempted (involuntary), all threads, start to exit.
func (p *receiverProc) switches() int64 {
	ps := p.cmd.ProcessState
	if ps == nil {
		return 0
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return ru.Nvcsw + ru.Nivcsw
}

// perEvent spreads the exited receiver's CPU time and context switches over the events it
// acknowledged in elapsed: CPU per event, cores busy (CPU over wall time) and switches per
// event; zeros when it acknowledged none.
func (p *receiverProc) perEvent(events int, elapsed time.Duration) (cpuPerEvent time.Duration, coresBusy, switches float64) {
	if events <= 0 {
		return 0, 0, 0
	}
	cpu := p.cpuTime()
	return cpu / time.Duration(events), cpu.Seconds() / elapsed.Seconds(), float64(p.switches()) / float64(events)
}

// selfCPUTime returns the CPU time this process used so far, user and system.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tail returns the end of the receiver's output, for error messages.
func (p *receiverProc) tail() string {
	const tailBytes = 2 << 10
	f, err := os.Open(p.logPath)
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err == nil && fi.Size() > tailBytes {
		_, _ = f.Seek(-tailBytes, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// ---- CPU pinning ----
