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

package stripefake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// shutdownTimeout bounds how long Close waits for in-flight requests.
const shutdownTimeout = 5 * time.Second

// connTracker records connection states so Close can drop connections that
// never carried a request: clients dial spare keep-alive connections under
// concurrency, and http.Server.Shutdown would wait 5 s for each of them.
type connTracker struct {
	mu    sync.Mutex
	conns map[net.Conn]http.ConnState
}

func (ct *connTracker) track(c net.Conn, st http.ConnState) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.conns == nil {
		ct.conns = make(map[net.Conn]http.ConnState)
	}
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(ct.conns, c)
	default:
		ct.conns[c] = st
	}
}

func (ct *connTracker) closeUnused() {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for c, st := range ct.conns {
		if st == http.StateNew {
			_ = c.Close()
		}
	}
}

// Start serves the fake on 127.0.0.1 with a random port and returns its base
// URL, suitable for stripe.BackendConfig.URL.
func (s *Server) Start() (string, error) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.httpSrv != nil {
		return "", errors.New("stripefake: already started")
	}
	if s.isClosed() {
		return "", ErrClosed
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("stripefake: listen: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ConnState: s.conns.track}
	s.httpSrv = srv
	s.url = "http://" + ln.Addr().String()
	go func() { _ = srv.Serve(ln) }() // returns http.ErrServerClosed on Close
	return s.url, nil
}

// URL returns the base URL after Start, or "" before.
func (s *Server) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.url
}

// stopListener gracefully shuts the HTTP server down, letting in-flight
// requests finish while closing connections that never sent one.
func (s *Server) stopListener() error {
	s.srvMu.Lock()
	srv := s.httpSrv
	s.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				_ = srv.Close()
				return fmt.Errorf("stripefake: shutdown: %w", err)
			}
			return nil
		case <-tick.C:
			s.conns.closeUnused()
		}
	}
}
