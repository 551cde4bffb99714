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

// Package reliability is the operator's reliability and security suite: the real manager binary
// against an envtest control plane and the Stripe fake, under Stripe faults, crashes at chosen
// points, and leader failover, with the invariants (no duplicate, leaked or lost endpoint or
// signing secret) and a leak scan for keys and secrets checked at the end of each. `make test`
// runs a bounded subset; `make reliability` (RELIABILITY_FULL=1) the full sizes.
package reliability

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
	"github.com/clinicpay/stripe-operator/test/testenv"
	"github.com/clinicpay/stripe-operator/test/testreport"
)

// size picks the bounded or the full size of a scenario.
func size(quick, full int) int {
	if testreport.Full() {
		return full
	}
	return quick
}

// TestStripeFaults: integrations created and some deleted while a fifth of Stripe calls fail with
// 500, 502 or 429 (Retry-After) and 5% time out. All must converge; at the end the endpoints in
// Stripe are exactly the live integrations', and Stripe calls per integration stay bounded.
func TestStripeFaults(t *testing.T) {
	t.Parallel() // each test runs its own control plane, Stripe fake and managers
	n := size(30, 200)
	// A long resync: the calls counted are the ones faults cause, not periodic probes.
	w := newWorld(t, time.Minute, stripefake.WithFaultSeed(42))
	ctx := context.Background()
	// Drawn in order per call: 1/15 of calls get 500, then 502, then 429 (≈ 20% in all); of the
	// rest, 1/16 wait past the manager's 1 s call timeout (5% of all calls).
	w.fake.InjectFault(stripefake.Fault{Status: http.StatusInternalServerError, Probability: 1.0 / 15})
	w.fake.InjectFault(stripefake.Fault{Status: http.StatusBadGateway, Probability: 1.0 / 14})
	w.fake.InjectFault(stripefake.Fault{Status: http.StatusTooManyRequests, Probability: 1.0 / 13, RetryAfter: time.Second})
	w.fake.InjectFault(stripefake.Fault{Latency: 1500 * time.Millisecond, Probability: 1.0 / 16})
	mgr := w.startManager(false)

	keys := make([]types.NamespacedName, 0, n)
	for range n {
		keys = append(keys, w.createIntegration(ctx))
	}
	start := time.Now()
	w.waitFor(time.Duration(n)*time.Second+2*time.Minute, "all Connected under faults", func() (bool, string) {
		c, msg := w.connected(ctx, keys)
		return c == n, msg
	})
	connectedIn := time.Since(start)
	deleted := keys[:n/5]
	live := keys[n/5:]
	for _, k := range deleted {
		if err := w.c.Delete(ctx, &v1.StripeIntegration{ObjectMeta: objectMeta(k)}); err != nil {
			t.Fatal(err)
		}
	}
	w.waitFor(3*time.Minute, "deleted integrations gone under faults", func() (bool, string) {
		var list v1.StripeIntegrationList
		if err := w.c.List(ctx, &list); err != nil {
			return false, err.Error()
		}
		return len(list.Items) == len(live), fmt.Sprintf("%d left, want %d", len(list.Items), len(live))
	})
	fired, calls := w.fake.FaultsFired(), w.fake.TotalCalls()
	w.fake.ClearFaults()
	time.Sleep(3 * time.Second) // let in-flight passes finish: nothing may change any more
	endpoints := w.checkInvariants(ctx, live, deleted)
	w.rememberSigningSecrets(live)
	places, needles := w.scanForLeaks(ctx, mgr)

	perIntegration := float64(calls) / float64(n)
	testreport.Report(t, "%d integrations, %d deleted, under %d injected faults in %d Stripe calls (%.0f%%): all Connected after %s; "+
		"%d endpoints in Stripe for %d live integrations (0 duplicates, 0 leaks); %.1f Stripe calls per integration; leak scan: %d places × %d secrets, "+
		"0 hits",
		n, len(deleted), fired, calls, 100*float64(fired)/float64(max(calls, 1)), connectedIn.Round(time.Second),
		endpoints, len(live), perIntegration, places, needles)
	if fired == 0 {
		t.Error("no fault fired: the scenario tested nothing")
	}
	if perIntegration > 40 {
		t.Errorf("%.1f Stripe calls per integration: retries are not bounded", perIntegration)
	}
}

func objectMeta(k types.NamespacedName) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name}
}

// crashPoint is where a round of TestCrashes stops the manager with SIGKILL.
type crashPoint int

const (
	// afterCreate: Stripe created the endpoint but the answer never reached the manager.
	afterCreate crashPoint = iota
	// afterSigningSecret: the signing Secret was written; the status may not be.
	afterSigningSecret
	// duringDeletion: Stripe deleted the endpoint but the answer never arrived; the finalizer holds.
	duringDeletion
	crashPoints
)

func (p crashPoint) String() string {
	return [...]string{"after endpoint create, before status", "after signing Secret write, before status", "during deletion"}[p]
}

// TestCrashes stops the manager with SIGKILL at chosen points and starts a new one, round after
// round. At the end: no duplicate or leaked endpoint, no lost signing secret, every integration
// Connected or gone.
func TestCrashes(t *testing.T) {
	t.Parallel() // each test runs its own control plane, Stripe fake and managers
	rounds := size(6, 50)
	w := newWorld(t, 3*time.Second)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 7))
	mgr := w.startManager(false)
	var live, deleted []types.NamespacedName
	hits := map[crashPoint]int{}
	for round := range rounds {
		point := crashPoint(round % int(crashPoints))
		if point == duringDeletion && len(live) == 0 {
			point = afterCreate
		}
		switch point {
		case afterCreate:
			k := w.createIntegration(ctx)
			// Hold the create's answer (after Stripe executed it) long enough to kill the manager.
			w.fake.InjectFault(stripefake.Fault{Key: w.keyOf(k), Method: http.MethodPost, PathPrefix: "/v1/webhook_endpoints",
				AfterExecute: true, Latency: 30 * time.Second, Times: 1})
			w.waitFor(time.Minute, "the endpoint created in Stripe", func() (bool, string) {
				return w.account(k) != "" && len(w.fake.Endpoints(w.account(k), false)) == 1, "not yet"
			})
			live = append(live, k)
		case afterSigningSecret:
			k := w.createIntegration(ctx)
			w.waitFor(time.Minute, "the signing Secret", func() (bool, string) {
				var s corev1.Secret
				err := w.c.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Name + "-stripe-webhook"}, &s)
				return err == nil, fmt.Sprint(err)
			})
			live = append(live, k)
		case duringDeletion:
			i := rng.IntN(len(live))
			k := live[i]
			live = append(live[:i], live[i+1:]...)
			w.waitFor(time.Minute, "the integration to delete Connected", func() (bool, string) {
				c, msg := w.connected(ctx, []types.NamespacedName{k})
				return c == 1, msg
			})
			w.fake.InjectFault(stripefake.Fault{Key: w.keyOf(k), Method: http.MethodDelete, PathPrefix: "/v1/webhook_endpoints",
				AfterExecute: true, Latency: 30 * time.Second, Times: 1})
			if err := w.c.Delete(ctx, &v1.StripeIntegration{ObjectMeta: objectMeta(k)}); err != nil {
				t.Fatal(err)
			}
			w.waitFor(time.Minute, "the endpoint deleted in Stripe", func() (bool, string) {
				return len(w.fake.Endpoints(w.account(k), false)) == 0, "not yet"
			})
			deleted = append(deleted, k)
		}
		w.rememberSigningSecrets(live)
		mgr.Kill()
		hits[point]++
		w.fake.ClearFaults()
		mgr = w.startManager(false)
	}
	w.waitFor(3*time.Minute, "convergence after the last crash", func() (bool, string) {
		c, msg := w.connected(ctx, live)
		var list v1.StripeIntegrationList
		if err := w.c.List(ctx, &list); err != nil {
			return false, err.Error()
		}
		return c == len(live) && len(list.Items) == len(live), msg
	})
	endpoints := w.checkInvariants(ctx, live, deleted)
	places, needles := w.scanForLeaks(ctx, mgr)
	testreport.Report(t, "%d SIGKILL rounds (%d %s, %d %s, %d %s): %d live integrations Connected with %d endpoints, %d deleted with 0 left; "+
		"0 duplicate, 0 leaked, 0 lost signing secrets; leak scan: %d places × %d secrets, 0 hits",
		rounds, hits[afterCreate], afterCreate, hits[afterSigningSecret], afterSigningSecret, hits[duringDeletion], duringDeletion,
		len(live), endpoints, len(deleted), places, needles)
}

// TestLeaderFailover runs two managers with leader election, kills the leader with SIGKILL while
// integrations are being connected, and checks that the other takes over and finishes.
func TestLeaderFailover(t *testing.T) {
	t.Parallel() // each test runs its own control plane, Stripe fake and managers
	n := size(12, 60)
	w := newWorld(t, 5*time.Second)
	ctx := context.Background()
	a, b := w.startManager(true), w.startManager(true)
	leader := func() (*leaderInfo, error) { return findLeader(a, b) }
	w.waitFor(time.Minute, "a leader", func() (bool, string) {
		l, err := leader()
		return err == nil && l != nil, fmt.Sprint(err)
	})
	keys := make([]types.NamespacedName, 0, n/2)
	for range n / 2 {
		keys = append(keys, w.createIntegration(ctx))
	}
	w.waitFor(time.Minute, "some integrations connected by the first leader", func() (bool, string) {
		c, msg := w.connected(ctx, keys)
		return c >= 1, msg
	})
	first, err := leader()
	if err != nil || first == nil {
		t.Fatalf("leader: %v", err)
	}
	for range n - n/2 {
		keys = append(keys, w.createIntegration(ctx))
	}
	first.m.Kill()
	killed := time.Now()
	w.waitFor(2*time.Minute, "the other manager to take over and finish", func() (bool, string) {
		c, msg := w.connected(ctx, keys)
		return c == n, msg
	})
	second, err := leader()
	if err != nil || second == nil || second.m == first.m {
		t.Fatalf("after the kill the leader is %+v (%v); want the other manager", second, err)
	}
	endpoints := w.checkInvariants(ctx, keys, nil)
	places, needles := w.scanForLeaks(ctx, second.m)
	testreport.Report(t, "2 managers with leader election, leader SIGKILLed with %d of %d integrations still to connect: the other finished after %s "+
		"(the lease must expire first); %d endpoints for %d integrations; leak scan: %d places × %d secrets, 0 hits",
		n-n/2, n, time.Since(killed).Round(time.Second), endpoints, n, places, needles)
}

type leaderInfo struct{ m *testenv.Manager }

// findLeader asks each manager's metrics which one holds the lease.
func findLeader(ms ...*testenv.Manager) (*leaderInfo, error) {
	var found *leaderInfo
	for _, m := range ms {
		if m.Exited() {
			continue
		}
		resp, err := http.Get(m.MetricsURL())
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "leader_election_master_status{") && strings.HasSuffix(line, " 1") {
				if found != nil {
					_ = resp.Body.Close()
					return nil, fmt.Errorf("two managers report they lead")
				}
				found = &leaderInfo{m: m}
			}
		}
		_ = resp.Body.Close()
	}
	return found, nil
}
