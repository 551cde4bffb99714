package controller

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// A new integration's first pass creates its receiver objects one after another, and their own
// events queue the next pass, which starts the moment the first ends. The watch may not have
// brought the last of them into the cache yet: that pass found no such object, applied it again
// (a write that changes nothing) and paid for a pass. ownCreates remembers, per integration,
// the objects a pass created; a pass that starts while the cache does not show one of them yet
// comes back conflictRetryDelay later, as cacheBehindOwnStatus does for the status, for at most
// staleCacheWait after the creation: an object deleted since is then applied again as before.
type ownCreated struct {
	at   time.Time
	objs []ownCreatedObject
}

type ownCreatedObject struct {
	key types.NamespacedName
	obj client.Object // an empty object of its kind, to read into
}

// noteCreated records an owned object this pass's apply created (applyOwned); obj is the object
// the cache read found nothing for, read into again by cacheBehindOwnCreates.
func (r *StripeIntegrationReconciler) noteCreated(si *paymentsv1alpha1.StripeIntegration, obj client.Object, key types.NamespacedName) {
	c, ok := r.ownCreates.get(si.UID)
	if !ok || r.now().Sub(c.at) >= staleCacheWait {
		c = ownCreated{}
	}
	c.at = r.now()
	c.objs = append(c.objs, ownCreatedObject{key: key, obj: obj})
	r.ownCreates.set(si.UID, c)
}

// cacheBehindOwnCreates reports whether the cache does not show yet an object an earlier pass
// created for si, within staleCacheWait of the creation.
func (r *StripeIntegrationReconciler) cacheBehindOwnCreates(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) bool {
	c, ok := r.ownCreates.get(si.UID)
	if !ok {
		return false
	}
	if r.now().Sub(c.at) < staleCacheWait {
		for _, o := range c.objs {
			if err := r.Client.Get(ctx, o.key, o.obj); apierrors.IsNotFound(err) {
				return true
			}
		}
	}
	r.ownCreates.forget(si.UID)
	return false
}
