package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/envtestbins"
	"github.com/clinicpay/stripe-operator/test/stripefake"
	"github.com/clinicpay/stripe-operator/test/testbin"
	"github.com/clinicpay/stripe-operator/test/testenv"
)

// Sentinel personal data, as a clinic's customers put it into Stripe.
const (
	sentinelName  = "Plokmijn Sentinelcustomer"
	sentinelEmail = "plokmijn.sentinel@patients.example"
)

// TestManagerLogsNoPersonalData runs the real manager binary at its most verbose setting
// (--zap-log-level=10) against envtest and the Stripe fake, connects a clinic, replays events whose
// customers carry sentinel personal data, and finds neither the data nor the clinic's key or
// signing secret in the manager's output.
func TestManagerLogsNoPersonalData(t *testing.T) {
	ctrllog.SetLogger(logr.Discard())
	start := time.Now()
	bin := buildManager(t)
	t.Logf("manager built in %s", time.Since(start).Round(time.Second))
	cfg, c, cfgUser := startControlPlane(t)
	fake := stripefake.New(stripefake.AcceptAnyKey())
	fakeURL, err := fake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	markReceiversAvailable(ctx, t, cfg, c)

	logPath := filepath.Join(t.TempDir(), "manager.log")
	mgr, err := testenv.StartManager(ctx, testenv.ManagerOptions{
		Bin: bin, Kubeconfig: cfgUser, StripeURL: fakeURL, LogPath: logPath, Resync: time.Minute,
		ExtraArgs: []string{"--webhook-base-url=https://hooks.quiet.example", "--zap-log-level=10"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Stop() })

	const ns, name = "clinics", "clinic-quiet"
	secretKey := "sk_test_" + strings.Repeat("QUIETKEY", 4) // any 16-byte column of a hex dump shows it whole
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "keys"},
		Data: map[string][]byte{"publishableKey": []byte("pk_test_" + strings.Repeat("QUIETPUB", 4)), "secretKey": []byte(secretKey)}}))
	must(t, c.Create(ctx, &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.StripeIntegrationSpec{
		ClinicID: name, Mode: v1.ModeTest, CredentialsSecretRef: v1.CredentialsSecretRef{Name: "keys"},
		InvoiceFooterDisclaimer: "Payments are processed by Stripe.",
	}}))
	si := &v1.StripeIntegration{}
	waitFor(t, time.Minute, "Connected", func() (bool, string) {
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, si))
		cond := meta.FindStatusCondition(si.Status.Conditions, v1.ConditionConnected)
		return cond != nil && cond.Status == metav1.ConditionTrue, fmt.Sprintf("%+v", cond)
	})

	acct := fake.AccountForKey(secretKey)
	for i, typ := range []string{"customer.created", "customer.updated", "charge.succeeded"} {
		_, err := fake.TriggerEvent(acct, false, typ, map[string]any{"id": fmt.Sprintf("cus_q%d", i), "object": "customer",
			"name": sentinelName, "email": sentinelEmail, "billing_details": map[string]any{"name": sentinelName, "email": sentinelEmail}})
		must(t, err)
	}
	si.Annotations = map[string]string{v1.AnnotationReplaySince: time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}
	must(t, c.Update(ctx, si))
	// The receiver Service does not resolve here, so deliveries fail: the listing is what matters.
	waitFor(t, 2*time.Minute, "replay listed the 3 events", func() (bool, string) {
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, si))
		r := si.Status.Replay
		return r != nil && r.Delivered+r.Failed == 3, fmt.Sprintf("%+v", r)
	})
	t.Logf("replay listed the events %s after the start", time.Since(start).Round(time.Second))
	must(t, mgr.Stop())

	out, err := os.ReadFile(logPath)
	must(t, err)
	log := string(out)
	if !strings.Contains(log, "/v1/events") {
		t.Fatalf("the manager did not log the /v1/events call at this verbosity; the scan proves nothing:\n%s", log)
	}
	signing := ""
	for _, ep := range fake.Endpoints(acct, false) {
		signing = strings.TrimPrefix(ep.Secret, "whsec_")
	}
	for _, s := range []string{sentinelName, "Plokmijn", sentinelEmail, "patients.example", "QUIETKEY", "QUIETPUB"} {
		if strings.Contains(log, s) {
			t.Errorf("the manager log holds %q", s)
		}
	}
	// client-go would hex-dump the signing Secret, 16 bytes a line: look for any 8 characters of it.
	for i := 0; i+8 <= len(signing); i++ {
		if strings.Contains(log, signing[i:i+8]) {
			t.Errorf("the manager log holds part of the signing secret (offset %d)", i)
			break
		}
	}
	if signing == "" {
		t.Error("no signing secret in the fake: the scan for it proves nothing")
	}
}

// buildManager returns this command's binary (testbin.Build).
func buildManager(t *testing.T) string {
	t.Helper()
	bin, err := testbin.Build("..", "./cmd", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startControlPlane starts envtest and returns a direct client and a kubeconfig for the manager.
func startControlPlane(t *testing.T) (*rest.Config, client.Client, string) {
	t.Helper()
	assets, err := envtestbins.Dir()
	if err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets, ErrorIfCRDPathMissing: true,
		CRDDirectoryPaths: []string{filepath.Join("..", "config", "crd", "bases")}}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest (make test builds it into bin/): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	must(t, errors.Join(clientgoscheme.AddToScheme(scheme), v1.AddToScheme(scheme)))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	must(t, err)
	user, err := env.AddUser(envtest.User{Name: "stripe-operator-manager", Groups: []string{"system:masters"}}, nil)
	must(t, err)
	kc, err := user.KubeConfig()
	must(t, err)
	path := filepath.Join(t.TempDir(), "manager.kubeconfig")
	must(t, os.WriteFile(path, kc, 0o600))
	return cfg, c, path
}

// markReceiversAvailable plays the Deployment controller's part, which envtest does not run.
func markReceiversAvailable(ctx context.Context, t *testing.T, cfg *rest.Config, c client.Client) {
	t.Helper()
	ca, err := testenv.NewCache(cfg, c.Scheme())
	must(t, err)
	_, err = testenv.MarkDeploymentsAvailable(ctx, ca, c, 1)
	must(t, err)
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
