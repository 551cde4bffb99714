package controller

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestApplyIfChangedSkipsTheComparisonOfAnUnchangedObject: once an object was found to hold what
// would be applied, later passes at the same resourceVersion and with the same apply
// configuration neither compare nor write; a hand edit (a new resourceVersion) is compared again
// and undone, and so is a changed apply configuration.
func TestApplyIfChangedSkipsTheComparisonOfAnUnchangedObject(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	key := types.NamespacedName{Namespace: ns, Name: "owned"}
	desired := func(v string) *corev1ac.ConfigMapApplyConfiguration {
		return corev1ac.ConfigMap(key.Name, ns).WithData(map[string]string{"k": v})
	}
	var verified verifiedApplies
	owner := types.UID("integration-uid")
	compared := 0
	pass := func(v string) *corev1.ConfigMap {
		t.Helper()
		err := applyIfChanged(ctx, k8sClient, &verified, owner, key, &corev1.ConfigMap{}, desired(v), func(o *corev1.ConfigMap) (any, error) {
			compared++
			return corev1ac.ExtractConfigMap(o, string(fieldOwner))
		})
		if err != nil {
			t.Fatal(err)
		}
		cm := &corev1.ConfigMap{}
		if err := k8sClient.Get(ctx, key, cm); err != nil {
			t.Fatal(err)
		}
		return cm
	}

	created := pass("a") // nothing to compare: applied
	if compared != 0 {
		t.Fatalf("compared %d times before the object existed", compared)
	}
	if again := pass("a"); compared != 1 || again.ResourceVersion != created.ResourceVersion {
		t.Fatalf("second pass: compared %d times (want 1), resourceVersion %s -> %s (want no write)",
			compared, created.ResourceVersion, again.ResourceVersion)
	}
	for range 3 {
		pass("a")
	}
	if compared != 1 {
		t.Fatalf("unchanged object and configuration: compared %d times, want still 1", compared)
	}

	edited := created.DeepCopy()
	edited.ManagedFields = nil
	edited.ResourceVersion = ""
	edited.Data["k"] = "hand-edited"
	if err := k8sClient.Update(ctx, edited, client.FieldOwner("someone")); err != nil {
		t.Fatal(err)
	}
	if got := pass("a"); compared != 2 || got.Data["k"] != "a" {
		t.Fatalf("after a hand edit: compared %d times (want 2), data %q (want restored)", compared, got.Data)
	}
	if got := pass("b"); got.Data["k"] != "b" {
		t.Fatalf("changed configuration not applied: data %q", got.Data)
	}
	verified.forget(owner)
	pass("b")
	if compared < 4 {
		t.Fatalf("after forget: compared %d times, want a comparison", compared)
	}
}
