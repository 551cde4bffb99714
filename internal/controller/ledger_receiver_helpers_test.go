package controller

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/receiver"
	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/relay/httprelay"
)

// startLedgerReceiver runs the real receiver for si in-process, with its stored signing secret,
// relaying to an HTTP system of record served by sink, and points the operator's ledger
// messages (and replays) for si's clinic at it.
func startLedgerReceiver(t *testing.T, si *v1.StripeIntegration, sink http.Handler) {
	t.Helper()
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	ht, err := httprelay.New(httprelay.Config{URL: srv.URL, Timeout: 5 * time.Second})
	must(t, err)
	secretFile := filepath.Join(t.TempDir(), v1.SigningSecretKey)
	must(t, os.WriteFile(secretFile, signingSecret(t, si).Data[v1.SigningSecretKey], 0o600))
	webhookLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	mode, err := receiver.ParseMode(string(si.Spec.Mode))
	must(t, err)
	rcv, err := receiver.New(receiver.Config{ClinicID: si.Spec.ClinicID, Mode: mode, SigningSecretFile: secretFile,
		WebhookBindAddress: webhookLn.Addr().String(), OpsBindAddress: opsLn.Addr().String()},
		[]relay.Target{ht}, logr.Discard(), prometheus.NewRegistry())
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rcv.Serve(ctx, webhookLn, opsLn)
	}()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, waitShort, "receiver ready", func() (bool, string) { return rcv.Ready(), "not ready" })
	replayTargets.Store(si.Spec.ClinicID, "http://"+webhookLn.Addr().String()+"/")
	t.Cleanup(func() { replayTargets.Delete(si.Spec.ClinicID) })
}
