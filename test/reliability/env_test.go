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

package reliability

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
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
	"github.com/clinicpay/stripe-operator/test/testrun"
)

// managerBin is the manager binary built once for the package by TestMain.
var managerBin string

func TestMain(m *testing.M) {
	// Each test runs its own control plane and managers and mostly waits: all four at once.
	testrun.ParallelByDefault(4)
	ctrllog.SetLogger(logr.Discard())
	dir, err := os.MkdirTemp("", "stripe-operator-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if managerBin, err = testbin.Build("../..", "./cmd", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const (
	managerUser     = "stripe-operator-manager"
	leaseNamespace  = "stripe-operator-system"
	testNamespace   = "clinics"
	sentinelMarker  = "SENTINEL"
	webhookBaseURL  = "https://hooks.reliability.example"
	availableMarker = 8
)

// world is one reliability run: an envtest control plane, the Stripe fake, and the real
// manager binary (one or more instances) talking to both.
type world struct {
	t          *testing.T
	env        *envtest.Environment
	c          client.Client
	fake       *stripefake.Server
	fakeURL    string
	kubeconfig string
	dir        string
	resync     time.Duration

	mu       sync.Mutex
	managers []*testenv.Manager
	keys     map[types.NamespacedName]string // integration → its secret key (a sentinel)
	secrets  map[string]bool                 // every signing secret seen, for the leak scan
	logs     []string
	next     int
}

func newWorld(t *testing.T, resync time.Duration, fakeOpts ...stripefake.Option) *world {
	t.Helper()
	assets, err := envtestbins.Dir()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, dir: t.TempDir(), resync: resync, keys: map[types.NamespacedName]string{}, secrets: map[string]bool{}}
	w.env = &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		// envtest waits 20 s by default; parallel suites on 2 cores can take longer to start one.
		ControlPlaneStartTimeout: time.Minute,
	}
	cfg, err := w.env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := w.env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1.AddToScheme(scheme)); err != nil {
		t.Fatal(err)
	}
	if w.c, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{leaseNamespace, testNamespace} {
		if err := w.c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	w.fake = stripefake.New(append([]stripefake.Option{stripefake.AcceptAnyKey()}, fakeOpts...)...)
	if w.fakeURL, err = w.fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.fake.Close() })

	user, err := w.env.AddUser(envtest.User{Name: managerUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	w.kubeconfig = filepath.Join(w.dir, "manager.kubeconfig")
	if err := os.WriteFile(w.kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ca, err := testenv.NewCache(cfg, scheme)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.MarkDeploymentsAvailable(ctx, ca, w.c, availableMarker); err != nil {
		t.Fatal(err)
	}
	go func() { _ = ca.Start(ctx) }()
	if !ca.WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	return w
}

// startManager starts one more manager process; leaderElect runs it with leader election.
func (w *world) startManager(leaderElect bool) *testenv.Manager {
	w.t.Helper()
	w.mu.Lock()
	log := filepath.Join(w.dir, fmt.Sprintf("manager-%d.log", len(w.logs)))
	w.logs = append(w.logs, log)
	w.mu.Unlock()
	args := []string{"--webhook-base-url=" + webhookBaseURL, "--zap-log-level=info"}
	if leaderElect {
		// A failover waits for the lease to expire: 8 s instead of the default 15 s. The renew
		// deadline stays generous (a leader that misses it exits), for a machine running other
		// suites at the same time.
		args = append(args, "--leader-election-lease-duration=8s", "--leader-election-renew-deadline=6s", "--leader-election-retry-period=1s")
	}
	m, err := testenv.StartManager(context.Background(), testenv.ManagerOptions{
		Bin: managerBin, Kubeconfig: w.kubeconfig, StripeURL: w.fakeURL, LogPath: log, Resync: w.resync,
		LeaderElect: leaderElect, LeaderElectionNamespace: leaseNamespace, StripeCallTimeout: time.Second,
		ExtraArgs: args,
	})
	if err != nil {
		w.t.Fatalf("start manager: %v", err)
	}
	w.mu.Lock()
	w.managers = append(w.managers, m)
	w.mu.Unlock()
	w.t.Cleanup(func() { _ = m.Stop() })
	return m
}

// sentinelKey is a well-formed test key that carries a marker the leak scan looks for.
func sentinelKey(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	return prefix + sentinelMarker + hex.EncodeToString(b)
}

// createIntegration creates a credentials Secret with fresh sentinel keys and a
// StripeIntegration that uses them.
func (w *world) createIntegration(ctx context.Context) types.NamespacedName {
	w.t.Helper()
	w.mu.Lock()
	i := w.next
	w.next++
	w.mu.Unlock()
	name := fmt.Sprintf("clinic-%d", i)
	sk := sentinelKey("sk_test_")
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name + "-keys"},
		Data: map[string][]byte{"publishableKey": []byte(sentinelKey("pk_test_")), "secretKey": []byte(sk)}}
	si := &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name}, Spec: v1.StripeIntegrationSpec{
		ClinicID: name, Mode: v1.ModeTest, CredentialsSecretRef: v1.CredentialsSecretRef{Name: sec.Name},
		InvoiceFooterDisclaimer: "Payments are processed by Stripe.",
	}}
	for _, o := range []client.Object{sec, si} {
		if err := w.c.Create(ctx, o); err != nil {
			w.t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
	key := client.ObjectKeyFromObject(si)
	w.mu.Lock()
	w.keys[key] = sk
	w.mu.Unlock()
	return key
}

func (w *world) keyOf(key types.NamespacedName) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.keys[key]
}

// account is the fake's account of the integration's key ("" before the operator first used it).
func (w *world) account(key types.NamespacedName) string { return w.fake.AccountForKey(w.keyOf(key)) }

// managersState says, for a failure message, whether each manager started so far still runs,
// with the end of its log (which the leak scan keeps free of keys and secrets).
func (w *world) managersState() string {
	w.mu.Lock()
	managers, logs := append([]*testenv.Manager(nil), w.managers...), append([]string(nil), w.logs...)
	w.mu.Unlock()
	var b strings.Builder
	for i, m := range managers {
		state := "running"
		if m.Exited() {
			state = "exited"
		}
		fmt.Fprintf(&b, "manager %d (%s), end of %s:\n%s\n", i, state, filepath.Base(logs[i]), testenv.TailFile(logs[i], 4096))
	}
	return b.String()
}

// waitFor polls cond until it holds or timeout passes.
func (w *world) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out after %s waiting for %s: %s\n%s", timeout, what, msg, w.managersState())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// connected reports how many of keys are Connected.
func (w *world) connected(ctx context.Context, keys []types.NamespacedName) (int, string) {
	n, notYet := 0, ""
	for _, k := range keys {
		var si v1.StripeIntegration
		if err := w.c.Get(ctx, k, &si); err != nil {
			notYet = fmt.Sprintf("%s: %v", k.Name, err)
			continue
		}
		if meta.IsStatusConditionTrue(si.Status.Conditions, v1.ConditionConnected) {
			n++
		} else if c := meta.FindStatusCondition(si.Status.Conditions, v1.ConditionConnected); c != nil {
			notYet = fmt.Sprintf("%s: %s %s", k.Name, c.Reason, c.Message)
		}
	}
	return n, fmt.Sprintf("%d/%d Connected; e.g. %s", n, len(keys), notYet)
}

// checkInvariants asserts what must hold at the end of every scenario: each live integration is
// Connected with exactly one endpoint in its Stripe account, the one in its status, whose signing
// secret is the one stored in its Secret; each deleted integration is gone, and so is every
// endpoint of its account.
func (w *world) checkInvariants(ctx context.Context, live, deleted []types.NamespacedName) (endpoints int) {
	w.t.Helper()
	for _, k := range live {
		var si v1.StripeIntegration
		if err := w.c.Get(ctx, k, &si); err != nil {
			w.t.Errorf("%s: %v", k.Name, err)
			continue
		}
		if !meta.IsStatusConditionTrue(si.Status.Conditions, v1.ConditionConnected) {
			w.t.Errorf("%s is not Connected: %+v", k.Name, meta.FindStatusCondition(si.Status.Conditions, v1.ConditionConnected))
		}
		eps := w.fake.Endpoints(w.account(k), false)
		endpoints += len(eps)
		if len(eps) != 1 || eps[0].ID != si.Status.WebhookEndpointID {
			ids := make([]string, 0, len(eps))
			for _, e := range eps {
				ids = append(ids, e.ID)
			}
			w.t.Errorf("%s: endpoints %v in Stripe, status says %q (duplicate or lost endpoint)", k.Name, ids, si.Status.WebhookEndpointID)
			continue
		}
		var sec corev1.Secret
		if err := w.c.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: si.Status.SigningSecretName}, &sec); err != nil {
			w.t.Errorf("%s: signing Secret: %v", k.Name, err)
			continue
		}
		if got := string(sec.Data[v1.SigningSecretKey]); got != eps[0].Secret {
			w.t.Errorf("%s: the stored signing secret is not the endpoint's (lost signing secret)", k.Name)
		}
		w.mu.Lock()
		w.secrets[eps[0].Secret] = true
		w.mu.Unlock()
	}
	for _, k := range deleted {
		var si v1.StripeIntegration
		if err := w.c.Get(ctx, k, &si); !apierrors.IsNotFound(err) {
			w.t.Errorf("deleted %s still exists (%v)", k.Name, err)
		}
		if acct := w.account(k); acct != "" {
			if eps := w.fake.Endpoints(acct, false); len(eps) != 0 {
				w.t.Errorf("deleted %s left %d endpoints in Stripe (leak)", k.Name, len(eps))
			}
		}
	}
	return endpoints
}

// rememberSigningSecrets records the signing secrets Stripe holds now, for the leak scan.
func (w *world) rememberSigningSecrets(keys []types.NamespacedName) {
	for _, k := range keys {
		for _, e := range w.fake.Endpoints(w.account(k), false) {
			w.mu.Lock()
			w.secrets[e.Secret] = true
			w.mu.Unlock()
		}
	}
}

// scanForLeaks searches every manager log, every Event, every StripeIntegration (spec, status,
// annotations) and a live manager's metrics for any API key or signing secret used in the run.
func (w *world) scanForLeaks(ctx context.Context, metricsFrom *testenv.Manager) (places, needles int) {
	w.t.Helper()
	w.mu.Lock()
	secrets := make([]string, 0, len(w.keys))
	for _, k := range w.keys {
		secrets = append(secrets, k)
	}
	for s := range w.secrets {
		secrets = append(secrets, s)
	}
	logs := append([]string(nil), w.logs...)
	w.mu.Unlock()
	secrets = append(secrets, sentinelMarker) // every sentinel key carries it: catches partial leaks too
	haystacks := map[string][]byte{}
	for _, p := range logs {
		b, err := os.ReadFile(p)
		if err != nil {
			w.t.Errorf("read %s: %v", p, err)
			continue
		}
		haystacks["log "+filepath.Base(p)] = b
	}
	var evs eventsv1.EventList
	if err := w.c.List(ctx, &evs); err != nil {
		w.t.Fatal(err)
	}
	for _, e := range evs.Items {
		haystacks["Event "+e.Name] = []byte(e.Note + " " + e.Reason)
	}
	var cevs corev1.EventList
	if err := w.c.List(ctx, &cevs); err != nil {
		w.t.Fatal(err)
	}
	for _, e := range cevs.Items {
		haystacks["core Event "+e.Name] = []byte(e.Message + " " + e.Reason)
	}
	var sis v1.StripeIntegrationList
	if err := w.c.List(ctx, &sis); err != nil {
		w.t.Fatal(err)
	}
	for _, si := range sis.Items {
		b, _ := json.Marshal(si) // a typed object always marshals
		haystacks["StripeIntegration "+si.Name] = b
	}
	if metricsFrom != nil && !metricsFrom.Exited() {
		resp, err := http.Get(metricsFrom.MetricsURL())
		if err != nil {
			w.t.Fatalf("metrics: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if len(b) == 0 {
			w.t.Error("the manager's metrics are empty")
		}
		haystacks["metrics"] = b
	}
	for where, hay := range haystacks {
		for _, s := range secrets {
			if s != "" && bytes.Contains(hay, []byte(s)) {
				shown := s
				if len(shown) > 12 {
					shown = shown[:12] + "…"
				}
				w.t.Errorf("LEAK: %s contains a secret (%s)", where, shown)
			}
		}
	}
	// Receivers hold only their own signing secret and no service-account token.
	var deps appsv1.DeploymentList
	if err := w.c.List(ctx, &deps); err != nil {
		w.t.Fatal(err)
	}
	for _, d := range deps.Items {
		pod := d.Spec.Template.Spec
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken ||
			(pod.ServiceAccountName != "" && pod.ServiceAccountName != "default") {
			w.t.Errorf("receiver %s: service account %q, token automount %v", d.Name, pod.ServiceAccountName, pod.AutomountServiceAccountToken)
		}
		owner := metav1.GetControllerOf(&d)
		for _, vol := range pod.Volumes {
			if vol.Secret != nil && (owner == nil || !strings.HasPrefix(vol.Secret.SecretName, owner.Name+"-")) {
				w.t.Errorf("receiver %s mounts Secret %s, not its own", d.Name, vol.Secret.SecretName)
			}
		}
	}
	return len(haystacks), len(secrets)
}
