package controller

import (
	"maps"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// bookkeeping annotations are written by the operator itself; changing them must not start another
// pass, or every retry would trigger an immediate one and defeat the backoff.
var bookkeeping = []string{
	paymentsv1alpha1.AnnotationCreateAttempt,
	paymentsv1alpha1.AnnotationReplacedEndpoint,
	paymentsv1alpha1.AnnotationDeletionAttempts,
}

func userAnnotations(a map[string]string) map[string]string {
	out := maps.Clone(a)
	for _, k := range bookkeeping {
		delete(out, k)
	}
	return out
}

// specOrMetadataChanged lets through every update except the ones that only touch status, so the
// controller's own status writes do not trigger another pass.
func specOrMetadataChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld, e.ObjectNew
			if o == nil || n == nil {
				return true
			}
			return o.GetGeneration() != n.GetGeneration() ||
				!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
				!slices.Equal(o.GetFinalizers(), n.GetFinalizers()) ||
				!maps.Equal(userAnnotations(o.GetAnnotations()), userAnnotations(n.GetAnnotations())) ||
				!maps.Equal(o.GetLabels(), n.GetLabels())
		},
	}
}
