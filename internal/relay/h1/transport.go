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

// Package h1 is the receiver's HTTP/1.1 client transport to a clinic's system of record. It
// writes each request and reads its answer on the calling goroutine, over a bounded pool of
// keep-alive connections.
//
// net/http's Transport runs two goroutines per connection (one writes requests, one reads
// answers) and hands every request and answer between them and the caller over channels. A
// relay sends one request per verified event and waits for its answer, so each event paid for
// those hand-offs and their allocations. Measured with the bench (docs/benchmarks.md, the note
// on h1), this transport takes a few percent off the receiver's CPU per event at saturation and
// about a tenth at 1 and 10 events a second.
//
// What it keeps from net/http: the request writer (Request.Write) and response parser
// (ReadResponse), keep-alive as the answer allows it, a bounded response header, no reuse of a
// connection the server closed while it sat idle (net/http notices with the read goroutine it
// keeps on every idle connection; h1 peeks, without waiting, at one idle for a second or more
// before it reuses it), and the retry rule for a request sent on one the server closed at that
// moment: once, on a new connection, when nothing of an answer arrived and the request is
// replayable (GET, HEAD, OPTIONS, TRACE, or an Idempotency-Key header, with a body that can be
// read again). What it leaves out: HTTP/2,
// proxies (the receiver uses net/http's transport when a proxy applies), Expect: 100-continue,
// and response decompression.
package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Defaults for the zero Config fields.
const (
	// DefaultMaxConns bounds the connections to one host, busy and idle together.
	DefaultMaxConns = 64
	// DefaultIdleTimeout closes a connection unused this long, as net/http's default transport.
	DefaultIdleTimeout = 90 * time.Second
	// DefaultIdleCheckAfter is how long a connection may idle before its reuse checks that the
	// server has not closed it.
	DefaultIdleCheckAfter = time.Second
	// DefaultMaxResponseHeaderBytes bounds an answer's status line and header section.
	DefaultMaxResponseHeaderBytes = 1 << 20
	// max1xx is how many informational answers (100 Continue, 103 Early Hints) are skipped
	// before the final one, as net/http allows.
	max1xx = 5
)

// Config configures a Transport; the zero value is usable.
type Config struct {
	// MaxConns bounds the connections open to each host, busy and idle together. A request that
	// finds them all busy waits for one to come free, or for its context. Zero means
	// DefaultMaxConns.
	MaxConns int
	// IdleTimeout closes a connection that has been idle this long. Zero means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// IdleCheckAfter: a connection idle at least this long is checked, before it is reused, for
	// a close by the server (one non-blocking peek), which net/http's transport notices with the
	// read it keeps pending on every idle connection. Servers close idle connections after a few
	// seconds (Apache's default is 5), and a request sent on one fails; only a replayable request
	// could be sent again. Zero means DefaultIdleCheckAfter.
	IdleCheckAfter time.Duration
	// MaxResponseHeaderBytes bounds an answer's status line and headers. Zero means
	// DefaultMaxResponseHeaderBytes.
	MaxResponseHeaderBytes int
	// TLS configures https connections; nil verifies against the system roots. Only http/1.1 is
	// offered by ALPN.
	TLS *tls.Config
	// Dial opens a TCP connection; nil uses a net.Dialer with a 30 s timeout and keep-alive.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Transport is an http.RoundTripper for http and https URLs. It is safe for concurrent use.
type Transport struct {
	cfg Config

	mu    sync.Mutex
	pools map[string]*pool // by scheme and host:port
}

var _ http.RoundTripper = &Transport{}

// New returns a Transport for cfg.
func New(cfg Config) *Transport {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.IdleCheckAfter <= 0 {
		cfg.IdleCheckAfter = DefaultIdleCheckAfter
	}
	if cfg.MaxResponseHeaderBytes <= 0 {
		cfg.MaxResponseHeaderBytes = DefaultMaxResponseHeaderBytes
	}
	if cfg.Dial == nil {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		cfg.Dial = d.DialContext
	}
	return &Transport{cfg: cfg, pools: map[string]*pool{}}
}

// RoundTrip implements http.RoundTripper: it sends req on an idle connection to its host, or a
// new one, and returns the answer. The connection goes back to the pool once the caller has
// read the answer's body to its end and closed it; closing it earlier closes the connection.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	p, err := t.pool(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	ctx := req.Context()
	for retried := false; ; retried = true {
		c, err := p.get(ctx)
		if err != nil {
			closeBody(req)
			err, _ = blameContext(ctx, err) // a dial the context ended reads "i/o timeout"
			return nil, err
		}
		resp, err := c.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		p.discard(c)
		if err, ended := blameContext(ctx, err); ended {
			closeBody(req)
			return nil, err
		}
		if retried || !c.reused || !retryable(req, err) {
			closeBody(req)
			return nil, err
		}
		// A connection the server closed while it was idle: its siblings, idle as long or
		// longer, most likely went the same way.
		p.closeIdle()
		if req, err = rewound(req); err != nil {
			return nil, err
		}
	}
}

// CloseIdleConnections closes every idle connection; http.Client.CloseIdleConnections calls it.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	pools := make([]*pool, 0, len(t.pools))
	for _, p := range t.pools {
		pools = append(pools, p)
	}
	t.mu.Unlock()
	for _, p := range pools {
		p.closeIdle()
	}
}

// pool returns the pool for req's scheme and host, made on first use.
func (t *Transport) pool(req *http.Request) (*pool, error) {
	u := req.URL
	if u == nil || u.Host == "" {
		return nil, errors.New("h1: request has no URL host")
	}
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return nil, fmt.Errorf("h1: unsupported URL scheme %q", u.Scheme)
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	key := u.Scheme + "://" + addr
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.pools[key]; p != nil {
		return p, nil
	}
	p := &pool{t: t, addr: addr, busy: make(chan struct{}, t.cfg.MaxConns)}
	if u.Scheme == "https" {
		p.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if t.cfg.TLS != nil {
			p.tls = t.cfg.TLS.Clone()
		}
		if p.tls.ServerName == "" {
			p.tls.ServerName = u.Hostname()
		}
		p.tls.NextProtos = []string{"http/1.1"}
	}
	t.pools[key] = p
	return p, nil
}

// pool holds one host's connections. Each request holds a token in busy from taking a
// connection until its answer's body is done, so busy connections never exceed MaxConns; a
// connection is dialed only when none is idle, so busy and idle together never do either.
type pool struct {
	t    *Transport
	addr string
	tls  *tls.Config // nil for http
	busy chan struct{}

	mu    sync.Mutex
	idle  []*conn // oldest first; taken from the end
	sweep *time.Timer
}

// get takes a token, waiting for one if every connection is busy, then the most recently used
// idle connection, or a new one.
func (p *pool) get(ctx context.Context) (*conn, error) {
	select {
	case p.busy <- struct{}{}:
	default:
		select {
		case p.busy <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a connection to %s: %w", p.addr, ctx.Err())
		}
	}
	now := time.Now()
	for c := p.takeIdle(now); c != nil; c = p.takeIdle(now) {
		if now.Sub(c.idleSince) < p.t.cfg.IdleCheckAfter || c.open() {
			c.reused = true
			return c, nil
		}
		_ = c.nc.Close() // the server closed it while it was idle
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.busy
		return nil, err
	}
	return c, nil
}

// takeIdle returns the most recently used idle connection, closing those idle for IdleTimeout
// on the way; nil when none is left.
func (p *pool) takeIdle(now time.Time) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle[len(p.idle)-1] = nil
		p.idle = p.idle[:len(p.idle)-1]
		if now.Sub(c.idleSince) < p.t.cfg.IdleTimeout {
			return c
		}
		_ = c.nc.Close()
	}
	return nil
}

func (p *pool) dial(ctx context.Context) (*conn, error) {
	nc, err := p.t.cfg.Dial(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	tcp := nc
	if p.tls != nil {
		tc := tls.Client(nc, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, err
		}
		nc = tc
	}
	c := &conn{p: p, nc: nc, tcp: tcp, maxHeader: p.t.cfg.MaxResponseHeaderBytes}
	c.r.c, c.w.c = c, c
	c.br = bufio.NewReader(&c.r)
	c.bw = bufio.NewWriter(&c.w)
	return c, nil
}

// put returns a connection whose exchange ended cleanly to the idle list and frees its token.
func (p *pool) put(c *conn) {
	c.idleSince = time.Now()
	p.mu.Lock()
	p.idle = append(p.idle, c)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(p.t.cfg.IdleTimeout, p.sweepIdle)
	}
	p.mu.Unlock()
	<-p.busy
}

// discard closes a connection that cannot be reused and frees its token.
func (p *pool) discard(c *conn) {
	_ = c.nc.Close()
	<-p.busy
}

// sweepIdle closes the connections idle for IdleTimeout and runs again when the oldest left
// would be.
func (p *pool) sweepIdle() {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].idleSince) >= p.t.cfg.IdleTimeout {
		_ = p.idle[n].nc.Close()
		p.idle[n] = nil
		n++
	}
	p.idle = p.idle[n:]
	if len(p.idle) == 0 {
		p.sweep = nil
		return
	}
	p.sweep = time.AfterFunc(p.t.cfg.IdleTimeout-now.Sub(p.idle[0].idleSince), p.sweepIdle)
}

func (p *pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		_ = c.nc.Close()
	}
}

// conn is one connection and its buffers. Its reader and writer count the bytes of the current
// exchange, so a failure can tell whether anything of the request left or of an answer came.
type conn struct {
	p         *pool
	nc        net.Conn // what requests go over: tcp, or TLS over it
	tcp       net.Conn
	r         countingReader
	w         countingWriter
	br        *bufio.Reader
	bw        *bufio.Writer
	maxHeader int

	reused    bool      // taken from the idle list
	idleSince time.Time // when put back
}

type countingReader struct {
	c     *conn
	n     int64 // bytes read in this exchange
	limit int64 // bytes still allowed; bounds the header section
}

func (r *countingReader) Read(b []byte) (int, error) {
	if r.limit <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(b)) > r.limit {
		b = b[:r.limit]
	}
	n, err := r.c.nc.Read(b)
	r.n += int64(n)
	r.limit -= int64(n)
	return n, err
}

type countingWriter struct {
	c *conn
	n int64 // bytes written in this exchange
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.c.nc.Write(b)
	w.n += int64(n)
	return n, err
}

var errHeaderTooLarge = errors.New("h1: answer's header section too large")

// open reports whether an idle connection is still open: nothing, not even the end of the
// stream, has arrived on it since its last answer.
func (c *conn) open() bool {
	// The last exchange's deadline may have passed meanwhile, and a read past its deadline
	// fails before it looks.
	if c.br.Buffered() > 0 || c.tcp.SetReadDeadline(time.Time{}) != nil {
		return false
	}
	return peekOpen(c.tcp)
}

// aLongTimeAgo is a deadline in the past: setting it fails the connection's pending reads and
// writes at once.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes req and reads its answer. On success the answer's body owns the connection
// and its token.
func (c *conn) roundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	dl, _ := ctx.Deadline() // the zero time clears a deadline left by an earlier exchange
	if err := c.nc.SetDeadline(dl); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(aLongTimeAgo) })
	c.r.n, c.w.n = 0, 0
	c.r.limit = int64(c.maxHeader)
	err := req.Write(c.bw)
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		stop()
		return nil, &exchangeError{err: err, written: c.w.n > 0}
	}
	resp, err := http.ReadResponse(c.br, req)
	for i := 0; err == nil && resp.StatusCode >= 100 && resp.StatusCode <= 199; i++ {
		if resp.StatusCode == http.StatusSwitchingProtocols || i == max1xx {
			err = fmt.Errorf("h1: unexpected informational answer %d", resp.StatusCode)
			break
		}
		resp, err = http.ReadResponse(c.br, req)
	}
	if err != nil {
		stop()
		return nil, &exchangeError{err: err, written: true, answered: c.r.n > 0}
	}
	c.r.limit = math.MaxInt64
	b := &body{c: c, ctx: ctx, rc: resp.Body, stop: stop, reusable: !resp.Close && !req.Close}
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// exchangeError is a failed exchange, with what had happened on the wire when it failed.
type exchangeError struct {
	err      error
	written  bool // some of the request left
	answered bool // some of an answer came
}

func (e *exchangeError) Error() string { return e.err.Error() }
func (e *exchangeError) Unwrap() error { return e.err }

// retryable reports whether a request that failed on a reused connection may be sent again on
// a new one, by net/http's rule: nothing of it was written, or nothing of an answer came (the
// server closed the idle connection before it read the request) and it is replayable.
func retryable(req *http.Request, err error) bool {
	var xe *exchangeError
	if !errors.As(err, &xe) || xe.answered {
		return false
	}
	if !xe.written {
		return true
	}
	return replayable(req) && (errors.Is(xe.err, io.EOF) || errors.Is(xe.err, io.ErrUnexpectedEOF) ||
		errors.Is(xe.err, syscall.ECONNRESET) || errors.Is(xe.err, syscall.EPIPE))
}

// replayable mirrors net/http's Request.isReplayable: a body that can be read again, and an
// idempotent method or an Idempotency-Key header.
func replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, idem := req.Header["Idempotency-Key"]
	_, xidem := req.Header["X-Idempotency-Key"]
	return idem || xidem
}

// rewound returns req with a fresh copy of its body, for a retry; req itself is not changed.
func rewound(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("h1: reading the request body again for a retry: %w", err)
	}
	r := *req
	r.Body = body
	return &r, nil
}

// blameContext returns err naming ctx's error as its cause (errors.Is finds it) once ctx is
// done or its deadline has passed, and whether it had; otherwise err as it is. The connection's
// deadline, set to the context's, can fire a moment before the context's own timer does, and
// then the error reads only "i/o timeout".
func blameContext(ctx context.Context, err error) (error, bool) {
	ctxErr := ctx.Err()
	if dl, ok := ctx.Deadline(); ctxErr == nil && ok && !time.Now().Before(dl) {
		ctxErr = context.DeadlineExceeded
	}
	switch {
	case ctxErr == nil:
		return err, false
	case errors.Is(err, ctxErr):
		return err, true
	}
	return fmt.Errorf("%w (%v)", ctxErr, err), true
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// body is an answer's body. Read to its end, it returns the connection to the pool; closed
// before that, or failed, it closes the connection.
type body struct {
	mu       sync.Mutex
	c        *conn
	ctx      context.Context
	rc       io.ReadCloser
	stop     func() bool // stops the context's cancellation; false once it fired
	reusable bool
	done     bool
	err      error // what Read returns once done
}

var errBodyClosed = errors.New("h1: read on closed response body")

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.finish(true)
		b.err = io.EOF
	case err != nil:
		b.finish(false)
		err, _ = blameContext(b.ctx, err)
		b.err = err
	}
	return n, err
}

func (b *body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.finish(false)
	}
	b.err = errBodyClosed
	return nil
}

// finish ends the exchange: the connection goes back to the pool when the body was read to its
// end, the answer allows keep-alive, the context's cancellation did not fire, and nothing
// follows the answer on the wire; otherwise it is closed.
func (b *body) finish(eof bool) {
	b.done = true
	stopped := b.stop()
	p := b.c.p
	if eof && stopped && b.reusable && b.c.br.Buffered() == 0 {
		p.put(b.c)
		return
	}
	p.discard(b.c)
}
