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
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/clinicpay/stripe-operator/test/envtestbins"
)

// fieldOwner is the field manager of every apply the tests make.
const fieldOwner = "stripe-operator-manifests-test"

// startControlPlane starts a kube-apiserver and etcd (bound to 127.0.0.1) with the CRDs in
// testdata/crds installed, and stops them when the test ends. The binaries must be built: a
// missing control plane fails the test with the make target that builds it.
func startControlPlane(t *testing.T) *rest.Config {
	t.Helper()
	cfg, _ := startEnvironment(t)
	return cfg
}

// startEnvironment is startControlPlane that also returns the environment, to add users.
func startEnvironment(t *testing.T) (*rest.Config, *envtest.Environment) {
	t.Helper()
	assets, err := envtestbins.Dir()
	if err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join("testdata", "crds")},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest with the binaries in %s (`make envtest-bins` builds them): %v", assets, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return cfg, env
}

// warningRecorder keeps the warnings the apiserver returns (deprecated APIs, Pod Security
// violations of a pod template, unknown fields, ...), which a client would otherwise only log.
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

// HandleWarningHeaderWithContext implements rest.WarningHandlerWithContext.
func (w *warningRecorder) HandleWarningHeaderWithContext(_ context.Context, code int, _, text string) {
	if code != 299 || text == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, text)
}

// take returns the warnings recorded since the last call and forgets them.
func (w *warningRecorder) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.warnings
	w.warnings = nil
	return out
}

// newClient returns an uncached client of the control plane whose warnings go to the returned
// recorder.
func newClient(t *testing.T, base *rest.Config) (client.Client, *warningRecorder) {
	t.Helper()
	cfg := rest.CopyConfig(base)
	recorder := &warningRecorder{}
	cfg.WarningHandler = nil
	cfg.WarningHandlerWithContext = recorder
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatalf("creating client: %v", err)
	}
	return c, recorder
}

// applyForReal server-side applies obj without dry run.
func applyForReal(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()), client.FieldOwner(fieldOwner), client.ForceOwnership)
}

// applyDryRun server-side applies obj with dryRun=All: the apiserver defaults, validates and
// admits it (Pod Security admission included) but stores nothing.
func applyDryRun(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()),
		client.FieldOwner(fieldOwner), client.ForceOwnership, client.DryRunAll)
}

// restrictedNamespace is a Namespace that enforces the restricted Pod Security Standard, as
// config/manager's does and as the chart's NOTES recommend.
func restrictedNamespace(name string) *unstructured.Unstructured {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	ns.SetLabels(map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	return ns
}

// waitForEstablishedCRD waits until the apiserver serves the CRD named name.
func waitForEstablishedCRD(ctx context.Context, c client.Client, name string) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		if err := c.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			return false, err
		}
		conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, cond := range conditions {
			m, _ := cond.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

// podFromTemplate is the Pod the Deployment's ReplicaSet would create, for a dry-run create
// that Pod Security admission judges with its enforce level (for the Deployment itself it only
// warns).
func podFromTemplate(namespace, name string, template corev1.PodTemplateSpec) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name + "-pod-security-check",
			Namespace:   namespace,
			Labels:      template.Labels,
			Annotations: template.Annotations,
		},
		Spec: template.Spec,
	}
}
