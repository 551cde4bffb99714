package controller

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	netv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The objects the operator applies are cached small. applyIfChanged needs, of each, only the
// digest of what this operator's field manager owns in it; the reconciler reads the Deployment's
// status, and every kind's metadata (owner, labels) and, of a Service, its ClusterIP. So as each
// version of an object arrives, the cache takes that digest (client-go's Extract*) and then keeps
// the object without its managedFields and without the spec it no longer needs: at 10,000
// integrations a Deployment's pod template and managedFields alone were about 70 MB of heap.

func extractDeployment(o *appsv1.Deployment) (any, error) {
	return appsv1ac.ExtractDeployment(o, string(fieldOwner))
}

func extractService(o *corev1.Service) (any, error) {
	return corev1ac.ExtractService(o, string(fieldOwner))
}

func extractNetworkPolicy(o *networkingv1.NetworkPolicy) (any, error) {
	return netv1ac.ExtractNetworkPolicy(o, string(fieldOwner))
}

func extractIngress(o *networkingv1.Ingress) (any, error) {
	return netv1ac.ExtractIngress(o, string(fieldOwner))
}

func extractPodDisruptionBudget(o *policyv1.PodDisruptionBudget) (any, error) {
	return policyv1ac.ExtractPodDisruptionBudget(o, string(fieldOwner))
}

// managedSelector selects the objects the operator labelled as its own.
var managedSelector = labels.SelectorFromSet(labels.Set{LabelManagedBy: managedByValue})

// CacheByObject are the cache options of each kind the operator applies: only the objects it
// labelled (unrelated Deployments, Services, NetworkPolicies, Ingresses and PodDisruptionBudgets
// in the cluster cost no memory), each reduced as above.
func CacheByObject() map[client.Object]cache.ByObject {
	managed := func(transform toolscache.TransformFunc) cache.ByObject {
		return cache.ByObject{Label: managedSelector, Transform: transform}
	}
	return map[client.Object]cache.ByObject{
		&appsv1.Deployment{}: managed(ownedCacheTransform(extractDeployment, func(o *appsv1.Deployment) {
			o.Spec = appsv1.DeploymentSpec{Replicas: o.Spec.Replicas}
		})),
		&corev1.Service{}: managed(ownedCacheTransform(extractService, func(o *corev1.Service) {
			o.Spec = corev1.ServiceSpec{ClusterIP: o.Spec.ClusterIP} // deleteClusterIPService reads it
		})),
		&networkingv1.NetworkPolicy{}: managed(ownedCacheTransform(extractNetworkPolicy, func(o *networkingv1.NetworkPolicy) {
			o.Spec = networkingv1.NetworkPolicySpec{}
		})),
		&networkingv1.Ingress{}: managed(ownedCacheTransform(extractIngress, func(o *networkingv1.Ingress) {
			o.Spec = networkingv1.IngressSpec{}
		})),
		&policyv1.PodDisruptionBudget{}: managed(ownedCacheTransform(extractPodDisruptionBudget, func(o *policyv1.PodDisruptionBudget) {
			o.Spec = policyv1.PodDisruptionBudgetSpec{}
		})),
	}
}

// ownedCacheTransform records the digest of what the field manager owns in each object the cache
// receives (ownedDigests), then drops its managedFields, what trim drops, and kubectl's
// last-applied annotation. A deletion tombstone passes as it is.
func ownedCacheTransform[T client.Object](extract func(T) (any, error), trim func(T)) toolscache.TransformFunc {
	return func(obj any) (any, error) {
		o, ok := obj.(T)
		if !ok {
			return obj, nil
		}
		// An object without managedFields has been through here already (a relist may hand the
		// cache's own objects back): its digest stands.
		if len(o.GetManagedFields()) > 0 {
			if sum, ok := takeOwnedDigest(o, extract); ok {
				ownedDigests.record(o, sum)
			}
		}
		o.SetManagedFields(nil)
		trim(o)
		return dropLastApplied(o)
	}
}

// takeOwnedDigest is the digest of what this operator's field manager owns in o, as an apply
// configuration's JSON (the form applyDigest takes of what it would apply).
func takeOwnedDigest[T client.Object](o T, extract func(T) (any, error)) ([sha256.Size]byte, bool) {
	owned, err := extract(o)
	if err != nil {
		return [sha256.Size]byte{}, false
	}
	sum, err := applyDigest(owned)
	return sum, err == nil
}

// ownedDigestOf is the digest of what the field manager owns in live: the one the cache took, when
// live came through the cache (which keeps no managedFields); taken from live's own managedFields
// otherwise. Never from anything stored in the object itself, which anyone who may edit it could
// set.
func ownedDigestOf[T client.Object](live T, extract func(T) (any, error)) ([sha256.Size]byte, bool) {
	if len(live.GetManagedFields()) == 0 {
		return ownedDigests.lookup(live)
	}
	return takeOwnedDigest(live, extract)
}

// ownedDigests holds, per object UID, the digests the cache took of its latest two versions: the
// transform runs as a version arrives, a moment before the cache's store has it, so a reader may
// still see the one before. It is process-wide: keyed by UID and resourceVersion, and a function
// of the object alone, it is the same whichever cache took it (tests run several managers in one
// process). Deletions from the caches remove entries (forgetDeletedOwned).
var ownedDigests ownedDigestMemo

type ownedDigestMemo struct {
	mu sync.Mutex
	m  map[types.UID][2]ownedVersion // latest first
}

type ownedVersion struct {
	resourceVersion string
	digest          [sha256.Size]byte
}

func (v *ownedDigestMemo) record(o metav1.Object, sum [sha256.Size]byte) {
	if o.GetUID() == "" || o.GetResourceVersion() == "" {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[types.UID][2]ownedVersion{}
	}
	prev := v.m[o.GetUID()]
	latest := ownedVersion{resourceVersion: o.GetResourceVersion(), digest: sum}
	if prev[0].resourceVersion == latest.resourceVersion {
		prev[0] = latest
	} else {
		prev = [2]ownedVersion{latest, prev[0]}
	}
	v.m[o.GetUID()] = prev
}

// lookup returns the digest taken of o's version; none when the cache took no such version (o
// was read past it, or two newer ones arrived since).
func (v *ownedDigestMemo) lookup(o metav1.Object) ([sha256.Size]byte, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, got := range v.m[o.GetUID()] {
		if got.resourceVersion != "" && got.resourceVersion == o.GetResourceVersion() {
			return got.digest, true
		}
	}
	return [sha256.Size]byte{}, false
}

func (v *ownedDigestMemo) forget(uid types.UID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.m, uid)
}

// forgetDeletedOwned removes an object's digest when the cache drops it. The deletion itself
// passed through the transform, so the entry goes only after it.
func forgetDeletedOwned(ctx context.Context, c cache.Cache) error {
	for obj := range CacheByObject() {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if o, ok := obj.(metav1.Object); ok {
				ownedDigests.forget(o.GetUID())
			}
		}}); err != nil {
			return fmt.Errorf("deletion handler for %T: %w", obj, err)
		}
	}
	return nil
}
