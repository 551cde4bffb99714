// Command manager runs the stripe-operator controller manager.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/controller"
	"github.com/clinicpay/stripe-operator/internal/logcap"
	"github.com/clinicpay/stripe-operator/internal/metrics"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// version is set at build time (-ldflags -X main.version=…); the default receiver image is the
// operator's own image of the same version, which also contains /receiver.
var version = "dev"

type options struct {
	metricsAddr, probeAddr string
	secureMetrics          bool
	enableHTTP2            bool
	leaderElect            bool
	stripeAPIURL           string
	stripeCallTimeout      time.Duration
	resyncPeriod           time.Duration
	maxConcurrent          int
	webhookBaseURL         string
	ingressAllowlist       string
	receiverImage          string
	pprofAddr              string
	leaderElectionNS       string
	watchNamespaces        string
	// Label selectors of the receivers' NetworkPolicy peers (see controller.ReceiverTraffic).
	webhookFromNamespaces, webhookFromPods string
	metricsFromNamespaces, metricsFromPods string
	managerPodSelector                     string
	transientGrace                         time.Duration
	firstStatusHold                        time.Duration
	payoutCheckInterval                    time.Duration
	anomalyCheckInterval                   time.Duration
	// Leader election timing (client-go's leaderelection.LeaderElectionConfig).
	leaseDuration, renewDeadline, retryPeriod time.Duration
	deliveryCheckInterval                     time.Duration
}

// defaultTransientGrace outlasts a burst of 429s and most Stripe incidents (minutes) while it is
// still shorter than a typical 30 min alerting window; events keep flowing meanwhile, since the
// receivers need no Stripe API call and Stripe retries deliveries for days.
const defaultTransientGrace = 15 * time.Minute

// defaultGCPercent trades a little of the manager's mostly idle CPU for memory: with Go's default of
// 100 the heap of 1,000 integrations grows to about twice its live size between collections
// (docs/benchmarks.md: peak RSS 174 MiB at 100, 134 MiB at 50). GOGC in the environment wins.
const defaultGCPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	memLimit, memLimited := applyContainerMemoryLimit("/sys/fs/cgroup")
	var o options
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", "0",
		"Address the metrics endpoint binds to, e.g. :8443 (https) or :8080 (http); 0 disables it.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the health probe endpoint binds to.")
	flag.BoolVar(&o.leaderElect, "leader-elect", false, "Enable leader election so that only one manager is active.")
	flag.StringVar(&o.leaderElectionNS, "leader-election-namespace", "",
		"Namespace of the leader election lease; defaults to the manager's own namespace in a cluster (required outside one).")
	flag.DurationVar(&o.leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long the other managers wait after the last renewal before taking the lease over (the failover time when a leader dies).")
	flag.DurationVar(&o.renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader keeps trying to renew before it gives the lease up and exits; shorter than the lease duration.")
	flag.DurationVar(&o.retryPeriod, "leader-election-retry-period", 2*time.Second,
		"How often managers try to acquire or renew the lease; shorter than the renew deadline.")
	flag.BoolVar(&o.secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS behind Kubernetes authn/authz.")
	flag.BoolVar(&o.enableHTTP2, "enable-http2", false, "Enable HTTP/2 for the metrics server (off by default: CVE-2023-44487/39325).")
	flag.StringVar(&o.stripeAPIURL, "stripe-api-url", "https://api.stripe.com", "Base URL of the Stripe API (a fake or stripe-mock in tests).")
	flag.DurationVar(&o.stripeCallTimeout, "stripe-call-timeout", 10*time.Second, "Timeout of one Stripe API call.")
	flag.DurationVar(&o.resyncPeriod, "resync-period", 10*time.Minute, "Base period between Stripe probes of an unchanged integration (jittered ±10%).")
	flag.StringVar(&o.webhookBaseURL, "webhook-base-url", "",
		"Public base URL of the receivers; endpoints become <base>/stripe/webhook/<clinicID> (Live) or <base>/stripe/webhook-test/<clinicID> (Test) "+
			"unless spec.webhook says otherwise.")
	flag.StringVar(&o.ingressAllowlist, "ingress-annotation-allowlist", strings.Join(controller.DefaultIngressAnnotationAllowlist, ","),
		"Comma-separated annotation keys (a trailing * allows a prefix) that spec.webhook.ingress.annotations may set; an empty value allows none.")
	flag.StringVar(&o.receiverImage, "receiver-image", "ghcr.io/clinicpay/stripe-operator:"+version,
		"Image of the per-clinic webhook receivers (runs /receiver); defaults to the operator's own image.")
	flag.IntVar(&o.maxConcurrent, "max-concurrent-reconciles", 32,
		"StripeIntegrations reconciled in parallel (passes mostly wait on the apiserver and Stripe; see docs/benchmarks.md).")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "0",
		"Address of the net/http/pprof endpoint, e.g. 127.0.0.1:6060; 0 disables it. Keep it on loopback.")
	flag.StringVar(&o.watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces whose StripeIntegrations the manager reconciles (and the only ones it caches); empty watches all. Pair it with a "+
			"namespace-scoped install (config/namespaced, or the chart's watchNamespaces).")
	flag.StringVar(&o.webhookFromNamespaces, "receiver-webhook-from-namespaces", "",
		"Label selector of the namespaces whose pods (see --receiver-webhook-from-pods) may reach the receivers' webhook port, e.g. "+
			"kubernetes.io/metadata.name=ingress-nginx. With --receiver-webhook-from-pods also empty, any source may (the default: the operator cannot "+
			"guess your ingress controller).")
	flag.StringVar(&o.webhookFromPods, "receiver-webhook-from-pods", "",
		"Label selector of the pods (in the namespaces of --receiver-webhook-from-namespaces, or in any namespace when that is empty) that may reach "+
			"the receivers' webhook port, e.g. app.kubernetes.io/name=ingress-nginx.")
	flag.StringVar(&o.metricsFromNamespaces, "receiver-metrics-from-namespaces", controller.DefaultMetricsFromNamespaces,
		"Label selector of the namespaces whose pods may scrape the receivers' metrics port.")
	flag.StringVar(&o.metricsFromPods, "receiver-metrics-from-pods", "",
		"Label selector of the pods, in the namespaces of --receiver-metrics-from-namespaces, that may scrape the receivers' metrics port; empty admits "+
			"every pod there.")
	flag.StringVar(&o.managerPodSelector, "manager-pod-selector", "",
		"Label selector of the manager's own pods, which re-deliver replays to the receivers' webhook port when that port is restricted; empty admits "+
			"every pod of the manager's namespace.")
	flag.DurationVar(&o.transientGrace, "transient-failure-grace", defaultTransientGrace,
		"How long transient Stripe failures (429, 5xx, timeouts) of a connected integration leave it Connected, without a Warning Event, before they "+
			"are reported; 0 reports the first one.")
	flag.DurationVar(&o.firstStatusHold, "first-status-hold", controller.DefaultFirstStatusHold,
		"How long a new integration's first status may wait for its receiver to become available when nothing else is amiss, so that it is "+
			"written once, Connected, instead of ReceiverProgressing and then Connected; 0 writes it at once.")
	flag.DurationVar(&o.payoutCheckInterval, "payout-check-interval", controller.DefaultPayoutCheckInterval,
		"Base period between payout checks of an integration with spec.finance.payouts.enabled (jittered ±10%); each costs at least one Stripe call.")
	flag.DurationVar(&o.anomalyCheckInterval, "anomaly-check-interval", controller.DefaultAnomalyCheckInterval,
		"Base period between anomaly checks of an integration with spec.finance.anomalies.enabled (jittered ±10%); each lists the events "+
			"created since the last one.")
	flag.DurationVar(&o.deliveryCheckInterval, "delivery-check-interval", 30*time.Minute,
		"Base period (jittered ±10%) of the delivery check of a connected integration (the DeliveriesArriving condition): a signed probe through "+
			"its public URL and one Stripe call; 0 turns the check off.")
	zapOpts := zap.Options{Development: false}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(logcap.Cap(zap.New(zap.UseFlagOptions(&zapOpts)), logcap.MaxVerbosity))
	if memLimited {
		ctrl.Log.WithName("setup").Info("Go memory limit set from the container's", "bytes", memLimit, "share", memoryLimitShare)
	}

	if err := run(o); err != nil {
		ctrl.Log.WithName("setup").Error(err, "Manager exited with an error")
		os.Exit(1)
	}
}

// checkLeaderElection refuses timings client-go's leader election would refuse later, with the
// flags' names: lease > renew deadline > retry period (client-go also wants the renew deadline
// above 1.2 retry periods, its jitter), all positive.
func checkLeaderElection(o options) error {
	switch {
	case o.leaseDuration <= 0 || o.renewDeadline <= 0 || o.retryPeriod <= 0:
		return fmt.Errorf("--leader-election-lease-duration, --leader-election-renew-deadline and --leader-election-retry-period "+
			"must be positive, got %s, %s, %s", o.leaseDuration, o.renewDeadline, o.retryPeriod)
	case o.leaseDuration <= o.renewDeadline:
		return fmt.Errorf("--leader-election-lease-duration (%s) must be longer than --leader-election-renew-deadline (%s)",
			o.leaseDuration, o.renewDeadline)
	case float64(o.renewDeadline) <= 1.2*float64(o.retryPeriod):
		return fmt.Errorf("--leader-election-renew-deadline (%s) must be longer than 1.2 × --leader-election-retry-period (%s)",
			o.renewDeadline, o.retryPeriod)
	}
	return nil
}

func run(o options) error {
	log := ctrl.Log.WithName("setup")
	// Bad flags stop the manager here, before it connects to anything.
	watched, err := parseWatchNamespaces(o.watchNamespaces)
	if err != nil {
		return err
	}
	traffic, err := receiverTraffic(o, inClusterNamespace())
	if err != nil {
		return err
	}
	if traffic.ManagerNamespace == "" && (traffic.WebhookFromNamespaces != nil || traffic.WebhookFromPods != nil) {
		// Outside a cluster the manager's own pods cannot be named; in one, replays would be refused.
		log.Info("Manager namespace unknown: receivers admit replays only from the webhook source")
	}
	if o.deliveryCheckInterval < 0 {
		return fmt.Errorf("--delivery-check-interval must not be negative, got %s", o.deliveryCheckInterval)
	}
	if o.firstStatusHold < 0 {
		return fmt.Errorf("--first-status-hold must not be negative, got %s", o.firstStatusHold)
	}
	if o.transientGrace < 0 {
		return fmt.Errorf("--transient-failure-grace must not be negative, got %s", o.transientGrace)
	}
	if o.payoutCheckInterval <= 0 {
		return fmt.Errorf("--payout-check-interval must be positive, got %s", o.payoutCheckInterval)
	}
	if o.anomalyCheckInterval <= 0 {
		return fmt.Errorf("--anomaly-check-interval must be positive, got %s", o.anomalyCheckInterval)
	}
	if err := checkLeaderElection(o); err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(paymentsv1alpha1.AddToScheme(scheme))

	var tlsOpts []func(*tls.Config)
	if !o.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: o.metricsAddr, SecureServing: o.secureMetrics, TLSOpts: tlsOpts}
	if o.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "stripe-operator.payments.clinicpay.dev",
		LeaderElectionNamespace: o.leaderElectionNS,
		LeaseDuration:           &o.leaseDuration,
		RenewDeadline:           &o.renewDeadline,
		RetryPeriod:             &o.retryPeriod,
		// The process exits right after the manager stops, so hand the lease over at once.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cacheOptions(watched),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	m, err := metrics.New(crmetrics.Registry)
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	factory := stripeclient.NewFactory(stripeclient.Config{
		BaseURL:     o.stripeAPIURL,
		HTTPClient:  &http.Client{Timeout: o.stripeCallTimeout + 5*time.Second},
		CallTimeout: o.stripeCallTimeout,
		Logger:      ctrl.Log.WithName("stripe"),
	})
	ctx := ctrl.SetupSignalHandler()
	r := &controller.StripeIntegrationReconciler{
		Client:                  mgr.GetClient(),
		SecretReader:            mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("stripe-operator"),
		Stripe:                  factory,
		Clock:                   clock.RealClock{},
		Metrics:                 m,
		ResyncPeriod:            o.resyncPeriod,
		MaxConcurrentReconciles: o.maxConcurrent,
		WebhookBaseURL:          o.webhookBaseURL,
		ReceiverImage:           o.receiverImage,
		ReceiverTraffic:         traffic,
		// Never nil, so an empty flag allows no annotation rather than the defaults.
		IngressAnnotationAllowlist: splitList(o.ingressAllowlist),
		TransientFailureGrace:      o.transientGrace,
		FirstStatusHold:            o.firstStatusHold,
		PayoutCheckInterval:        o.payoutCheckInterval,
		AnomalyCheckInterval:       o.anomalyCheckInterval,
		DeliveryCheckInterval:      deliveryCheckInterval(o.deliveryCheckInterval),
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return fmt.Errorf("setting up controller: %w", err)
	}
	// After r: it uses the field index r registers.
	protection := &controller.CredentialsProtectionReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()}
	if err := protection.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up credentials protection: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding ready check: %w", err)
	}
	log.Info("Starting manager", "stripeAPIURL", o.stripeAPIURL, "resyncPeriod", o.resyncPeriod, "watchNamespaces", o.watchNamespaces,
		"transientFailureGrace", o.transientGrace)
	return mgr.Start(ctx)
}

// deliveryCheckInterval maps --delivery-check-interval to the reconciler's field: 0 (off) is
// negative there, where 0 means the default.
func deliveryCheckInterval(flagValue time.Duration) time.Duration {
	if flagValue == 0 {
		return -1
	}
	return flagValue
}
