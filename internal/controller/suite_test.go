package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/logcap"
	"github.com/clinicpay/stripe-operator/internal/metrics"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
	"github.com/clinicpay/stripe-operator/test/envtestbins"
	"github.com/clinicpay/stripe-operator/test/stripefake"
	"github.com/clinicpay/stripe-operator/test/testrun"
)

// The suite runs one real kube-apiserver + etcd, one Stripe fake and one manager for all tests
// that need them (needSuite); each test works in its own namespace with its own keys.
var (
	k8sClient   client.Client // direct, uncached: what the test sees is what the apiserver has
	restConfig  *rest.Config
	fake        *stripefake.Server
	logs        = &syncBuffer{}
	testMetrics *metrics.Metrics
	// stripeClients wraps the real client factory so tests can lose create responses (crashes).
	stripeClients *crashingClients
	// replayTargets maps a clinic ID to the URL its replays go to (the receiver Service in a cluster).
	replayTargets sync.Map
	// fakeClockOffset moves the Stripe fake's clock, e.g. past the 24 h idempotency window.
	fakeClockOffset atomic.Int64
	// testReconciler is the manager's reconciler, for tests of its watch mappings.
	testReconciler *StripeIntegrationReconciler
	// deliveryCheckIntervals maps a clinic ID to its delivery check interval; the others keep the
	// default (30 min), longer than any test, so their Stripe call counts do not change.
	deliveryCheckIntervals sync.Map
	// firstStatusHolds maps a clinic ID to its first-status hold; the others have none, as
	// nothing marks their receivers available unless the test does.
	firstStatusHolds sync.Map
)

// deliveryRetries is the fake's retry schedule after a failed delivery (Stripe's spans 3 days).
var deliveryRetries = []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond,
	3200 * time.Millisecond}

const (
	testResync    = 2 * time.Second
	testRetryBase = 250 * time.Millisecond
	testRetryMax  = time.Second
	// testGrace is --transient-failure-grace: long enough for a few failing passes, short for a test.
	testGrace         = 6 * time.Second
	testWebhookURL    = "https://hooks.clinicpay.test"
	testReceiverImage = "registry.test/stripe-operator:test"
)

// TestMain runs the tests; the control plane, the Stripe fake and the manager start only when the
// first test that needs them calls needSuite (newNamespace does), so the pure table tests of this
// package run without an apiserver: `go test -run 'TestComputeStatus|TestPickKeeper'` takes
// milliseconds.
func TestMain(m *testing.M) {
	testrun.ParallelByDefault(suiteParallel)
	// The highest verbosity, capped as the manager caps it, so that the leak scans see every line
	// any --zap-log-level would write.
	logf.SetLogger(suiteLog)
	code := m.Run()
	if suiteStop != nil {
		suiteStop()
	}
	os.Exit(code)
}

// suiteParallel is how many tests run at once unless -parallel says otherwise. The tests mostly
// wait (for the manager, the resync, Stripe's pacing), each in its own namespace with its own
// keys, so more of them than -parallel's default of GOMAXPROCS (2 on CI) share the machine well.
const suiteParallel = 12

var (
	suiteLog = logcap.Cap(funcr.New(func(prefix, args string) { logs.WriteString(prefix + " " + args + "\n") }, funcr.Options{Verbosity: 10}),
		logcap.MaxVerbosity)
	suiteOnce sync.Once
	suiteErr  error
	suiteStop func()
)

// needSuite starts the shared envtest control plane, Stripe fake and manager on first use.
func needSuite(t testing.TB) {
	t.Helper()
	suiteOnce.Do(func() { suiteStop, suiteErr = startSuite() })
	if suiteErr != nil {
		t.Fatalf("starting the test control plane: %v", suiteErr)
	}
}

func startSuite() (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	assets, err := envtestbins.Dir()
	if err != nil {
		return nil, err
	}
	testEnv := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		// envtest waits 20 s by default; parallel suites on 2 cores can take longer to start one.
		ControlPlaneStartTimeout: time.Minute,
	}
	cfg, err := testEnv.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest (run `make test`, which builds the control plane into bin/): %w", err)
	}
	stops = append(stops, func() { _ = testEnv.Stop() })
	restConfig = cfg

	fake = stripefake.New(stripefake.WithClock(func() time.Time {
		return time.Now().Add(time.Duration(fakeClockOffset.Load()))
	}), stripefake.WithDeliveryRetries(deliveryRetries))
	stripeURL, err := fake.Start()
	if err != nil {
		return nil, fmt.Errorf("starting Stripe fake: %w", err)
	}
	stops = append(stops, func() { _ = fake.Close() })

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := paymentsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	k8sClient, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, err := startManager(ctx, cfg, scheme, stripeURL, suiteLog)
	if err != nil {
		cancel()
		return nil, err
	}
	stops = append(stops, func() { cancel(); <-done })
	return stop, nil
}

func startManager(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, stripeURL string, log logr.Logger) (<-chan struct{}, error) {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 log,
		Cache:                  CacheOptions(),
	})
	if err != nil {
		return nil, err
	}
	stripeClients = newCrashingClients(stripeclient.NewFactory(stripeclient.Config{
		BaseURL:     stripeURL,
		CallTimeout: 5 * time.Second,
		Logger:      log.WithName("stripe"),
	}))
	testMetrics, err = metrics.New(prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	r := &StripeIntegrationReconciler{
		Client:                  mgr.GetClient(),
		SecretReader:            mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("stripe-operator"),
		Stripe:                  stripeClients,
		Clock:                   clock.RealClock{},
		Metrics:                 testMetrics,
		ResyncPeriod:            testResync,
		MaxConcurrentReconciles: 16,
		RetryBaseDelay:          testRetryBase,
		RetryMaxDelay:           testRetryMax,
		WebhookBaseURL:          testWebhookURL,
		ReceiverImage:           testReceiverImage,
		TransientFailureGrace:   testGrace,
		AnomalyCheckInterval:    testAnomalyInterval,
		PayoutCheckInterval:     testPayoutInterval,
		ReceiverURL: func(si *paymentsv1alpha1.StripeIntegration) string {
			if u, ok := replayTargets.Load(si.Spec.ClinicID); ok {
				return u.(string)
			}
			return "http://127.0.0.1:1/unreachable"
		},
		DeliveryCheckIntervalFor: func(si *paymentsv1alpha1.StripeIntegration) time.Duration {
			if d, ok := deliveryCheckIntervals.Load(si.Spec.ClinicID); ok {
				return d.(time.Duration)
			}
			return 0
		},
		FirstStatusHoldFor: func(si *paymentsv1alpha1.StripeIntegration) time.Duration {
			if d, ok := firstStatusHolds.Load(si.Spec.ClinicID); ok {
				return d.(time.Duration)
			}
			return 0
		},
		deliverySettle: time.Second,
	}
	testReconciler = r
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return nil, err
	}
	if err := (&CredentialsProtectionReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "manager: %v\n", err)
		}
	}()
	return done, nil
}

// syncBuffer collects every log line the manager, controller and Stripe client write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// crashingClients hands out real clients whose CreateWebhookEndpoint can be made to "crash" after
// Stripe created the endpoint: the call reaches Stripe, but the operator never sees the response.
type crashingClients struct {
	inner StripeClients
	mu    sync.Mutex
	lose  map[string]int // secret key → creates whose response is still to be lost
	// flipLivemode makes listed endpoints report the other mode, as a Stripe answer that
	// contradicts the key's mode would (the fake, like Stripe, cannot hold such an endpoint).
	flipLivemode sync.Map // secret key → true
}

func newCrashingClients(inner StripeClients) *crashingClients {
	return &crashingClients{inner: inner, lose: map[string]int{}}
}

func (c *crashingClients) For(key string, mode paymentsv1alpha1.Mode, limiterKey string) stripeclient.Client {
	return &crashingClient{Client: c.inner.For(key, mode, limiterKey), parent: c, key: key}
}

// loseCreates makes the next n successful creates with key look failed to the operator.
func (c *crashingClients) loseCreates(key string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lose[key] = n
}

func (c *crashingClients) take(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lose[key] == 0 {
		return false
	}
	c.lose[key]--
	return true
}

type crashingClient struct {
	stripeclient.Client
	parent *crashingClients
	key    string
}

func (c *crashingClient) ListWebhookEndpoints(ctx context.Context) ([]stripeclient.Endpoint, error) {
	eps, err := c.Client.ListWebhookEndpoints(ctx)
	if _, flip := c.parent.flipLivemode.Load(c.key); flip {
		for i := range eps {
			eps[i].Livemode = !eps[i].Livemode
		}
	}
	return eps, err
}

func (c *crashingClient) CreateWebhookEndpoint(ctx context.Context, spec stripeclient.EndpointSpec,
	idemKey string) (stripeclient.Endpoint, string, error) {
	ep, secret, err := c.Client.CreateWebhookEndpoint(ctx, spec, idemKey)
	if err == nil && c.parent.take(c.key) {
		return stripeclient.Endpoint{}, "", errSimulatedCrash
	}
	return ep, secret, err
}

var errSimulatedCrash = errors.New("simulated crash: Stripe created the endpoint but the response was lost")
