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
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/admissionpolicy"
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
	// Resync is the manager's --resync-period for the whole run; the steady phase lasts
	// SteadyPeriods of them (2 when 0), plus the jitter.
	Resync        time.Duration
	SteadyPeriods int
	// Unrelated is the number of unrelated Secrets and, again, of ConfigMaps created.
	// UnrelatedSettle is how long the manager is left alone before its memory is read, before
	// and after them (10 s when 0).
	Unrelated       int
	UnrelatedSettle time.Duration
	// Rotate and DeleteEndpoints size the reaction phase.
	Rotate, DeleteEndpoints int
	// MaxConcurrentReconciles is passed to the manager.
	MaxConcurrentReconciles int
	// ManagerEnv is added to the manager's environment (e.g. GOGC=50).
	ManagerEnv []string
	// Log receives progress lines.
	Log io.Writer
	// Restart adds the restart phase after the steady state.
	Restart bool
	// RestartBaseline, if set, is another manager binary restarted into first, for comparison.
	RestartBaseline string
	// Replay adds the replayed cold start (replay.go) as the last phase; it stops the manager.
	Replay bool
	// ProfileDir, if set, receives the manager's and the apiserver's CPU profiles of the cold
	// start (cold-<N>.pprof, cold-<N>-apiserver.pprof), the manager's heap profile after the
	// unrelated load (unrelated-<N>.heap) and the apiserver's CPU profile of each kind of write
	// the replay times (replay-<N>-step-<k>-apiserver.pprof).
	ProfileDir string
}

// ClusterResult is what one run measured.
type ClusterResult struct {
	Config ClusterConfig

	ColdTotal        time.Duration
	ColdP50, ColdP99 time.Duration
	ColdWrites       Writes
	ColdStripeCalls  int
	// ColdReads and SteadyReads are the manager's GET requests to the apiserver (apiserverReads:
	// Secrets read past the cache, and the informers' occasional watch restarts); -1: not measured.
	ColdReads    int
	ColdPeakRSS  uint64
	ColdPeakHeap uint64
	// Floor is the apiserver measured alone just before the cold start; ColdBenchWrites are the
	// bench's own writes during the cold start (its creates, Deployments marked available);
	// ColdPass is where an integration's first pass spent its time (floor.go, passes.go).
	Floor           Floor
	ColdBenchWrites int
	ColdPass        PassBreakdown

	SteadyWindow      time.Duration
	SteadyResyncs     float64 // resync periods in the window
	SteadyWrites      Writes
	SteadyStripeCalls int
	SteadyReads       int

	RotateP50, RotateP99 time.Duration
	RotateTotal          time.Duration
	RestoreP50           time.Duration
	RestoreP99           time.Duration
	RestoreTotal         time.Duration

	RSSBeforeUnrelated, RSSAfterUnrelated   uint64
	HeapBeforeUnrelated, HeapAfterUnrelated uint64
	PeakRSSWithUnrelated                    uint64
	UnrelatedCreated                        time.Duration

	Replay   Replay          // N 0 when the phase did not run
	Restarts []RestartResult // empty when the phase did not run
	Rates    []PhaseRate     // the largest Stripe request rates, by phase
}

const (
	benchManagerUser = "bench-manager"
	createWorkers    = 32
	markWorkers      = 8
	clinicPrefix     = "clinic-"
)

// cluster is a running bench environment.
type cluster struct {
	cfg ClusterConfig
	env *envtest.Environment
	c   client.Client
	// asManager is a client with the manager's identity, for the replay.
	asManager client.Client
	// admin is the admin's REST config, for the apiserver's own /debug/pprof.
	admin *rest.Config
	fake  *stripefake.Server
	audit *auditLog
	mgr   *testenv.Manager
	// mgrOpts started mgr; the restart phase starts the next process with them.
	mgrOpts testenv.ManagerOptions
	// watchingRestart makes waitFor log every second.
	watchingRestart bool
	cache           cache.Cache
	stop            context.CancelFunc
	// marked counts the receiver Deployments the bench marked available.
	marked *atomic.Int64

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
	if res.Floor, err = c.measureFloor(ctx, min(max(2*cfg.N, floorSmallMin), floorSmallMax), min(cfg.N, floorServices)); err != nil {
		return res, fmt.Errorf("apiserver floor: %w", err)
	}
	if err := c.coldStart(ctx, &res); err != nil {
		return res, fmt.Errorf("cold start: %w", err)
	}
	c.noteRates(&res, "cold start")
	if err := c.steady(ctx, &res); err != nil {
		return res, fmt.Errorf("steady state: %w", err)
	}
	c.noteRates(&res, "steady state")
	if cfg.Restart {
		if err := c.restart(ctx, &res); err != nil {
			return res, fmt.Errorf("restart: %w", err)
		}
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
	if cfg.Replay {
		if res.Replay, err = c.replay(ctx, cfg.N); err != nil {
			return res, fmt.Errorf("replay: %w", err)
		}
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
	c.admin = restCfg
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1.AddToScheme(scheme)); err != nil {
		return err
	}
	if c.c, err = client.New(restCfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	c.audit = &auditLog{path: auditPath}
	// As an install does (config/default, the chart): the finalizer comes with the creation.
	if err := admissionpolicy.Install(ctx, c.c, c.cfg.Root, "default"); err != nil {
		return err
	}

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
	// The replay (replay.go) sends the manager's writes as the manager's user, so the audit log
	// counts them as it counted the cold start's.
	mgrCfg, err := clientcmd.RESTConfigFromKubeConfig(kc)
	if err != nil {
		return err
	}
	mgrCfg.QPS, mgrCfg.Burst = -1, 0
	if c.asManager, err = client.New(mgrCfg, client.Options{Scheme: scheme}); err != nil {
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
	c.mgrOpts = testenv.ManagerOptions{PprofAddr: pprofAddr, Env: c.cfg.ManagerEnv,
		Bin: c.cfg.Manager, Kubeconfig: kubeconfig, StripeURL: fakeURL, Resync: c.cfg.Resync,
		MaxConcurrent: c.cfg.MaxConcurrentReconciles, LogPath: filepath.Join(work, "manager.log"),
	}
	c.mgr, err = testenv.StartManager(ctx, c.mgrOpts)
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
	if c.marked, err = testenv.MarkDeploymentsAvailable(ctx, c.cache, c.c, markWorkers); err != nil {
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

// QuickClusterConfig is the quick mode (`make bench BENCH_QUICK=1`, and the test in `make test`).
func QuickClusterConfig(root, assets, manager string) ClusterConfig {
	// Quick mode proves the harness works, not the figures: one steady period of 3 s is enough
	// for every integration to resync once, a second's settling before a memory reading is
	// enough to read it, and both keep `make test` short.
	return ClusterConfig{Root: root, Assets: assets, Manager: manager, N: 50, Namespaces: 5, Resync: 3 * time.Second,
		SteadyPeriods: 1, Unrelated: 500, UnrelatedSettle: time.Second, Rotate: 10, DeleteEndpoints: 10, Restart: true, Replay: true}
}

// FullClusterConfig is one size of the full run.
func FullClusterConfig(root, assets, manager string, n int, resync time.Duration) ClusterConfig {
	return ClusterConfig{Root: root, Assets: assets, Manager: manager, N: n, Namespaces: 10, Resync: resync,
		Unrelated: 10_000, Rotate: 100, DeleteEndpoints: 100}
}
