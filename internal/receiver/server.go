package receiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/secretfile"
)

// Webhook path prefixes, followed by the clinic ID: one per mode, so that a clinic's Test and Live
// endpoints never share a URL or an Ingress rule. The operator registers the same paths.
const (
	LiveWebhookPathPrefix = "/stripe/webhook/"
	TestWebhookPathPrefix = "/stripe/webhook-test/"
)

// WebhookPath is the path Stripe posts to for a clinic in mode.
func WebhookPath(mode Mode, clinicID string) string {
	if mode == ModeLive {
		return LiveWebhookPathPrefix + clinicID
	}
	return TestWebhookPathPrefix + clinicID
}

// legacyWebhookPath is where Test endpoints pointed before each mode had its own path. It stays
// served until the operator has moved every endpoint (its drift repair does so on its first pass);
// a delivery there is verified like any other, so it accepts nothing the new path would not.
func legacyWebhookPath(mode Mode, clinicID string) string {
	if mode == ModeLive {
		return ""
	}
	return LiveWebhookPathPrefix + clinicID
}

// Receiver is one clinic's webhook receiver. Its handlers are safe for concurrent use.
type Receiver struct {
	cfg      Config
	path     string
	legacy   string // also served during the upgrade window; "" when none
	targets  []relay.Target
	log      logr.Logger
	metrics  *metrics
	gatherer prometheus.Gatherer
	secrets  *secretfile.File[[]string]
	dedup    *dedup
	bodies   bodyPool
	// ledgerSlots bounds the ledger messages in progress (serveLedger).
	ledgerSlots chan struct{}
	// draining turns /readyz to 503 once shutdown starts, so Services stop sending traffic.
	draining atomic.Bool
}

// New validates cfg, registers the receiver's metrics on reg and makes a first attempt to load
// the signing secret; a missing secret is not an error (the receiver stays unready until it
// appears), an invalid Config is.
func New(cfg Config, targets []relay.Target, log logr.Logger, reg *prometheus.Registry) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid receiver configuration: %w", err)
	}
	if reg == nil {
		return nil, errors.New("invalid receiver configuration: a metrics registry is required")
	}
	cfg = cfg.withDefaults()
	names := make([]string, 0, len(targets))
	for _, t := range targets {
		if t == nil {
			return nil, errors.New("invalid receiver configuration: nil relay target")
		}
		names = append(names, t.Name())
	}
	if len(targets) > maxTargets {
		return nil, fmt.Errorf("invalid receiver configuration: %d relay targets, at most %d", len(targets), maxTargets)
	}
	m, err := newMetrics(reg, names)
	if err != nil {
		return nil, err
	}
	r := &Receiver{
		cfg:      cfg,
		path:     WebhookPath(cfg.Mode, cfg.ClinicID),
		legacy:   legacyWebhookPath(cfg.Mode, cfg.ClinicID),
		targets:  targets,
		log:      log,
		metrics:  m,
		gatherer: reg,
		secrets:  newSecretStore(cfg.SigningSecretFile, cfg.SecretCheckInterval, log, m),
		dedup:    newDedup(cfg.DedupCapacity, len(targets)),

		ledgerSlots: make(chan struct{}, ledgerSlots),
	}
	_, _ = r.secrets.Reload() // a missing file is logged; /readyz says 503 until it appears
	return r, nil
}

// WebhookHandler serves Stripe's deliveries, and the operator's ledger messages under
// ledger.PathPrefix; mount it at the root of the webhook port.
func (r *Receiver) WebhookHandler() http.Handler {
	return http.HandlerFunc(r.serveWebhook)
}

// OpsHandler serves /metrics, /healthz and /readyz for the ops port.
func (r *Receiver) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, "ok", "running")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case r.draining.Load():
			writeJSON(w, http.StatusServiceUnavailable, "draining", "shutting down")
		case !r.Ready():
			writeJSON(w, http.StatusServiceUnavailable, "not_ready", "signing secret not loaded")
		default:
			writeJSON(w, http.StatusOK, "ok", "ready")
		}
	})
	return mux
}

// Ready reports whether a non-empty signing secret is loaded, checking the file if due.
func (r *Receiver) Ready() bool {
	return len(r.secrets.Current()) > 0
}

// Run listens on the configured addresses and serves until ctx ends, then shuts down gracefully.
func (r *Receiver) Run(ctx context.Context) error {
	var lc net.ListenConfig
	webhookLn, err := lc.Listen(ctx, "tcp", r.cfg.WebhookBindAddress)
	if err != nil {
		return fmt.Errorf("listening for webhooks on %q: %w", r.cfg.WebhookBindAddress, err)
	}
	opsLn, err := lc.Listen(ctx, "tcp", r.cfg.OpsBindAddress)
	if err != nil {
		_ = webhookLn.Close()
		return fmt.Errorf("listening for ops on %q: %w", r.cfg.OpsBindAddress, err)
	}
	return r.Serve(ctx, webhookLn, opsLn)
}

// Serve serves on the given listeners until ctx ends or a server fails. On the way out it turns
// /readyz to 503, stops accepting webhooks and waits, up to Config.ShutdownTimeout, for
// in-flight deliveries to finish relaying, then stops the ops server.
func (r *Receiver) Serve(ctx context.Context, webhookLn, opsLn net.Listener) error {
	webhookSrv := &http.Server{
		Handler:           r.WebhookHandler(),
		ReadHeaderTimeout: r.cfg.ReadHeaderTimeout,
		ReadTimeout:       r.cfg.ReadTimeout,
		// Room for the relay: Stripe's answer is written after every target accepted.
		WriteTimeout:   r.cfg.ForwardTimeout + 30*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	opsSrv := &http.Server{Handler: r.OpsHandler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 2)
	go func() { errc <- serve(webhookSrv, webhookLn, "webhook") }()
	go func() { errc <- serve(opsSrv, opsLn, "ops") }()
	r.log.Info("Serving", "webhookAddress", webhookLn.Addr().String(), "opsAddress", opsLn.Addr().String(), "path", r.path, "legacyPath", r.legacy)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	r.draining.Store(true)
	r.log.Info("Shutting down; finishing in-flight deliveries", "timeout", r.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ShutdownTimeout)
	defer cancel()
	shutdownErr := webhookSrv.Shutdown(sctx)
	if shutdownErr != nil {
		_ = webhookSrv.Close()
		shutdownErr = fmt.Errorf("webhook server did not drain in %s: %w", r.cfg.ShutdownTimeout, shutdownErr)
	}
	if err := opsSrv.Shutdown(sctx); err != nil {
		_ = opsSrv.Close()
	}
	return errors.Join(serveErr, shutdownErr)
}

func serve(srv *http.Server, ln net.Listener, name string) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s server: %w", name, err)
	}
	return nil
}
