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

package demo

import (
	"context"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// TestKubeletRoutesBeforeTheFirstStatus: the stand-in's public route comes from the spec, as a
// platform's Ingress does. The operator writes its first status (status.webhookURL included) only
// once the receiver is ready, and may report Connected before the stand-in's next period; a route
// that waited for the status dropped the demo's first deliveries ("no ready receiver serves").
func TestKubeletRoutesBeforeTheFirstStatus(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	si := &v1.StripeIntegration{
		ObjectMeta: metav1.ObjectMeta{Name: "clinic-a-test", Namespace: "default", UID: "uid-a"},
		Spec: v1.StripeIntegrationSpec{ClinicID: "clinic-a", Mode: v1.ModeTest,
			Webhook: &v1.WebhookSpec{BaseURL: "https://hooks.clinic-a.example"}},
	}
	ctrl := true
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "clinic-a-test-receiver", Namespace: "default",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: v1.GroupVersion.String(), Kind: "StripeIntegration",
			Name: si.Name, UID: si.UID, Controller: &ctrl}}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(si, d).Build()
	n := newNetwork("127.0.0.1:1", "127.0.0.1:2")
	k := newKubelet(c, nil, t.TempDir(), n, nil)

	k.route(context.Background(), d, []*pod{{ready: true, webhookAddr: "127.0.0.1:3"}})

	const url = "https://hooks.clinic-a.example/stripe/webhook-test/clinic-a"
	if got := n.routes[url]; !slices.Equal(got, []string{"127.0.0.1:3"}) {
		t.Fatalf("route of %s before any status: %v (all routes %v), want the ready replica", url, got, n.routes)
	}
}
