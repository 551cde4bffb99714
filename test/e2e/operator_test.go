//go:build e2e

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

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

const (
	operatorNS      = "stripe-system"
	release         = "op"
	webhookHostBase = ".hooks.e2e.example" // <namespace>.hooks.e2e.example routes to that namespace's receivers
	receiverPort    = 8080
)

// stripeEnv is the world outside the cluster: the Stripe fake, which the manager pods call and
// which delivers webhooks to the receivers' Services, and the clinic's system of record (a sink),
// both listening on the node address in this network namespace.
type stripeEnv struct {
	fake    *stripefake.Server
	fakeURL string
	sinkURL string

	mu       sync.Mutex
	received []string // bodies the sink accepted
}

func startStripeEnv(t *testing.T) *stripeEnv {
	t.Helper()
	e := &stripeEnv{}
	// Stripe retries failed deliveries; a compressed schedule does here. The first delivery can
	// meet a refused connection: a receiver pod is Ready (and the integration Connected) a moment
	// before kube-proxy has its endpoint in the Service's rules.
	e.fake = stripefake.New(stripefake.AcceptAnyKey(), stripefake.WithAdminAPI(),
		stripefake.WithHTTPClient(&http.Client{Transport: serviceRouter{}, Timeout: 10 * time.Second}),
		stripefake.WithDeliveryRetries([]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second}))
	e.fakeURL = serve(t, e.fake)
	e.sinkURL = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.received = append(e.received, string(body))
		e.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})) + "/stripe-events"
	t.Cleanup(func() { _ = e.fake.Close() })
	return e
}

// serve serves h on the node address, where pods reach it through their default route.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(e2eCfg.nodeIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

func (e *stripeEnv) sinkGot(eventID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range e.received {
		if strings.Contains(b, eventID) {
			return true
		}
	}
	return false
}

// serviceRouter is the public route from Stripe to a clinic's receivers (what DNS and a load
// balancer or Ingress are in production): https://<namespace>.hooks.e2e.example/... goes to
// the ClusterIP of the receiver Service in that namespace that serves the webhook path, through
// kube-proxy. TLS ends at that stand-in load balancer.
type serviceRouter struct{}

func (serviceRouter) RoundTrip(req *http.Request) (*http.Response, error) {
	ns, ok := strings.CutSuffix(req.URL.Hostname(), webhookHostBase)
	if !ok {
		return nil, fmt.Errorf("e2e router: no route to %s", req.URL.Host)
	}
	svcs, err := cluster.Kube.CoreV1().Services(ns).List(req.Context(), metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/managed-by=stripe-operator"})
	if err != nil {
		return nil, err
	}
	clinicID := req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]
	for _, s := range svcs.Items {
		if s.Labels["payments.clinicpay.dev/clinic-id"] == clinicID && s.Spec.ClusterIP != "" {
			out := req.Clone(req.Context())
			out.URL.Scheme, out.URL.Host = "http", net.JoinHostPort(s.Spec.ClusterIP, fmt.Sprint(receiverPort))
			out.Host = req.URL.Host
			return http.DefaultTransport.RoundTrip(out)
		}
	}
	return nil, fmt.Errorf("e2e router: no receiver Service for clinic %q in %s", clinicID, ns)
}

func newClient(t *testing.T) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cluster.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// cmd runs helm or kubectl against the cluster as the admin.
func cmd(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, args...)
	c.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig, "HELM_CACHE_HOME="+filepath.Join(e2eCfg.runDir, "helm"),
		"HELM_CONFIG_HOME="+filepath.Join(e2eCfg.runDir, "helm"), "HELM_DATA_HOME="+filepath.Join(e2eCfg.runDir, "helm"))
	c.Dir = os.Getenv("E2E_REPO")
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// installOperator installs the chart into a namespace enforcing restricted Pod Security, the
// image the locally imported one, and waits for the Deployment to be available.
func installOperator(t *testing.T, env *stripeEnv) {
	t.Helper()
	restrictedNamespace(t, operatorNS)
	img := os.Getenv("E2E_IMG")
	repo, tag, _ := strings.Cut(img, ":")
	helm := os.Getenv("E2E_HELM")
	cmd(t, helm, "install", release, "charts/stripe-operator", "-n", operatorNS,
		"--set", "image.repository="+repo, "--set", "image.tag="+tag, "--set", "image.pullPolicy=Never",
		"--set", "stripeAPIURL="+env.fakeURL, "--set", "resyncPeriod=1m",
		"--wait", "--timeout", "4m")
	t.Cleanup(func() {
		c := exec.Command(helm, "uninstall", release, "-n", operatorNS, "--wait", "--timeout", "2m")
		c.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig)
		if out, err := c.CombinedOutput(); err != nil {
			t.Logf("helm uninstall: %v\n%s", err, out)
		}
	})
}

// TestOperatorConnectsAndRelays: the operator, installed with its Helm chart and running as pods
// under the chart's RBAC, connects a clinic in a namespace enforcing restricted Pod Security;
// the receiver pods become Ready through their probes; a signed Stripe event reaches the clinic's
// system of record through the receiver Service; deleting the integration deletes the endpoint.
func TestOperatorConnectsAndRelays(t *testing.T) {
	ctx := context.Background()
	env := startStripeEnv(t)
	installOperator(t, env)
	c := newClient(t)

	ns := "clinic-e2e"
	restrictedNamespace(t, ns)
	key := "sk_test_clinicE2E000000000000000000"
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "stripe-keys", Namespace: ns},
		StringData: map[string]string{"publishableKey": "pk_test_clinicE2E000000000000000000", "secretKey": key}}); err != nil {
		t.Fatal(err)
	}
	si := &v1.StripeIntegration{
		ObjectMeta: metav1.ObjectMeta{Name: "clinic-e2e", Namespace: ns},
		Spec: v1.StripeIntegrationSpec{
			ClinicID:             "clinic-e2e",
			Mode:                 v1.ModeTest,
			CredentialsSecretRef: v1.CredentialsSecretRef{Name: "stripe-keys"},
			Webhook:              &v1.WebhookSpec{BaseURL: "https://" + ns + webhookHostBase},
			Receiver: &v1.ReceiverSpec{Replicas: ptr.To[int32](2),
				Forward: &v1.ForwardSpec{HTTP: &v1.HTTPTarget{URL: env.sinkURL}}},
		},
	}
	if err := c.Create(ctx, si); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	waitConnected(t, c, types.NamespacedName{Namespace: ns, Name: si.Name}, 4*time.Minute)
	t.Logf("Connected after %s", time.Since(begin).Round(time.Second))
	if err := c.Get(ctx, client.ObjectKeyFromObject(si), si); err != nil {
		t.Fatal(err)
	}

	// The receivers are real pods, Ready through their readiness probes.
	pods, err := cluster.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=stripe-operator"})
	if err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, p := range pods.Items {
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	if ready != 2 {
		t.Fatalf("%d of %d receiver pods Ready, want 2", ready, len(pods.Items))
	}
	eps := env.fake.Endpoints(env.fake.AccountForKey(key), false)
	if len(eps) != 1 || eps[0].URL != si.Status.WebhookURL {
		t.Fatalf("Stripe endpoints %v, want one at %s", eps, si.Status.WebhookURL)
	}

	// A signed event, delivered by the fake through the receiver Service, reaches the sink.
	id := trigger(t, env, key, "payment_intent.succeeded")
	if err := poll(ctx, 30*time.Second, func() error {
		if env.sinkGot(id) {
			return nil
		}
		return fmt.Errorf("event %s not at the sink; deliveries: %+v", id, env.fake.Deliveries())
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("event %s reached the sink through Service %s (delivery attempts: %d)", id, si.Status.WebhookURL, attempts(env.fake, id))

	// Deleting the integration deletes its Stripe endpoint; the garbage collector removes the
	// receivers.
	if err := c.Delete(ctx, si); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 2*time.Minute, func() error {
		if n := len(env.fake.Endpoints(env.fake.AccountForKey(key), false)); n != 0 {
			return fmt.Errorf("%d Stripe endpoints left", n)
		}
		p, err := cluster.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=stripe-operator"})
		if err != nil {
			return err
		}
		if len(p.Items) != 0 {
			return fmt.Errorf("%d receiver pods left", len(p.Items))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func waitConnected(t *testing.T, c client.Client, key types.NamespacedName, timeout time.Duration) {
	t.Helper()
	var si v1.StripeIntegration
	err := poll(context.Background(), timeout, func() error {
		if err := c.Get(context.Background(), key, &si); err != nil {
			if apierrors.IsNotFound(err) {
				return err
			}
			return err
		}
		cond := meta.FindStatusCondition(si.Status.Conditions, v1.ConditionConnected)
		if cond != nil && cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == si.Generation {
			return nil
		}
		return fmt.Errorf("conditions: %+v", si.Status.Conditions)
	})
	if err != nil {
		t.Fatalf("%s not Connected: %v\nevents in %s:\n%s\nevents in %s:\n%s", key, err, key.Namespace, events(key.Namespace), operatorNS, events(operatorNS))
	}
}

// trigger asks the Stripe fake to emit an event for the key's account (its admin API makes a
// sample object) and returns the event id.
func trigger(t *testing.T, env *stripeEnv, key, typ string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"key": key, "type": typ})
	resp, err := http.Post(env.fakeURL+stripefake.AdminPrefix+"events", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var got struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &got); err != nil || got.ID == "" {
		t.Fatalf("trigger %s: %s %s", typ, resp.Status, raw)
	}
	return got.ID
}

func attempts(fake *stripefake.Server, eventID string) int {
	n := 0
	for _, d := range fake.Deliveries() {
		if d.EventID == eventID {
			n++
		}
	}
	return n
}
