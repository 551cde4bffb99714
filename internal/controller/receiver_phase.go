package controller

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// fieldOwner is the server-side apply manager of everything the operator applies. Applying with
// ForceOwnership restores fields edited by hand on the next pass.
const fieldOwner = client.FieldOwner("stripe-operator")

// reconcileReceiver applies the clinic's receiver Deployment, Service, NetworkPolicy,
// PodDisruptionBudget (two replicas or more) and (optional) Ingress, and reports ReceiverReady from the Deployment's availability. It needs no
// Stripe call, so it also runs while Stripe is down or the integration is suspended.
func (r *StripeIntegrationReconciler) reconcileReceiver(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, obs *observation) {
	const ct = paymentsv1alpha1.ConditionReceiverReady
	secretName := si.Status.SigningSecretName
	if obs.SigningSecretName != nil {
		secretName = *obs.SigningSecretName
	}
	if secretName == "" {
		obs.Receiver = unknown(ct, paymentsv1alpha1.ReasonWaitingForSigningSecret,
			"the receiver is deployed once the webhook endpoint and its signing secret exist")
		return
	}
	if cond, ok, err := r.checkReceiverInputs(ctx, si); !ok {
		if err != nil {
			cond = unknown(ct, paymentsv1alpha1.ReasonReceiverApplyFailed, "checking the receiver's forward credentials failed; retrying")
			if obs.err == nil {
				obs.err = err
			}
		}
		// What runs stays as it was: an editor's change never reaches the receiver unchecked.
		obs.Receiver = cond
		return
	}
	if err := r.applyReceiver(ctx, si, secretName); err != nil {
		obs.Receiver = unknown(ct, paymentsv1alpha1.ReasonReceiverApplyFailed, "applying receiver objects failed; retrying: "+err.Error())
		if obs.err == nil {
			obs.err = err
		}
		return
	}
	dep := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: si.Namespace, Name: receiverName(si)}, dep); err != nil {
		// Just applied; the cache catches up and the Deployment's own event brings us back. It
		// reads as the new Deployment will (receiverCondition): nothing available yet.
		obs.Receiver = receiverCondition(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: receiverName(si)}}, receiverReplicas(si))
		return
	}
	obs.receiverCreated = dep.CreationTimestamp.Time
	obs.Receiver = receiverCondition(dep, receiverReplicas(si))
}

func (r *StripeIntegrationReconciler) applyReceiver(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, secretName string) error {
	key := types.NamespacedName{Namespace: si.Namespace, Name: receiverName(si)}
	dep := receiverDeployment(si, r.ReceiverImage, secretName)
	if err := applyOwned(ctx, r, si, key, &appsv1.Deployment{}, dep, extractDeployment); err != nil {
		return fmt.Errorf("applying receiver Deployment: %w", err)
	}
	if err := r.deleteLegacyReceiver(ctx, si); err != nil {
		return err
	}
	if err := r.deleteClusterIPService(ctx, si); err != nil {
		return err
	}
	if err := applyOwned(ctx, r, si, key, &corev1.Service{}, receiverService(si), extractService); err != nil {
		return fmt.Errorf("applying receiver Service: %w", err)
	}
	if err := applyOwned(ctx, r, si, key, &networkingv1.NetworkPolicy{}, receiverNetworkPolicy(si, r.ReceiverTraffic),
		extractNetworkPolicy); err != nil {
		return fmt.Errorf("applying receiver NetworkPolicy: %w", err)
	}
	if err := r.applyReceiverDisruptionBudget(ctx, si); err != nil {
		return err
	}
	if ing := receiverIngress(si); ing != nil {
		if err := applyOwned(ctx, r, si, key, &networkingv1.Ingress{}, ing, extractIngress); err != nil {
			return fmt.Errorf("applying receiver Ingress: %w", err)
		}
		return nil
	}
	return r.deleteStaleIngress(ctx, si)
}

// applyIfChanged server-side applies desired unless the live object (read from the cache) already
// holds exactly the fields this operator's field manager applied with these values. A resync of
// an unchanged integration then sends no write at all, while a hand edit of an owned field moves
// that field to another manager, so the comparison fails and the apply restores it.
// The comparison is of digests: of what desired would send, and of what the field manager owns in
// the live object (client-go's Extract*, a walk of the whole object against its schema). The
// manager's cache takes the live one as each version of the object arrives and then drops the
// managedFields and spec it was taken from (ownedCacheTransform); an object read past the cache,
// with its managedFields, has it taken here.
// It reports whether the cache had no such object, so that the apply created it (or re-created
// one the cache saw deleted).
func applyIfChanged[T client.Object](ctx context.Context, c client.Client, key types.NamespacedName, live T,
	desired runtime.ApplyConfiguration, extract func(T) (any, error)) (created bool, err error) {
	err = c.Get(ctx, key, live)
	switch {
	case apierrors.IsNotFound(err):
		created = true
	case err != nil:
		return false, err
	default:
		want, wantErr := applyDigest(desired)
		if have, ok := ownedDigestOf(live, extract); ok && wantErr == nil && have == want {
			return false, nil
		}
	}
	return created, c.Apply(ctx, desired, fieldOwner, client.ForceOwnership)
}

// applyOwned is applyIfChanged for one of si's receiver objects, remembering one it created
// (ownCreates) so that the next pass waits for the cache to show it rather than apply it again.
func applyOwned[T client.Object](ctx context.Context, r *StripeIntegrationReconciler, si *paymentsv1alpha1.StripeIntegration,
	key types.NamespacedName, live T, desired runtime.ApplyConfiguration, extract func(T) (any, error)) error {
	created, err := applyIfChanged(ctx, r.Client, key, live, desired, extract)
	if err == nil && created {
		r.noteCreated(si, live, key)
	}
	return err
}

// applyDigest is a digest of an apply configuration's JSON, what the apply would send.
func applyDigest(desired any) ([sha256.Size]byte, error) {
	data, err := json.Marshal(desired)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return sha256.Sum256(data), nil
}

// deleteStaleIngress removes the Ingress this object owns once spec.webhook.ingress is removed.
func (r *StripeIntegrationReconciler) deleteStaleIngress(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) error {
	key := types.NamespacedName{Namespace: si.Namespace, Name: receiverName(si)}
	return r.deleteControlled(ctx, si, key, &networkingv1.Ingress{}, "receiver Ingress")
}

// deleteControlled deletes the object at key if this integration controls it; what names it in errors.
func (r *StripeIntegrationReconciler) deleteControlled(ctx context.Context, si *paymentsv1alpha1.StripeIntegration,
	key types.NamespacedName, obj client.Object, what string) error {
	err := r.Client.Get(ctx, key, obj)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading %s: %w", what, err)
	}
	if !metav1.IsControlledBy(obj, si) {
		return nil
	}
	if err := r.Client.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting %s: %w", what, err)
	}
	return nil
}
