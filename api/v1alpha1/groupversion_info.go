// Package v1alpha1 contains API Schema definitions for the payments v1alpha1 API group.
// +kubebuilder:object:generate=true
// +groupName=payments.clinicpay.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is group version used to register these objects.
var GroupVersion = schema.GroupVersion{Group: "payments.clinicpay.dev", Version: "v1alpha1"}

// AddToScheme adds the types in this group-version to the given scheme. Callers wire it
// explicitly (cmd/main.go, tests); nothing registers at init time.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &StripeIntegration{}, &StripeIntegrationList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
