/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/clinicpay/stripe-operator/test/testreport"
)

// TestCacheTransforms: a Secret applied with kubectl carries its data in the last-applied
// annotation; the metadata-only Secret cache must not keep it, nor any managedFields. Objects
// the operator applies keep their managedFields, which applyIfChanged compares.
func TestCacheTransforms(t *testing.T) {
	t.Parallel()
	fields := []metav1.ManagedFieldsEntry{{Manager: "stripe-operator", Operation: metav1.ManagedFieldsOperationApply}}
	secret := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name:          "keys",
		Annotations:   map[string]string{lastAppliedAnnotation: `{"stringData":{"secretKey":"sk_test_sentinel"}}`, "team": "billing"},
		ManagedFields: fields,
	}}
	out, err := CacheOptions().DefaultTransform(secret)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*metav1.PartialObjectMetadata)
	if _, ok := got.Annotations[lastAppliedAnnotation]; ok || got.Annotations["team"] != "billing" || got.ManagedFields != nil {
		t.Errorf("cached Secret metadata = annotations %v, managedFields %v", got.Annotations, got.ManagedFields)
	}

	var depOpts *toolscache.TransformFunc
	for obj, by := range CacheByObject() {
		if _, ok := obj.(*appsv1.Deployment); ok {
			depOpts = &by.Transform
		}
	}
	if depOpts == nil || *depOpts == nil {
		t.Fatal("Deployments have no transform: the default one would strip the managedFields applyIfChanged needs")
	}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ManagedFields: fields, Annotations: map[string]string{lastAppliedAnnotation: "{}"}}}
	out, err = (*depOpts)(dep)
	if err != nil {
		t.Fatal(err)
	}
	if d := out.(*appsv1.Deployment); len(d.ManagedFields) != 1 || d.Annotations[lastAppliedAnnotation] != "" {
		t.Errorf("cached Deployment = annotations %v, managedFields %v", d.Annotations, d.ManagedFields)
	}
	// Other managers' entries (the Deployment controller's status, a hand edit) are never read
	// by applyIfChanged, which extracts fieldOwner's applied fields only: they are not cached.
	others := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status"},
		fields[0],
		{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate},
		{Manager: "stripe-operator", Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status"},
	}}}
	out, err = (*depOpts)(others)
	if err != nil {
		t.Fatal(err)
	}
	if d := out.(*appsv1.Deployment); len(d.ManagedFields) != 1 || d.ManagedFields[0] != fields[0] {
		t.Errorf("cached Deployment managedFields = %+v, want only the operator's applied entry", d.ManagedFields)
	}
	if out, err := trimForCache(toolscache.DeletedFinalStateUnknown{Key: "ns/x"}); err != nil || out == nil {
		t.Errorf("tombstone: %v %v", out, err)
	}
	testreport.Report(t,
		"the manager's cache drops kubectl's last-applied annotation (a kubectl-applied Secret's data in clear text) "+
			"and managedFields from Secret metadata")
}
