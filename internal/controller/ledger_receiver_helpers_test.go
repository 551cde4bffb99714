package controller

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
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
	serveReceiver(t, si, secretFile, []relay.Target{ht}, webhookLn, opsLn, logr.Discard())
	replayTargets.Store(si.Spec.ClinicID, "http://"+webhookLn.Addr().String()+"/")
	t.Cleanup(func() { replayTargets.Delete(si.Spec.ClinicID) })
}
