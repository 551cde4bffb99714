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

package manifests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
	"github.com/clinicpay/stripe-operator/test/testbin"
	"github.com/clinicpay/stripe-operator/test/testenv"
)

// TestManagerWatchesOnlyItsNamespaces installs config/namespaced's RBAC for real, runs the
// real manager binary as the install's ServiceAccount (so it holds exactly those permissions),
// and shows that an integration in the watched namespace is processed end to end (finalizer,
// Stripe endpoint, signing Secret, receiver objects, Ingress added then removed) without a
// single forbidden request, while one in another namespace is never touched.
func TestManagerWatchesOnlyItsNamespaces(t *testing.T) {
	t.Parallel()
	var r rendering
	for _, candidate := range mustRender(t) {
		if candidate.name == "kustomize "+namespacedDir {
			r = candidate
		}
	}
	if len(r.watchNamespaces) != 1 {
		t.Fatalf("want the %s rendering watching one namespace, got %v", namespacedDir, r.watchNamespaces)
	}
	watched, outside := r.watchNamespaces[0], "elsewhere"
	bin := buildManager(t)
	cfg, env := startEnvironment(t)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	installRBAC(t, ctx, c, r, outside)
	kubeconfig := managerKubeconfig(t, env, r)

	fake := stripefake.New(stripefake.AcceptAnyKey())
	fakeURL, err := fake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	deploy, _ := managerDeployment(t, r)
	logPath := filepath.Join(t.TempDir(), "manager.log")
	mgr, err := testenv.StartManager(ctx, testenv.ManagerOptions{
		Bin: bin, Kubeconfig: kubeconfig, StripeURL: fakeURL, LogPath: logPath, Resync: time.Minute,
		LeaderElect: true, LeaderElectionNamespace: deploy.Namespace,
		// No kubelet makes a receiver available here, so the first status is not held for one.
		ExtraArgs: []string{"--watch-namespaces=" + watched, "--webhook-base-url=https://hooks.example.test", "--zap-log-level=info",
			"--first-status-hold=0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mgr.Stop() })

	// The outside integration first: a manager that saw it would reach it before the other.
	ignored, ignoredKey := createIntegration(t, ctx, c, outside, nil)
	processed, processedKey := createIntegration(t, ctx, c, watched, &v1.WebhookSpec{
		BaseURL: "https://hooks.example.test", Ingress: &v1.IngressSpec{Host: "hooks.example.test"}})

	waitFor(t, ctx, "the watched integration's endpoint and receiver", logPath, func() (bool, string) {
		si := &v1.StripeIntegration{}
		if err := c.Get(ctx, processed, si); err != nil {
			return false, err.Error()
		}
		ready := meta.FindStatusCondition(si.Status.Conditions, v1.ConditionWebhookEndpointReady)
		if ready == nil || ready.Status != metav1.ConditionTrue || si.Status.SigningSecretName == "" {
			return false, fmt.Sprintf("conditions %+v", si.Status.Conditions)
		}
		name := client.ObjectKey{Namespace: processed.Namespace, Name: receiverObjectName(si)}
		for _, obj := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}, &networkingv1.NetworkPolicy{}, &networkingv1.Ingress{}} {
			if err := c.Get(ctx, name, obj); err != nil {
				return false, fmt.Sprintf("%T: %v", obj, err)
			}
		}
		return true, ""
	})

	// Removing the Ingress from the spec makes the manager delete it: its one delete verb.
	si := &v1.StripeIntegration{}
	if err := c.Get(ctx, processed, si); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(si.DeepCopy())
	si.Spec.Webhook.Ingress = nil
	if err := c.Patch(ctx, si, patch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the stale Ingress deleted", logPath, func() (bool, string) {
		err := c.Get(ctx, client.ObjectKey{Namespace: processed.Namespace, Name: receiverObjectName(si)}, &networkingv1.Ingress{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})

	// Deleting it removes the Stripe endpoint and releases the finalizer, with the same RBAC.
	if err := c.Delete(ctx, si); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the watched integration deleted", logPath, func() (bool, string) {
		err := c.Get(ctx, processed, &v1.StripeIntegration{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if eps := fake.Endpoints(fake.AccountForKey(processedKey), false); len(eps) != 0 {
		t.Errorf("%d Stripe endpoints left after the deletion, want 0", len(eps))
	}

	other := &v1.StripeIntegration{}
	if err := c.Get(ctx, ignored, other); err != nil {
		t.Fatal(err)
	}
	if len(other.Finalizers) > 0 || len(other.Status.Conditions) > 0 || other.Status.SigningSecretName != "" {
		t.Errorf("the integration in %s, which the manager does not watch, was touched: finalizers %v, status %+v",
			outside, other.Finalizers, other.Status)
	}
	if calls := fake.Calls(ignoredKey); calls != 0 {
		t.Errorf("the manager made %d Stripe calls with the keys of the integration in %s", calls, outside)
	}
	var deployments appsv1.DeploymentList
	if err := c.List(ctx, &deployments, client.InNamespace(outside)); err != nil || len(deployments.Items) > 0 {
		t.Errorf("receiver Deployments in %s: %d (%v), want none", outside, len(deployments.Items), err)
	}
	logs, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(string(logs)), "forbidden") {
		t.Errorf("the manager was refused a request with the install's RBAC; log:\n%s", logs)
	}
}

// buildManager returns the manager binary (./cmd; testbin.Build).
func buildManager(t *testing.T) string {
	t.Helper()
	bin, err := testbin.Build(mustRoot(t), "./cmd", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// installRBAC creates the rendering's namespaces (plus extra), CRD, ServiceAccount and RBAC
// objects for real; the manager runs outside the cluster, so its Deployment is left out.
func installRBAC(t *testing.T, ctx context.Context, c client.Client, r rendering, extra ...string) {
	t.Helper()
	namespaces := append([]string{r.namespace}, extra...)
	namespaces = append(namespaces, r.watchNamespaces...)
	for _, ns := range namespaces {
		if err := applyForReal(ctx, c, restrictedNamespace(ns)); err != nil {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
	}
	for _, crd := range r.ofKind("CustomResourceDefinition") {
		if err := applyForReal(ctx, c, crd); err != nil {
			t.Fatal(err)
		}
		if err := waitForEstablishedCRD(ctx, c, crd.GetName()); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
		for _, obj := range r.ofKind(kind) {
			if err := applyForReal(ctx, c, obj); err != nil {
				t.Fatalf("creating %s: %v", describe(obj), err)
			}
		}
	}
}

// managerKubeconfig is a kubeconfig for the install's ServiceAccount: a client certificate for
// its user name and groups, which RBAC treats exactly like the account's token.
func managerKubeconfig(t *testing.T, env *envtest.Environment, r rendering) string {
	t.Helper()
	deploy, _ := managerDeployment(t, r)
	sa := deploy.Spec.Template.Spec.ServiceAccountName
	user, err := env.AddUser(envtest.User{
		Name:   fmt.Sprintf("system:serviceaccount:%s:%s", deploy.Namespace, sa),
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + deploy.Namespace, "system:authenticated"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "manager.kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// createIntegration creates a credentials Secret and a StripeIntegration in ns. It returns the integration's key and its Stripe secret key.
func createIntegration(t *testing.T, ctx context.Context, c client.Client, ns string, webhook *v1.WebhookSpec) (client.ObjectKey, string) {
	t.Helper()
	key := func(prefix string) string {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return prefix + hex.EncodeToString(b)
	}
	sk := key("sk_test_")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "clinic-keys"}, Data: map[string][]byte{
		v1.DefaultPublishableKeyKey: []byte(key("pk_test_")), v1.DefaultSecretKeyKey: []byte(sk)}}
	si := &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "clinic"}, Spec: v1.StripeIntegrationSpec{
		ClinicID: "clinic-" + ns, Mode: v1.ModeTest, CredentialsSecretRef: v1.CredentialsSecretRef{Name: secret.Name},
		InvoiceFooterDisclaimer: "Payments are processed by Stripe.", Webhook: webhook,
	}}
	for _, obj := range []client.Object{secret, si} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("creating %T %s/%s: %v", obj, ns, obj.GetName(), err)
		}
	}
	return client.ObjectKeyFromObject(si), sk
}

// waitFor polls cond for up to a minute; on timeout it fails with the last state and the log.
func waitFor(t *testing.T, ctx context.Context, what, logPath string, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		ok, state := cond()
		last = state
		return ok, nil
	})
	if err != nil {
		logs, _ := os.ReadFile(logPath)
		t.Fatalf("waiting for %s: %v; last state: %s\nmanager log:\n%s", what, err, last, logs)
	}
}

// receiverObjectName is the name of an integration's receiver objects (the controller's
// receiverName, which this package cannot import): stripe-receiver-<name> for short names.
func receiverObjectName(si *v1.StripeIntegration) string {
	return "stripe-receiver-" + si.Name
}
