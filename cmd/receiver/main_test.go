package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/clinicpay/stripe-operator/internal/relay/h1"
)

func TestParseFlags(t *testing.T) {
	base := []string{"--clinic-id=clinic-a", "--mode=Test"}
	for name, tc := range map[string]struct {
		args    []string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		"defaults": {args: base, check: func(t *testing.T, o options) {
			if o.signingSecretFile != "/var/run/stripe-webhook/signingSecret" || o.webhookBindAddress != ":8080" ||
				o.opsBindAddress != ":9090" || o.maxBodyBytes != 262144 || o.dedupCapacity != 10000 ||
				o.forwardTimeout != 10*time.Second || o.fhirPatientKey != "patient_id" ||
				o.fhirClaimKey != "claim_id" || o.fhirInvoiceKey != "invoice_id" {
				t.Errorf("defaults = %+v", o)
			}
		}},
		"all flags": {args: append(base, "--signing-secret-file=/s", "--webhook-bind-address=127.0.0.1:1",
			"--ops-bind-address=127.0.0.1:2", "--max-body-bytes=1024", "--dedup-capacity=5", "--forward-timeout=3s",
			"--http-target-url=https://c.example/e", "--http-signing-key-file=/k", "--fhir-base-url=https://f.example/r4",
			"--fhir-token-file=/t", "--fhir-patient-metadata-key=p", "--fhir-claim-metadata-key=c",
			"--fhir-invoice-metadata-key=i"),
			check: func(t *testing.T, o options) {
				if o.maxBodyBytes != 1024 || o.dedupCapacity != 5 || o.forwardTimeout != 3*time.Second ||
					o.httpSigningKeyFile != "/k" || o.fhirTokenFile != "/t" || o.fhirInvoiceKey != "i" {
					t.Errorf("options = %+v", o)
				}
			}},
		"log verbosity": {args: append(base, "--log-verbosity=1"), check: func(t *testing.T, o options) {
			if o.logVerbosity != 1 {
				t.Errorf("logVerbosity = %d", o.logVerbosity)
			}
		}},
		"negative verbosity":      {args: append(base, "--log-verbosity=-1"), wantErr: "--log-verbosity must not be negative"},
		"missing clinic":          {args: []string{"--mode=Live"}, wantErr: "--clinic-id is required"},
		"missing mode":            {args: []string{"--clinic-id=a"}, wantErr: "--mode"},
		"clinic id not a label":   {args: []string{"--clinic-id=Clinic_A", "--mode=Test"}, wantErr: "--clinic-id: clinic ID"},
		"lower-case mode":         {args: []string{"--clinic-id=a", "--mode=test"}, wantErr: "--mode"},
		"zero body cap":           {args: append(base, "--max-body-bytes=0"), wantErr: "must be positive"},
		"negative dedup":          {args: append(base, "--dedup-capacity=-1"), wantErr: "must be positive"},
		"bad duration":            {args: append(base, "--forward-timeout=soon"), wantErr: "invalid value"},
		"unknown flag":            {args: append(base, "--stripe-api-key=sk_live_x"), wantErr: "not defined"},
		"key without url":         {args: append(base, "--http-signing-key-file=/k"), wantErr: "needs --http-target-url"},
		"token without base":      {args: append(base, "--fhir-token-file=/t"), wantErr: "needs --fhir-base-url"},
		"same ports":              {args: append(base, "--ops-bind-address=:8080"), wantErr: "must differ"},
		"empty metadata key":      {args: append(base, "--fhir-claim-metadata-key="), wantErr: "--fhir-claim-metadata-key must not be empty"},
		"positional argument":     {args: append(base, "extra"), wantErr: "unexpected arguments"},
		"several errors reported": {args: []string{"--max-body-bytes=0"}, wantErr: "--clinic-id is required"},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			o, err := parseFlags(tc.args, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error()+out.String(), tc.wantErr) {
					t.Fatalf("err = %v (output %q), want %q", err, out.String(), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

// TestLoggerVerbosity: V(1) lines (one per relayed event) appear only at --log-verbosity=1.
func TestLoggerVerbosity(t *testing.T) {
	for verbosity, want := range map[int]bool{0: false, 1: true} {
		var out bytes.Buffer
		log := newLogger(&out, verbosity)
		log.V(1).Info("Event relayed")
		log.Info("Serving")
		if got := strings.Contains(out.String(), "Event relayed"); got != want || !strings.Contains(out.String(), "Serving") {
			t.Errorf("verbosity %d: output %q", verbosity, out.String())
		}
	}
}

// TestGCPercent: the receiver's default GC percent applies unless GOGC is set.
func TestGCPercent(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	setGCPercent("")
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("without GOGC: GC percent %d, want %d", got, defaultGCPercent)
	}
	setGCPercent("50") // the runtime applied GOGC itself; it must stay
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC: GC percent changed to %d", got)
	}
}

func TestRunExitCodes(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--mode=Live"}, &out); code != 2 || !strings.Contains(out.String(), "--clinic-id is required") {
		t.Errorf("bad flags: exit %d, output %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"--help"}, &out); code != 0 || !strings.Contains(out.String(), "--fhir-base-url") &&
		!strings.Contains(out.String(), "-fhir-base-url") {
		t.Errorf("--help: exit %d, output %q", code, out.String())
	}
	out.Reset()
	// Valid flags, but the HTTP target's key file is missing: a runtime error, exit 1.
	code := run([]string{"--clinic-id=clinic-a", "--mode=Test", "--webhook-bind-address=127.0.0.1:0",
		"--ops-bind-address=127.0.0.1:0", "--http-target-url=https://c.example/e", "--http-signing-key-file=/nonexistent"}, &out)
	if code != 1 || !strings.Contains(out.String(), "signing key file") {
		t.Errorf("missing key file: exit %d, output %q", code, out.String())
	}
}

func TestServeUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "signingSecret")
	if err := os.WriteFile(secret, []byte("whsec_x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"--clinic-id=clinic-a", "--mode=Live", "--signing-secret-file=" + secret,
		"--webhook-bind-address=127.0.0.1:0", "--ops-bind-address=127.0.0.1:0",
		"--http-target-url=http://127.0.0.1:1/events", "--fhir-base-url=http://127.0.0.1:1/fhir", "--fhir-token-file=" + token}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	targets, err := buildTargets(o, logr.Discard())
	if err != nil || len(targets) != 2 || targets[0].Name() != "http" || targets[1].Name() != "fhir" {
		t.Fatalf("targets = %v, %v", targets, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, o, logr.Discard()) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after cancellation")
	}
}

func TestRelayTransportFollowsProxyEnvironment(t *testing.T) {
	for _, env := range []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"} {
		t.Setenv(env, "")
	}
	if _, ok := newHTTPClient("http://sor.clinic.svc:8080/events").Transport.(*h1.Transport); !ok {
		t.Error("no proxy configured: want the h1 transport")
	}
	t.Setenv("HTTPS_PROXY", "http://proxy.corp:3128")
	t.Setenv("NO_PROXY", "sor.clinic.svc")
	if _, ok := newHTTPClient("https://fhir.example.com/r4").Transport.(*http.Transport); !ok {
		t.Error("HTTPS_PROXY set: want net/http's transport, which speaks to proxies")
	}
	if _, ok := newHTTPClient("https://sor.clinic.svc/events").Transport.(*h1.Transport); !ok {
		t.Error("target in NO_PROXY: want the h1 transport")
	}
}
