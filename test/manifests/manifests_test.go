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
	"cmp"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
