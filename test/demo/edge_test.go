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
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEdgeRoutesTheOperator: through the edge's proxy, with the demo CA trusted, a client (as the
// manager with HTTPS_PROXY, HTTP_PROXY and SSL_CERT_FILE) reaches a receiver by its public
// webhook URL over TLS and by its Service name; other names are refused.
func TestEdgeRoutesTheOperator(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Host+" "+r.URL.Path)
	}))
	defer receiver.Close()
	addr := strings.TrimPrefix(receiver.URL, "http://")
	n := newNetwork("127.0.0.1:1", "127.0.0.1:2")
	n.setRoute("https://hooks.clinic-a.example/stripe/webhook-test/clinic-a", []string{addr})
	n.setService("clinic-a-test.default.svc:8080", []string{addr})
	e, err := startEdge(n, filepath.Join(t.TempDir(), "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.close(context.Background()) }()
	caPEM, err := os.ReadFile(e.caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate in the CA file")
	}
	proxy, _ := url.Parse("http://" + e.proxyAddr)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy), TLSClientConfig: &tls.Config{RootCAs: roots}}}
	for target, want := range map[string]string{
		"https://hooks.clinic-a.example/stripe/webhook-test/clinic-a":            "hooks.clinic-a.example /stripe/webhook-test/clinic-a",
		"http://clinic-a-test.default.svc:8080/clinicpay/ledger/clinic-a":        "clinic-a-test.default.svc:8080 /clinicpay/ledger/clinic-a",
		"http://clinic-a-test.default.svc.cluster.local:8080/clinicpay/ledger/x": "clinic-a-test.default.svc.cluster.local:8080 /clinicpay/ledger/x",
		"https://hooks.clinic-a.example/stripe/webhook-test/other":               "502",
		"https://hooks.clinic-b.example/stripe/webhook-test/clinic-b":            "error",
		"http://clinic-b-test.default.svc:8080/clinicpay/ledger/clinic-b":        "502",
	} {
		resp, err := c.Post(target, "application/json", strings.NewReader("{}"))
		got := "error"
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			got = string(body)
			if resp.StatusCode != http.StatusOK {
				got = resp.Status[:3]
			}
		}
		if got != want {
			t.Errorf("POST %s: %q (%v), want %q", target, got, err, want)
		}
	}
}
