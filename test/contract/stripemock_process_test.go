package contract

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

const (
	// startupTimeout bounds how long stripe-mock may take to listen and answer; it loads an
	// 8 MB OpenAPI spec first, which takes well under a second on a laptop.
	startupTimeout = 15 * time.Second
	// mockKey is a key stripe-mock accepts: it wants "sk_test_" or "rk_test_" and one more
	// underscore-free part, and refuses live keys.
	mockKey = "sk_test_123"
)

// httpAddrPattern finds the address stripe-mock prints once its HTTP listener is bound.
var httpAddrPattern = regexp.MustCompile(`Listening for HTTP at address: (\S+)`)

// stripeMockBinary is $STRIPE_MOCK, else bin/stripe-mock of the repository.
func stripeMockBinary() string {
	if bin := os.Getenv("STRIPE_MOCK"); bin != "" {
		return bin
	}
	return filepath.Join("..", "..", "bin", "stripe-mock")
}

// startStripeMock runs stripe-mock on loopback ports the kernel picks and returns its HTTP base
// URL once it answers. It is killed at cleanup. A missing binary fails the test rather than
// skipping it: a contract test that silently does not run protects nothing.
func startStripeMock(t *testing.T) string {
	t.Helper()
	bin := stripeMockBinary()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("stripe-mock is not installed at %s (%v): run `make stripe-mock` (`make test` does it for you)", bin, err)
	}
	out := &outputWatcher{found: make(chan string, 1)}
	// Port 0 on both listeners: stripe-mock binds whatever is free and prints the address, so
	// there is no race with other processes over a port picked in advance. -https-addr is
	// needed too, or stripe-mock also opens HTTPS on its fixed default port 12112.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = dieWithParent()
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	deadline := time.NewTimer(startupTimeout)
	defer deadline.Stop()
	var addr string
	select {
	case addr = <-out.found:
	case <-exited:
		t.Fatalf("stripe-mock exited before listening:\n%s", out)
	case <-deadline.C:
		t.Fatalf("stripe-mock did not listen within %v:\n%s", startupTimeout, out)
	}
	baseURL := "http://" + addr
	if err := waitForAnswer(baseURL, startupTimeout); err != nil {
		t.Fatalf("stripe-mock at %s: %v\n%s", baseURL, err, out)
	}
	return baseURL
}

// waitForAnswer polls until stripe-mock serves an authenticated request.
func waitForAnswer(baseURL string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/v1/account", nil)
		if err != nil {
			return fmt.Errorf("building the readiness request: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+mockKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readiness request answered %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer within %v: %w", timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// outputWatcher keeps stripe-mock's output for failure messages and reports the HTTP address
// once it appears. It must keep accepting writes: stripe-mock logs every request to stdout
// and would block on a full pipe.
type outputWatcher struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	found chan string
	sent  bool
}

func (w *outputWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if m := httpAddrPattern.FindSubmatch(w.buf.Bytes()); m != nil {
			w.found <- string(m[1])
			w.sent = true
		}
	}
	return len(p), nil
}

func (w *outputWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
