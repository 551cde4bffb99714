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
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// clusterDomain is the suffix of in-cluster Service names.
const clusterDomain = ".svc.cluster.local"

// network plays the parts of the cluster's network that a laptop lacks:
//   - the public route from Stripe to a clinic's receiver pods (DNS, load balancer or Ingress,
//     Service): a webhook URL the operator registered is routed to the ready receiver processes
//     of that integration, round robin;
//   - cluster DNS for the receivers: in-cluster Service names of the demo clinic system
//     (billing.<anything>.svc.cluster.local and fhir.<anything>.svc.cluster.local) resolve to
//     its loopback addresses.
type network struct {
	mu       sync.Mutex
	routes   map[string][]string // webhook URL without query → ready receiver addresses
	services map[string][]string // receiver Service <name>.<ns>.svc:<port> → ready receiver addresses
	next     int

	billingAddr, fhirAddr string
	base                  http.RoundTripper
}

func newNetwork(billingAddr, fhirAddr string) *network {
	return &network{routes: map[string][]string{}, services: map[string][]string{},
		billingAddr: billingAddr, fhirAddr: fhirAddr, base: http.DefaultTransport}
}

// setRoute points a public webhook URL at receiver addresses; no addresses removes the route.
func (n *network) setRoute(webhookURL string, addrs []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(addrs) == 0 {
		delete(n.routes, webhookURL)
		return
	}
	n.routes[webhookURL] = addrs
}

// RoundTrip delivers Stripe's webhook POSTs: it is the Stripe fake's HTTP transport.
func (n *network) RoundTrip(req *http.Request) (*http.Response, error) {
	key := req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
	n.mu.Lock()
	addrs := n.routes[key]
	var addr string
	if len(addrs) > 0 {
		addr = addrs[n.next%len(addrs)]
		n.next++
	}
	n.mu.Unlock()
	if addr == "" {
		// What Stripe sees when nothing answers: a connection error, retried later.
		return nil, fmt.Errorf("demo network: no ready receiver serves %s", key)
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host = "http", addr // TLS ends at the (stand-in) load balancer
	out.Host = req.URL.Host
	return n.base.RoundTrip(out)
}

// resolveArg rewrites the URL in a "--flag=URL" argument whose host is one of the demo clinic
// system's in-cluster names; other arguments are returned unchanged.
func (n *network) resolveArg(arg string) string {
	flagPart, value, ok := strings.Cut(arg, "=")
	if !ok || !strings.HasPrefix(flagPart, "--") {
		return arg
	}
	u, err := url.Parse(value)
	if err != nil || u.Host == "" || !strings.HasSuffix(u.Hostname(), clusterDomain) {
		return arg
	}
	switch strings.SplitN(u.Hostname(), ".", 2)[0] {
	case systemBilling:
		u.Host = n.billingAddr
	case systemFHIR:
		u.Host = n.fhirAddr
	default:
		return arg
	}
	u.Scheme = "http"
	return flagPart + "=" + u.String()
}
