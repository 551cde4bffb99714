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
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// usedVerbs is every permission the manager's code needs, resource by resource, and why. Reads
// are get/list/watch together (list already discloses what get would); writes are exactly the
// calls the code makes. A marker that adds a verb must add it here with its reason.
var usedVerbs = map[string][]string{
	// Cached (list/watch); the finalizer and annotations are merge patches.
	"payments.clinicpay.dev/stripeintegrations": {"get", "list", "patch", "watch"},
	// The status is written once per pass with a merge patch.
	"payments.clinicpay.dev/stripeintegrations/status": {"patch"},
	// Owned objects carry blockOwnerDeletion, which needs update on the owner's finalizers.
	"payments.clinicpay.dev/stripeintegrations/finalizers": {"update"},
	// Credentials and the signing Secret are read directly; Secret metadata is watched; the
	// signing Secret is created and updated; the credentials-in-use finalizer is patched.
	"/secrets": {"create", "get", "list", "patch", "update", "watch"},
	// The event recorder creates Events and patches repeats.
	"events.k8s.io/events": {"create", "patch"},
	// Receiver objects are server-side applied (create + patch) and cached; garbage
	// collection removes them with their owner.
	"apps/deployments":                  {"create", "delete", "get", "list", "patch", "watch"},
	"/services":                         {"create", "delete", "get", "list", "patch", "watch"},
	"networking.k8s.io/networkpolicies": {"create", "get", "list", "patch", "watch"},
	// ... except that a Deployment an older version created under an unsanitised dotted name is
	// deleted (deleteLegacyReceiver), a receiver Service an older version created with a
	// ClusterIP (immutable) is deleted for its headless replacement (deleteClusterIPService), and
	// an Ingress is deleted when spec.webhook.ingress goes away (deleteStaleIngress).
	"networking.k8s.io/ingresses": {"create", "delete", "get", "list", "patch", "watch"},
	// ... and the receiver's PodDisruptionBudget is deleted when its replicas drop below two
	// (applyReceiverDisruptionBudget).
	"policy/poddisruptionbudgets": {"create", "delete", "get", "list", "patch", "watch"},
}

// TestManagerRoleGrantsOnlyUsedVerbs checks config/rbac/role.yaml (generated from the
// +kubebuilder:rbac markers, and copied into the chart) against usedVerbs: no verb the code
// never uses (delete on Secrets, NetworkPolicies; update where only
// patches are sent), no wildcard, nothing missing.
func TestManagerRoleGrantsOnlyUsedVerbs(t *testing.T) {
	t.Parallel()
	granted := map[string][]string{}
	for _, rule := range generatedManagerRules(t, mustRoot(t)) {
		if len(rule.NonResourceURLs) > 0 || len(rule.ResourceNames) > 0 {
			t.Errorf("unexpected rule shape: %s", formatRules([]rbacv1.PolicyRule{rule}))
		}
		for _, group := range rule.APIGroups {
			for _, resource := range rule.Resources {
				key := group + "/" + resource
				granted[key] = append(granted[key], rule.Verbs...)
			}
		}
	}
	for key, verbs := range granted {
		slices.Sort(verbs)
		granted[key] = slices.Compact(verbs)
		if slices.Contains(verbs, rbacv1.VerbAll) || strings.Contains(key, rbacv1.ResourceAll) {
			t.Errorf("%s: wildcard grant %q", key, verbs)
		}
	}
	for _, key := range sortedKeys(usedVerbs) {
		if !slices.Equal(granted[key], usedVerbs[key]) {
			t.Errorf("config/rbac/role.yaml grants %q on %s; the code uses exactly %q", granted[key], key, usedVerbs[key])
		}
	}
	for _, key := range sortedKeys(granted) {
		if _, ok := usedVerbs[key]; !ok {
			t.Errorf("config/rbac/role.yaml grants %q on %s, which the manager never touches", granted[key], key)
		}
	}
}

// TestNamespacedInstallGrantsNoClusterWideSecretAccess checks the namespace-scoped installs
// (config/namespaced, the chart with watchNamespaces): the manager is told to watch exactly the
// namespaces it holds Roles in, no ClusterRole of the install grants anything on Secrets, and
// nothing binds the manager's rules outside the watched namespaces.
func TestNamespacedInstallGrantsNoClusterWideSecretAccess(t *testing.T) {
	t.Parallel()
	checked := 0
	for _, r := range mustRender(t) {
		if r.watchNamespaces == nil {
			continue
		}
		checked++
		t.Run(r.name, func(t *testing.T) {
			deploy, manager := managerDeployment(t, r)
			flags := managerFlags(t, manager)
			if got := strings.Split(flags["watch-namespaces"], ","); !slices.Equal(sortedCopy(got), r.watchNamespaces) {
				t.Errorf("--watch-namespaces=%q, want the namespaces it holds Roles in: %v", flags["watch-namespaces"], r.watchNamespaces)
			}
			for _, kind := range []string{"ClusterRole", "Role"} {
				for _, role := range r.ofKind(kind) {
					grantsSecrets := slices.ContainsFunc(policyRules(t, role), func(rule rbacv1.PolicyRule) bool {
						return (slices.Contains(rule.APIGroups, "") || slices.Contains(rule.APIGroups, rbacv1.APIGroupAll)) &&
							(slices.Contains(rule.Resources, "secrets") || slices.Contains(rule.Resources, rbacv1.ResourceAll))
					})
					switch {
					case grantsSecrets && kind == "ClusterRole":
						t.Errorf("%s grants access to Secrets cluster-wide", describe(role))
					case grantsSecrets && !slices.Contains(r.watchNamespaces, role.GetNamespace()):
						t.Errorf("%s grants access to Secrets outside the watched namespaces %v", describe(role), r.watchNamespaces)
					}
				}
			}
			_, inNamespace := serviceAccountRules(t, r, deploy.Namespace, deploy.Spec.Template.Spec.ServiceAccountName)
			for _, ns := range sortedKeys(inNamespace) {
				if !slices.Contains(r.watchNamespaces, ns) && allows(inNamespace[ns], "", "secrets", "get") {
					t.Errorf("the manager may read Secrets in %s, which it does not watch", ns)
				}
			}
			for _, ns := range r.watchNamespaces {
				for _, verb := range []string{"get", "create", "update"} {
					if !allows(inNamespace[ns], "", "secrets", verb) {
						t.Errorf("the manager may not %s Secrets in the watched namespace %s", verb, ns)
					}
				}
			}
		})
	}
	if checked == 0 {
		t.Fatal("no namespace-scoped rendering: the check would pass vacuously")
	}
}

// grantsInWatched reports whether obj is a Role or RoleBinding in one of the namespaces a
// namespace-scoped install watches, where they belong instead of in the install's namespace.
func (r rendering) grantsInWatched(obj *unstructured.Unstructured) bool {
	return (obj.GetKind() == "Role" || obj.GetKind() == "RoleBinding") && slices.Contains(r.watchNamespaces, obj.GetNamespace())
}

// checkManagerPodSelector checks --manager-pod-selector, which the receivers' NetworkPolicy
// admits to their webhook port for replays: it must select the manager's pods, and only pods
// labelled like them.
func checkManagerPodSelector(t *testing.T, flags map[string]string, podLabels map[string]string) {
	t.Helper()
	value, ok := flags["manager-pod-selector"]
	if !ok || value == "" {
		t.Error("no --manager-pod-selector: a restricted receiver webhook port would admit every pod of the manager's namespace")
		return
	}
	sel, err := metav1.ParseToLabelSelector(value)
	if err != nil {
		t.Errorf("--manager-pod-selector=%q: %v", value, err)
		return
	}
	if !selects(t, sel, podLabels) {
		t.Errorf("--manager-pod-selector=%q does not select the manager's pods %v", value, podLabels)
	}
	if s, _ := metav1.LabelSelectorAsSelector(sel); s.Matches(labels.Set{"app.kubernetes.io/name": "other"}) {
		t.Errorf("--manager-pod-selector=%q selects unrelated pods", value)
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
