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

package bench

// The cluster bench's phases: cold start, steady state, key rotation, restore after a restart,
// unrelated load, and their measuring helpers.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/keys"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

func (c *cluster) coldStart(ctx context.Context, res *ClusterResult) error {
	for i := range max(c.cfg.Namespaces, 1) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.namespace(i)}}
		if err := c.c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	auditStart, err := c.audit.offset()
	if err != nil {
		return err
	}
	c.fake.ResetCounters()
	c.mgr.ResetPeaks()
	marked := c.marked.Load()
	readsBefore := apiserverReads(c.mgr.MetricsURL())
	c.logf("cold start: applying %d integrations with their Secrets", c.cfg.N)
	var profiled, apiProfiled <-chan error
	if c.cfg.ProfileDir != "" {
		profiled = c.mgr.CPUProfile(20*time.Second, filepath.Join(c.cfg.ProfileDir, fmt.Sprintf("cold-%d.pprof", c.cfg.N)))
		apiProfiled = apiserverCPUProfile(ctx, c.admin, 20*time.Second,
			filepath.Join(c.cfg.ProfileDir, fmt.Sprintf("cold-%d-apiserver.pprof", c.cfg.N)))
	}
	start := time.Now()
	err = parallel(ctx, c.cfg.N, func(i int) error {
		ns, name := c.namespace(i), fmt.Sprintf("%s%d", clinicPrefix, i)
		pk, sk := secretKeyFor(i, 0)
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-keys"},
			Data: map[string][]byte{"publishableKey": []byte(pk), "secretKey": []byte(sk)}}
		si := &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.StripeIntegrationSpec{
			ClinicID: name, Mode: v1.ModeTest, CredentialsSecretRef: v1.CredentialsSecretRef{Name: sec.Name},
			InvoiceFooterDisclaimer: "Payments are processed by Stripe.",
			Webhook:                 &v1.WebhookSpec{BaseURL: "https://hooks.bench.example"},
		}}
		if err := c.c.Create(ctx, sec); err != nil {
			return err
		}
		if err := c.c.Create(ctx, si); err != nil {
			return err
		}
		c.mu.Lock()
		c.created[client.ObjectKeyFromObject(si)] = time.Now()
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	c.logf("cold start: applied in %s; waiting for Connected", time.Since(start).Round(time.Millisecond))
	// 10,000 integrations take minutes on 2 cores; give every size the same margin per integration.
	if err := c.waitFor(ctx, 10*time.Minute+time.Duration(c.cfg.N)*90*time.Millisecond, func() (bool, string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.connected) >= c.cfg.N, fmt.Sprintf("%d/%d Connected", len(c.connected), c.cfg.N)
	}); err != nil {
		return err
	}
	var last time.Time
	c.mu.Lock()
	lat := make([]time.Duration, 0, len(c.connected))
	for key, at := range c.connected {
		lat = append(lat, at.Sub(c.created[key]))
		if at.After(last) {
			last = at
		}
	}
	c.mu.Unlock()
	res.ColdTotal = last.Sub(start)
	res.ColdP50, res.ColdP99 = percentile(lat, 50), percentile(lat, 99)
	// Let trailing writes (Events, a last status update) land before counting.
	time.Sleep(2 * time.Second)
	if res.ColdWrites, err = c.audit.countSince(auditStart); err != nil {
		return err
	}
	if res.ColdPass, err = c.audit.passBreakdown(auditStart); err != nil {
		return err
	}
	res.ColdBenchWrites = 2*c.cfg.N + int(c.marked.Load()-marked)
	res.ColdStripeCalls = c.fake.TotalCalls()
	res.ColdReads = readsSince(readsBefore, apiserverReads(c.mgr.MetricsURL()))
	res.ColdPeakRSS, res.ColdPeakHeap = c.mgr.Peaks()
	c.logf("cold start: all %d Connected in %s (p50 %s, p99 %s); %.1f writes, %.1f reads and %.1f Stripe calls per integration",
		c.cfg.N, res.ColdTotal.Round(time.Millisecond), res.ColdP50.Round(time.Millisecond), res.ColdP99.Round(time.Millisecond),
		float64(res.ColdWrites.Total)/float64(c.cfg.N), float64(res.ColdReads)/float64(c.cfg.N), float64(res.ColdStripeCalls)/float64(c.cfg.N))
	c.logf("cold start writes: %s", res.ColdWrites.Summary())
	c.logf("cold start pass: %s", res.ColdPass)
	if profiled != nil {
		if err := errors.Join(<-profiled, <-apiProfiled); err != nil {
			return fmt.Errorf("CPU profile: %w", err)
		}
	}
	return nil
}

// apiserverCPUProfile fetches the apiserver's CPU profile for d (its /debug/pprof, on by
// default, as the admin) into path; the channel gets the outcome.
func apiserverCPUProfile(ctx context.Context, admin *rest.Config, d time.Duration, path string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			hc, err := rest.HTTPClientFor(admin)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
			defer cancel()
			url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(admin.Host, "/"), int(d.Seconds()))
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return fmt.Errorf("apiserver profile: %w", err)
			}
			defer func() { _ = resp.Body.Close() }()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("apiserver profile: %s", resp.Status)
			}
			f, err := os.Create(path)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, resp.Body); err != nil {
				_ = f.Close()
				return err
			}
			return f.Close()
		}()
	}()
	return done
}

func (c *cluster) steady(ctx context.Context, res *ClusterResult) error {
	auditStart, err := c.audit.offset()
	if err != nil {
		return err
	}
	c.fake.ResetCounters()
	readsBefore := apiserverReads(c.mgr.MetricsURL())
	periods := c.cfg.SteadyPeriods
	if periods <= 0 {
		periods = 2
	}
	res.SteadyWindow = time.Duration(periods)*c.cfg.Resync + c.cfg.Resync/5 // plus the ±10% jitter
	res.SteadyResyncs = float64(res.SteadyWindow) / float64(c.cfg.Resync)
	c.logf("steady state: watching for %s (resync period %s)", res.SteadyWindow, c.cfg.Resync)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(res.SteadyWindow):
	}
	if res.SteadyWrites, err = c.audit.countSince(auditStart); err != nil {
		return err
	}
	res.SteadyStripeCalls = c.fake.TotalCalls()
	res.SteadyReads = readsSince(readsBefore, apiserverReads(c.mgr.MetricsURL()))
	c.logf("steady state: %d writes, %d reads, %d Stripe calls", res.SteadyWrites.Total, res.SteadyReads, res.SteadyStripeCalls)
	return nil
}

// rotate gives cfg.Rotate clinics new keys of the same Stripe account (a rolled key) and times
// how long until each status shows the new key fingerprint.
func (c *cluster) rotate(ctx context.Context, res *ClusterResult) error {
	n := min(c.cfg.Rotate, c.cfg.N)
	changed := make([]time.Time, n)
	want := make([]string, n)
	start := time.Now()
	err := parallel(ctx, n, func(i int) error {
		ns, name := c.namespace(i), fmt.Sprintf("%s%d", clinicPrefix, i)
		_, oldSK := secretKeyFor(i, 0)
		pk, sk := secretKeyFor(i, 1)
		c.fake.AddKey(sk, stripefake.KeyOptions{Account: c.fake.AccountForKey(oldSK)})
		want[i] = keys.Fingerprint(pk, sk)
		var sec corev1.Secret
		if err := c.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name + "-keys"}, &sec); err != nil {
			return err
		}
		sec.Data = map[string][]byte{"publishableKey": []byte(pk), "secretKey": []byte(sk)}
		changed[i] = time.Now()
		return c.c.Update(ctx, &sec)
	})
	if err != nil {
		return err
	}
	var lat []time.Duration
	if err := c.waitFor(ctx, 5*time.Minute, func() (bool, string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		lat = lat[:0]
		for i := range n {
			seen := c.fprints[types.NamespacedName{Namespace: c.namespace(i), Name: fmt.Sprintf("%s%d", clinicPrefix, i)}]
			if seen.fp == want[i] {
				lat = append(lat, seen.at.Sub(changed[i]))
			}
		}
		return len(lat) == n, fmt.Sprintf("%d/%d rotations seen", len(lat), n)
	}); err != nil {
		return err
	}
	res.RotateP50, res.RotateP99, res.RotateTotal = percentile(lat, 50), percentile(lat, 99), time.Since(start)
	c.logf("rotation: %d clinics, p50 %s, p99 %s", n, res.RotateP50.Round(time.Millisecond), res.RotateP99.Round(time.Millisecond))
	return nil
}

// restore deletes cfg.DeleteEndpoints endpoints in the fake, as someone would in the dashboard,
// and times how long until each account has its endpoint again.
func (c *cluster) restore(ctx context.Context, res *ClusterResult) error {
	n := min(c.cfg.DeleteEndpoints, c.cfg.N)
	accounts := make([]string, n)
	for i := range n {
		// The last clinics: their keys were not rotated.
		_, sk := secretKeyFor(c.cfg.N-1-i, 0)
		accounts[i] = c.fake.AccountForKey(sk)
		eps := c.fake.Endpoints(accounts[i], false)
		if len(eps) != 1 {
			return fmt.Errorf("account of clinic %d has %d endpoints, want 1", c.cfg.N-1-i, len(eps))
		}
		if err := c.fake.DeleteEndpoint(eps[0].ID); err != nil {
			return err
		}
	}
	start := time.Now()
	restored := make([]time.Duration, n)
	done := 0
	if err := c.waitFor(ctx, 3*c.cfg.Resync+time.Minute, func() (bool, string) {
		for i := range n {
			if restored[i] == 0 && len(c.fake.Endpoints(accounts[i], false)) == 1 {
				restored[i] = time.Since(start)
				done++
			}
		}
		return done == n, fmt.Sprintf("%d/%d endpoints restored", done, n)
	}); err != nil {
		return err
	}
	res.RestoreP50, res.RestoreP99, res.RestoreTotal = percentile(restored, 50), percentile(restored, 99), time.Since(start)
	c.logf("restore: %d endpoints back in %s", n, res.RestoreTotal.Round(time.Millisecond))
	return nil
}

// unrelated creates Secrets and ConfigMaps the operator has no business with and compares the
// manager's memory before and after.
func (c *cluster) unrelated(ctx context.Context, res *ClusterResult) error {
	settle := c.cfg.UnrelatedSettle
	if settle == 0 {
		settle = 10 * time.Second
	}
	time.Sleep(settle)
	res.RSSBeforeUnrelated, res.HeapBeforeUnrelated = c.mgr.Current()
	c.mgr.ResetPeaks()
	if err := c.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unrelated"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	payload := make([]byte, 4096)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	start := time.Now()
	err := parallel(ctx, c.cfg.Unrelated, func(i int) error {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "unrelated", Name: fmt.Sprintf("app-secret-%d", i)},
			Data: map[string][]byte{"token": payload}}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "unrelated", Name: fmt.Sprintf("app-config-%d", i)},
			Data: map[string]string{"config": string(payload)}}
		return errors.Join(c.c.Create(ctx, sec), c.c.Create(ctx, cm))
	})
	if err != nil {
		return err
	}
	res.UnrelatedCreated = time.Since(start)
	time.Sleep(settle)
	res.RSSAfterUnrelated, res.HeapAfterUnrelated = c.mgr.Current()
	res.PeakRSSWithUnrelated, _ = c.mgr.Peaks()
	if c.cfg.ProfileDir != "" {
		if err := c.mgr.HeapProfile(filepath.Join(c.cfg.ProfileDir, fmt.Sprintf("unrelated-%d.heap", c.cfg.N))); err != nil {
			return fmt.Errorf("heap profile: %w", err)
		}
	}
	c.logf("unrelated load: %d Secrets + %d ConfigMaps; manager RSS %s → %s", c.cfg.Unrelated, c.cfg.Unrelated,
		mib(res.RSSBeforeUnrelated), mib(res.RSSAfterUnrelated))
	return nil
}

// waitFor polls cond every 100 ms until it holds or timeout passes, or the manager, if one runs,
// exits.
func (c *cluster) waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	for {
		ok, msg := cond()
		if ok {
			return nil
		}
		if c.mgr != nil && c.mgr.Exited() {
			return fmt.Errorf("the manager exited (%s); log: %s", msg, c.mgr.LogPath())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %s", timeout, msg)
		}
		if time.Since(lastLog) > c.logEvery() {
			c.logf("  %s", msg)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	idx := (len(s)*p + 99) / 100
	return s[min(max(idx-1, 0), len(s)-1)]
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// readsSince is the reads between two samples of apiserverReads, -1 if either failed.
func readsSince(before, after int) int {
	if before < 0 || after < 0 {
		return -1
	}
	return after - before
}
