package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
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
