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
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
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
	keys     []string // every key a test used
}

func (e *stripeEnv) track(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keys = append(e.keys, key)
}

// endpointsLeft counts the webhook endpoints of every account a test used.
func (e *stripeEnv) endpointsLeft() int {
	e.mu.Lock()
	keys := append([]string(nil), e.keys...)
	e.mu.Unlock()
	n := 0
	for _, k := range keys {
		if acct := e.fake.AccountForKey(k); acct != "" {
			n += len(e.fake.Endpoints(acct, false))
		}
	}
	return n
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
// balancer or Ingress are in production): https://<namespace>.hooks.e2e.example/... goes where
// an Ingress controller sends it for the headless receiver Service in that namespace that
// serves the webhook path: to the webhook port of one of the Service's ready endpoints (its
// EndpointSlices), a pod IP, chosen at random per request. TLS ends at that stand-in load
// balancer.
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
		if s.Labels["payments.clinicpay.dev/clinic-id"] != clinicID {
			continue
		}
		addr, err := readyEndpoint(req.Context(), ns, s.Name)
		if err != nil {
			return nil, err
		}
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host = "http", addr
		out.Host = req.URL.Host
		return http.DefaultTransport.RoundTrip(out)
	}
	return nil, fmt.Errorf("e2e router: no receiver Service for clinic %q in %s", clinicID, ns)
}

// readyEndpoint is host:port of the webhook port of a ready endpoint of the Service, picked at
// random among them, from the Service's EndpointSlices (a nil ready condition means ready).
func readyEndpoint(ctx context.Context, ns, service string) (string, error) {
	list, err := cluster.Kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		return "", err
	}
	var ready []string
	for _, sl := range list.Items {
		port := int32(0)
		for _, p := range sl.Ports {
			if ptr.Deref(p.Name, "") == "webhook" && p.Port != nil {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, ep := range sl.Endpoints {
			if !ptr.Deref(ep.Conditions.Ready, true) {
				continue
			}
			for _, a := range ep.Addresses {
				ready = append(ready, net.JoinHostPort(a, fmt.Sprint(port)))
			}
		}
	}
	if len(ready) == 0 {
		// What an Ingress controller answers with no ready endpoint: Stripe retries the delivery.
		return "", fmt.Errorf("e2e router: Service %s/%s has no ready endpoint", ns, service)
	}
	return ready[rand.IntN(len(ready))], nil
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
		if t.Failed() {
			// The uninstall step did not run or failed: take the release down anyway.
			c := exec.Command(helm, "uninstall", release, "-n", operatorNS, "--wait", "--timeout", "2m")
			c.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig)
			_, _ = c.CombinedOutput()
		}
	})
}

// TestHelm installs the operator once with its Helm chart and walks a platform team's life with
// it, each step asserting on the cluster and on the Stripe fake. The steps share the install and
// run in order; uninstalling is the last.
func TestHelm(t *testing.T) {
	env := startStripeEnv(t)
	installOperator(t, env)
	c := newClient(t)
	t.Run("ConnectsAndRelays", func(t *testing.T) { connectsAndRelays(t, env, c) })
	t.Run("ReceiverKilledNothingLost", func(t *testing.T) { receiverKilledNothingLost(t, env, c) })
	t.Run("LeaderKilled", func(t *testing.T) { leaderKilled(t, env, c) })
	t.Run("UpgradeRollsReceivers", func(t *testing.T) { upgradeRollsReceivers(t, env, c) })
	t.Run("NamespaceOf20Deleted", func(t *testing.T) { namespaceOf20Deleted(t, env, c) })
	t.Run("UninstallLeavesNothing", func(t *testing.T) { uninstallLeavesNothing(t, env, c) })
}

// keyFor is a distinct test key, so a distinct Stripe account, per clinic.
func keyFor(clinic string) string {
	return "sk_test_" + strings.ReplaceAll(clinic, "-", "") + "0000000000000000"
}

// createIntegration creates a clinic's Secret and StripeIntegration in ns (name = clinic ID).
func createIntegration(t *testing.T, c client.Client, env *stripeEnv, ns, clinic string, replicas int32) *v1.StripeIntegration {
	t.Helper()
	ctx := context.Background()
	env.track(keyFor(clinic))
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: clinic + "-keys", Namespace: ns},
		StringData: map[string]string{"publishableKey": "pk_test_" + strings.ReplaceAll(clinic, "-", "") + "0000000000000000",
			"secretKey": keyFor(clinic)}}); err != nil {
		t.Fatal(err)
	}
	si := &v1.StripeIntegration{
		ObjectMeta: metav1.ObjectMeta{Name: clinic, Namespace: ns},
		Spec: v1.StripeIntegrationSpec{
			ClinicID:             clinic,
			Mode:                 v1.ModeTest,
			CredentialsSecretRef: v1.CredentialsSecretRef{Name: clinic + "-keys"},
			Webhook:              &v1.WebhookSpec{BaseURL: "https://" + ns + webhookHostBase},
			Receiver: &v1.ReceiverSpec{Replicas: ptr.To(replicas),
				Forward: &v1.ForwardSpec{HTTP: &v1.HTTPTarget{URL: env.sinkURL}}},
		},
	}
	if err := c.Create(ctx, si); err != nil {
		t.Fatal(err)
	}
	return si
}

func receiverPods(t *testing.T, ns string) []corev1.Pod {
	t.Helper()
	pods, err := cluster.Kube.CoreV1().Pods(ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=stripe-operator"})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func isReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
			return p.DeletionTimestamp == nil
		}
	}
	return false
}

// killContainer SIGKILLs every process of a pod's first container, found by its cgroup under
// kubelet's cgroup root: a crash, not a deletion (no SIGTERM, no grace, no lease released).
// kubelet restarts the container.
func killContainer(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	if len(pod.Status.ContainerStatuses) == 0 {
		t.Fatalf("pod %s has no container status", pod.Name)
	}
	_, id, _ := strings.Cut(pod.Status.ContainerStatuses[0].ContainerID, "://")
	var dirs []string
	for _, base := range []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup"} {
		for _, pattern := range []string{"/kubepods/pod%s/%s", "/kubepods/*/pod%s/%s"} {
			m, _ := filepath.Glob(base + e2eCfg.cgroupRoot + fmt.Sprintf(pattern, pod.UID, id))
			dirs = append(dirs, m...)
		}
	}
	if len(dirs) == 0 {
		t.Fatalf("no cgroup for container %s of pod %s", id, pod.Name)
	}
	procs, err := os.ReadFile(filepath.Join(dirs[0], "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, f := range strings.Fields(string(procs)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
		}
	}
	if killed == 0 {
		t.Fatalf("no process of pod %s killed (cgroup %s)", pod.Name, dirs[0])
	}
}

// endpointsOf is the number of Stripe webhook endpoints of the clinic's (test mode) account.
func endpointsOf(env *stripeEnv, clinic string) int {
	return len(env.fake.Endpoints(env.fake.AccountForKey(keyFor(clinic)), false))
}

// waitSink waits until every event reached the sink.
func waitSink(t *testing.T, env *stripeEnv, timeout time.Duration, ids ...string) {
	t.Helper()
	if err := poll(context.Background(), timeout, func() error {
		var missing []string
		for _, id := range ids {
			if !env.sinkGot(id) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d events not at the sink: %v", len(missing), len(ids), missing)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// connectsAndRelays: the manager pods, under the chart's RBAC, connect a clinic in a namespace
// enforcing restricted Pod Security; its two receiver pods become Ready through their probes; a
// signed Stripe event reaches the clinic's system of record through the receiver Service;
// deleting the integration deletes the Stripe endpoint, and the garbage collector the receivers.
func connectsAndRelays(t *testing.T, env *stripeEnv, c client.Client) {
	ctx := context.Background()
	ns := "clinic-e2e"
	restrictedNamespace(t, ns)
	si := createIntegration(t, c, env, ns, "clinic-e2e", 2)
	begin := time.Now()
	waitConnected(t, c, client.ObjectKeyFromObject(si), 4*time.Minute)
	t.Logf("Connected after %s", time.Since(begin).Round(time.Second))
	if err := c.Get(ctx, client.ObjectKeyFromObject(si), si); err != nil {
		t.Fatal(err)
	}
	ready := 0
	pods := receiverPods(t, ns)
	for i := range pods {
		if isReady(&pods[i]) {
			ready++
		}
	}
	if ready != 2 {
		t.Fatalf("%d of %d receiver pods Ready, want 2", ready, len(pods))
	}
	eps := env.fake.Endpoints(env.fake.AccountForKey(keyFor("clinic-e2e")), false)
	if len(eps) != 1 || eps[0].URL != si.Status.WebhookURL {
		t.Fatalf("Stripe endpoints %v, want one at %s", eps, si.Status.WebhookURL)
	}

	id := trigger(t, env, keyFor("clinic-e2e"), "payment_intent.succeeded")
	waitSink(t, env, 45*time.Second, id)
	t.Logf("event %s reached the sink through the receiver Service (delivery attempts: %d)", id, attempts(env.fake, id))

	if err := c.Delete(ctx, si); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 2*time.Minute, func() error {
		if n := endpointsOf(env, "clinic-e2e"); n != 0 {
			return fmt.Errorf("%d Stripe endpoints left", n)
		}
		if n := len(receiverPods(t, ns)); n != 0 {
			return fmt.Errorf("%d receiver pods left", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// receiverKilledNothingLost: one of two receiver pods is SIGKILLed while Stripe sends events;
// every event still reaches the sink, through Stripe's retries and the other pod.
func receiverKilledNothingLost(t *testing.T, env *stripeEnv, c client.Client) {
	ns := "clinic-kill"
	restrictedNamespace(t, ns)
	si := createIntegration(t, c, env, ns, "clinic-kill", 2)
	waitConnected(t, c, client.ObjectKeyFromObject(si), 4*time.Minute)
	key := keyFor("clinic-kill")
	const n = 30
	ids := make(chan string, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			body, _ := json.Marshal(map[string]string{"key": key, "type": "payment_intent.succeeded"})
			resp, err := http.Post(env.fakeURL+stripefake.AdminPrefix+"events", "application/json", bytes.NewReader(body))
			if err != nil {
				continue
			}
			var got struct{ ID string }
			_ = json.NewDecoder(resp.Body).Decode(&got)
			_ = resp.Body.Close()
			if got.ID != "" {
				ids <- got.ID
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	pods := receiverPods(t, ns)
	if len(pods) == 0 {
		t.Fatal("no receiver pods")
	}
	killContainer(t, &pods[0])
	t.Logf("SIGKILLed receiver pod %s while events arrive", pods[0].Name)
	<-done
	close(ids)
	all := make([]string, 0, len(ids))
	for id := range ids {
		all = append(all, id)
	}
	if len(all) != n {
		t.Fatalf("the fake created %d of %d events", len(all), n)
	}
	waitSink(t, env, 2*time.Minute, all...)
	total := 0
	for _, id := range all {
		total += attempts(env.fake, id)
	}
	t.Logf("all %d events reached the sink; %d delivery attempts", n, total)
}

// leaderKilled: the leader manager's process is SIGKILLed right after an integration is created
// (so it may be half way through it); another manager takes over, connects it, and Stripe holds
// one endpoint for it.
func leaderKilled(t *testing.T, env *stripeEnv, c client.Client) {
	ctx := context.Background()
	ns := "clinic-leader"
	restrictedNamespace(t, ns)
	// The holder identity is <pod>_<uuid>: a restarted container is a new identity.
	leader := func() string {
		l, err := cluster.Kube.CoordinationV1().Leases(operatorNS).Get(ctx, "stripe-operator.payments.clinicpay.dev", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	old := leader()
	podName, _, _ := strings.Cut(old, "_")
	pod, err := cluster.Kube.CoreV1().Pods(operatorNS).Get(ctx, podName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("leader %q: %v", old, err)
	}
	si := createIntegration(t, c, env, ns, "clinic-leader", 1)
	killContainer(t, pod)
	begin := time.Now()
	waitConnected(t, c, client.ObjectKeyFromObject(si), 4*time.Minute)
	now := leader()
	t.Logf("leader %s SIGKILLed; %s leads; Connected %s later", old, now, time.Since(begin).Round(time.Second))
	if now == old || now == "" {
		t.Fatalf("leader is still %q", now)
	}
	if n := endpointsOf(env, "clinic-leader"); n != 1 {
		t.Fatalf("%d Stripe endpoints for the clinic, want 1", n)
	}
}

// upgradeRollsReceivers: `helm upgrade` to a new image tag rolls the receivers onto it and keeps
// the clinic's Stripe endpoint; events still arrive.
func upgradeRollsReceivers(t *testing.T, env *stripeEnv, c client.Client) {
	ctx := context.Background()
	ns := "clinic-upgrade"
	restrictedNamespace(t, ns)
	si := createIntegration(t, c, env, ns, "clinic-upgrade", 1)
	waitConnected(t, c, client.ObjectKeyFromObject(si), 4*time.Minute)
	if err := c.Get(ctx, client.ObjectKeyFromObject(si), si); err != nil {
		t.Fatal(err)
	}
	endpoint := si.Status.WebhookEndpointID
	next := os.Getenv("E2E_IMG_NEXT")
	_, tag, _ := strings.Cut(next, ":")
	cmd(t, os.Getenv("E2E_HELM"), "upgrade", release, "charts/stripe-operator", "-n", operatorNS, "--reuse-values",
		"--set", "image.tag="+tag, "--wait", "--timeout", "4m")
	if err := poll(ctx, 3*time.Minute, func() error {
		pods := receiverPods(t, ns)
		if len(pods) != 1 || !isReady(&pods[0]) || pods[0].Spec.Containers[0].Image != next {
			var got []string
			for _, p := range pods {
				got = append(got, fmt.Sprintf("%s %s ready=%v", p.Name, p.Spec.Containers[0].Image, isReady(&p)))
			}
			return fmt.Errorf("receiver pods %v, want one Ready on %s", got, next)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, c, client.ObjectKeyFromObject(si), time.Minute)
	if err := c.Get(ctx, client.ObjectKeyFromObject(si), si); err != nil {
		t.Fatal(err)
	}
	eps := env.fake.Endpoints(env.fake.AccountForKey(keyFor("clinic-upgrade")), false)
	if si.Status.WebhookEndpointID != endpoint || len(eps) != 1 || eps[0].ID != endpoint {
		t.Fatalf("endpoint %s before the upgrade; after: status %s, Stripe %d endpoints", endpoint, si.Status.WebhookEndpointID, len(eps))
	}
	id := trigger(t, env, keyFor("clinic-upgrade"), "charge.refunded")
	waitSink(t, env, 45*time.Second, id)
	t.Logf("receivers rolled to %s; endpoint %s kept; event %s relayed", next, endpoint, id)
}

// namespaceOf20Deleted: deleting a namespace holding 20 integrations and their Secrets leaves no
// Stripe endpoint behind.
func namespaceOf20Deleted(t *testing.T, env *stripeEnv, c client.Client) {
	ctx := context.Background()
	ns := "clinic-bulk"
	restrictedNamespace(t, ns)
	const n = 20
	clinics := make([]string, 0, n)
	for i := range n {
		clinic := fmt.Sprintf("bulk-%02d", i)
		clinics = append(clinics, clinic)
		createIntegration(t, c, env, ns, clinic, 1)
	}
	begin := time.Now()
	for _, clinic := range clinics {
		waitConnected(t, c, types.NamespacedName{Namespace: ns, Name: clinic}, 6*time.Minute)
	}
	t.Logf("%d integrations Connected in %s", n, time.Since(begin).Round(time.Second))
	begin = time.Now()
	if err := cluster.Kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 4*time.Minute, func() error {
		if _, err := cluster.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace %s still there (%v)", ns, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, clinic := range clinics {
		left += endpointsOf(env, clinic)
	}
	if left != 0 {
		t.Fatalf("%d Stripe endpoints left after the namespace was deleted", left)
	}
	t.Logf("namespace with %d integrations deleted in %s; no Stripe endpoint left", n, time.Since(begin).Round(time.Second))
}

// uninstallLeavesNothing: after the integrations are gone, `helm uninstall` leaves no pod,
// Deployment, ServiceAccount, Role or ClusterRole of the release, and Stripe no endpoint.
// The CRD stays: Helm never deletes what a chart's crds/ directory installed.
func uninstallLeavesNothing(t *testing.T, env *stripeEnv, c client.Client) {
	ctx := context.Background()
	var sis v1.StripeIntegrationList
	if err := c.List(ctx, &sis); err != nil {
		t.Fatal(err)
	}
	if len(sis.Items) != 0 {
		t.Fatalf("%d StripeIntegrations left before the uninstall", len(sis.Items))
	}
	cmd(t, os.Getenv("E2E_HELM"), "uninstall", release, "-n", operatorNS, "--wait", "--timeout", "2m")
	sel := metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=" + release}
	if err := poll(ctx, 2*time.Minute, func() error {
		var left []string
		pods, _ := cluster.Kube.CoreV1().Pods(operatorNS).List(ctx, metav1.ListOptions{})
		for _, p := range pods.Items {
			left = append(left, "pod/"+p.Name)
		}
		deps, _ := cluster.Kube.AppsV1().Deployments(operatorNS).List(ctx, metav1.ListOptions{})
		for _, d := range deps.Items {
			left = append(left, "deployment/"+d.Name)
		}
		sas, _ := cluster.Kube.CoreV1().ServiceAccounts(operatorNS).List(ctx, sel)
		for _, s := range sas.Items {
			left = append(left, "serviceaccount/"+s.Name)
		}
		roles, _ := cluster.Kube.RbacV1().Roles("").List(ctx, sel)
		for _, r := range roles.Items {
			left = append(left, "role/"+r.Namespace+"/"+r.Name)
		}
		crs, _ := cluster.Kube.RbacV1().ClusterRoles().List(ctx, sel)
		for _, r := range crs.Items {
			left = append(left, "clusterrole/"+r.Name)
		}
		crbs, _ := cluster.Kube.RbacV1().ClusterRoleBindings().List(ctx, sel)
		for _, r := range crbs.Items {
			left = append(left, "clusterrolebinding/"+r.Name)
		}
		if len(left) > 0 {
			return fmt.Errorf("left after helm uninstall: %v", left)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := env.endpointsLeft(); n != 0 {
		t.Fatalf("%d Stripe endpoints left", n)
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
		t.Fatalf("%s not Connected: %v\nevents in %s:\n%s\nevents in %s:\n%s", key, err,
			key.Namespace, events(key.Namespace), operatorNS, events(operatorNS))
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

// TestKustomize installs the operator once from config/default (kustomize, as `make deploy`
// does), the image set to the local one and the Stripe URL to the fake: the manager runs under
// config/rbac's permissions in the restricted namespace config/manager declares, connects a
// clinic and relays an event; deleting the integration and then the install leaves nothing.
func TestKustomize(t *testing.T) {
	ctx := context.Background()
	env := startStripeEnv(t)
	c := newClient(t)
	repo := os.Getenv("E2E_REPO")
	img := os.Getenv("E2E_IMG")
	name, tag, _ := strings.Cut(img, ":")
	overlay := filepath.Join(e2eCfg.runDir, "kustomize")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(overlay, filepath.Join(repo, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	kust := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- %s
images:
- name: %s
  newTag: %s
patches:
- target: {kind: Deployment, name: stripe-operator-controller-manager}
  patch: |-
    - op: add
      path: /spec/template/spec/containers/0/args/-
      value: --stripe-api-url=%s
    - op: add
      path: /spec/template/spec/containers/0/imagePullPolicy
      value: Never
`, rel, name, tag, env.fakeURL)
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		t.Fatal(err)
	}
	rendered := filepath.Join(e2eCfg.runDir, "kustomize.yaml")
	out := cmd(t, os.Getenv("E2E_KUSTOMIZE"), "build", "--load-restrictor", "LoadRestrictionsNone", overlay)
	if err := os.WriteFile(rendered, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	kubectl := filepath.Join(e2eCfg.binDir, "kubectl")
	cmd(t, kubectl, "apply", "--server-side", "-f", rendered)
	deleted := false
	t.Cleanup(func() {
		if !deleted {
			c := exec.Command(kubectl, "delete", "--ignore-not-found", "--wait", "--timeout=2m", "-f", rendered)
			c.Env = append(os.Environ(), "KUBECONFIG="+cluster.Kubeconfig)
			_, _ = c.CombinedOutput()
		}
	})
	const kns = "stripe-operator-system"
	cmd(t, kubectl, "-n", kns, "rollout", "status", "deployment/stripe-operator-controller-manager", "--timeout=4m")

	ns := "clinic-kustomize"
	restrictedNamespace(t, ns)
	si := createIntegration(t, c, env, ns, "clinic-kustomize", 1)
	waitConnected(t, c, client.ObjectKeyFromObject(si), 4*time.Minute)
	id := trigger(t, env, keyFor("clinic-kustomize"), "payment_intent.succeeded")
	waitSink(t, env, 45*time.Second, id)
	if err := c.Delete(ctx, si); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 2*time.Minute, func() error {
		if n := endpointsOf(env, "clinic-kustomize"); n != 0 {
			return fmt.Errorf("%d Stripe endpoints left", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cmd(t, kubectl, "delete", "--wait", "--timeout=3m", "-f", rendered)
	deleted = true
	if _, err := cluster.Kube.CoreV1().Namespaces().Get(ctx, kns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s still there after the delete (%v)", kns, err)
	}
	t.Logf("config/default: Connected, event %s relayed, integration and install deleted", id)
}
