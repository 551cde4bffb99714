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

// Package bench measures stripe-operator the way its users load it: the real manager binary
// against an envtest control plane (with an audit log) and the Stripe fake, with hundreds to
// thousands of integrations, plus the webhook receiver's throughput. `make bench` runs it and
// writes docs/benchmarks.md; a quick mode runs inside `make test`.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/keys"
	"github.com/clinicpay/stripe-operator/test/stripefake"
	"github.com/clinicpay/stripe-operator/test/testenv"
)

// ClusterConfig sizes one cluster run.
type ClusterConfig struct {
	Root    string // repository root (CRDs)
	Assets  string // envtest binaries
	Manager string // the manager binary
	// N integrations, spread over Namespaces namespaces, applied at once with their Secrets.
	N, Namespaces int
	// Resync is the manager's --resync-period for the whole run; the steady phase lasts two.
	Resync time.Duration
	// Unrelated is the number of unrelated Secrets and, again, of ConfigMaps created.
	Unrelated int
	// Rotate and DeleteEndpoints size the reaction phase.
	Rotate, DeleteEndpoints int
	// MaxConcurrentReconciles is passed to the manager.
	MaxConcurrentReconciles int
	// ManagerEnv is added to the manager's environment (e.g. GOGC=50).
	ManagerEnv []string
	// Log receives progress lines.
	Log io.Writer
	// ProfileDir, if set, receives the manager's CPU profile of the cold start (cold-<N>.pprof)
	// and its heap profile after the unrelated load (unrelated-<N>.heap).
	ProfileDir string
}

// ClusterResult is what one run measured.
type ClusterResult struct {
	Config ClusterConfig

	ColdTotal        time.Duration
	ColdP50, ColdP99 time.Duration
	ColdWrites       Writes
	ColdStripeCalls  int
	ColdPeakRSS      uint64
	ColdPeakHeap     uint64

	SteadyWindow      time.Duration
	SteadyResyncs     float64 // resync periods in the window
	SteadyWrites      Writes
	SteadyStripeCalls int

	RotateP50, RotateP99 time.Duration
	RotateTotal          time.Duration
	RestoreP50           time.Duration
	RestoreP99           time.Duration
	RestoreTotal         time.Duration

	RSSBeforeUnrelated, RSSAfterUnrelated   uint64
	HeapBeforeUnrelated, HeapAfterUnrelated uint64
	PeakRSSWithUnrelated                    uint64
	UnrelatedCreated                        time.Duration
}

const (
	benchManagerUser = "bench-manager"
	createWorkers    = 32
	markWorkers      = 8
	clinicPrefix     = "clinic-"
)

// cluster is a running bench environment.
type cluster struct {
	cfg   ClusterConfig
	env   *envtest.Environment
	c     client.Client
	fake  *stripefake.Server
	audit *auditLog
	mgr   *testenv.Manager
	cache cache.Cache
	stop  context.CancelFunc

	mu        sync.Mutex
	created   map[types.NamespacedName]time.Time // when the bench created each integration
	connected map[types.NamespacedName]time.Time // when the bench first saw Connected=True
	fprints   map[types.NamespacedName]fpSeen
	fpWaiters map[types.NamespacedName]string // expected fingerprint
}

type fpSeen struct {
	fp string
	at time.Time
}

func (c *cluster) logf(format string, args ...any) {
	if c.cfg.Log != nil {
		_, _ = fmt.Fprintf(c.cfg.Log, "bench: "+format+"\n", args...) // progress only
	}
}

// RunCluster measures cold start, steady state, reaction and unrelated load for cfg.N integrations.
func RunCluster(ctx context.Context, cfg ClusterConfig) (res ClusterResult, err error) {
	res.Config = cfg
	work, err := os.MkdirTemp("", "stripe-operator-bench-")
	if err != nil {
		return res, err
	}
	defer func() { _ = os.RemoveAll(work) }()
	c := &cluster{cfg: cfg, created: map[types.NamespacedName]time.Time{}, connected: map[types.NamespacedName]time.Time{},
		fprints: map[types.NamespacedName]fpSeen{}, fpWaiters: map[types.NamespacedName]string{}}
	defer func() { err = errors.Join(err, c.close()) }()
	if err := c.start(ctx, work); err != nil {
		return res, err
	}
	if err := c.coldStart(ctx, &res); err != nil {
		return res, fmt.Errorf("cold start: %w", err)
	}
	if err := c.steady(ctx, &res); err != nil {
		return res, fmt.Errorf("steady state: %w", err)
	}
	if err := c.rotate(ctx, &res); err != nil {
		return res, fmt.Errorf("key rotation: %w", err)
	}
	if err := c.restore(ctx, &res); err != nil {
		return res, fmt.Errorf("endpoint restore: %w", err)
	}
	if err := c.unrelated(ctx, &res); err != nil {
		return res, fmt.Errorf("unrelated load: %w", err)
	}
	return res, nil
}

func (c *cluster) start(ctx context.Context, work string) error {
	auditPath := filepath.Join(work, "audit.log")
	policy := filepath.Join(work, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy(benchManagerUser)), 0o600); err != nil {
		return err
	}
	c.env = &envtest.Environment{
		BinaryAssetsDirectory: c.cfg.Assets,
		CRDDirectoryPaths:     []string{filepath.Join(c.cfg.Root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	c.env.ControlPlane.GetAPIServer().Configure().
		Set("audit-policy-file", policy).
		Set("audit-log-path", auditPath).
		Set("audit-log-format", "json").
		Set("audit-log-mode", "blocking").
		// envtest's default Service range is a /24: room for ~250 receiver Services. Clusters
		// commonly use a /12; a /16 holds 65,000.
		Set("service-cluster-ip-range", "10.96.0.0/16")
	restCfg, err := c.env.Start()
	if err != nil {
		return fmt.Errorf("start envtest: %w", err)
	}
	restCfg = rest.CopyConfig(restCfg)
	restCfg.QPS, restCfg.Burst = -1, 0 // the bench's own writes must not be the bottleneck
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1.AddToScheme(scheme)); err != nil {
		return err
	}
	if c.c, err = client.New(restCfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	c.audit = &auditLog{path: auditPath}

	c.fake = stripefake.New(stripefake.AcceptAnyKey())
	fakeURL, err := c.fake.Start()
	if err != nil {
		return err
	}

	user, err := c.env.AddUser(envtest.User{Name: benchManagerUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(work, "manager.kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return err
	}

	cctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	if err := c.startWatchers(cctx, restCfg, scheme); err != nil {
		return err
	}
	pprofAddr := ""
	if c.cfg.ProfileDir != "" {
		if pprofAddr, err = testenv.FreeAddr(); err != nil {
			return err
		}
	}
	c.mgr, err = testenv.StartManager(ctx, testenv.ManagerOptions{PprofAddr: pprofAddr, Env: c.cfg.ManagerEnv,
		Bin: c.cfg.Manager, Kubeconfig: kubeconfig, StripeURL: fakeURL, Resync: c.cfg.Resync,
		MaxConcurrent: c.cfg.MaxConcurrentReconciles, LogPath: filepath.Join(work, "manager.log"),
	})
	return err
}

func (c *cluster) close() error {
	var errs []error
	if c.mgr != nil {
		errs = append(errs, c.mgr.Stop())
	}
	if c.stop != nil {
		c.stop()
	}
	if c.fake != nil {
		errs = append(errs, c.fake.Close())
	}
	if c.env != nil {
		errs = append(errs, c.env.Stop())
	}
	return errors.Join(errs...)
}

// startWatchers runs the bench's informers: it plays the Deployment controller and kubelet by
// marking receiver Deployments available (no receiver processes run), and it timestamps when each
// integration becomes Connected and when its key fingerprint changes.
func (c *cluster) startWatchers(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme) error {
	var err error
	if c.cache, err = testenv.NewCache(cfg, scheme); err != nil {
		return err
	}
	if _, err := testenv.MarkDeploymentsAvailable(ctx, c.cache, c.c, markWorkers); err != nil {
		return err
	}

	siInf, err := c.cache.GetInformer(ctx, &v1.StripeIntegration{})
	if err != nil {
		return err
	}
	observe := func(obj any) {
		si, ok := obj.(*v1.StripeIntegration)
		if !ok {
			return
		}
		now := time.Now()
		key := client.ObjectKeyFromObject(si)
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, seen := c.connected[key]; !seen && meta.IsStatusConditionTrue(si.Status.Conditions, v1.ConditionConnected) {
			c.connected[key] = now
		}
		if fp := si.Status.KeyFingerprint; fp != "" && c.fprints[key].fp != fp {
			c.fprints[key] = fpSeen{fp: fp, at: now}
		}
	}
	if _, err := siInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    observe,
		UpdateFunc: func(_, n any) { observe(n) },
	}); err != nil {
		return err
	}
	go func() { _ = c.cache.Start(ctx) }() // returns when ctx ends
	if !c.cache.WaitForCacheSync(ctx) {
		return errors.New("bench informers did not sync")
	}
	return nil
}

func (c *cluster) namespace(i int) string { return fmt.Sprintf("bench-%d", i%max(c.cfg.Namespaces, 1)) }

func secretKeyFor(i int, gen int) (pk, sk string) {
	body := fmt.Sprintf("bench%06dg%d", i, gen)
	return "pk_test_" + body + "xxxxxxxxxxxxxxxx", "sk_test_" + body + "xxxxxxxxxxxxxxxx"
}

// parallel runs fn(i) for i in [0, n) on createWorkers goroutines and returns the first error.
func parallel(ctx context.Context, n int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(createWorkers, max(n, 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

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
	c.logf("cold start: applying %d integrations with their Secrets", c.cfg.N)
	var profiled <-chan error
	if c.cfg.ProfileDir != "" {
		profiled = c.mgr.CPUProfile(20*time.Second, filepath.Join(c.cfg.ProfileDir, fmt.Sprintf("cold-%d.pprof", c.cfg.N)))
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
	if err := c.waitFor(ctx, 10*time.Minute, func() (bool, string) {
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
	res.ColdStripeCalls = c.fake.TotalCalls()
	res.ColdPeakRSS, res.ColdPeakHeap = c.mgr.Peaks()
	c.logf("cold start: all %d Connected in %s (p50 %s, p99 %s); %.1f writes and %.1f Stripe calls per integration",
		c.cfg.N, res.ColdTotal.Round(time.Millisecond), res.ColdP50.Round(time.Millisecond), res.ColdP99.Round(time.Millisecond),
		float64(res.ColdWrites.Total)/float64(c.cfg.N), float64(res.ColdStripeCalls)/float64(c.cfg.N))
	c.logf("cold start writes: %s", res.ColdWrites.Summary())
	if profiled != nil {
		if err := <-profiled; err != nil {
			return fmt.Errorf("CPU profile: %w", err)
		}
	}
	return nil
}

func (c *cluster) steady(ctx context.Context, res *ClusterResult) error {
	auditStart, err := c.audit.offset()
	if err != nil {
		return err
	}
	c.fake.ResetCounters()
	res.SteadyWindow = 2*c.cfg.Resync + c.cfg.Resync/5 // two periods plus the ±10% jitter
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
	c.logf("steady state: %d writes, %d Stripe calls", res.SteadyWrites.Total, res.SteadyStripeCalls)
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
	settle := 10 * time.Second
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

// waitFor polls cond every 100 ms until it holds or timeout passes.
func (c *cluster) waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	for {
		ok, msg := cond()
		if ok {
			return nil
		}
		if c.mgr.Exited() {
			return fmt.Errorf("the manager exited (%s); log: %s", msg, c.mgr.LogPath())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %s", timeout, msg)
		}
		if time.Since(lastLog) > 10*time.Second {
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

// QuickClusterConfig is the quick mode (`make bench BENCH_QUICK=1`, and the test in `make test`).
func QuickClusterConfig(root, assets, manager string) ClusterConfig {
	return ClusterConfig{Root: root, Assets: assets, Manager: manager, N: 50, Namespaces: 5, Resync: 5 * time.Second,
		Unrelated: 500, Rotate: 10, DeleteEndpoints: 10}
}

// FullClusterConfig is one size of the full run.
func FullClusterConfig(root, assets, manager string, n int, resync time.Duration) ClusterConfig {
	return ClusterConfig{Root: root, Assets: assets, Manager: manager, N: n, Namespaces: 10, Resync: resync,
		Unrelated: 10_000, Rotate: 100, DeleteEndpoints: 100}
}
