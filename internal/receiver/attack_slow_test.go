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

// Slow clients: slowloris connections and the webhook server's timeout defaults.

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/test/testreport"
)

// slowResult is what a slow client saw: the bytes the server sent and when it hung up.
type slowResult struct {
	data   []byte
	err    error
	closed time.Duration
}

// readUntilClosed reads everything the server sends until it closes the connection.
func readUntilClosed(conn net.Conn, start time.Time) <-chan slowResult {
	done := make(chan slowResult, 1)
	go func() {
		data, err := io.ReadAll(conn)
		done <- slowResult{data: data, err: err, closed: time.Since(start)}
	}()
	return done
}

// trickle writes p one byte per interval until done fires or a write fails; it returns how
// many bytes it wrote.
func trickle(conn net.Conn, p []byte, interval time.Duration, done <-chan slowResult) (int, slowResult, bool) {
	for i := range p {
		select {
		case r := <-done:
			return i, r, true
		case <-time.After(interval):
		}
		if _, err := conn.Write(p[i : i+1]); err != nil {
			return i, <-done, true
		}
	}
	return len(p), slowResult{}, false
}

// TestAttackSlowloris holds connections open by sending slowly: the server hangs up at its
// header timeout or answers 400 at its read timeout, relays nothing, and keeps serving others.
func TestAttackSlowloris(t *testing.T) {
	const headerTimeout, readTimeout = 300 * time.Millisecond, time.Second
	s := startAttackServer(t, func(c *Config) {
		c.ReadHeaderTimeout = headerTimeout
		c.ReadTimeout = readTimeout
	})
	dial := func(t *testing.T) net.Conn {
		t.Helper()
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	request := func(body []byte) (head string) {
		return "POST " + testPath + " HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Type: application/json\r\n" +
			"Stripe-Signature: " + sign(body, secretOld, time.Now()) + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	}
	// hungUp accepts what the server may send when it drops a slow client: Go's server answers
	// 400 to a header timeout once part of the request arrived, and closes silently before
	// that; 408 would do too. Never a 2xx.
	hungUp := func(t *testing.T, data []byte) {
		t.Helper()
		if len(data) > 0 && !bytes.HasPrefix(data, []byte("HTTP/1.1 400 ")) && !bytes.HasPrefix(data, []byte("HTTP/1.1 408 ")) {
			t.Errorf("server answered %.100q, want 400, 408 or a silent close", data)
		}
	}

	t.Run("slow headers: one byte per 100 ms", func(t *testing.T) {
		body := goodBody(t, "evt_slow_headers")
		head := []byte(request(body))
		conn := dial(t)
		start := time.Now()
		done := readUntilClosed(conn, start)
		sent, r, closed := trickle(conn, head, 100*time.Millisecond, done)
		if !closed {
			t.Fatalf("the server read all %d header bytes sent one per 100 ms (%s) without hanging up", len(head), time.Since(start))
		}
		hungUp(t, r.data)
		if r.closed < headerTimeout-50*time.Millisecond || r.closed > time.Second {
			t.Errorf("connection closed after %s, want about the %s header timeout (< 1 s)", r.closed, headerTimeout)
		}
		if s.relayed() != 0 {
			t.Errorf("target got %d events", s.relayed())
		}
		testreport.Report(t, "closed after %s having received %d of %d header bytes; answer %.30q (read error: %v)", r.closed.Round(time.Millisecond),
			sent, len(head), r.data, r.err)
	})

	t.Run("slow body: headers at once, one body byte per 200 ms", func(t *testing.T) {
		before := s.relayed()
		body := goodBody(t, "evt_slow_body") // valid: only the pace makes it fail
		conn := dial(t)
		start := time.Now()
		done := readUntilClosed(conn, start)
		if _, err := io.WriteString(conn, request(body)); err != nil {
			t.Fatal(err)
		}
		sent, r, closed := trickle(conn, body, 200*time.Millisecond, done)
		if !closed {
			t.Fatalf("the server read the whole %d-byte body sent one byte per 200 ms", len(body))
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(r.data)), nil)
		if err != nil {
			t.Fatalf("no HTTP answer before the close (%q): %v", r.data, err)
		}
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("answered %d, want 400 (body unreadable) or 408", resp.StatusCode)
		}
		if r.closed < readTimeout-100*time.Millisecond || r.closed > readTimeout+time.Second {
			t.Errorf("connection closed after %s, want about the %s read timeout", r.closed, readTimeout)
		}
		if got := s.relayed() - before; got != 0 {
			t.Errorf("target got %d events", got)
		}
		testreport.Report(t, "answered %d and closed after %s having received %d of %d body bytes", resp.StatusCode, r.closed.Round(time.Millisecond),
			sent, len(body))
	})

	t.Run("50 slow clients do not block a valid delivery", func(t *testing.T) {
		const clients = 50
		before := s.relayed()
		head := []byte(request(goodBody(t, "evt_slow_many")))
		start := time.Now()
		results := make([]slowResult, clients)
		sentAll := make([]int, clients)
		closedAll := make([]bool, clients)
		var wg sync.WaitGroup
		for i := range clients {
			conn := dial(t)
			wg.Go(func() {
				sentAll[i], results[i], closedAll[i] = trickle(conn, head, 100*time.Millisecond, readUntilClosed(conn, start))
			})
		}
		time.Sleep(100 * time.Millisecond) // every slow client is now connected and sending
		body := goodBody(t, "evt_while_slowloris")
		code, resp, raw := s.deliver(t, body, sign(body, secretOld, time.Now()))
		served := time.Since(start)
		if code != http.StatusOK || resp.Status != resultRelayed {
			t.Errorf("valid delivery during the slowloris: %d %s", code, raw)
		}
		wg.Wait()
		for i := range clients {
			if !closedAll[i] {
				t.Errorf("slow client %d was never dropped", i)
				continue
			}
			hungUp(t, results[i].data)
			if results[i].closed > 1500*time.Millisecond {
				t.Errorf("slow client %d dropped after %s", i, results[i].closed)
			}
		}
		if got := s.relayed() - before; got != 1 {
			t.Errorf("target got %d events, want 1 (the valid delivery)", got)
		}
		testreport.Report(t, "valid delivery answered after %s; all %d slow clients dropped within %s", served.Round(time.Millisecond), clients,
			time.Since(start).Round(time.Millisecond))
	})
}

// TestAttackServerTimeoutDefaults checks that the configurable webhook server timeouts keep the
// production values when left zero and refuse negative values.
func TestAttackServerTimeoutDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.ReadHeaderTimeout != 10*time.Second || c.ReadTimeout != 30*time.Second {
		t.Errorf("defaults: ReadHeaderTimeout %s, ReadTimeout %s; want 10s and 30s", c.ReadHeaderTimeout, c.ReadTimeout)
	}
	valid := Config{ClinicID: testClinic, Mode: ModeTest, SigningSecretFile: "/x"}
	for _, mutate := range []func(*Config){
		func(c *Config) { c.ReadHeaderTimeout = -time.Second },
		func(c *Config) { c.ReadTimeout = -time.Second },
	} {
		cfg := valid
		mutate(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "negative") {
			t.Errorf("Validate = %v, want a negative-timeout error", err)
		}
	}
}
