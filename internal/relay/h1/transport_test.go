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

package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server is an httptest server on 127.0.0.1 that counts the connections it accepted and keeps
// them, so a test can close one from the server's side.
type server struct {
	*httptest.Server
	mu       sync.Mutex
	conns    []net.Conn
	closed   atomic.Int32
	requests atomic.Int32
}

func newServer(t *testing.T, h http.HandlerFunc, tlsOn bool) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h(w, r)
	}))
	s.Config.ConnState = func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	if tlsOn {
		s.EnableHTTP2 = true // the server offers h2; the transport must still get HTTP/1.1
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func (s *server) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// closeConns closes every connection the server accepted, from its side.
func (s *server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	_, _ = fmt.Fprintf(w, "%s %s %s", r.Method, r.Header.Get("Idempotency-Key"), b)
}

// post sends body to url over tr and returns the answer's status and body, read to its end.
func post(ctx context.Context, tr http.RoundTripper, url, body string, header http.Header) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// within waits up to 5 s for cond.
func within(t *testing.T, cond func() bool, what string) {
	t.Helper()
	const d = 5 * time.Second
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestKeepAliveOneConnection(t *testing.T) {
	s := newServer(t, echo, false)
	tr := New(Config{})
	defer tr.CloseIdleConnections()
	for i := range 50 {
		code, got, err := post(t.Context(), tr, s.URL+"/events", fmt.Sprintf("event %d", i), http.Header{"Idempotency-Key": {fmt.Sprint(i)}})
		if err != nil || code != http.StatusOK {
			t.Fatalf("request %d: %d %q %v", i, code, got, err)
		}
		if want := fmt.Sprintf("POST %d event %d", i, i); got != want {
			t.Fatalf("request %d: server saw %q, want %q", i, got, want)
		}
	}
	if n := s.accepted(); n != 1 {
		t.Errorf("50 sequential requests opened %d connections, want 1", n)
	}
}

func TestAnswersWithoutBodyAndChunkedKeepTheConnection(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/chunked":
			for i := range 3 {
				_, _ = fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
			}
		}
	}, false)
	tr := New(Config{})
	defer tr.CloseIdleConnections()
	for range 3 {
		if code, _, err := post(t.Context(), tr, s.URL+"/empty", "x", nil); err != nil || code != http.StatusNoContent {
			t.Fatalf("/empty: %d %v", code, err)
		}
		if code, got, err := post(t.Context(), tr, s.URL+"/chunked", "x", nil); err != nil || got != "part0;part1;part2;" {
			t.Fatalf("/chunked: %d %q %v", code, got, err)
		}
	}
	if n := s.accepted(); n != 1 {
		t.Errorf("opened %d connections, want 1", n)
	}
}

func TestConnectionsBoundedAndWaitersHonourTheirContext(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // a failed check must not leave handlers and requests waiting
	var inFlight atomic.Int32
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		<-release
		echo(w, r)
	}, false)
	tr := New(Config{MaxConns: 3})
	defer tr.CloseIdleConnections()

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Go(func() {
			code, _, err := post(t.Context(), tr, s.URL, fmt.Sprint(i), nil)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("status %d", code)
			}
			errs <- err
		})
	}
	within(t, func() bool { return inFlight.Load() >= 3 }, "3 requests in flight")
	time.Sleep(50 * time.Millisecond) // room for a fourth, were the bound broken
	if n, f := s.accepted(), inFlight.Load(); n != 3 || f != 3 {
		unblock()
		wg.Wait()
		t.Fatalf("with every connection busy: %d connections, %d in flight; want 3 and 3", n, f)
	}

	// A request that finds every connection busy waits only as long as its context.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, _, err := post(ctx, tr, s.URL, "late", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting past its deadline: %v, want context.DeadlineExceeded", err)
	}

	unblock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("request: %v", err)
		}
	}
	if n := s.accepted(); n != 3 {
		t.Errorf("10 requests through 3 connections opened %d, want 3", n)
	}
}

func TestIdleConnectionClosedByServerIsRetriedOnlyWhenReplayable(t *testing.T) {
	s := newServer(t, echo, false)
	tr := New(Config{})
	defer tr.CloseIdleConnections()
	idem := http.Header{"Idempotency-Key": {"evt_1"}}
	if _, _, err := post(t.Context(), tr, s.URL, "first", idem); err != nil {
		t.Fatal(err)
	}
	s.closeConns() // the server's idle timeout, or a restart
	within(t, func() bool { return s.closed.Load() == 1 }, "server closed the idle connection")

	code, got, err := post(t.Context(), tr, s.URL, "second", idem)
	if err != nil || got != "POST evt_1 second" {
		t.Fatalf("replayable POST on a closed idle connection: %d %q %v; want it sent again on a new one", code, got, err)
	}
	if n, r := s.accepted(), s.requests.Load(); n != 2 || r != 2 {
		t.Errorf("%d connections, %d requests served; want 2 and 2", n, r)
	}

	// Without an Idempotency-Key a POST is not replayable: the error is returned, as net/http does.
	s.closeConns()
	within(t, func() bool { return s.closed.Load() == 2 }, "server closed the idle connection")
	if _, _, err := post(t.Context(), tr, s.URL, "third", nil); err == nil {
		t.Fatal("non-replayable POST on a closed idle connection succeeded; want its error")
	}
	if r := s.requests.Load(); r != 2 {
		t.Errorf("server served %d requests, want 2", r)
	}
	// The next request dials afresh.
	if _, got, err := post(t.Context(), tr, s.URL, "fourth", nil); err != nil || got != "POST  fourth" {
		t.Fatalf("after the failure: %q %v", got, err)
	}
}

func TestDeadlineAndEarlyCloseDropTheConnection(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		_, _ = w.Write(bytes.Repeat([]byte("x"), 64<<10))
	}, false)
	tr := New(Config{})
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, _, err := post(ctx, tr, s.URL+"/slow", "x", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("answer after the deadline: %v, want context.DeadlineExceeded", err)
	}

	// Closed before its end: the rest of the answer is still on the wire, so the connection goes.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = resp.Body.Read(make([]byte, 10))
	_ = resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); !errors.Is(err, errBodyClosed) {
		t.Errorf("read after close: %v", err)
	}
	within(t, func() bool { return s.closed.Load() == 2 }, "both connections closed")

	// Read to its end, the connection is kept.
	for range 3 {
		if _, _, err := post(t.Context(), tr, s.URL, "x", nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.accepted(); n != 3 {
		t.Errorf("%d connections, want 3 (one per dropped connection, one kept)", n)
	}
}

func TestConnectionCloseAndIdleTimeout(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		echo(w, r)
	}, false)
	tr := New(Config{IdleTimeout: 100 * time.Millisecond})
	defer tr.CloseIdleConnections()
	for range 2 {
		if _, _, err := post(t.Context(), tr, s.URL+"/close", "x", nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.accepted(); n != 2 {
		t.Errorf("Connection: close answers: %d connections, want 2", n)
	}
	if _, _, err := post(t.Context(), tr, s.URL, "x", nil); err != nil {
		t.Fatal(err)
	}
	within(t, func() bool { return s.closed.Load() == 3 }, "the idle connection closed after IdleTimeout")
}

// rawServer answers every connection with answer, whatever it was sent.
func rawServer(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(c, answer)
				_, _ = io.Copy(io.Discard, c) // until the client closes
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestInformationalAnswersAndHeaderBound(t *testing.T) {
	tr := New(Config{MaxResponseHeaderBytes: 4 << 10})
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()

	early := "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
	url := rawServer(t, early+"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	if code, got, err := post(ctx, tr, url, "x", nil); err != nil || code != 200 || got != "ok" {
		t.Errorf("after two informational answers: %d %q %v", code, got, err)
	}

	url = rawServer(t, strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 6)+"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	if _, _, err := post(ctx, tr, url, "x", nil); err == nil || !strings.Contains(err.Error(), "informational") {
		t.Errorf("six informational answers: %v, want an error", err)
	}

	url = rawServer(t, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 8<<10)+"\r\nContent-Length: 0\r\n\r\n")
	if _, _, err := post(ctx, tr, url, "x", nil); !errors.Is(err, errHeaderTooLarge) {
		t.Errorf("8 KiB header against a 4 KiB bound: %v, want errHeaderTooLarge", err)
	}

	if _, _, err := post(ctx, tr, "ftp://127.0.0.1/", "x", nil); err == nil {
		t.Error("ftp URL: no error")
	}
}

func TestTLSOffersHTTP11(t *testing.T) {
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "%s %v", r.Proto, r.TLS != nil)
	}, true)
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	// Every reuse peeks at the raw socket: a TLS session ticket or other record left unread
	// would make it look closed.
	tr := New(Config{TLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, IdleCheckAfter: time.Nanosecond})
	defer tr.CloseIdleConnections()
	for range 3 {
		code, got, err := post(t.Context(), tr, s.URL, "x", nil)
		if err != nil || code != 200 || got != "HTTP/1.1 true" {
			t.Fatalf("https: %d %q %v", code, got, err)
		}
	}
	if n := s.accepted(); n != 1 {
		t.Errorf("%d TLS connections, want 1", n)
	}

	// A certificate the roots do not sign is refused.
	if _, _, err := post(t.Context(), New(Config{}), s.URL, "x", nil); err == nil {
		t.Error("self-signed certificate accepted against the system roots")
	}
}

func TestDialPastTheDeadlineReportsTheContext(t *testing.T) {
	tr := New(Config{Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("i/o timeout")}
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := post(ctx, tr, "http://127.0.0.1:9/", "x", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial ended by the deadline: %v, want context.DeadlineExceeded", err)
	}
}

func TestIdleConnectionClosedByServerIsNotReused(t *testing.T) {
	s := newServer(t, echo, false)
	tr := New(Config{IdleCheckAfter: time.Nanosecond}) // check every reuse
	defer tr.CloseIdleConnections()
	for i := range 3 { // an open idle connection passes the check and is reused
		if _, _, err := post(t.Context(), tr, s.URL, fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.accepted(); n != 1 {
		t.Fatalf("%d connections for 3 requests, want 1", n)
	}
	s.closeConns() // Apache's 5 s keep-alive timeout, say
	within(t, func() bool { return s.closed.Load() == 1 }, "server closed the idle connection")
	// No Idempotency-Key: only not sending it on the closed connection gets it through.
	code, got, err := post(t.Context(), tr, s.URL, "after", nil)
	if err != nil || got != "POST  after" {
		t.Fatalf("non-replayable POST after the server closed the idle connection: %d %q %v", code, got, err)
	}
	if n, r := s.accepted(), s.requests.Load(); n != 2 || r != 4 {
		t.Errorf("%d connections, %d requests served; want 2 and 4", n, r)
	}
}

func TestIdleConnectionPastItsLastDeadlineIsReused(t *testing.T) {
	s := newServer(t, echo, false)
	tr := New(Config{IdleCheckAfter: time.Nanosecond})
	defer tr.CloseIdleConnections()
	for range 2 {
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		_, _, err := post(ctx, tr, s.URL, "x", nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the exchange's deadline passes while the connection idles
	}
	if n := s.accepted(); n != 1 {
		t.Errorf("%d connections, want 1: an open connection whose last deadline passed was not reused", n)
	}
}
