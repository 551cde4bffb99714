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

// The receiver under attack: hostile deliveries through the real webhook server (Serve on
// 127.0.0.1 listeners), oversized and slow requests, and a time-bounded mutation run of the
// FuzzHandler properties. RELIABILITY_FULL=1 runs the long variant of the mutation run.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/test/testreport"
)

// reliabilityFull reports whether the long variants of the reliability tests run.
func reliabilityFull() bool { return os.Getenv("RELIABILITY_FULL") == "1" }

// attackServer is a receiver served by Serve on 127.0.0.1 listeners, relaying to a recording
// target.
type attackServer struct {
	f      *fixture
	target *fakeTarget
	addr   string
	client *http.Client
}

func startAttackServer(t *testing.T, mutate ...func(*Config)) *attackServer {
	t.Helper()
	target := &fakeTarget{name: "attack"}
	// Shutdown must not wait long for a connection a test left half-open.
	mutate = append([]func(*Config){func(c *Config) { c.ShutdownTimeout = 3 * time.Second }}, mutate...)
	f := newFixture(t, secretOld+"\n", []relay.Target{target}, mutate...)
	webhookLn, opsLn := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.r.Serve(ctx, webhookLn, opsLn) }()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10 s of its context ending")
		}
	})
	return &attackServer{f: f, target: target, addr: webhookLn.Addr().String(), client: client}
}

// deliver POSTs body with the given Stripe-Signature ("" sends none) and returns the status,
// the decoded JSON answer (zero if the answer is not the receiver's JSON) and the raw body.
func (s *attackServer) deliver(t *testing.T, body []byte, sig string) (int, response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+testPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if sig != "" {
		req.Header.Set("Stripe-Signature", sig)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("delivery failed: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	var r response
	_ = json.Unmarshal(raw, &r)
	return resp.StatusCode, r, string(raw)
}

func (s *attackServer) relayed() int { return len(s.target.calls()) }

// causeCounts snapshots stripe_receiver_signature_failures_total by cause.
func causeCounts(t *testing.T, f *fixture) map[cause]float64 {
	t.Helper()
	out := map[cause]float64{}
	for _, c := range allCauses() {
		out[c] = counter(t, f.r.metrics.signatureFailures.WithLabelValues(string(c)))
	}
	return out
}

// attackBody is a valid test-mode event with a unique id.
func attackBody(t testing.TB, n int) []byte {
	return goodBody(t, fmt.Sprintf("evt_attack_%03d", n))
}

// deepJSON nests depth arrays (or objects) inside an otherwise valid event's data.object.
func deepJSON(id string, depth int, objects bool) []byte {
	open, closing := "[", "]"
	if objects {
		open, closing = `{"a":`, "}"
	}
	var b bytes.Buffer
	b.WriteString(`{"id":"` + id + `","object":"event","api_version":"` + stripe.APIVersion +
		`","created":1700000000,"livemode":false,"type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent","deep":`)
	b.WriteString(strings.Repeat(open, depth))
	if objects {
		b.WriteString("1")
	}
	b.WriteString(strings.Repeat(closing, depth))
	b.WriteString(`}}}`)
	return b.Bytes()
}

// withBytes replaces old (which must occur once in body) with replacement bytes.
func withBytes(t *testing.T, body []byte, old, replacement string) []byte {
	t.Helper()
	if bytes.Count(body, []byte(old)) != 1 {
		t.Fatalf("%q occurs %d times in the body", old, bytes.Count(body, []byte(old)))
	}
	return bytes.Replace(body, []byte(old), []byte(replacement), 1)
}

// hexFlip changes the last hex digit of a Stripe-Signature's v1 value.
func hexFlip(header string) string {
	last := header[len(header)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return header[:len(header)-1] + string(repl)
}

func v1Of(header string) string { return header[strings.Index(header, "v1=")+3:] }

func unixHeader(ts time.Time, v1s ...string) string {
	h := "t=" + strconv.FormatInt(ts.Unix(), 10)
	for _, v := range v1s {
		h += ",v1=" + v
	}
	return h
}

// TestAttackHostileDeliveries sends forged, replayed and hostile-payload deliveries through the
// real webhook server: each is refused with the documented code and nothing reaches the
// target; a valid delivery still works afterwards and an exact replay of it is not relayed
// again.
func TestAttackHostileDeliveries(t *testing.T) {
	s := startAttackServer(t)
	rng := rand.New(rand.NewPCG(1, 2))
	randHex := func() string {
		b := make([]byte, sha256.Size)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return hex.EncodeToString(b)
	}
	// futureTS is an integer-second timestamp at least 301 s ahead of the receiver's clock when
	// it checks (sign truncates to seconds, so now+301 s could be 300.x s ahead).
	futureTS := func(ahead time.Duration) time.Time {
		return time.Unix(time.Now().Unix()+int64(ahead/time.Second)+1, 0)
	}

	type attackCase struct {
		name      string
		body      func(n int) []byte // default attackBody
		sig       func(b []byte) string
		wantCode  int
		wantState string // the JSON status; "" when the answer is not the receiver's JSON
		wantCause cause  // +1 in signature failures; "" for none
		wantRelay int
	}
	signed := func(b []byte) string { return sign(b, secretOld, time.Now()) }
	cases := []attackCase{
		// Forged signatures.
		{name: "forged: signed with another secret", sig: func(b []byte) string { return sign(b, secretUnknown, time.Now()) },
			wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: v1 of the right length, last hex digit changed", sig: func(b []byte) string { return hexFlip(signed(b)) },
			wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: v1 of the right length, random", sig: func([]byte) string { return unixHeader(time.Now(), randHex()) },
			wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: no Stripe-Signature header", sig: func([]byte) string { return "" },
			wantCode: 400, wantState: "rejected", wantCause: causeMissingHeader},
		{name: "forged: header with only t=", sig: func([]byte) string { return unixHeader(time.Now()) },
			wantCode: 400, wantState: "rejected", wantCause: causeInvalidHeader},
		{name: "forged: empty v1", sig: func([]byte) string { return unixHeader(time.Now(), "") },
			wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: three v1 values, all wrong", sig: func(b []byte) string {
			return unixHeader(time.Now(), v1Of(sign(b, secretUnknown, time.Now())), randHex(), hexFlip(v1Of(signed(b))))
		}, wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: 700 v1 values, all wrong", sig: func([]byte) string {
			v1s := make([]string, 700)
			for i := range v1s {
				v1s[i] = randHex()
			}
			return unixHeader(time.Now(), v1s...)
		}, wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: valid HMAC under the v0 scheme only", sig: func(b []byte) string {
			return strings.Replace(signed(b), "v1=", "v0=", 1)
		}, wantCode: 400, wantState: "rejected", wantCause: causeInvalidHeader},
		{name: "forged: valid signature over the original body, amount tampered", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"amount": 1234`, `"amount": 9234`)
		}, sig: func(b []byte) string {
			return signed(withBytes(t, b, `"amount": 9234`, `"amount": 1234`))
		}, wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: stale v1 re-dated to now", sig: func(b []byte) string {
			return unixHeader(time.Now(), v1Of(sign(b, secretOld, time.Now().Add(-10*time.Minute))))
		}, wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: Stripe-Signature over the 64 KiB header limit", sig: func(b []byte) string {
			return signed(b) + ",v1=" + strings.Repeat("ab", 40<<10)
		}, wantCode: http.StatusRequestHeaderFieldsTooLarge},

		// Replays outside the 300 s tolerance, validly signed, and the bounds' controls.
		{name: "replay: signed 301 s ago", sig: func(b []byte) string { return sign(b, secretOld, time.Now().Add(-301*time.Second)) },
			wantCode: 400, wantState: "rejected", wantCause: causeStale},
		{name: "replay: signed 301 s in the future", sig: func(b []byte) string { return sign(b, secretOld, futureTS(301*time.Second)) },
			wantCode: 400, wantState: "rejected", wantCause: causeFuture},
		{name: "control: signed 290 s ago is accepted", sig: func(b []byte) string { return sign(b, secretOld, time.Now().Add(-290*time.Second)) },
			wantCode: 200, wantState: resultRelayed, wantRelay: 1},
		{name: "control: signed 290 s in the future is accepted", sig: func(b []byte) string { return sign(b, secretOld, time.Now().Add(290*time.Second)) },
			wantCode: 200, wantState: resultRelayed, wantRelay: 1},

		// Hostile payloads, validly signed: only Stripe (or a leaked secret) can send these.
		{name: "payload: invalid UTF-8 in a metadata string", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"p-1"`, "\"p-\xff\xfe1\"")
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: invalid UTF-8 in the event id", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"evt_attack_`, "\"evt_\xc3\x28attack_")
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: UTF-8-encoded surrogate half in the type", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"payment_intent.succeeded"`, "\"payment_intent.succeeded\xed\xa0\x80\"")
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: overlong UTF-8 encoding of '/'", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"usd"`, "\"usd\xc0\xaf\"")
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: invalid UTF-8 outside any string", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"livemode": false`, "\"livemode\": \xfffalse")
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: 100,000 nested arrays in data.object", body: func(n int) []byte {
			return deepJSON(fmt.Sprintf("evt_attack_%03d", n), 100_000, false)
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: 40,000 nested objects in data.object", body: func(n int) []byte {
			return deepJSON(fmt.Sprintf("evt_attack_%03d", n), 40_000, true)
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: the whole body 120,000 nested arrays", body: func(int) []byte {
			return []byte(strings.Repeat("[", 120_000) + strings.Repeat("]", 120_000))
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
	}

	wantTotal, codes := 0, map[int]int{}
	for n, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := attackBody(t, n)
			if tc.body != nil {
				body = tc.body(n)
			}
			if int64(len(body)) > DefaultMaxBodyBytes {
				t.Fatalf("test body of %d bytes exceeds the body cap; it would test the cap instead", len(body))
			}
			before, causesBefore := s.relayed(), causeCounts(t, s.f)
			start := time.Now()
			code, resp, raw := s.deliver(t, body, tc.sig(body))
			took := time.Since(start)
			if code != tc.wantCode || resp.Status != tc.wantState {
				t.Errorf("got %d %q (%.200s), want %d %q", code, resp.Status, raw, tc.wantCode, tc.wantState)
			}
			if got := s.relayed() - before; got != tc.wantRelay {
				t.Errorf("target got %d events, want %d", got, tc.wantRelay)
			}
			causesAfter := causeCounts(t, s.f)
			for _, c := range allCauses() {
				want := 0.0
				if c == tc.wantCause {
					want = 1
				}
				if got := causesAfter[c] - causesBefore[c]; got != want {
					t.Errorf("signature failures{cause=%s} rose by %v, want %v", c, got, want)
				}
			}
			if took > 2*time.Second {
				t.Errorf("answer took %s", took)
			}
			t.Logf("%d %s in %s", code, resp.Message, took.Round(time.Microsecond))
			codes[code]++
		})
		wantTotal += tc.wantRelay
	}

	// Control: a valid event still works, exactly once, and an exact replay of the same
	// delivery (within the tolerance) is acknowledged without being relayed again.
	body := goodBody(t, "evt_attack_control")
	sig := sign(body, secretOld, time.Now())
	before := s.relayed()
	if code, resp, raw := s.deliver(t, body, sig); code != 200 || resp.Status != resultRelayed {
		t.Fatalf("valid delivery after the attacks: %d %s", code, raw)
	}
	if code, resp, raw := s.deliver(t, body, sig); code != 200 || resp.Status != resultDuplicate {
		t.Errorf("exact replay: %d %s, want 200 %q", code, raw, resultDuplicate)
	}
	calls := s.target.calls()
	if got := len(calls) - before; got != 1 || calls[len(calls)-1].Stripe.ID != "evt_attack_control" {
		t.Errorf("control relayed %d times, want once", got)
	}
	if got := len(calls); got != wantTotal+1 {
		t.Errorf("target got %d events over the whole attack, want %d (the controls only)", got, wantTotal+1)
	}
	assertNoSecrets(t, "logs", s.f.logs.String(), secretOld)
	testreport.Report(t, "%d hostile deliveries (forged and tampered signatures, replays outside the 300 s tolerance, an oversized "+
		"header, invalid UTF-8, deep JSON) answered %v by status; only the %d tolerance controls and the final valid event were "+
		"relayed, each once; an exact replay was acknowledged as a duplicate; no secret in the logs", len(cases), codes, wantTotal)
}

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

// fuzzInput is one input of FuzzHandler's signature: the body, the Stripe-Signature header (a
// suffix when signIt), whether to sign the body validly now, and the clinic path segment.
type fuzzInput struct {
	body   []byte
	header string
	signIt bool
	clinic string
}

// loadFuzzSeeds parses the FuzzHandler seed corpus ("go test fuzz v1" files).
func loadFuzzSeeds(t *testing.T) []fuzzInput {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzHandler", "*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no FuzzHandler seed corpus (err %v)", err)
	}
	seeds := make([]fuzzInput, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 5 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a 4-value go test fuzz v1 file", p)
		}
		arg := func(line, typ string) string {
			if !strings.HasPrefix(line, typ+"(") || !strings.HasSuffix(line, ")") {
				t.Fatalf("%s: %q is not a %s value", p, line, typ)
			}
			return line[len(typ)+1 : len(line)-1]
		}
		unquote := func(s string) string {
			u, err := strconv.Unquote(s)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			return u
		}
		signIt, err := strconv.ParseBool(arg(lines[3], "bool"))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		seeds = append(seeds, fuzzInput{
			body: []byte(unquote(arg(lines[1], "[]byte"))), header: unquote(arg(lines[2], "string")),
			signIt: signIt, clinic: unquote(arg(lines[4], "string")),
		})
	}
	return seeds
}

// mutator produces FuzzHandler inputs from the seeds with a seeded generator.
type mutator struct {
	rng   *rand.Rand
	seeds []fuzzInput
	n     int
}

var fuzzTokens = []string{
	`"`, `{`, `}`, `[`, `]`, `,`, `:`, `\`, `\u0000`, `\ud800`, "\xff", "\xc3", "\xed\xa0\x80", "\xc0\xaf",
	`null`, `true`, `false`, `0`, `-1`, `1e999`, `""`, `{}`, `[]`, `"livemode":true`, `"livemode":false`,
	`"api_version":"2020-08-27"`, `"api_version":"` + stripe.APIVersion + `"`, `"id":""`, `"type":""`,
	`"data":null`, `"data":{"object":{}}`, strings.Repeat("[", 200), strings.Repeat("{\"a\":", 100),
}

var headerSuffixes = []string{
	",v1=deadbeef", ",v1=", ",t=1", ",t=", ",t=99999999999", ",v0=abc", ",", "=", ",x", ",v1=" + strings.Repeat("0", 64),
	",t=-1", " ", ",t=1700000000,v1=00", "\x00", ",v1=" + strings.Repeat("zz", 32),
}

func (m *mutator) next() fuzzInput {
	r := m.rng
	m.n++
	in := m.seeds[r.IntN(len(m.seeds))]
	body := append([]byte(nil), in.body...)
	if r.IntN(3) == 0 {
		body = m.structural(body)
	}
	if r.IntN(3) == 0 { // a fresh id reaches the relay instead of the dedup set
		body = bytes.Replace(body, []byte(`"evt_seed_`), fmt.Appendf(nil, `"evt_m%d_`, m.n), 1)
	}
	for range r.IntN(4) {
		body = m.byteMutation(body)
	}
	in.body = body

	switch r.IntN(10) {
	case 0, 1, 2, 3, 4: // validly signed, usually with nothing appended
		in.signIt = true
		in.header = ""
		if r.IntN(4) == 0 {
			in.header = headerSuffixes[r.IntN(len(headerSuffixes))]
		}
	case 5: // forged: another secret, a flipped digit, or stale / future
		in.signIt = false
		switch r.IntN(4) {
		case 0:
			in.header = sign(body, secretUnknown, time.Now())
		case 1:
			in.header = hexFlip(sign(body, secretOld, time.Now()))
		case 2:
			in.header = sign(body, secretOld, time.Now().Add(-SignatureTolerance-time.Duration(r.IntN(1000))*time.Second))
		default:
			in.header = sign(body, secretOld, time.Now().Add(SignatureTolerance+time.Duration(2+r.IntN(1000))*time.Second))
		}
	case 6: // signed, then the body is changed after signing
		in.signIt = false
		in.header = sign(body, secretOld, time.Now())
		in.body = m.byteMutation(append([]byte(nil), body...))
	case 7: // random header bytes
		in.signIt = false
		h := make([]byte, r.IntN(80))
		for i := range h {
			h[i] = byte(r.UintN(256))
		}
		in.header = string(h)
	default: // the seed's own header and signing choice
	}
	switch r.IntN(20) {
	case 0:
		in.clinic = "clinic-b"
	case 1:
		in.clinic = testClinic + "/x"
	case 2:
		in.clinic = ""
	case 3:
		in.clinic = strings.ToUpper(testClinic)
	default:
		if in.clinic == "" || r.IntN(2) == 0 {
			in.clinic = testClinic
		}
	}
	return in
}

// structural rewrites one top-level field of a JSON body, or leaves it if it is not JSON.
func (m *mutator) structural(body []byte) []byte {
	var obj map[string]any
	if json.Unmarshal(body, &obj) != nil {
		obj = map[string]any{"object": "event", "api_version": stripe.APIVersion, "livemode": false,
			"type": "payment_intent.succeeded", "data": map[string]any{"object": map[string]any{"id": "pi_1"}}}
	}
	r := m.rng
	values := []any{nil, "", 0, -1, 1.5, true, false, "x", []any{}, map[string]any{}, strings.Repeat("y", 300)}
	switch r.IntN(7) {
	case 0, 1:
		obj["id"] = fmt.Sprintf("evt_mut_%d", m.n) // fresh ids reach the relay, not the dedup
	case 2:
		obj["type"] = []any{"charge.refunded", "Not.A.Type", "", "a." + strings.Repeat("b", 150)}[r.IntN(4)]
	case 3:
		obj["livemode"] = values[r.IntN(len(values))]
	case 4:
		obj["api_version"] = []any{stripe.APIVersion, "2020-08-27", "", nil}[r.IntN(4)]
	case 5:
		obj["data"] = []any{nil, "x", map[string]any{}, map[string]any{"object": nil},
			map[string]any{"object": map[string]any{"id": "ch_1", "amount": 5}}}[r.IntN(5)]
	default:
		delete(obj, []string{"id", "type", "data", "livemode", "api_version", "object"}[r.IntN(6)])
	}
	if r.IntN(2) == 0 {
		obj["id"] = fmt.Sprintf("evt_mut_%d", m.n)
	}
	out, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return body
	}
	return out
}

func (m *mutator) byteMutation(b []byte) []byte {
	r := m.rng
	if len(b) == 0 {
		return []byte(fuzzTokens[r.IntN(len(fuzzTokens))])
	}
	i := r.IntN(len(b))
	switch r.IntN(8) {
	case 0: // flip a bit
		b[i] ^= 1 << r.UintN(8)
	case 1: // random byte
		b[i] = byte(r.UintN(256))
	case 2: // insert a token
		tok := fuzzTokens[r.IntN(len(fuzzTokens))]
		b = append(b[:i], append([]byte(tok), b[i:]...)...)
	case 3: // delete a range
		j := min(len(b), i+1+r.IntN(16))
		b = append(b[:i], b[j:]...)
	case 4: // duplicate a range
		j := min(len(b), i+1+r.IntN(64))
		b = append(b[:j], append(append([]byte(nil), b[i:j]...), b[j:]...)...)
	case 5: // truncate
		b = b[:i]
	case 6: // splice with another seed
		other := m.seeds[r.IntN(len(m.seeds))].body
		if len(other) > 0 {
			b = append(b[:i], other[r.IntN(len(other)):]...)
		}
	default: // grow past the 4 KiB cap now and then
		if r.IntN(8) == 0 {
			b = append(b, bytes.Repeat([]byte(" "), 4096)...)
		} else {
			b[i] = fuzzTokens[r.IntN(len(fuzzTokens))][0]
		}
	}
	return b
}

// countingTarget counts deliveries without keeping them (the mutation run makes many).
type countingTarget struct{ n atomic.Int64 }

func (*countingTarget) Name() string { return "fuzz" }

func (c *countingTarget) Deliver(context.Context, relay.Event) error {
	c.n.Add(1)
	return nil
}

// fuzzOutcome is what one input got.
type fuzzOutcome struct {
	code    int
	relayed bool
}

// checkFuzzInput runs one input through the handler and checks FuzzHandler's properties, plus:
// no 503 (the target never fails here), and nothing answered 2xx or relayed unless its body is
// valid UTF-8.
func checkFuzzInput(t *testing.T, h http.Handler, target *countingTarget, in fuzzInput) (out fuzzOutcome) {
	header := in.header
	if in.signIt {
		header = sign(in.body, secretOld, time.Now()) + header
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\ninput: body %.400q, header %.200q, clinic %q", fmt.Sprintf(format, args...), in.body, header, in.clinic)
	}
	defer func() {
		if p := recover(); p != nil {
			fail("handler panicked: %v", p)
		}
	}()
	req := httptest.NewRequest(http.MethodPost, testPath, bytes.NewReader(in.body))
	req.URL.Path = TestWebhookPathPrefix + in.clinic
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	before := target.n.Load()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	out = fuzzOutcome{code: rec.Code, relayed: target.n.Load() > before}

	switch rec.Code {
	case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
	default:
		fail("unexpected status %d", rec.Code)
	}
	var resp response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Status == "" {
		fail("answer is not the JSON envelope: %q", rec.Body.String())
	}
	if out.relayed && rec.Code != http.StatusOK {
		fail("relayed but answered %d", rec.Code)
	}
	if !out.relayed && rec.Code != http.StatusOK {
		return out
	}
	// Answered 2xx or relayed: everything must have checked out.
	if in.clinic != testClinic {
		fail("accepted a delivery for clinic %q", in.clinic)
	}
	if err := webhook.ValidatePayloadWithTolerance(in.body, header, secretOld, SignatureTolerance); err != nil {
		fail("answered %d (relayed %t) to an invalid signature: %v", rec.Code, out.relayed, err)
	}
	if !utf8.Valid(in.body) {
		fail("answered %d (relayed %t) to a body that is not UTF-8", rec.Code, out.relayed)
	}
	var ev stripe.Event
	if err := json.Unmarshal(in.body, &ev); err != nil || ev.Livemode || ev.ID == "" {
		fail("accepted an unusable event (err %v)", err)
	}
	return out
}

// TestAttackFuzzMutations is a time-bounded stand-in for `go test -fuzz=FuzzHandler`, which a
// normal test run cannot do: FuzzHandler's properties over N inputs mutated from its seed
// corpus with a seeded generator (20,000 inputs, or 500,000 with RELIABILITY_FULL=1;
// RELIABILITY_SEED picks another seed).
func TestAttackFuzzMutations(t *testing.T) {
	n, budget := 20_000, 15*time.Second
	if reliabilityFull() {
		n, budget = 500_000, 10*time.Minute
	}
	seed := uint64(20260501)
	if s := os.Getenv("RELIABILITY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RELIABILITY_SEED: %v", err)
		}
		seed = v
	}
	seeds := loadFuzzSeeds(t)
	for i := range 4 {
		seeds = append(seeds, fuzzInput{body: goodBody(t, fmt.Sprintf("evt_seed_%d", i)), signIt: true, clinic: testClinic})
	}
	target := &countingTarget{}
	fx := newFixture(t, secretOld, []relay.Target{target}, func(c *Config) { c.MaxBodyBytes = 4096 })
	fx.r.log = logr.Discard()
	h := fx.r.WebhookHandler()
	m := &mutator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seeds: seeds}

	codes := map[int]int{}
	relayed, ran := 0, 0
	start := time.Now()
	for ran < n && time.Since(start) < budget {
		out := checkFuzzInput(t, h, target, m.next())
		codes[out.code]++
		if out.relayed {
			relayed++
		}
		ran++
	}
	took := time.Since(start)
	testreport.Report(t, "seed %d: %d inputs in %s (%.0f/s): status counts %v, %d relayed, %d signature failures by cause %v",
		seed, ran, took.Round(time.Millisecond), float64(ran)/took.Seconds(), codes, relayed,
		int(sumCauses(causeCounts(t, fx))), causeCounts(t, fx))
	// The run must have explored every outcome, or the generator has degenerated.
	if ran < min(n, 5000) {
		t.Errorf("only %d inputs ran within %s", ran, budget)
	}
	for code, atLeast := range map[int]int{http.StatusOK: ran / 50, http.StatusBadRequest: ran / 4,
		http.StatusNotFound: ran / 100, http.StatusRequestEntityTooLarge: ran / 500} {
		if codes[code] < atLeast {
			t.Errorf("only %d inputs answered %d, want at least %d", codes[code], code, atLeast)
		}
	}
	if relayed < ran/100 {
		t.Errorf("only %d inputs relayed, want at least %d: too few reach the relay", relayed, ran/100)
	}
	for _, c := range []cause{causeBadSignature, causeStale, causeFuture, causeInvalidHeader, causeMalformed, causeLivemode} {
		if got := causeCounts(t, fx)[c]; got == 0 {
			t.Errorf("no input was rejected for %s", c)
		}
	}
}

func sumCauses(m map[cause]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}
