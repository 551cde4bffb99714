package controller

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// cacheTransform is the manager cache's transform of the kind T.
func cacheTransform[T client.Object](t *testing.T) toolscache.TransformFunc {
	t.Helper()
	for o, by := range CacheByObject() {
		if _, ok := o.(T); ok {
			return by.Transform
		}
	}
	var zero T
	t.Fatalf("no cache transform for %T", zero)
	return nil
}

// TestOwnedObjectsAreCachedSmall: the cache keeps a receiver Deployment without managedFields,
// pod template or last-applied annotation, and remembers the digest of what the operator applied
// in it, which applyIfChanged compares with what it would apply: an unchanged object costs no
// write, a hand edit (another manager now owns the field) is undone, a changed configuration is
// applied, and a digest written into the object by anyone is never believed.
func TestOwnedObjectsAreCachedSmall(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	si := integration(ns, "clinic-cache", uniqueClinic("clinic-cache", ns), paymentsv1alpha1.ModeTest, "keys")
	si.UID = types.UID("00000000-0000-0000-0000-00000000cace")
	key := types.NamespacedName{Namespace: ns, Name: receiverName(si)}
	transform := cacheTransform[*appsv1.Deployment](t)

	// The cache, as the manager's: what the apiserver returns, through the transform.
	direct, err := client.NewWithWatch(restConfig, client.Options{Scheme: k8sClient.Scheme()})
	must(t, err)
	writes := 0
	cached := interceptor.NewClient(direct, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if err := c.Get(ctx, key, obj, opts...); err != nil {
				return err
			}
			_, err := transform(obj)
			return err
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			writes++
			return c.Apply(ctx, obj, opts...)
		},
	})
	pass := func(image string) {
		t.Helper()
		if _, err := applyIfChanged(ctx, cached, key, &appsv1.Deployment{}, receiverDeployment(si, image, "signing"), extractDeployment); err != nil {
			t.Fatal(err)
		}
	}

	pass("receiver:1") // created
	if writes != 1 {
		t.Fatalf("%d writes creating the Deployment", writes)
	}
	got := &appsv1.Deployment{}
	if err := cached.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	if got.ManagedFields != nil || len(got.Spec.Template.Spec.Containers) != 0 || got.Spec.Replicas == nil || !metav1.IsControlledBy(got, si) {
		t.Errorf("cached Deployment: managedFields %v, containers %v, replicas %v, owners %v", got.ManagedFields,
			got.Spec.Template.Spec.Containers, got.Spec.Replicas, got.OwnerReferences)
	}
	for range 3 {
		pass("receiver:1")
	}
	if writes != 1 {
		t.Fatalf("unchanged Deployment: %d writes, want still 1", writes)
	}

	// A hand edit of an owned field, with a forged digest annotation for good measure.
	live := &appsv1.Deployment{}
	if err := k8sClient.Get(ctx, key, live); err != nil {
		t.Fatal(err)
	}
	live.Spec.Template.Spec.Containers[0].Image = "attacker/receiver:evil"
	live.Annotations = map[string]string{"payments.clinicpay.dev/applied-digest": "forged"}
	if err := k8sClient.Update(ctx, live, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	pass("receiver:1")
	if err := k8sClient.Get(ctx, key, live); err != nil {
		t.Fatal(err)
	}
	if writes != 2 || live.Spec.Template.Spec.Containers[0].Image != "receiver:1" {
		t.Fatalf("after a hand edit: %d writes (want 2), image %q (want restored)", writes, live.Spec.Template.Spec.Containers[0].Image)
	}
	pass("receiver:2")
	if writes != 3 {
		t.Fatalf("changed configuration: %d writes, want 3", writes)
	}

	// Read past the cache (managedFields and all), the object is compared from its own fields.
	if err := k8sClient.Get(ctx, key, live); err != nil {
		t.Fatal(err)
	}
	before := live.ResourceVersion
	if _, err := applyIfChanged(ctx, k8sClient, key, &appsv1.Deployment{}, receiverDeployment(si, "receiver:2", "signing"),
		extractDeployment); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Get(ctx, key, live); err != nil {
		t.Fatal(err)
	}
	if live.ResourceVersion != before || live.Spec.Template.Spec.Containers[0].Image != "receiver:2" {
		t.Errorf("uncached read of an unchanged Deployment: resourceVersion %s -> %s, image %q", before, live.ResourceVersion,
			live.Spec.Template.Spec.Containers[0].Image)
	}

	// The cache's deletion handler forgets the object.
	if err := cached.Get(ctx, key, live); err != nil {
		t.Fatal(err)
	}
	uid := live.UID
	if _, ok := ownedDigests.lookup(live); !ok {
		t.Fatal("no digest remembered for the cached version")
	}
	ownedDigests.forget(uid)
	if _, ok := ownedDigests.lookup(live); ok {
		t.Error("digest remembered after forget")
	}
}

// TestOwnedCacheTransformKeepsWhatIsRead: what the reconciler reads of a cached object survives
// the transform (a Deployment's status and replicas, a Service's ClusterIP, metadata), and a
// deletion tombstone passes untouched.
func TestOwnedCacheTransformKeepsWhatIsRead(t *testing.T) {
	t.Parallel()
	for obj, by := range CacheByObject() {
		if by.Transform == nil {
			t.Errorf("%T has no cache transform", obj)
			continue
		}
		if out, err := by.Transform(toolscache.DeletedFinalStateUnknown{Key: "ns/x"}); err != nil || out == nil {
			t.Errorf("%T tombstone: %v %v", obj, out, err)
		}
	}
	replicas := int32(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "r", Generation: 3, Labels: map[string]string{"a": "b"}},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}}},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 3, AvailableReplicas: 2},
	}
	if _, err := cacheTransform[*appsv1.Deployment](t)(dep); err != nil {
		t.Fatal(err)
	}
	if dep.Generation != 3 || dep.Labels["a"] != "b" || *dep.Spec.Replicas != 2 || dep.Status.AvailableReplicas != 2 ||
		len(dep.Spec.Template.Spec.Containers) != 0 {
		t.Errorf("cached Deployment %+v", dep)
	}
	svc := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.7", Ports: []corev1.ServicePort{{Port: 80}}}}
	if _, err := cacheTransform[*corev1.Service](t)(svc); err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP != "10.0.0.7" || svc.Spec.Ports != nil {
		t.Errorf("cached Service spec %+v", svc.Spec)
	}
}

// TestOwnedDigestsForgetDeletedObjects: the manager's cache forgets an owned object's digest once
// the object is deleted (forgetDeletedOwned), so clinics that come and go leave nothing behind.
func TestOwnedDigestsForgetDeletedObjects(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-forget"
	newClinic(t, ns, name)
	si := waitCondition(t, ns, name, paymentsv1alpha1.ConditionReceiverReady, metav1.ConditionFalse,
		paymentsv1alpha1.ReasonReceiverProgressing, waitShort)
	key := types.NamespacedName{Namespace: ns, Name: receiverName(si)}
	dep := &appsv1.Deployment{}
	if err := k8sClient.Get(context.Background(), key, dep); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "the manager's cache took the Deployment's digest", func() (bool, string) {
		if err := k8sClient.Get(context.Background(), key, dep); err != nil {
			return false, err.Error()
		}
		_, ok := ownedDigests.lookup(dep)
		return ok, "no digest for resourceVersion " + dep.ResourceVersion
	})
	if err := k8sClient.Delete(context.Background(), dep, client.Preconditions{UID: &dep.UID}); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "the deleted Deployment's digest forgotten", func() (bool, string) {
		ownedDigests.mu.Lock()
		defer ownedDigests.mu.Unlock()
		_, kept := ownedDigests.m[dep.UID]
		return !kept, "still remembered"
	})
}
