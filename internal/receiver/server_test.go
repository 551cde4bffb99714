package receiver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

func TestOpsEndpoints(t *testing.T) {
	f := newFixture(t, "", []relay.Target{&fakeTarget{name: "http"}})
	ops := f.r.OpsHandler()
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		ops.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if c, _ := get("/healthz"); c != http.StatusOK {
		t.Errorf("healthz = %d", c)
	}
	if c, _ := get("/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("readyz before the secret = %d, want 503", c)
	}
	writeFile(t, f.secretFile, secretOld+"\n")
	_, _ = f.r.secrets.Reload()
	if c, _ := get("/readyz"); c != http.StatusOK {
		t.Errorf("readyz after the secret = %d, want 200", c)
	}
	body := goodBody(t, "evt_ops")
	post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now()))
	c, metrics := get("/metrics")
	if c != http.StatusOK {
		t.Fatalf("metrics = %d", c)
	}
	for _, want := range []string{
		`stripe_receiver_events_total{result="relayed",type="payment_intent.succeeded"} 1`,
		`stripe_receiver_signature_failures_total{cause="bad_signature"} 0`,
		`stripe_receiver_relay_duration_seconds_count{target="http"} 1`,
		`stripe_receiver_duplicates_total 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	assertNoSecrets(t, "metrics", metrics, secretOld)
	f.r.draining.Store(true)
	if c, _ := get("/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("readyz while draining = %d, want 503", c)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	valid := Config{ClinicID: "clinic-a", Mode: ModeLive, SigningSecretFile: "/x"}
	for name, tc := range map[string]struct {
		mutate  func(*Config)
		reg     *prometheus.Registry
		targets []relay.Target
		want    string
	}{
		"clinic id with a slash": {mutate: func(c *Config) { c.ClinicID = "a/b" }, want: "DNS-1123"},
		"empty clinic id":        {mutate: func(c *Config) { c.ClinicID = "" }, want: "DNS-1123"},
		"long clinic id":         {mutate: func(c *Config) { c.ClinicID = strings.Repeat("a", 64) }, want: "DNS-1123"},
		"lower-case mode":        {mutate: func(c *Config) { c.Mode = "test" }, want: "mode"},
		"no secret file":         {mutate: func(c *Config) { c.SigningSecretFile = "" }, want: "signing secret file"},
		"negative body cap":      {mutate: func(c *Config) { c.MaxBodyBytes = -1 }, want: "max body"},
		"negative timeout":       {mutate: func(c *Config) { c.ForwardTimeout = -time.Second }, want: "negative"},
		"no registry":            {reg: nil, want: "registry"},
		"nil target":             {targets: []relay.Target{nil}, want: "nil relay target"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := valid
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			reg := tc.reg
			if reg == nil && name != "no registry" {
				reg = prometheus.NewRegistry()
			}
			_, err := New(cfg, tc.targets, logr.Discard(), reg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	reg := prometheus.NewRegistry()
	if _, err := New(valid, nil, logr.Discard(), reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(valid, nil, logr.Discard(), reg); err == nil {
		t.Error("registering the metrics twice on one registry succeeded")
	}
}

func TestServeDrainsInFlightDeliveries(t *testing.T) {
	gate := make(chan struct{})
	target := &fakeTarget{name: "slow", gate: gate}
	f := newFixture(t, secretOld, []relay.Target{target})
	webhookLn, opsLn := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.r.Serve(ctx, webhookLn, opsLn) }()

	body := goodBody(t, "evt_inflight")
	req, err := http.NewRequest(http.MethodPost, "http://"+webhookLn.Addr().String()+testPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Stripe-Signature", sign(body, secretOld, time.Now()))
	answered := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		answered <- resp.StatusCode
	}()
	eventually(t, "the relay to start", func() bool { return len(target.calls()) == 1 })
	cancel() // SIGTERM while the relay is in flight
	eventually(t, "draining to start", f.r.draining.Load)
	close(gate)
	if code := <-answered; code != http.StatusOK {
		t.Errorf("in-flight delivery answered %d, want 200", code)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	if _, err := net.Dial("tcp", webhookLn.Addr().String()); err == nil {
		t.Error("webhook port still accepts connections after shutdown")
	}
}

func TestRunReportsListenErrors(t *testing.T) {
	taken := listen(t)
	f := newFixture(t, secretOld, nil, func(c *Config) {
		c.WebhookBindAddress = taken.Addr().String()
		c.OpsBindAddress = "127.0.0.1:0"
	})
	err := f.r.Run(context.Background())
	var opErr *net.OpError
	if !errors.As(err, &opErr) || !strings.Contains(err.Error(), "listening for webhooks") {
		t.Errorf("Run = %v, want a listen error", err)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}
