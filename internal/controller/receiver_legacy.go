package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// deleteLegacyReceiver removes the Deployment that versions before dotted names were sanitised
// created under the dotted name: its Service was always refused, so its pods received nothing
// while holding the signing secret. Only a Deployment this object controls is deleted.
func (r *StripeIntegrationReconciler) deleteLegacyReceiver(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) error {
	legacy := legacyReceiverName(si)
	if legacy == receiverName(si) {
		return nil
	}
	dep := &appsv1.Deployment{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: si.Namespace, Name: legacy}, dep)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading legacy receiver Deployment: %w", err)
	}
	if !metav1.IsControlledBy(dep, si) {
		return nil
	}
	logf.FromContext(ctx).Info("Deleting receiver Deployment with a pre-upgrade name", "deployment", legacy, "replacement", receiverName(si))
	if err := r.Client.Delete(ctx, dep, client.Preconditions{UID: &dep.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting legacy receiver Deployment: %w", err)
	}
	return nil
}

// deleteClusterIPService removes the receiver Service that versions before the headless one
// created with a ClusterIP: spec.clusterIP is immutable, so applying the headless Service over it
// fails (422 Invalid) and it must go first; applyReceiver creates the headless one right after,
// in the same pass. Only a Service this object controls is deleted, and only the one read: the
// UID precondition keeps a stale cache from deleting the headless replacement.
func (r *StripeIntegrationReconciler) deleteClusterIPService(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) error {
	svc := &corev1.Service{}
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: si.Namespace, Name: receiverName(si)}, svc)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading receiver Service: %w", err)
	}
	if !metav1.IsControlledBy(svc, si) || svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil
	}
	logf.FromContext(ctx).Info("Replacing the receiver Service's ClusterIP with a headless Service",
		"service", svc.Name, "clusterIP", svc.Spec.ClusterIP)
	err = r.Client.Delete(ctx, svc, client.Preconditions{UID: &svc.UID})
	// A Conflict is the UID precondition failing: the Service read is already gone.
	if client.IgnoreNotFound(err) != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting receiver Service with a ClusterIP: %w", err)
	}
	return nil
}
