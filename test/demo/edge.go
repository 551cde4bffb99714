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

package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// edge is how the operator itself reaches what the laptop's DNS cannot resolve, as it would in a
// cluster. The manager runs with HTTP_PROXY and HTTPS_PROXY pointing at the edge's proxy, which
// stands in for DNS:
//   - a public webhook host (CONNECT hooks.clinic-a.example:443, the delivery probe) resolves to
//     the edge's load balancer, which ends TLS with a certificate of the demo's own CA (the
//     manager trusts it through SSL_CERT_FILE) and routes by URL to the ready receivers, as
//     Stripe's deliveries are routed;
//   - a receiver Service (http://<name>.<ns>.svc:8080/…, the ledger messages and replays) is
//     routed to that Service's ready receiver processes, as kube-proxy would.
//
// Anything else is refused, as an unknown name would be. Loopback addresses (the apiserver, the
// Stripe fake) never go through a proxy (Go's ProxyFromEnvironment leaves them out).
type edge struct {
	n *network

	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string

	mu    sync.Mutex
	certs map[string]*tls.Certificate

	lb, proxy         *http.Server
	lbAddr, proxyAddr string
}

// startEdge starts the load balancer and the proxy; the CA certificate is written to caFile.
func startEdge(n *network, caFile string) (*edge, error) {
	e := &edge{n: n, caFile: caFile, certs: map[string]*tls.Certificate{}}
	if err := e.makeCA(); err != nil {
		return nil, err
	}
	lbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	e.lbAddr = lbLn.Addr().String()
	e.lb = &http.Server{Handler: http.HandlerFunc(e.serveLB), ReadHeaderTimeout: 5 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: e.certificate}}
	go func() { _ = e.lb.ServeTLS(lbLn, "", "") }() // ends with ErrServerClosed on shutdown
	if e.proxy, e.proxyAddr, err = serve(http.HandlerFunc(e.serveProxy)); err != nil {
		_ = e.lb.Close()
		return nil, err
	}
	return e, nil
}

func (e *edge) close(ctx context.Context) error {
	return errors.Join(e.lb.Shutdown(ctx), e.proxy.Shutdown(ctx))
}

// env is what the manager's environment needs to go through the edge.
func (e *edge) env() []string {
	p := "http://" + e.proxyAddr
	return []string{"HTTPS_PROXY=" + p, "HTTP_PROXY=" + p, "NO_PROXY=", "no_proxy=", "SSL_CERT_FILE=" + e.caFile}
}

func (e *edge) makeCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stripe-operator demo load balancer CA"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("demo CA: %w", err)
	}
	if e.ca, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	e.caKey = key
	return os.WriteFile(e.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
}

// certificate serves the public host the client asked for (SNI), if a webhook URL is routed
// there: the certificate an Ingress would hold for the clinic's host.
func (e *edge) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	host := hello.ServerName
	if !e.n.publicHost(host) {
		return nil, fmt.Errorf("demo load balancer: no route for %q", host)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.certs[host]; c != nil {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(len(e.certs) + 2)), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, e.ca, &key.PublicKey, e.caKey)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	e.certs[host] = c
	return c, nil
}

// serveLB routes a request that arrived over TLS at the public host as Stripe's are routed.
func (e *edge) serveLB(w http.ResponseWriter, r *http.Request) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = "https", r.Host
	resp, err := e.n.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	relayResponse(w, resp)
}

// serveProxy is the manager's proxy: CONNECT to a public webhook host reaches the load
// balancer; a plain request to a receiver Service reaches one of its ready processes.
func (e *edge) serveProxy(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil || !e.n.publicHost(host) {
			http.Error(w, "demo network: no such host "+r.Host, http.StatusBadGateway)
			return
		}
		e.tunnel(w, e.lbAddr)
		return
	}
	addr := e.n.serviceAddr(r.URL.Host)
	if r.URL.Scheme != "http" || addr == "" {
		http.Error(w, "demo network: no such host "+r.URL.Host, http.StatusBadGateway)
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Host = r.URL.Host
	out.URL.Host = addr
	out.Header.Del("Proxy-Connection")
	resp, err := e.n.base.RoundTrip(out)
	if err != nil {
		http.Error(w, "demo network: "+err.Error(), http.StatusBadGateway)
		return
	}
	relayResponse(w, resp)
}

func (e *edge) tunnel(w http.ResponseWriter, addr string) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "demo network: cannot tunnel", http.StatusInternalServerError)
		return
	}
	upstream, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		http.Error(w, "demo network: "+err.Error(), http.StatusBadGateway)
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		_ = upstream.Close()
		return
	}
	_, _ = conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(upstream, buf); done <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, upstream); done <- struct{}{} }()
	<-done
	_ = conn.Close()
	_ = upstream.Close()
	<-done
}

func relayResponse(w http.ResponseWriter, resp *http.Response) {
	defer func() { _ = resp.Body.Close() }()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// publicHost reports whether some webhook URL of that host is routed.
func (n *network) publicHost(host string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for u := range n.routes {
		if strings.HasPrefix(u, "https://"+host+"/") {
			return true
		}
	}
	return false
}

// setService points a Service's host:port (<name>.<ns>.svc:<port>) at receiver addresses; no
// addresses removes it.
func (n *network) setService(hostPort string, addrs []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(addrs) == 0 {
		delete(n.services, hostPort)
		return
	}
	n.services[hostPort] = addrs
}

// serviceAddr picks the next ready address of a Service, "" when it has none; the name may
// carry the cluster domain.
func (n *network) serviceAddr(hostPort string) string {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return ""
	}
	host = strings.TrimSuffix(host, ".cluster.local")
	n.mu.Lock()
	defer n.mu.Unlock()
	addrs := n.services[net.JoinHostPort(host, port)]
	if len(addrs) == 0 {
		return ""
	}
	n.next++
	return addrs[n.next%len(addrs)]
}
