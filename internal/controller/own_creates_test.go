package controller

import (
	"context"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// TestPassWaitsForCacheToShowItsCreates: the pass that follows a new integration's first one
// starts the moment it ends, while the watch may not have brought the last receiver object it
// created into the cache. That pass used to find no such object and apply it again, a write that
// changed nothing; now it comes back shortly, and once the cache shows everything a pass writes
// nothing. Bounded: an object still missing staleCacheWait after its creation is applied again.
func TestPassWaitsForCacheToShowItsCreates(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	si := integration(ns, "clinic-creates", uniqueClinic("clinic-creates", ns), paymentsv1alpha1.ModeTest, "keys")
	si.UID = types.UID("00000000-0000-0000-0000-0000c4ea7e55")

	direct, err := client.NewWithWatch(restConfig, client.Options{Scheme: k8sClient.Scheme()})
	must(t, err)
	lagging, applies := true, 0
	c := interceptor.NewClient(direct, interceptor.Funcs{
		// The cache, behind the watch by the NetworkPolicy, the last object a pass applies.
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*networkingv1.NetworkPolicy); ok && lagging {
				return apierrors.NewNotFound(networkingv1.Resource("networkpolicies"), key.Name)
			}
			return c.Get(ctx, key, obj, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			applies++
			return c.Apply(ctx, obj, opts...)
		},
	})
	clk := clocktesting.NewFakePassiveClock(time.Now())
	r := &StripeIntegrationReconciler{Client: c, Clock: clk, ReceiverImage: testReceiverImage}

	must(t, r.applyReceiver(ctx, si, "signing"))
	if applies != 3 {
		t.Fatalf("first pass: %d applies, want 3 (Deployment, Service, NetworkPolicy)", applies)
	}
	if !r.cacheBehindOwnCreates(ctx, si) {
		t.Fatal("the next pass runs while the cache does not show the NetworkPolicy the last one created")
	}
	lagging = false
	if r.cacheBehindOwnCreates(ctx, si) {
		t.Fatal("the cache shows every object created, and the pass still waits")
	}
	must(t, r.applyReceiver(ctx, si, "signing"))
	if applies != 3 {
		t.Errorf("a pass once the cache caught up: %d applies in all, want still 3", applies)
	}

	// Bounded: a NetworkPolicy the cache does not show staleCacheWait after its creation (deleted
	// meanwhile, say) no longer holds passes back, and the next pass applies it.
	must(t, c.Delete(ctx, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: receiverName(si)}}))
	lagging = true
	must(t, r.applyReceiver(ctx, si, "signing")) // re-created: recorded again
	if !r.cacheBehindOwnCreates(ctx, si) {
		t.Fatal("a re-created NetworkPolicy the cache does not show yet does not hold the next pass")
	}
	clk.SetTime(clk.Now().Add(staleCacheWait))
	if r.cacheBehindOwnCreates(ctx, si) {
		t.Error("a pass is still held staleCacheWait after the creation")
	}
}
