// Command receiver is one clinic's Stripe webhook receiver: it verifies Stripe's deliveries with
// the clinic's signing secret and relays them to the clinic's systems of record (plain HTTP
// and/or FHIR R4). The operator runs one Deployment of it per StripeIntegration.
//
// It holds no Stripe API key, writes nothing to disk (it runs with a read-only root file
// system, as any user) and logs JSON to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/http/httpproxy"

	"github.com/clinicpay/stripe-operator/internal/receiver"
	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/relay/fhirrelay"
	"github.com/clinicpay/stripe-operator/internal/relay/h1"
	"github.com/clinicpay/stripe-operator/internal/relay/httprelay"
)

// options are the command-line flags; the operator's Deployment passes them.
type options struct {
	clinicID           string
	mode               string
	signingSecretFile  string
	webhookBindAddress string
	opsBindAddress     string
	maxBodyBytes       int64
	dedupCapacity      int
	forwardTimeout     time.Duration
	logVerbosity       int

	httpTargetURL      string
	httpSigningKeyFile string

	fhirBaseURL                                  string
	fhirTokenFile                                string
	fhirPatientKey, fhirClaimKey, fhirInvoiceKey string
}

// defaultGCPercent trades a few MiB of heap for garbage-collection work: the receiver's live heap
// is a few MiB (mostly the dedup memory), and at the default of 100 the collector took about 12%
// of its CPU at saturation, since each event allocates about 25 KiB that dies with its request.
// GOGC in the environment wins.
const defaultGCPercent = 200

func main() {
	setGCPercent(os.Getenv("GOGC"))
	os.Exit(run(os.Args[1:], os.Stderr))
}

// setGCPercent applies defaultGCPercent unless gogc (the GOGC environment variable, which the
// runtime has applied already) is set.
func setGCPercent(gogc string) {
	if gogc == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// run returns the exit code: 0 after a clean shutdown, 1 on a runtime failure, 2 on bad flags.
func run(args []string, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "receiver: %v\n", err)
		return 2
	}
	log := newLogger(stderr, o.logVerbosity).WithName("receiver").WithValues("clinicID", o.clinicID)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, o, log); err != nil {
		log.Error(err, "Receiver exited with an error")
		return 1
	}
	log.Info("Receiver stopped")
	return 0
}

func serve(ctx context.Context, o options, log logr.Logger) error {
	mode, err := receiver.ParseMode(o.mode)
	if err != nil {
		return err
	}
	targets, err := buildTargets(o, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering runtime metrics: %w", err)
		}
	}
	rcv, err := receiver.New(receiver.Config{
		ClinicID:           o.clinicID,
		Mode:               mode,
		SigningSecretFile:  o.signingSecretFile,
		WebhookBindAddress: o.webhookBindAddress,
		OpsBindAddress:     o.opsBindAddress,
		MaxBodyBytes:       o.maxBodyBytes,
		DedupCapacity:      o.dedupCapacity,
		ForwardTimeout:     o.forwardTimeout,
	}, targets, log, reg)
	if err != nil {
		return err
	}
	return rcv.Run(ctx)
}

func parseFlags(args []string, output io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&o.clinicID, "clinic-id", "",
		"Clinic served; Stripe posts to /stripe/webhook/<clinic-id> in Live mode and /stripe/webhook-test/<clinic-id> in Test mode (which also serves "+
			"the former /stripe/webhook/<clinic-id> while endpoints move). Required.")
	fs.StringVar(&o.mode, "mode", "", "Stripe mode of accepted events: Test or Live. Required.")
	fs.StringVar(&o.signingSecretFile, "signing-secret-file", "/var/run/stripe-webhook/signingSecret",
		"File holding the endpoint's whsec_ signing secret (several lines while a secret is rolled); re-read when it changes.")
	fs.StringVar(&o.webhookBindAddress, "webhook-bind-address", ":8080", "Address serving Stripe's webhook deliveries.")
	fs.StringVar(&o.opsBindAddress, "ops-bind-address", ":9090", "Address serving /metrics, /healthz and /readyz.")
	fs.Int64Var(&o.maxBodyBytes, "max-body-bytes", receiver.DefaultMaxBodyBytes, "Largest accepted webhook body; larger ones get 413.")
	fs.IntVar(&o.dedupCapacity, "dedup-capacity", receiver.DefaultDedupCapacity, "Relayed event ids remembered per replica to drop duplicates.")
	fs.DurationVar(&o.forwardTimeout, "forward-timeout", receiver.DefaultForwardTimeout, "Timeout of one system of record's delivery.")
	fs.IntVar(&o.logVerbosity, "log-verbosity", 0, "Log verbosity; 1 adds a line per relayed event and per duplicate.")
	fs.StringVar(&o.httpTargetURL, "http-target-url", "", "Clinic HTTP endpoint receiving signed JSON envelopes; empty disables the HTTP target.")
	fs.StringVar(&o.httpSigningKeyFile, "http-signing-key-file", "",
		"File holding the HMAC key for the Clinicpay-Signature header; empty sends no signature.")
	fs.StringVar(&o.fhirBaseURL, "fhir-base-url", "", "FHIR R4 base URL of the clinic; empty disables the FHIR target.")
	fs.StringVar(&o.fhirTokenFile, "fhir-token-file", "", "File holding the FHIR server's bearer token; empty sends none.")
	fs.StringVar(&o.fhirPatientKey, "fhir-patient-metadata-key", "patient_id", "Stripe metadata key holding the FHIR Patient id.")
	fs.StringVar(&o.fhirClaimKey, "fhir-claim-metadata-key", "claim_id", "Stripe metadata key holding the FHIR Claim id.")
	fs.StringVar(&o.fhirInvoiceKey, "fhir-invoice-metadata-key", "invoice_id", "Stripe metadata key holding the FHIR Invoice id.")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	return o, o.validate(fs.Args())
}

// validate reports every flag problem at once; Config.Validate repeats some checks, but the
// messages here name the flags.
func (o options) validate(extra []string) error {
	var errs []error
	if len(extra) > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", extra))
	}
	if o.clinicID == "" {
		errs = append(errs, errors.New("--clinic-id is required"))
	} else if err := receiver.ValidateClinicID(o.clinicID); err != nil {
		errs = append(errs, fmt.Errorf("--clinic-id: %w", err))
	}
	if _, err := receiver.ParseMode(o.mode); err != nil {
		errs = append(errs, fmt.Errorf("--mode: %w", err))
	}
	for _, f := range []struct{ name, value string }{
		{"--signing-secret-file", o.signingSecretFile},
		{"--webhook-bind-address", o.webhookBindAddress},
		{"--ops-bind-address", o.opsBindAddress},
		{"--fhir-patient-metadata-key", o.fhirPatientKey},
		{"--fhir-claim-metadata-key", o.fhirClaimKey},
		{"--fhir-invoice-metadata-key", o.fhirInvoiceKey},
	} {
		if strings.TrimSpace(f.value) == "" {
			errs = append(errs, fmt.Errorf("%s must not be empty", f.name))
		}
	}
	if o.logVerbosity < 0 {
		errs = append(errs, errors.New("--log-verbosity must not be negative"))
	}
	if o.maxBodyBytes <= 0 || o.dedupCapacity <= 0 || o.forwardTimeout <= 0 {
		errs = append(errs, errors.New("--max-body-bytes, --dedup-capacity and --forward-timeout must be positive"))
	}
	if o.httpSigningKeyFile != "" && o.httpTargetURL == "" {
		errs = append(errs, errors.New("--http-signing-key-file needs --http-target-url"))
	}
	if o.fhirTokenFile != "" && o.fhirBaseURL == "" {
		errs = append(errs, errors.New("--fhir-token-file needs --fhir-base-url"))
	}
	if o.webhookBindAddress == o.opsBindAddress && !strings.HasSuffix(o.webhookBindAddress, ":0") {
		errs = append(errs, errors.New("--webhook-bind-address and --ops-bind-address must differ"))
	}
	return errors.Join(errs...)
}

// buildTargets creates the configured systems of record; none is valid (events are verified
// and acknowledged only). log reports their key and token files.
func buildTargets(o options, log logr.Logger) ([]relay.Target, error) {
	var targets []relay.Target
	if o.httpTargetURL != "" {
		t, err := httprelay.New(httprelay.Config{
			URL:            o.httpTargetURL,
			SigningKeyFile: o.httpSigningKeyFile,
			Timeout:        o.forwardTimeout,
			HTTPClient:     newHTTPClient(o.httpTargetURL),
			Log:            log.WithValues("target", "http"),
		})
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	if o.fhirBaseURL != "" {
		t, err := fhirTarget(o, log.WithValues("target", "fhir"))
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// fhirTarget wires the FHIR R4 system of record (internal/relay/fhirrelay).
func fhirTarget(o options, log logr.Logger) (relay.Target, error) {
	t, err := fhirrelay.New(fhirrelay.Config{
		BaseURL:            o.fhirBaseURL,
		TokenFile:          o.fhirTokenFile,
		PatientMetadataKey: o.fhirPatientKey,
		ClaimMetadataKey:   o.fhirClaimKey,
		InvoiceMetadataKey: o.fhirInvoiceKey,
		Timeout:            o.forwardTimeout,
		HTTPClient:         newHTTPClient(o.fhirBaseURL),
		Log:                log,
	})
	if err != nil {
		return nil, fmt.Errorf("fhir target: %w", err)
	}
	return t, nil
}

// relayConns is how many connections a target opens to its system of record at most, and keeps
// idle. Each delivery in flight holds one; one that finds every connection busy waits for the
// next to come free (its forward timeout still runs). Unbounded, the transport dialed a new
// connection for every delivery that found none idle and closed it after that one request when
// more than its idle pool were open: with 16 kept, any burst of more than 16 deliveries in
// flight (a few milliseconds' stall at a few thousand events/s) turned into a TCP connect and
// close per event for as long as it lasted (12647 connections to the sink for 18000 events at
// 3000/s in the bench's open loop), each costing the receiver more CPU than the relay itself,
// so the receiver fell further behind. 64 deliveries in flight are 320 events/s to an endpoint
// answering in 200 ms; idle connections still close after 90 s unused.
const relayConns = 64

// newHTTPClient returns a client with its own transport for the system of record at target,
// so the targets share no connection pool state with each other or with anything else in the
// process. The transport is h1's, which sends each request and reads its answer on the
// delivering goroutine; when HTTP_PROXY, HTTPS_PROXY or NO_PROXY route target through a proxy,
// it is net/http's, which speaks to proxies.
func newHTTPClient(target string) *http.Client {
	if u, err := url.Parse(target); err == nil {
		// What http.ProxyFromEnvironment decides, read afresh (it reads the environment once
		// per process).
		if proxy, err := httpproxy.FromEnvironment().ProxyFunc()(u); err != nil || proxy == nil {
			return &http.Client{Transport: h1.New(h1.Config{MaxConns: relayConns})}
		}
	}
	tr := &http.Transport{}
	if def, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = def.Clone()
	}
	tr.MaxConnsPerHost = relayConns
	tr.MaxIdleConns = relayConns // the transport serves one host: the target's
	tr.MaxIdleConnsPerHost = relayConns
	return &http.Client{Transport: tr}
}

// newLogger logs JSON lines to w up to verbosity; the lock keeps concurrent lines whole.
func newLogger(w io.Writer, verbosity int) logr.Logger {
	var mu sync.Mutex
	return funcr.NewJSON(func(obj string) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = fmt.Fprintln(w, obj)
	}, funcr.Options{LogTimestamp: true, TimestampFormat: time.RFC3339Nano, LogCaller: funcr.None,
		Verbosity: verbosity})
}
