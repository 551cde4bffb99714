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
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const (
	// chartDir and defaultDir are the packagings under test, relative to the repository root.
	chartDir   = "charts/stripe-operator"
	defaultDir = "config/default"
	// namespacedDir is the namespace-scoped install, watching the namespace clinics.
	namespacedDir = "config/namespaced"

	// allOptionalValues turns every optional part of the chart on.
	allOptionalValues = "testdata/values-all-optional.yaml"

	// toolTimeout bounds one kustomize or helm run; each takes well under a second.
	toolTimeout = time.Minute
)

// rendering is one way of installing the operator, rendered to objects.
type rendering struct {
	// name identifies the rendering in subtest names and messages.
	name string
	// namespace is where every namespaced object must land.
	namespace string
	// prefix starts the name of every object (kustomize's namePrefix, the chart's fullname).
	prefix string
	// objects are the rendered objects, in rendering order.
	objects []*unstructured.Unstructured
	// wantKinds counts the objects of each kind the rendering must hold, no more, no fewer:
	// a template that renders nothing, or twice, is caught here.
	wantKinds map[string]int
	// values are the chart values the rendering was made with; nil for kustomize.
	values *chartValues
	// valuesFile is the values file given to helm over the chart's defaults, if any.
	valuesFile string
	// watchNamespaces are the namespaces a namespace-scoped install watches (sorted); nil for
	// a cluster-wide install.
	watchNamespaces []string
}

// chartValues is the part of the chart's values the tests compare manifests with.
type chartValues struct {
	Image struct {
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
		PullPolicy string `json:"pullPolicy"`
	} `json:"image"`
	ImagePullSecrets []struct {
		Name string `json:"name"`
	} `json:"imagePullSecrets"`
	ReplicaCount          int32  `json:"replicaCount"`
	LeaderElection        bool   `json:"leaderElection"`
	LogLevel              string `json:"logLevel"`
	StripeAPIURL          string `json:"stripeAPIURL"`
	StripeCallTimeout     string `json:"stripeCallTimeout"`
	ResyncPeriod          string `json:"resyncPeriod"`
	TransientFailureGrace string `json:"transientFailureGrace"`
	FirstStatusHold       string `json:"firstStatusHold"`
	DeliveryCheckInterval string `json:"deliveryCheckInterval"`
	PayoutCheckInterval   string `json:"payoutCheckInterval"`
	AnomalyCheckInterval  string `json:"anomalyCheckInterval"`
	ReceiverMonitoring    struct {
		Enabled bool              `json:"enabled"`
		Labels  map[string]string `json:"labels"`
	} `json:"receiverMonitoring"`
	MaxConcurrentReconciles int                         `json:"maxConcurrentReconciles"`
	WebhookBaseURL          string                      `json:"webhookBaseURL"`
	ReceiverImage           string                      `json:"receiverImage"`
	PodAnnotations          map[string]string           `json:"podAnnotations"`
	NodeSelector            map[string]string           `json:"nodeSelector"`
	Tolerations             []corev1.Toleration         `json:"tolerations"`
	Affinity                *corev1.Affinity            `json:"affinity"`
	Resources               corev1.ResourceRequirements `json:"resources"`
	Metrics                 struct {
		Port int32 `json:"port"`
	} `json:"metrics"`
	NetworkPolicy struct {
		MetricsNamespaceSelector *metav1.LabelSelector `json:"metricsNamespaceSelector"`
	} `json:"networkPolicy"`
	WatchNamespaces []string `json:"watchNamespaces"`
	// IngressAnnotationAllowlist is nil when the chart keeps the operator's default.
	IngressAnnotationAllowlist []string `json:"ingressAnnotationAllowlist"`
	ReceiverNetworkPolicy      struct {
		WebhookFromNamespaces string `json:"webhookFromNamespaces"`
		WebhookFromPods       string `json:"webhookFromPods"`
		MetricsFromNamespaces string `json:"metricsFromNamespaces"`
		MetricsFromPods       string `json:"metricsFromPods"`
	} `json:"receiverNetworkPolicy"`
	ServiceMonitor struct {
		Interval string            `json:"interval"`
		Labels   map[string]string `json:"labels"`
	} `json:"serviceMonitor"`
}

// renderAll renders every packaging once per test binary: the tests share the result.
var renderAll = sync.OnceValues(func() ([]rendering, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	kustomized, err := renderKustomize(root, defaultDir)
	if err != nil {
		return nil, err
	}
	kustomized.wantKinds = map[string]int{
		"Namespace": 1, "CustomResourceDefinition": 1, "ServiceAccount": 1, "ClusterRole": 5,
		"ClusterRoleBinding": 2, "Role": 1, "RoleBinding": 1, "Service": 1, "Deployment": 1,
		"NetworkPolicy": 1, "MutatingAdmissionPolicy": 1, "MutatingAdmissionPolicyBinding": 1,
	}
	// The namespace-scoped overlay: the manager's ClusterRole and binding become a Role and
	// RoleBinding in the watched namespace.
	namespaced, err := renderKustomize(root, namespacedDir)
	if err != nil {
		return nil, err
	}
	namespaced.watchNamespaces = []string{"clinics"}
	namespaced.wantKinds = map[string]int{
		"Namespace": 1, "CustomResourceDefinition": 1, "ServiceAccount": 1, "ClusterRole": 4,
		"ClusterRoleBinding": 1, "Role": 2, "RoleBinding": 2, "Service": 1, "Deployment": 1,
		"NetworkPolicy": 1, "MutatingAdmissionPolicy": 1, "MutatingAdmissionPolicyBinding": 1,
	}
	// The release named like the chart gets config/default's object names; the other release
	// name and namespace catch names and namespaces written into a template by hand.
	chartDefaults, err := renderChart(root, "helm (default values)", "stripe-operator", "stripe-operator-system", "")
	if err != nil {
		return nil, err
	}
	chartDefaults.wantKinds = map[string]int{
		"CustomResourceDefinition": 1, "ServiceAccount": 1, "ClusterRole": 5, "ClusterRoleBinding": 2,
		"Role": 1, "RoleBinding": 1, "Service": 1, "Deployment": 1,
		"MutatingAdmissionPolicy": 1, "MutatingAdmissionPolicyBinding": 1,
	}
	chartAll, err := renderChart(root, "helm (all optional values)", "payments", "clinicpay-payments", allOptionalValues)
	if err != nil {
		return nil, err
	}
	// values-all-optional.yaml watches two namespaces: a Role and RoleBinding in each.
	chartAll.watchNamespaces = chartAll.values.WatchNamespaces
	chartAll.wantKinds = map[string]int{
		"CustomResourceDefinition": 1, "ServiceAccount": 1, "ClusterRole": 4, "ClusterRoleBinding": 1,
		"Role": 3, "RoleBinding": 3, "Service": 1, "Deployment": 1, "NetworkPolicy": 1, "ServiceMonitor": 2, "PrometheusRule": 1,
		"MutatingAdmissionPolicy": 1, "MutatingAdmissionPolicyBinding": 1,
	}
	return []rendering{kustomized, namespaced, chartDefaults, chartAll}, nil
})

// renderKustomize builds an overlay: config/default is what `make deploy` applies.
func renderKustomize(root, dir string) (rendering, error) {
	bin, err := toolPath(root, "KUSTOMIZE", "kustomize", "kustomize")
	if err != nil {
		return rendering{}, err
	}
	out, err := runTool(nil, bin, "build", filepath.Join(root, dir))
	if err != nil {
		return rendering{}, err
	}
	objects, err := decodeObjects(out)
	if err != nil {
		return rendering{}, fmt.Errorf("decoding `kustomize build %s`: %w", dir, err)
	}
	return rendering{
		name:      "kustomize " + dir,
		namespace: "stripe-operator-system",
		prefix:    "stripe-operator-",
		objects:   objects,
	}, nil
}

// renderChart runs `helm template` on the chart, CRDs included, with the values file valuesFile
// (relative to this package) or the chart's defaults when it is empty.
func renderChart(root, name, release, namespace, valuesFile string) (rendering, error) {
	values := &chartValues{}
	if err := readValues(filepath.Join(root, chartDir, "values.yaml"), values); err != nil {
		return rendering{}, err
	}
	args := []string{"template", release, filepath.Join(root, chartDir), "--namespace", namespace, "--include-crds"}
	if valuesFile != "" {
		// The values file is read over the defaults, as helm does.
		if err := readValues(valuesFile, values); err != nil {
			return rendering{}, err
		}
		args = append(args, "--values", valuesFile)
	}
	out, err := runHelm(root, args...)
	if err != nil {
		return rendering{}, err
	}
	objects, err := decodeObjects(out)
	if err != nil {
		return rendering{}, fmt.Errorf("decoding `helm %s`: %w", strings.Join(args, " "), err)
	}
	prefix := "stripe-operator-"
	if !strings.Contains(release, "stripe-operator") {
		prefix = release + "-stripe-operator-"
	}
	return rendering{name: name, namespace: namespace, prefix: prefix, objects: objects, values: values, valuesFile: valuesFile}, nil
}

// runHelm runs helm with args and returns its standard output.
func runHelm(root string, args ...string) ([]byte, error) {
	bin, err := toolPath(root, "HELM", "helm", "helm")
	if err != nil {
		return nil, err
	}
	env, cleanup, err := helmEnv()
	if err != nil {
		return nil, err
	}
	defer cleanup()
	return runTool(env, bin, args...)
}

// helmEnv keeps helm away from the user's helm configuration, caches and repositories (the
// chart has no dependencies, so it needs none of them); cleanup removes its private directory.
func helmEnv() (env []string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "stripe-operator-manifests-helm-")
	if err != nil {
		return nil, nil, err
	}
	env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(dir, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(dir, "config"),
		"HELM_DATA_HOME="+filepath.Join(dir, "data"),
	)
	return env, func() { _ = os.RemoveAll(dir) }, nil
}

// readValues merges the YAML file path into v.
func readValues(path string, v *chartValues) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := utilyaml.Unmarshal(data, v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// repoRoot is the repository's root directory; `go test` runs in test/manifests.
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("repository root not found at %s: %w", root, err)
	}
	return root, nil
}

// toolPath is $env, else bin/<name> of the repository. A missing tool is an error that names
// the make target installing it: a packaging test that silently does not run protects nothing.
func toolPath(root, env, name, makeTarget string) (string, error) {
	path := os.Getenv(env)
	if path == "" {
		path = filepath.Join(root, "bin", name)
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s is not installed at %s (%v): run `make %s` (`make test` does it for you) or set %s",
			name, path, err, makeTarget, env)
	}
	return path, nil
}

// runTool runs bin with args and returns its standard output; on failure the error carries
// its standard error. env nil means the test's environment.
func runTool(env []string, bin string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// decodeObjects splits a multi-document YAML stream into objects. Documents that hold only
// comments (helm leaves them for disabled templates) are skipped; anything else that is not a
// Kubernetes object (no apiVersion or kind) is an error.
func decodeObjects(data []byte) ([]*unstructured.Unstructured, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objects []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects, nil
		}
		if err != nil {
			return nil, err
		}
		js, err := utilyaml.ToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(objects)+1, err)
		}
		if trimmed := bytes.TrimSpace(js); len(trimmed) == 0 || string(trimmed) == "null" {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(js); err != nil {
			return nil, fmt.Errorf("document %d: %w:\n%s", len(objects)+1, err, doc)
		}
		objects = append(objects, obj)
	}
}

// ofKind returns the rendering's objects of kind.
func (r rendering) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, obj := range r.objects {
		if obj.GetKind() == kind {
			out = append(out, obj)
		}
	}
	return out
}

// find returns the object of kind named name (namespace "" for cluster-scoped objects), or nil.
func (r rendering) find(kind, namespace, name string) *unstructured.Unstructured {
	for _, obj := range r.ofKind(kind) {
		if obj.GetNamespace() == namespace && obj.GetName() == name {
			return obj
		}
	}
	return nil
}

// kinds counts the rendering's objects by kind.
func (r rendering) kinds() map[string]int {
	counts := map[string]int{}
	for _, obj := range r.objects {
		counts[obj.GetKind()]++
	}
	return counts
}

// describe names an object in messages: Kind namespace/name.
func describe(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetKind() + " " + obj.GetName()
	}
	return obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
}

// sortedKeys returns m's keys in order, for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
