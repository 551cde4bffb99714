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

package receiver

// Oversized bodies: a 100 MiB delivery streamed to the real server is cut at the size limit.

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/test/testreport"
)

// patternReader generates n bytes of a JSON-looking body without holding them in memory.
type patternReader struct {
	prefix []byte
	n, off int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	if rest := r.n - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	for i := range p {
		if pos := r.off + int64(i); pos < int64(len(r.prefix)) {
			p[i] = r.prefix[pos]
		} else {
			p[i] = 'a'
		}
	}
	r.off += int64(len(p))
	return len(p), nil
}

// countingWriter counts the bytes the client managed to send.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// TestAttackHugeBody streams a 100 MiB body (generated, never held in memory) to the real
// webhook server, with a Content-Length and chunked: the answer is 413, the server closes the
// connection instead of reading on, nothing is relayed and the process allocates a bounded
// amount while handling it.
func TestAttackHugeBody(t *testing.T) {
	const size = 100 << 20
	const allocBudget = 16 << 20
	s := startAttackServer(t)
	prefix := []byte(`{"id":"evt_huge","object":"event","type":"payment_intent.succeeded","pad":"`)
	// Validly signed, so the cap is shown to apply whatever the signature.
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secretOld))
	mac.Write([]byte(ts + "."))
	if _, err := io.Copy(mac, &patternReader{prefix: prefix, n: size}); err != nil {
		t.Fatal(err)
	}
	sig := "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))

	for _, chunked := range []bool{false, true} {
		name := "content-length"
		if chunked {
			name = "chunked"
		}
		t.Run(name, func(t *testing.T) {
			before := s.relayed()
			rejectedBefore := counter(t, s.f.r.metrics.events.WithLabelValues(typeUnknown, resultRejected))
			conn, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			if err := conn.SetDeadline(time.Now().Add(15 * time.Second)); err != nil {
				t.Fatal(err)
			}
			framing := "Content-Length: " + strconv.Itoa(size)
			if chunked {
				framing = "Transfer-Encoding: chunked"
			}

			runtime.GC()
			var m0 runtime.MemStats
			runtime.ReadMemStats(&m0)
			peak := m0.HeapAlloc
			stopSampling, sampled := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(sampled)
				tick := time.NewTicker(5 * time.Millisecond)
				defer tick.Stop()
				var m runtime.MemStats
				for {
					select {
					case <-stopSampling:
						return
					case <-tick.C:
						runtime.ReadMemStats(&m)
						peak = max(peak, m.HeapAlloc)
					}
				}
			}()

			start := time.Now()
			cw := &countingWriter{w: conn}
			written := make(chan error, 1)
			go func() {
				head := "POST " + testPath + " HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Type: application/json\r\n" +
					"Stripe-Signature: " + sig + "\r\n" + framing + "\r\n\r\n"
				if _, err := io.WriteString(conn, head); err != nil {
					written <- err
					return
				}
				body := &patternReader{prefix: prefix, n: size}
				if !chunked {
					_, err := io.Copy(cw, body)
					written <- err
					return
				}
				cwr := httputil.NewChunkedWriter(cw)
				if _, err := io.Copy(cwr, body); err != nil {
					written <- err
					return
				}
				_ = cwr.Close()
				_, err := io.WriteString(conn, "\r\n")
				written <- err
			}()
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer to the 100 MiB body: %v", err)
			}
			answered := time.Since(start)
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			// The server must hang up rather than read on: the client's writes then fail.
			_, tailErr := br.ReadByte()
			writeErr := <-written
			closed := time.Since(start)
			close(stopSampling)
			<-sampled
			var m1 runtime.MemStats
			runtime.ReadMemStats(&m1)
			allocated := m1.TotalAlloc - m0.TotalAlloc

			var r response
			_ = json.Unmarshal(raw, &r)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || r.Status != "too_large" {
				t.Errorf("got %d %q, want 413 too_large", resp.StatusCode, raw)
			}
			if tailErr == nil {
				t.Error("the server sent more after its answer instead of closing the connection")
			}
			if writeErr == nil || cw.n.Load() >= size {
				t.Errorf("the client sent the whole body (%d bytes, write error %v): the server read it all", cw.n.Load(), writeErr)
			}
			if got := s.relayed() - before; got != 0 {
				t.Errorf("target got %d events", got)
			}
			if got := counter(t, s.f.r.metrics.events.WithLabelValues(typeUnknown, resultRejected)) - rejectedBefore; got != 1 {
				t.Errorf("events{unknown,rejected} rose by %v, want 1", got)
			}
			if allocated > allocBudget {
				t.Errorf("handling the 100 MiB body allocated %d bytes in total, budget %d (body cap %d)", allocated, allocBudget, DefaultMaxBodyBytes)
			}
			if grew := int64(peak) - int64(m0.HeapAlloc); grew > allocBudget {
				t.Errorf("live heap grew by %d bytes, budget %d", grew, allocBudget)
			}
			testreport.Report(t, "413 after %s, connection closed after %s; client sent %.1f MiB of %d MiB before the server hung up (%v); "+
				"process allocated %.2f MiB (TotalAlloc delta), peak live heap +%.2f MiB",
				answered.Round(time.Millisecond), closed.Round(time.Millisecond), float64(cw.n.Load())/(1<<20), size>>20,
				writeErr, float64(allocated)/(1<<20), float64(int64(peak)-int64(m0.HeapAlloc))/(1<<20))
		})
	}
}
