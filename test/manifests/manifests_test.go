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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/clinicpay/stripe-operator/test/testreport"
)

// mustRender returns every rendering (see renderAll), failing the test when one cannot be made.
func mustRender(t *testing.T) []rendering {
	t.Helper()
	renderings, err := renderAll()
	if err != nil {
		t.Fatal(err)
	}
	return renderings
}

// mustRoot returns the repository root.
func mustRoot(t *testing.T) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// mustDecodeFile decodes the objects in a YAML file.
func mustDecodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objects, err := decodeObjects(data)
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return objects
}

// TestRenderingsHoldTheExpectedObjects pins what each packaging installs, kind by kind, so that
// a template that renders nothing (or twice) cannot go unnoticed, and checks that every object
// but the CRD carries the installation's name prefix, so two installations cannot collide.
func TestRenderingsHoldTheExpectedObjects(t *testing.T) {
	for _, r := range mustRender(t) {
		t.Run(r.name, func(t *testing.T) {
			if got := r.kinds(); !maps.Equal(got, r.wantKinds) {
				t.Errorf("rendered kinds %v, want %v", got, r.wantKinds)
			}
			for _, obj := range r.objects {
				if obj.GetKind() != "CustomResourceDefinition" && !strings.HasPrefix(obj.GetName(), r.prefix) {
					t.Errorf("%s: name lacks the prefix %q", describe(obj), r.prefix)
				}
			}
		})
	}
}

// TestManifestsAreAcceptedByTheAPIServer applies every rendered object to a real kube-apiserver
// with a server-side-apply dry run: the apiserver validates each against its schema (the CRD's
// for custom resources) and runs admission, so a typo in a field, a wrong apiVersion, a missing
// namespace or an invalid value fails here rather than at a platform team's `kubectl apply`.
// Namespaces and CRDs are created for real first, because the dry run stores nothing and other
// objects need them. Finally a Pod made from the manager's pod template is dry-run created in a
// namespace that enforces the restricted Pod Security Standard.
func TestManifestsAreAcceptedByTheAPIServer(t *testing.T) {
	renderings := mustRender(t)
	cfg := startControlPlane(t)
	for _, r := range renderings {
		t.Run(r.name, func(t *testing.T) {
			ctx := t.Context()
			c, warnings := newClient(t, cfg)

			namespaces := map[string]bool{r.namespace: true}
			for _, obj := range r.objects {
				if ns := obj.GetNamespace(); ns != "" {
					namespaces[ns] = true
				}
			}
			for _, name := range sortedKeys(namespaces) {
				ns := r.find("Namespace", "", name)
				if ns == nil {
					ns = restrictedNamespace(name)
				}
				if err := applyForReal(ctx, c, ns); err != nil {
					t.Fatalf("creating namespace %s: %v", name, err)
				}
			}
			for _, crd := range r.ofKind("CustomResourceDefinition") {
				if err := applyForReal(ctx, c, crd); err != nil {
					t.Fatalf("creating %s: %v", describe(crd), err)
				}
				if err := waitForEstablishedCRD(ctx, c, crd.GetName()); err != nil {
					t.Fatalf("%s is not established: %v", describe(crd), err)
				}
			}
			if w := warnings.take(); len(w) > 0 {
				t.Errorf("apiserver warnings while creating namespaces and CRDs: %q", w)
			}

			accepted := 0
			for _, obj := range r.objects {
				namespaced, err := c.IsObjectNamespaced(obj)
				if err != nil {
					t.Errorf("%s: the apiserver does not serve its kind: %v", describe(obj), err)
					continue
				}
				if namespaced && obj.GetNamespace() != r.namespace && !r.grantsInWatched(obj) {
					t.Errorf("%s: want it in namespace %q", describe(obj), r.namespace)
				}
				if !namespaced && obj.GetNamespace() != "" {
					t.Errorf("%s: cluster-scoped, yet it sets a namespace", describe(obj))
				}
				if err := applyDryRun(ctx, c, obj); err != nil {
					t.Errorf("%s: rejected: %v", describe(obj), err)
					continue
				}
				if w := warnings.take(); len(w) > 0 {
					t.Errorf("%s: apiserver warnings: %q", describe(obj), w)
				}
				accepted++
			}
			if accepted == 0 || accepted != len(r.objects) {
				t.Errorf("the apiserver accepted %d of %d objects", accepted, len(r.objects))
			}

			deploy, _ := managerDeployment(t, r)
			pod := podFromTemplate(deploy.Namespace, deploy.Name, deploy.Spec.Template)
			if err := c.Create(ctx, pod, client.DryRunAll, client.FieldOwner(fieldOwner)); err != nil {
				t.Errorf("a pod of Deployment %s is refused in a namespace enforcing the restricted Pod Security Standard: %v",
					deploy.Name, err)
			}
			if w := warnings.take(); len(w) > 0 {
				t.Errorf("apiserver warnings for a pod of Deployment %s: %q", deploy.Name, w)
			}
		})
	}
}

// TestManagerIsHardened checks the manager's Deployment in every packaging: leader election,
// metrics over HTTPS behind authn/authz on :8443, health probes on the probe port, resource
// requests and a memory limit, at least two replicas, and the restricted security contexts.
func TestManagerIsHardened(t *testing.T) {
	for _, r := range mustRender(t) {
		t.Run(r.name, func(t *testing.T) {
			deploy, manager := managerDeployment(t, r)
			flags := managerFlags(t, manager)

			if !flagIsTrue(flags, "leader-elect") {
				t.Errorf("leader election is off: args %q", manager.Args)
			}
			if got := flags["metrics-bind-address"]; got != ":8443" {
				t.Errorf("--metrics-bind-address=%q, want :8443", got)
			}
			if !flagIsTrue(flags, "metrics-secure") {
				t.Errorf("--metrics-secure is not set to true: args %q", manager.Args)
			}
			if replicas := ptr.Deref(deploy.Spec.Replicas, 1); replicas < 2 {
				t.Errorf("%d replica(s): want at least 2, one standing by for the leader", replicas)
			}

			healthPort := bindPort(flags["health-probe-bind-address"])
			if healthPort == 0 {
				t.Errorf("no --health-probe-bind-address with a port: args %q", manager.Args)
			}
			for _, p := range []struct {
				name  string
				probe *corev1.Probe
				path  string
			}{
				{"liveness", manager.LivenessProbe, "/healthz"},
				{"readiness", manager.ReadinessProbe, "/readyz"},
			} {
				switch {
				case p.probe == nil || p.probe.HTTPGet == nil:
					t.Errorf("no HTTP %s probe", p.name)
				case p.probe.HTTPGet.Path != p.path:
					t.Errorf("%s probe path %q, want %q", p.name, p.probe.HTTPGet.Path, p.path)
				case containerPort(manager, p.probe.HTTPGet.Port) != healthPort:
					t.Errorf("%s probe port %s is not the health probe port %d", p.name, p.probe.HTTPGet.Port.String(), healthPort)
				}
			}

			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q := manager.Resources.Requests[res]; q.IsZero() {
					t.Errorf("no %s request", res)
				}
			}
			if q := manager.Resources.Limits[corev1.ResourceMemory]; q.IsZero() {
				t.Error("no memory limit")
			}

			checkRestricted(t, deploy.Spec.Template.Spec)

			if ns := r.find("Namespace", "", r.namespace); ns != nil {
				if got := ns.GetLabels()["pod-security.kubernetes.io/enforce"]; got != "restricted" {
					t.Errorf("%s enforces Pod Security level %q, want restricted", describe(ns), got)
				}
			}
		})
	}
}

// checkRestricted checks a pod spec against the restricted Pod Security Standard and a
// read-only root filesystem, container by container (a container inherits runAsNonRoot and
// seccompProfile from the pod's security context).
func checkRestricted(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("the pod shares a host namespace")
	}
	pod := ptr.Deref(spec.SecurityContext, corev1.PodSecurityContext{})
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		sc := ptr.Deref(c.SecurityContext, corev1.SecurityContext{})
		if !ptr.Deref(cmp.Or(sc.RunAsNonRoot, pod.RunAsNonRoot), false) {
			t.Errorf("container %s: runAsNonRoot is not true", c.Name)
		}
		if seccomp := cmp.Or(sc.SeccompProfile, pod.SeccompProfile); seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("container %s: seccomp profile is not RuntimeDefault", c.Name)
		}
		if ptr.Deref(sc.AllowPrivilegeEscalation, true) {
			t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
		}
		if ptr.Deref(sc.Privileged, false) {
			t.Errorf("container %s: privileged", c.Name)
		}
		caps := ptr.Deref(sc.Capabilities, corev1.Capabilities{})
		if !slices.Contains(caps.Drop, "ALL") {
			t.Errorf("container %s: capabilities do not drop ALL: %v", c.Name, caps.Drop)
		}
		if len(caps.Add) > 0 {
			t.Errorf("container %s: adds capabilities %v", c.Name, caps.Add)
		}
		if !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
			t.Errorf("container %s: root filesystem is writable", c.Name)
		}
	}
}

// TestManagerFlagsExist checks that the manager is started as the image's /manager with flags
// the binary defines: the flag package exits at an unknown flag, so a misspelt one would
// crash-loop the operator.
func TestManagerFlagsExist(t *testing.T) {
	known := knownManagerFlags(t, mustRoot(t))
	for _, r := range mustRender(t) {
		t.Run(r.name, func(t *testing.T) {
			_, manager := managerDeployment(t, r)
			if !slices.Equal(manager.Command, []string{"/manager"}) {
				t.Errorf("command %q, want [/manager] (the Dockerfile's binary)", manager.Command)
			}
			for _, name := range sortedKeys(managerFlags(t, manager)) {
				if !known[name] {
					t.Errorf("--%s is not a flag of the manager (cmd/*.go defines %v)", name, sortedKeys(known))
				}
			}
		})
	}
}

// TestReferencesResolve checks the links between objects that the apiserver does not: roles
// bound to the manager's ServiceAccount grant what the manager needs, Services and the
// NetworkPolicy select the manager's pods and target ports it declares, and the ServiceMonitor
// finds the metrics Service.
func TestReferencesResolve(t *testing.T) {
	root := mustRoot(t)
	managerRules := generatedManagerRules(t, root)
	for _, r := range mustRender(t) {
		t.Run(r.name, func(t *testing.T) {
			deploy, manager := managerDeployment(t, r)
			podLabels := deploy.Spec.Template.Labels
			if !selects(t, deploy.Spec.Selector, podLabels) {
				t.Errorf("Deployment %s: selector %v does not select its pod labels %v", deploy.Name, deploy.Spec.Selector, podLabels)
			}
			sa := deploy.Spec.Template.Spec.ServiceAccountName
			if r.find("ServiceAccount", deploy.Namespace, sa) == nil {
				t.Errorf("Deployment %s runs as ServiceAccount %q, which is not installed", deploy.Name, sa)
			}
			checkBindings(t, r)

			cluster, inNamespace := serviceAccountRules(t, r, deploy.Namespace, sa)
			// Cluster-wide, or in each watched namespace of a namespace-scoped install.
			scopes := map[string][]rbacv1.PolicyRule{"cluster-wide": cluster}
			if r.watchNamespaces != nil {
				scopes = map[string][]rbacv1.PolicyRule{}
				for _, ns := range r.watchNamespaces {
					scopes["in namespace "+ns] = inNamespace[ns]
				}
			}
			for _, scope := range sortedKeys(scopes) {
				for _, rule := range managerRules {
					for _, group := range rule.APIGroups {
						for _, resource := range rule.Resources {
							for _, verb := range rule.Verbs {
								if !allows(scopes[scope], group, resource, verb) {
									t.Errorf("the manager may not %s %s in group %q %s (config/rbac/role.yaml needs it)", verb, resource, group, scope)
								}
							}
						}
					}
				}
			}
			checkManagerPodSelector(t, managerFlags(t, manager), podLabels)
			if !allows(cluster, "authentication.k8s.io", "tokenreviews", "create") ||
				!allows(cluster, "authorization.k8s.io", "subjectaccessreviews", "create") {
				t.Error("the manager may not create TokenReviews and SubjectAccessReviews, which its secure metrics endpoint needs")
			}
			for _, verb := range []string{"get", "create", "update"} {
				if !allows(inNamespace[deploy.Namespace], "coordination.k8s.io", "leases", verb) {
					t.Errorf("the manager may not %s leases in %s, which leader election needs", verb, deploy.Namespace)
				}
			}
			for _, role := range r.ofKind("ClusterRole") {
				if !isAggregated(role) {
					continue
				}
				for _, verb := range []string{"get", "list", "watch"} {
					if allows(policyRules(t, role), "", "secrets", verb) {
						t.Errorf("%s is aggregated into the built-in user roles, yet grants %s on Secrets", describe(role), verb)
					}
				}
			}

			metricsPort := bindPort(managerFlags(t, manager)["metrics-bind-address"])
			checkMetricsService(t, r, manager, podLabels, metricsPort)
			for _, obj := range r.ofKind("NetworkPolicy") {
				checkNetworkPolicy(t, obj, manager, podLabels, metricsPort)
			}
			for _, obj := range r.ofKind("ServiceMonitor") {
				if !isReceiverMonitor(obj) {
					checkServiceMonitor(t, r, obj)
				}
			}
		})
	}
}

// isAggregated reports whether a ClusterRole is aggregated into the built-in view/edit/admin.
func isAggregated(role *unstructured.Unstructured) bool {
	for key := range role.GetLabels() {
		if strings.HasPrefix(key, "rbac.authorization.k8s.io/aggregate-to-") {
			return true
		}
	}
	return false
}

// checkBindings checks that every binding names a role and ServiceAccounts of the rendering.
func checkBindings(t *testing.T, r rendering) {
	t.Helper()
	check := func(obj *unstructured.Unstructured, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
		roleNamespace := obj.GetNamespace()
		if ref.Kind == "ClusterRole" {
			roleNamespace = ""
		}
		if r.find(ref.Kind, roleNamespace, ref.Name) == nil {
			t.Errorf("%s: roleRef %s %s is not installed", describe(obj), ref.Kind, ref.Name)
		}
		if len(subjects) == 0 {
			t.Errorf("%s: no subjects", describe(obj))
		}
		for _, s := range subjects {
			if s.Kind == rbacv1.ServiceAccountKind && r.find("ServiceAccount", s.Namespace, s.Name) == nil {
				t.Errorf("%s: subject ServiceAccount %s/%s is not installed", describe(obj), s.Namespace, s.Name)
			}
		}
	}
	for _, obj := range r.ofKind("ClusterRoleBinding") {
		b := &rbacv1.ClusterRoleBinding{}
		fromUnstructured(t, obj, b)
		check(obj, b.RoleRef, b.Subjects)
	}
	for _, obj := range r.ofKind("RoleBinding") {
		b := &rbacv1.RoleBinding{}
		fromUnstructured(t, obj, b)
		check(obj, b.RoleRef, b.Subjects)
	}
}

// checkMetricsService checks the rendering's only Service: it selects the manager's pods and
// exposes the metrics port, which the container declares.
func checkMetricsService(t *testing.T, r rendering, manager *corev1.Container, podLabels map[string]string, metricsPort int32) {
	t.Helper()
	services := r.ofKind("Service")
	if len(services) != 1 {
		t.Errorf("want one (metrics) Service, got %d", len(services))
		return
	}
	svc := &corev1.Service{}
	fromUnstructured(t, services[0], svc)
	if !selects(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, podLabels) {
		t.Errorf("Service %s: selector %v does not select the manager's pods %v", svc.Name, svc.Spec.Selector, podLabels)
	}
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s: want one port, got %d", svc.Name, len(svc.Spec.Ports))
	}
	port := svc.Spec.Ports[0]
	if target := containerPort(manager, port.TargetPort); target != metricsPort || !declaresPort(manager, target) {
		t.Errorf("Service %s: targetPort %s is not the metrics port %d declared by the container", svc.Name, port.TargetPort.String(), metricsPort)
	}
	if port.Name != "https" {
		t.Errorf("Service %s: port named %q, want https", svc.Name, port.Name)
	}
}

// checkNetworkPolicy checks that the NetworkPolicy applies to the manager's pods and admits
// the metrics port.
func checkNetworkPolicy(t *testing.T, obj *unstructured.Unstructured, manager *corev1.Container, podLabels map[string]string, metricsPort int32) {
	t.Helper()
	np := &networkingv1.NetworkPolicy{}
	fromUnstructured(t, obj, np)
	if !selects(t, &np.Spec.PodSelector, podLabels) {
		t.Errorf("%s: podSelector does not select the manager's pods %v", describe(obj), podLabels)
	}
	var ports []int32
	for _, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 {
			t.Errorf("%s: an ingress rule admits every source", describe(obj))
		}
		for _, p := range rule.Ports {
			if p.Port != nil {
				ports = append(ports, containerPort(manager, *p.Port))
			}
		}
	}
	if !slices.Equal(ports, []int32{metricsPort}) {
		t.Errorf("%s: admits ports %v, want only the metrics port %d", describe(obj), ports, metricsPort)
	}
}

// checkServiceMonitor checks that the ServiceMonitor selects exactly the metrics Service in
// the release namespace and scrapes its port with the matching scheme.
func checkServiceMonitor(t *testing.T, r rendering, obj *unstructured.Unstructured) {
	t.Helper()
	selector := &metav1.LabelSelector{}
	raw, _, _ := unstructured.NestedMap(obj.Object, "spec", "selector")
	fromUnstructured(t, &unstructured.Unstructured{Object: raw}, selector)
	var selected []*corev1.Service
	for _, s := range r.ofKind("Service") {
		if selects(t, selector, s.GetLabels()) {
			svc := &corev1.Service{}
			fromUnstructured(t, s, svc)
			selected = append(selected, svc)
		}
	}
	if len(selected) != 1 {
		t.Fatalf("%s: selects %d Services, want the metrics Service only", describe(obj), len(selected))
	}
	if names, found, _ := unstructured.NestedStringSlice(obj.Object, "spec", "namespaceSelector", "matchNames"); found &&
		!slices.Contains(names, r.namespace) {
		t.Errorf("%s: namespaceSelector %v leaves out %s", describe(obj), names, r.namespace)
	}
	endpoints, _, _ := unstructured.NestedSlice(obj.Object, "spec", "endpoints")
	if len(endpoints) == 0 {
		t.Fatalf("%s: no endpoints", describe(obj))
	}
	for _, e := range endpoints {
		endpoint, _ := e.(map[string]any)
		port, scheme := fmt.Sprint(endpoint["port"]), fmt.Sprint(endpoint["scheme"])
		if !slices.ContainsFunc(selected[0].Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == port }) {
			t.Errorf("%s: endpoint port %q is not a port of Service %s", describe(obj), port, selected[0].Name)
		}
		if scheme != "https" || endpoint["bearerTokenFile"] == nil {
			t.Errorf("%s: endpoint scrapes with scheme %q and bearer token %v, want https with the ServiceAccount token",
				describe(obj), scheme, endpoint["bearerTokenFile"])
		}
	}
}

// TestChartCRDsAreTheGeneratedCRDs checks that the chart ships exactly the CRDs `make manifests`
// generates into config/crd/bases, byte for byte.
func TestChartCRDsAreTheGeneratedCRDs(t *testing.T) {
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

// TestChartOptionalPartsTurnOff renders the chart with metrics and leader election off: the
// manager gets --metrics-bind-address=0 and no --leader-elect, and the objects that only served
// those (metrics Service and RBAC, leader-election Role) are left out.
func TestChartOptionalPartsTurnOff(t *testing.T) {
	root := mustRoot(t)
	out, err := runHelm(root, "template", "stripe-operator", filepath.Join(root, chartDir), "--namespace", "single",
		"--set", "metrics.enabled=false,leaderElection=false,replicaCount=1")
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
