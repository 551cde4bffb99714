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
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/clinicpay/stripe-operator/test/admissionpolicy"
)

// operatorFinalizer is the finalizer the policy adds.
const operatorFinalizer = admissionpolicy.Finalizer

// TestFinalizerPolicyAddsTheFinalizerAtCreation installs the finalizer policy of each packaging
// into a real kube-apiserver, one after the other, and creates StripeIntegrations (dry run: the
// apiserver admits, mutates and validates them, and answers with what it would store). Where the
// binding applies, the answer carries the operator's finalizer: once, beside any other finalizer,
// and not twice when the creator listed it already. Outside a namespace-scoped install's watched
// namespaces it carries none, since no operator there would ever release it.
func TestFinalizerPolicyAddsTheFinalizerAtCreation(t *testing.T) {
	t.Parallel()
	byName := map[string]rendering{}
	for _, r := range mustRender(t) {
		byName[r.name] = r
	}
	cfg := startControlPlane(t)
	ctx := t.Context()
	c, _ := newClient(t, cfg)
	for _, ns := range []string{"clinic-a", "clinic-b", "clinics", "elsewhere"} {
		if err := applyForReal(ctx, c, restrictedNamespace(ns)); err != nil {
			t.Fatal(err)
		}
	}
	crd := byName["kustomize "+defaultDir].ofKind("CustomResourceDefinition")[0]
	if err := applyForReal(ctx, c, crd); err != nil {
		t.Fatal(err)
	}
	if err := waitForEstablishedCRD(ctx, c, crd.GetName()); err != nil {
		t.Fatal(err)
	}
	// Discovery serves the new kind a moment after Established.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		c, _ = newClient(t, cfg)
		return c.Create(ctx, testIntegration("default", nil), client.DryRunAll) == nil, nil
	})
	if err != nil {
		t.Fatalf("the apiserver does not serve StripeIntegrations: %v", err)
	}

	steps := []struct {
		rendering     string
		covered, left []string
	}{
		{"helm (all optional values)", []string{"clinic-a", "clinic-b"}, []string{"clinics", "elsewhere"}},
		{"kustomize " + namespacedDir, []string{"clinics"}, []string{"clinic-a", "elsewhere"}},
		{"kustomize " + defaultDir, []string{"elsewhere", "clinics"}, nil},
	}
	for _, step := range steps {
		r, ok := byName[step.rendering]
		if !ok {
			t.Fatalf("no rendering %q", step.rendering)
		}
		installed := append(r.ofKind("MutatingAdmissionPolicy"), r.ofKind("MutatingAdmissionPolicyBinding")...)
		if len(installed) != 2 {
			t.Fatalf("%s: %d admission objects, want a policy and its binding", r.name, len(installed))
		}
		for _, obj := range installed {
			if err := applyForReal(ctx, c, obj); err != nil {
				t.Fatalf("%s: installing %s: %v", r.name, describe(obj), err)
			}
		}
		// The apiserver loads policies and bindings from its own informers: wait until it acts.
		waitForFinalizer(ctx, t, c, r.name, step.covered[0])
		for _, ns := range step.covered {
			for _, given := range [][]string{nil, {operatorFinalizer}, {"example.com/keep"}} {
				got := createdFinalizers(ctx, t, c, ns, given)
				want := append(slices.Clone(given), operatorFinalizer)
				if slices.Contains(given, operatorFinalizer) {
					want = given
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s: created in %s with finalizers %q, the apiserver stores %q, want %q", r.name, ns, given, got, want)
				}
			}
		}
		for _, ns := range step.left {
			if got := createdFinalizers(ctx, t, c, ns, nil); len(got) != 0 {
				t.Errorf("%s: created in %s, which the install does not watch, it gets finalizers %q; want none", r.name, ns, got)
			}
		}
		for _, obj := range installed {
			if err := c.Delete(ctx, obj); err != nil {
				t.Fatalf("%s: removing %s: %v", r.name, describe(obj), err)
			}
		}
		// Until the apiserver has unloaded them, the next step would still see them act.
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			return len(createdFinalizers(ctx, t, c, step.covered[0], nil)) == 0, nil
		})
		if err != nil {
			t.Fatalf("%s: still acting after its removal: %v", r.name, err)
		}
	}
}

// TestFinalizerPolicyBindingResolves: each packaging's binding names its own policy, binds it in
// the watched namespaces exactly (everywhere when the install watches the whole cluster), and the
// policy fails open, so an apiserver that cannot run it still creates integrations (the operator
// then adds the finalizer itself).
func TestFinalizerPolicyBindingResolves(t *testing.T) {
	t.Parallel()
	for _, r := range mustRender(t) {
		t.Run(r.name, func(t *testing.T) {
			for _, obj := range r.ofKind("MutatingAdmissionPolicyBinding") {
				b := &admissionv1.MutatingAdmissionPolicyBinding{}
				fromUnstructured(t, obj, b)
				policy := r.find("MutatingAdmissionPolicy", "", b.Spec.PolicyName)
				if policy == nil {
					t.Fatalf("%s: policy %q is not installed", describe(obj), b.Spec.PolicyName)
				}
				p := &admissionv1.MutatingAdmissionPolicy{}
				fromUnstructured(t, policy, p)
				if p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionv1.Ignore {
					t.Errorf("%s: failurePolicy %v, want Ignore", describe(policy), p.Spec.FailurePolicy)
				}
				var bound []string
				if m := b.Spec.MatchResources; m != nil && m.NamespaceSelector != nil {
					for _, e := range m.NamespaceSelector.MatchExpressions {
						if e.Key == "kubernetes.io/metadata.name" && e.Operator == metav1.LabelSelectorOpIn {
							bound = append(bound, e.Values...)
						}
					}
					if len(m.NamespaceSelector.MatchLabels) > 0 || len(m.NamespaceSelector.MatchExpressions) != 1 {
						t.Errorf("%s: namespace selector %v, want only the watched namespaces' names", describe(obj), m.NamespaceSelector)
					}
				}
				if !slices.Equal(sortedCopy(bound), r.watchNamespaces) {
					t.Errorf("%s: bound in namespaces %q, want %q (nil: all)", describe(obj), bound, r.watchNamespaces)
				}
			}
		})
	}
}

var dryRunSeq atomic.Int64

// createdFinalizers dry-run creates a StripeIntegration in ns with the given finalizers and
// returns those the apiserver would store.
func createdFinalizers(ctx context.Context, t *testing.T, c client.Client, ns string, given []string) []string {
	t.Helper()
	si := testIntegration(ns, given)
	if err := c.Create(ctx, si, client.DryRunAll); err != nil {
		t.Fatalf("creating a StripeIntegration in %s: %v", ns, err)
	}
	return si.GetFinalizers()
}

// testIntegration is a valid StripeIntegration in ns with the given finalizers, named uniquely.
func testIntegration(ns string, given []string) *unstructured.Unstructured {
	si := admissionpolicy.Probe(ns, fmt.Sprintf("clinic-%d", dryRunSeq.Add(1)))
	if given != nil {
		si.SetFinalizers(given)
	}
	return si
}

// waitForFinalizer waits (30 s at most) until a StripeIntegration created in ns gets the
// finalizer (admissionpolicy.WaitForFinalizer, which also waits out the apiserver's 503s while it
// loads the CRD's schema for admission policies) and logs how long that took.
func waitForFinalizer(ctx context.Context, t *testing.T, c client.Client, name, ns string) {
	t.Helper()
	start := time.Now()
	if err := admissionpolicy.WaitForFinalizer(ctx, c, ns); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Logf("%s: acting after %s", name, time.Since(start).Round(time.Millisecond))
}
