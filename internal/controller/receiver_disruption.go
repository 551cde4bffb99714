package controller

import (
	"context"
	"fmt"

	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// receiverPodDisruptionBudget lets voluntary disruptions (node drains, cluster upgrades) take at
// most one receiver pod at a time, so a receiver with two or more replicas keeps answering
// Stripe through them. nil below two replicas: a budget there could only block drains (one
// replica) or guard nothing (none), and Stripe's retries cover the single pod's restart.
// Unhealthy pods may always be evicted, so a crash-looping receiver never blocks a drain.
func receiverPodDisruptionBudget(si *paymentsv1alpha1.StripeIntegration) *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	if receiverReplicas(si) < 2 {
		return nil
	}
	return policyv1ac.PodDisruptionBudget(receiverName(si), si.Namespace).
		WithLabels(receiverLabels(si)).WithOwnerReferences(ownerRefApply(si)).
		WithSpec(policyv1ac.PodDisruptionBudgetSpec().
			WithMaxUnavailable(intstr.FromInt32(1)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(receiverSelector(si))).
			WithUnhealthyPodEvictionPolicy(policyv1.AlwaysAllow))
}

// applyReceiverDisruptionBudget applies the budget the effective replicas call for, or deletes
// the one this integration owns when they dropped below two.
func (r *StripeIntegrationReconciler) applyReceiverDisruptionBudget(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) error {
	key := types.NamespacedName{Namespace: si.Namespace, Name: receiverName(si)}
	pdb := receiverPodDisruptionBudget(si)
	if pdb == nil {
		return r.deleteControlled(ctx, si, key, &policyv1.PodDisruptionBudget{}, "receiver PodDisruptionBudget")
	}
	if err := applyOwned(ctx, r, si, key, &policyv1.PodDisruptionBudget{}, pdb, extractPodDisruptionBudget); err != nil {
		return fmt.Errorf("applying receiver PodDisruptionBudget: %w", err)
	}
	return nil
}
