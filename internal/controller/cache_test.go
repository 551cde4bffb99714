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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/clinicpay/stripe-operator/test/testreport"
)

// TestCacheTransforms: a Secret applied with kubectl carries its data in the last-applied
// annotation; the metadata-only Secret cache must not keep it, nor any managedFields. (Objects
// the operator applies: TestOwnedObjectsAreCachedSmall.)
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

	if out, err := trimForCache(toolscache.DeletedFinalStateUnknown{Key: "ns/x"}); err != nil || out == nil {
		t.Errorf("tombstone: %v %v", out, err)
	}
	testreport.Report(t,
		"the manager's cache drops kubectl's last-applied annotation (a kubectl-applied Secret's data in clear text) "+
			"and managedFields from Secret metadata")
}
