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
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// userInfoPassword is the password in the user-info cases; no error may repeat it.
const userInfoPassword = "hunter2-pw"

// TestAPIValidation checks that the apiserver itself (OpenAPI schema and CEL rules in the CRD)
// refuses specs the operator must never see, with a message naming the rule.
func TestAPIValidation(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	base := func() *v1.StripeIntegration {
		si := integration(ns, "validation", "clinic-v", v1.ModeTest, "keys")
		si.Spec.Suspend = true // no Stripe calls for objects that are accepted
		return si
	}
	creates := []struct {
		name   string
		mutate func(*v1.StripeIntegration)
		msg    string
	}{
		{"unknown mode", func(si *v1.StripeIntegration) { si.Spec.Mode = "Prod" }, "Unsupported value"},
		{"clinicID not a DNS label", func(si *v1.StripeIntegration) { si.Spec.ClinicID = "Clinic_A" }, "spec.clinicID"},
		{"baseURL and url together", func(si *v1.StripeIntegration) {
			si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://h.example", URL: "https://h.example/x/clinic-v"}
		}, "not both"},
		{"Live with an http URL", func(si *v1.StripeIntegration) {
			si.Spec.Mode = v1.ModeLive
			si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "http://hooks.example"}
		}, "Live mode requires an https webhook URL"},
		{"url not ending in the clinic", func(si *v1.StripeIntegration) {
			si.Spec.Webhook = &v1.WebhookSpec{URL: "https://hooks.example/stripe/webhook/other"}
		}, "must end with /<clinicID>"},
		{"relative baseURL", func(si *v1.StripeIntegration) { si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "/hooks"} }, "absolute http(s) URL"},
		{"malformed event type", func(si *v1.StripeIntegration) {
			si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://hooks.example", EnabledEvents: []string{"Payment Succeeded"}}
		}, "enabledEvents"},
		{"too many replicas", func(si *v1.StripeIntegration) {
			si.Spec.Receiver = &v1.ReceiverSpec{Replicas: ptr.To[int32](50)}
		}, "replicas"},
		// User info would reach the receiver's arguments (and its crash log); a fragment is never sent.
		{"baseURL with user info", func(si *v1.StripeIntegration) {
			si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://user:" + userInfoPassword + "@hooks.example"}
		}, "spec.webhook.baseURL: Forbidden: baseURL must not carry user info"},
		{"baseURL with a user name only", func(si *v1.StripeIntegration) {
			si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://token@hooks.example/in"}
		}, "baseURL must not carry user info"},
		{"baseURL with a fragment", func(si *v1.StripeIntegration) {
			si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://hooks.example/#x"}
		}, "baseURL must not have a fragment"},
		{"url with user info", func(si *v1.StripeIntegration) {
			si.Spec.Webhook = &v1.WebhookSpec{URL: "https://user:" + userInfoPassword + "@hooks.example/in/clinic-v"}
		}, "spec.webhook.url: Forbidden: url must not carry user info"},
		{"url with a fragment ending in the clinic", func(si *v1.StripeIntegration) {
			si.Spec.Webhook = &v1.WebhookSpec{URL: "https://hooks.example/in#/clinic-v"}
		}, "url must not have a fragment"},
		{"http forward url with user info", func(si *v1.StripeIntegration) {
			si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{HTTP: &v1.HTTPTarget{URL: "http://emr:" + userInfoPassword + "@billing.svc/in"}}}
		}, "spec.receiver.forward.http.url: Forbidden: url must not carry user info"},
		{"http forward url with a fragment", func(si *v1.StripeIntegration) {
			si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{HTTP: &v1.HTTPTarget{URL: "http://billing.svc/in#frag"}}}
		}, "url must not have a fragment"},
		{"FHIR baseURL with user info", func(si *v1.StripeIntegration) {
			si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{FHIR: &v1.FHIRTarget{BaseURL: "https://a:" + userInfoPassword + "@fhir.svc/r4"}}}
		}, "spec.receiver.forward.fhir.baseURL: Forbidden: baseURL must not carry user info"},
		{"FHIR baseURL with a fragment", func(si *v1.StripeIntegration) {
			si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{FHIR: &v1.FHIRTarget{BaseURL: "https://fhir.svc/r4#p"}}}
		}, "baseURL must not have a fragment"},
	}
	for _, tc := range creates {
		t.Run("create/"+tc.name, func(t *testing.T) {
			si := base()
			tc.mutate(si)
			err := k8sClient.Create(ctx, si, client.DryRunAll)
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want Invalid mentioning %q", err, tc.msg)
			}
			// The refusal is shown to whoever applied it and lands in CI logs: no password in it.
			if err != nil && strings.Contains(err.Error(), userInfoPassword) {
				t.Errorf("the refusal echoes the password: %v", err)
			}
		})
	}

	accepted := map[string]func(*v1.StripeIntegration){
		"@ in the path and query is not user info": func(si *v1.StripeIntegration) {
			si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://hooks.example/in@x?by=a@b"}
			si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{
				HTTP: &v1.HTTPTarget{URL: "http://billing.svc:8080/in/@clinic"},
				FHIR: &v1.FHIRTarget{BaseURL: "https://fhir.svc/r4?x=@"}}}
		},
	}
	for name, mutate := range accepted {
		t.Run("create/"+name, func(t *testing.T) {
			si := base()
			mutate(si)
			if err := k8sClient.Create(ctx, si, client.DryRunAll); err != nil {
				t.Errorf("refused: %v", err)
			}
		})
	}

	si := base()
	mustCreate(t, si)
	updates := []struct {
		name   string
		mutate func(*v1.StripeIntegration)
		msg    string
	}{
		{"clinicID change", func(si *v1.StripeIntegration) { si.Spec.ClinicID = "clinic-w" }, "clinicID is immutable"},
		{"mode change", func(si *v1.StripeIntegration) { si.Spec.Mode = v1.ModeLive }, "mode is immutable"},
	}
	for _, tc := range updates {
		t.Run("update/"+tc.name, func(t *testing.T) {
			// The controller may update the object meanwhile (finalizer, status): retry conflicts.
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cur := getSI(t, ns, si.Name)
				tc.mutate(cur)
				return k8sClient.Update(ctx, cur, client.DryRunAll)
			})
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want Invalid mentioning %q", err, tc.msg)
			}
		})
	}
	t.Run("update/allowed edit", func(t *testing.T) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur := getSI(t, ns, si.Name)
			cur.Spec.InvoiceFooterDisclaimer = "Updated footer."
			return k8sClient.Update(ctx, cur, client.DryRunAll)
		})
		if err != nil {
			t.Errorf("a footer edit was refused: %v", err)
		}
	})
}
