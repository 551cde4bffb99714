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

// The Helm chart: its CRDs, RBAC, values and refusals agree with config/ and with what the manager reads.

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"

	"github.com/clinicpay/stripe-operator/test/testreport"
)

// TestChartCRDsAreTheGeneratedCRDs checks that the chart ships exactly the CRDs `make manifests`
// generates into config/crd/bases, byte for byte.
func TestChartCRDsAreTheGeneratedCRDs(t *testing.T) {
	t.Parallel()
	root := mustRoot(t)
	generatedDir := filepath.Join(root, "config", "crd", "bases")
	chartCRDDir := filepath.Join(root, chartDir, "crds")
	generated, err := filepath.Glob(filepath.Join(generatedDir, "*.yaml"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("no CRDs in %s (%v): run `make manifests`", generatedDir, err)
	}
	shipped, err := filepath.Glob(filepath.Join(chartCRDDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := func(paths []string) []string {
		names := make([]string, len(paths))
		for i, p := range paths {
			names[i] = filepath.Base(p)
		}
		return names
	}
	if !slices.Equal(base(generated), base(shipped)) {
		t.Errorf("the chart ships CRDs %v, `make manifests` generates %v: cp config/crd/bases/*.yaml %s/crds/",
			base(shipped), base(generated), chartDir)
	}
	for _, path := range generated {
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(chartCRDDir, filepath.Base(path)))
		if err != nil {
			continue // reported above
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/crds/%s differs from config/crd/bases/%[2]s, which `make manifests` regenerated: "+
				"cp config/crd/bases/%[2]s %[1]s/crds/", chartDir, filepath.Base(path))
		}
	}
}

// TestChartRBACMatchesConfig checks that the chart's manager ClusterRole has exactly the rules of
// config/rbac/role.yaml, which `make manifests` generates from the +kubebuilder:rbac markers,
// and that every other Role and ClusterRole matches its config/rbac counterpart, aggregation
// labels included.
func TestChartRBACMatchesConfig(t *testing.T) {
	t.Parallel()
	generated := generatedManagerRules(t, mustRoot(t))
	renderings := mustRender(t)
	for _, r := range renderings {
		if r.values == nil {
			continue
		}
		// Compare with the kustomize overlay of the same scope: config/default or config/namespaced.
		kustomized := renderings[0]
		if r.watchNamespaces != nil {
			kustomized = renderings[1]
		}
		t.Run(r.name, func(t *testing.T) {
			name := r.prefix + "manager-role"
			var roles []*unstructured.Unstructured
			if r.watchNamespaces == nil {
				roles = append(roles, r.find("ClusterRole", "", name))
			}
			for _, ns := range r.watchNamespaces {
				roles = append(roles, r.find("Role", ns, name))
			}
			for _, role := range roles {
				if role == nil {
					t.Fatalf("the chart lacks a manager role %s (cluster-wide or in each of %v)", name, r.watchNamespaces)
				}
				if got := policyRules(t, role); !reflect.DeepEqual(got, generated) {
					t.Errorf("%s (%s/templates/_helpers.tpl, managerRules) differs from config/rbac/role.yaml, "+
						"which `make manifests` generates: copy its rules over.\nchart:\n%sconfig/rbac/role.yaml:\n%s",
						describe(role), chartDir, formatRules(got), formatRules(generated))
				}
			}

			counterpart := func(from, to rendering, obj *unstructured.Unstructured) *unstructured.Unstructured {
				namespace := ""
				if obj.GetNamespace() != "" {
					namespace = to.namespace
				}
				return to.find(obj.GetKind(), namespace, to.prefix+strings.TrimPrefix(obj.GetName(), from.prefix))
			}
			for _, kind := range []string{"Role", "ClusterRole"} {
				for _, want := range kustomized.ofKind(kind) {
					if want.GetName() == kustomized.prefix+"manager-role" {
						continue // compared with config/rbac/role.yaml above
					}
					got := counterpart(kustomized, r, want)
					if got == nil {
						t.Errorf("the chart lacks the counterpart of config/default's %s", describe(want))
						continue
					}
					// The manager's role was compared with config/rbac/role.yaml above.
					if got.GetName() == name {
						continue
					}
					if g, w := policyRules(t, got), policyRules(t, want); !reflect.DeepEqual(g, w) {
						t.Errorf("%s has other rules than config/default's %s:\nchart:\n%sconfig/default:\n%s",
							describe(got), describe(want), formatRules(g), formatRules(w))
					}
					if g, w := aggregationLabels(got), aggregationLabels(want); !maps.Equal(g, w) {
						t.Errorf("%s is aggregated by %v, config/default's %s by %v", describe(got), g, describe(want), w)
					}
				}
				for _, obj := range r.ofKind(kind) {
					if obj.GetName() == name {
						continue // compared with config/rbac/role.yaml above
					}
					if counterpart(r, kustomized, obj) == nil {
						t.Errorf("config/default has no counterpart of the chart's %s", describe(obj))
					}
				}
			}
		})
	}
}

// aggregationLabels returns a role's rbac.authorization.k8s.io/aggregate-to-* labels.
func aggregationLabels(obj *unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	for k, v := range obj.GetLabels() {
		if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") {
			out[k] = v
		}
	}
	return out
}

// TestChartValuesReachTheManager checks, for the default values and for a values file that
// changes every one of them, that each value ends up where it belongs: manager flags, image,
// pod spec and ServiceMonitor.
func TestChartValuesReachTheManager(t *testing.T) {
	t.Parallel()
	root := mustRoot(t)
	var chart struct {
		APIVersion string `json:"apiVersion"`
		AppVersion string `json:"appVersion"`
	}
	data, err := os.ReadFile(filepath.Join(root, chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := utilyaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}
	if chart.APIVersion != "v2" || chart.AppVersion == "" {
		t.Errorf("Chart.yaml: apiVersion %q and appVersion %q, want v2 and a version", chart.APIVersion, chart.AppVersion)
	}

	for _, r := range mustRender(t) {
		if r.values == nil {
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			v := r.values
			deploy, manager := managerDeployment(t, r)
			pod := deploy.Spec.Template.Spec

			image := v.Image.Repository + ":" + cmp.Or(v.Image.Tag, chart.AppVersion)
			if manager.Image != image || string(manager.ImagePullPolicy) != v.Image.PullPolicy {
				t.Errorf("image %q (pull policy %s), want %q (%s)", manager.Image, manager.ImagePullPolicy, image, v.Image.PullPolicy)
			}
			var pullSecrets, wantPullSecrets []string
			for _, s := range pod.ImagePullSecrets {
				pullSecrets = append(pullSecrets, s.Name)
			}
			for _, s := range v.ImagePullSecrets {
				wantPullSecrets = append(wantPullSecrets, s.Name)
			}
			if !slices.Equal(pullSecrets, wantPullSecrets) {
				t.Errorf("imagePullSecrets %v, want %v", pullSecrets, wantPullSecrets)
			}
			if got := ptr.Deref(deploy.Spec.Replicas, 1); got != v.ReplicaCount {
				t.Errorf("%d replicas, want replicaCount %d", got, v.ReplicaCount)
			}

			flags := managerFlags(t, manager)
			want := map[string]string{
				"stripe-api-url":                   v.StripeAPIURL,
				"stripe-call-timeout":              v.StripeCallTimeout,
				"resync-period":                    v.ResyncPeriod,
				"transient-failure-grace":          v.TransientFailureGrace,
				"first-status-hold":                v.FirstStatusHold,
				"delivery-check-interval":          v.DeliveryCheckInterval,
				"payout-check-interval":            v.PayoutCheckInterval,
				"anomaly-check-interval":           v.AnomalyCheckInterval,
				"max-concurrent-reconciles":        strconv.Itoa(v.MaxConcurrentReconciles),
				"zap-log-level":                    v.LogLevel,
				"receiver-image":                   cmp.Or(v.ReceiverImage, image),
				"metrics-bind-address":             fmt.Sprintf(":%d", v.Metrics.Port),
				"receiver-metrics-from-namespaces": v.ReceiverNetworkPolicy.MetricsFromNamespaces,
			}
			optional := map[string]string{
				"watch-namespaces":                 strings.Join(v.WatchNamespaces, ","),
				"receiver-webhook-from-namespaces": v.ReceiverNetworkPolicy.WebhookFromNamespaces,
				"receiver-webhook-from-pods":       v.ReceiverNetworkPolicy.WebhookFromPods,
				"receiver-metrics-from-pods":       v.ReceiverNetworkPolicy.MetricsFromPods,
				"ingress-annotation-allowlist":     strings.Join(v.IngressAnnotationAllowlist, ","),
			}
			for _, name := range sortedKeys(optional) {
				if optional[name] != "" {
					want[name] = optional[name]
				} else if got, ok := flags[name]; ok {
					t.Errorf("--%s=%q, though its value is empty", name, got)
				}
			}
			if v.WebhookBaseURL != "" {
				want["webhook-base-url"] = v.WebhookBaseURL
			} else if got, ok := flags["webhook-base-url"]; ok {
				t.Errorf("--webhook-base-url=%q without webhookBaseURL", got)
			}
			for _, name := range sortedKeys(want) {
				if got, ok := flags[name]; !ok || got != want[name] {
					t.Errorf("--%s=%q, want %q", name, got, want[name])
				}
			}
			if flagIsTrue(flags, "leader-elect") != v.LeaderElection {
				t.Errorf("leader election %v, want %v", flagIsTrue(flags, "leader-elect"), v.LeaderElection)
			}

			for key, value := range v.PodAnnotations {
				if got := deploy.Spec.Template.Annotations[key]; got != value {
					t.Errorf("pod annotation %s=%q, want %q", key, got, value)
				}
			}
			if !maps.Equal(pod.NodeSelector, v.NodeSelector) {
				t.Errorf("nodeSelector %v, want %v", pod.NodeSelector, v.NodeSelector)
			}
			if !equality.Semantic.DeepEqual(pod.Tolerations, v.Tolerations) {
				t.Errorf("tolerations %+v, want %+v", pod.Tolerations, v.Tolerations)
			}
			if !equality.Semantic.DeepEqual(manager.Resources, v.Resources) {
				t.Errorf("resources %+v, want %+v", manager.Resources, v.Resources)
			}
			if v.Affinity == nil || equality.Semantic.DeepEqual(*v.Affinity, corev1.Affinity{}) {
				// Without affinity values the replicas prefer different nodes.
				anti := pod.Affinity
				if anti == nil || anti.PodAntiAffinity == nil || len(anti.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
					!selects(t, anti.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.LabelSelector, deploy.Spec.Template.Labels) {
					t.Errorf("affinity %+v: want the default anti-affinity between the manager's pods", pod.Affinity)
				}
			} else if !equality.Semantic.DeepEqual(pod.Affinity, v.Affinity) {
				t.Errorf("affinity %+v, want %+v", pod.Affinity, v.Affinity)
			}

			for _, obj := range r.ofKind("NetworkPolicy") {
				np := &networkingv1.NetworkPolicy{}
				fromUnstructured(t, obj, np)
				// The selector of the values file alone: helm merges maps with the chart's defaults,
				// and a default selector would narrow the one a platform team gives.
				given := &chartValues{}
				if r.valuesFile != "" {
					if err := readValues(r.valuesFile, given); err != nil {
						t.Fatal(err)
					}
				}
				want := given.NetworkPolicy.MetricsNamespaceSelector
				if want == nil || equality.Semantic.DeepEqual(*want, metav1.LabelSelector{}) {
					want = &metav1.LabelSelector{MatchLabels: map[string]string{"metrics": "enabled"}}
				}
				for _, rule := range np.Spec.Ingress {
					for _, peer := range rule.From {
						if !equality.Semantic.DeepEqual(peer.NamespaceSelector, want) {
							t.Errorf("%s: admits namespaces %v, want exactly %v", describe(obj), peer.NamespaceSelector, want)
						}
					}
				}
			}
			for _, monitor := range r.ofKind("ServiceMonitor") {
				if isReceiverMonitor(monitor) {
					continue
				}
				for key, value := range v.ServiceMonitor.Labels {
					if got := monitor.GetLabels()[key]; got != value {
						t.Errorf("%s: label %s=%q, want %q", describe(monitor), key, got, value)
					}
				}
				endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
				for _, e := range endpoints {
					if got, _ := e.(map[string]any)["interval"].(string); got != v.ServiceMonitor.Interval {
						t.Errorf("%s: interval %q, want %q", describe(monitor), got, v.ServiceMonitor.Interval)
					}
				}
			}
		})
	}
}

// TestChartOptionalPartsTurnOff renders the chart with metrics, leader election and the finalizer
// policy off: the manager gets --metrics-bind-address=0 and no --leader-elect, and the objects
// that only served those (metrics Service and RBAC, leader-election Role, the admission policy and
// its binding) are left out.
func TestChartOptionalPartsTurnOff(t *testing.T) {
	t.Parallel()
	root := mustRoot(t)
	out, err := runHelm(root, "template", "stripe-operator", filepath.Join(root, chartDir), "--namespace", "single",
		"--set", "metrics.enabled=false,leaderElection=false,replicaCount=1,finalizerPolicy=false")
	if err != nil {
		t.Fatal(err)
	}
	objects, err := decodeObjects(out)
	if err != nil {
		t.Fatal(err)
	}
	r := rendering{name: "metrics and leader election off", namespace: "single", objects: objects}
	want := map[string]int{"ServiceAccount": 1, "ClusterRole": 3, "ClusterRoleBinding": 1, "Deployment": 1}
	if got := r.kinds(); !maps.Equal(got, want) {
		t.Errorf("rendered kinds %v, want %v", got, want)
	}
	_, manager := managerDeployment(t, r)
	flags := managerFlags(t, manager)
	if flags["metrics-bind-address"] != "0" || flagIsTrue(flags, "leader-elect") {
		t.Errorf("args %q: want --metrics-bind-address=0 and no leader election", manager.Args)
	}
	checkRestricted(t, managerPodSpec(t, r))
}

// managerPodSpec returns the manager Deployment's pod spec.
func managerPodSpec(t *testing.T, r rendering) corev1.PodSpec {
	t.Helper()
	deploy, _ := managerDeployment(t, r)
	return deploy.Spec.Template.Spec
}

// TestChartRefusesUnsafeValues checks that the chart fails, with a message saying why, on
// values that would install a broken operator instead of installing it.
func TestChartRefusesUnsafeValues(t *testing.T) {
	t.Parallel()
	root := mustRoot(t)
	for _, tc := range []struct {
		name, set, wantErr string
	}{
		{"replicas without leader election", "leaderElection=false", "leaderElection: false needs replicaCount: 1"},
		{"ServiceMonitor without metrics", "serviceMonitor.enabled=true,metrics.enabled=false", "serviceMonitor.enabled needs metrics.enabled"},
		{"a period that is no Go duration", "resyncPeriod=hourly", "/resyncPeriod"},
		{"a misspelt value", "metrics.enable=true", "additional properties 'enable' not allowed"},
		{"webhook URL without scheme", "webhookBaseURL=hooks.example.com", "/webhookBaseURL"},
		{"a watched namespace that is no namespace name", "watchNamespaces={Clinic_A}", "/watchNamespaces/0"},
		{"a watched namespace twice", "watchNamespaces={clinic-a,clinic-a}", "/watchNamespaces"},
		{"a misspelt receiver NetworkPolicy value", "receiverNetworkPolicy.webhookFrom=x", "additional properties 'webhookFrom' not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHelm(root, "template", "stripe-operator", filepath.Join(root, chartDir), "--set", tc.set)
			if err == nil {
				t.Fatalf("--set %s rendered:\n%s", tc.set, out)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("--set %s failed with %v, want an error saying %q", tc.set, err, tc.wantErr)
			}
		})
	}
}

// TestNoBindingReachesReceivers: receivers run under their namespace's default ServiceAccount with
// no token mounted; no rendered binding may grant that account (or all service accounts)
// anything, so a receiver pod can read nothing from the API, only its mounted signing secret.
func TestNoBindingReachesReceivers(t *testing.T) {
	t.Parallel()
	for _, r := range mustRender(t) {
		t.Run(r.name, func(t *testing.T) {
			bindings := 0
			for _, obj := range r.objects {
				if obj.GetKind() != "RoleBinding" && obj.GetKind() != "ClusterRoleBinding" {
					continue
				}
				bindings++
				var b rbacv1.ClusterRoleBinding // RoleBinding has the same subjects shape
				fromUnstructured(t, obj, &b)
				for _, s := range b.Subjects {
					switch {
					case s.Kind == rbacv1.ServiceAccountKind && s.Name == "default":
						t.Errorf("%s %s binds a default ServiceAccount, which receivers run as", obj.GetKind(), obj.GetName())
					case s.Kind == rbacv1.GroupKind && strings.HasPrefix(s.Name, "system:serviceaccounts"):
						t.Errorf("%s %s binds the group %s, which includes the receivers' accounts", obj.GetKind(), obj.GetName(), s.Name)
					case s.Kind == rbacv1.GroupKind && (s.Name == "system:authenticated" || s.Name == "system:unauthenticated"):
						t.Errorf("%s %s binds %s", obj.GetKind(), obj.GetName(), s.Name)
					}
				}
			}
			if bindings == 0 {
				t.Fatal("no bindings rendered: the check would pass vacuously")
			}
			testreport.Report(t,
				"%d RoleBindings and ClusterRoleBindings rendered: none reaches a default ServiceAccount (receivers' identity, no token mounted) or an "+
					"all-accounts group", bindings)
		})
	}
}
