package controller

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// TestPassWaitsForCacheToShowItsStatusWrite: a follow-up pass that starts from the very copy the
// last status write replaced (the watch has not delivered that write yet) neither patches nor
// runs the phases: it comes back shortly. Before, it recomputed status over the stale one and its
// optimistic-lock patch failed with a 409, a write in the apiserver's count and another pass.
// A copy with any other resourceVersion runs as usual.
func TestPassWaitsForCacheToShowItsStatusWrite(t *testing.T) {
	ctx := context.Background()
	si := branchSI()
	si.Finalizers = []string{Finalizer}
	var stale *v1.StripeIntegration // what the lagging cache still serves
	writes := 0
	c := crfake.NewClientBuilder().WithScheme(branchScheme(t)).WithObjects(si).
		WithStatusSubresource(&v1.StripeIntegration{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if out, ok := obj.(*v1.StripeIntegration); ok && stale != nil {
					stale.DeepCopyInto(out)
					return nil
				}
				return c.Get(ctx, key, obj, opts...)
			},
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
				writes++
				return c.Patch(ctx, obj, patch, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch,
				opts ...client.SubResourcePatchOption) error {
				writes++
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	r := &StripeIntegrationReconciler{Client: c, SecretReader: c, Recorder: events.NewFakeRecorder(10),
		Clock: clocktesting.NewFakePassiveClock(bNow), WebhookBaseURL: bBaseURL}

	cur := &v1.StripeIntegration{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(si), cur); err != nil {
		t.Fatal(err)
	}
	before := cur.DeepCopy()
	next := *cur.Status.DeepCopy()
	next.Conditions = []metav1.Condition{{Type: v1.ConditionConnected, Status: metav1.ConditionFalse, Reason: v1.ReasonSecretNotFound,
		Message: "m", LastTransitionTime: metav1.NewTime(bNow)}}
	if err := r.writeStatus(ctx, cur, next); err != nil {
		t.Fatal(err)
	}
	writes = 0

	stale = before
	res, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(si)})
	if err != nil || res.RequeueAfter != conflictRetryDelay || writes != 0 {
		t.Errorf("pass from the replaced copy: result %+v, error %v, %d writes; want a requeue after %s and no write",
			res, err, writes, conflictRetryDelay)
	}

	stale = nil // the cache caught up: the pass runs and writes what it found (no credentials Secret)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(si)}); err != nil {
		t.Fatal(err)
	}
	if writes == 0 {
		t.Error("the pass from the current copy wrote nothing: it did not run")
	}
}
