package controller

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/admissionpolicy"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// TestFinalizerFromTheAdmissionPolicyCostsNoWrite installs config/admission's policy, bound to one
// namespace of this test only. An integration created there carries the finalizer from its
// creation, and the operator takes it through its Stripe pass without writing it: no managedFields
// entry holds it (what admission adds belongs to no field manager; an operator write would). In the other namespace, which the binding
// does not cover (as on a cluster without the policy), the operator still adds it itself.
func TestFinalizerFromTheAdmissionPolicyCostsNoWrite(t *testing.T) {
	t.Parallel()
	covered, uncovered := newNamespace(t), newNamespace(t)
	installFinalizerPolicy(t, covered)

	const creator = "clinic-admin"
	for _, ns := range []string{covered, uncovered} {
		k := newTestKeys(t, "test")
		fake.AddKey(k.secret, stripefake.KeyOptions{})
		mustCreate(t, credentialsSecret(ns, "clinic-keys", k))
		si := integration(ns, "clinic", uniqueClinic("clinic", ns), v1.ModeTest, "clinic-keys")
		if err := k8sClient.Create(context.Background(), si, client.FieldOwner(creator)); err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(si.Finalizers, Finalizer); got != (ns == covered) {
			t.Errorf("namespace %s: created with finalizers %q", ns, si.Finalizers)
		}
		done := waitCondition(t, ns, "clinic", v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
		if !slices.Contains(done.Finalizers, Finalizer) {
			t.Fatalf("namespace %s: endpoint ready without the finalizer: %q", ns, done.Finalizers)
		}
		var holders []string
		for _, e := range done.ManagedFields {
			if e.FieldsV1 != nil && strings.Contains(e.FieldsV1.GetRawString(), `"v:\"`+Finalizer+`\""`) {
				holders = append(holders, e.Manager+"/"+string(e.Operation))
			}
		}
		switch {
		case ns == covered && len(holders) != 0:
			// What admission adds at creation belongs to no field manager; a write by the
			// operator would have put its own entry here.
			t.Errorf("with the policy, the finalizer is held by %q, want no entry: the operator wrote it", holders)
		case ns == uncovered && (len(holders) != 1 || strings.HasPrefix(holders[0], creator+"/")):
			t.Errorf("without the policy, the finalizer is held by %q, want the operator's entry only", holders)
		}
	}
}

// installFinalizerPolicy creates config/admission's policy and binding under names of this
// namespace, the binding narrowed to it, and waits until the apiserver applies it there.
func installFinalizerPolicy(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	policy, binding, err := admissionpolicy.Read(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	policy.Name = "finalizer-" + ns
	binding.Name, binding.Spec.PolicyName = policy.Name, policy.Name
	binding.Spec.MatchResources = &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
		MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}}
	for _, o := range []client.Object{policy, binding} {
		if err := k8sClient.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), o) })
	}
	if err := admissionpolicy.WaitForFinalizer(ctx, k8sClient, ns); err != nil {
		t.Fatal(err)
	}
}
