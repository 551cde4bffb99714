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

// Package admissionpolicy installs config/admission's finalizer policy in test control planes,
// as an install puts it beside the CRD.
package admissionpolicy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// File is config/admission's policy, relative to the repository root: what an
// install puts beside the CRD (the operator's finalizer, added as an integration is created).
const File = "config/admission/finalizer_policy.yaml"

// Read decodes File under root: the policy and its binding.
func Read(root string) (*admissionv1.MutatingAdmissionPolicy, *admissionv1.MutatingAdmissionPolicyBinding, error) {
	data, err := os.ReadFile(filepath.Join(root, File))
	if err != nil {
		return nil, nil, err
	}
	policy, binding := &admissionv1.MutatingAdmissionPolicy{}, &admissionv1.MutatingAdmissionPolicyBinding{}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for _, into := range []any{policy, binding} {
		if err := dec.Decode(into); err != nil {
			return nil, nil, fmt.Errorf("decoding %s: %w", File, err)
		}
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%s holds more than a policy and its binding (%v)", File, err)
	}
	if binding.Spec.PolicyName != policy.Name {
		return nil, nil, fmt.Errorf("%s: the binding names policy %q, not %q", File, binding.Spec.PolicyName, policy.Name)
	}
	return policy, binding, nil
}

// Install creates the objects of File as they are written (the
// policy and its binding, bound in every namespace) and waits, 30 s at most, until the apiserver
// acts on them: a StripeIntegration created (dry run) in namespace ns gets the operator's finalizer.
func Install(ctx context.Context, c client.Client, root, ns string) error {
	policy, binding, err := Read(root)
	if err != nil {
		return err
	}
	for _, o := range []client.Object{policy, binding} {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("installing %s: %w", o.GetName(), err)
		}
	}
	return WaitForFinalizer(ctx, c, ns)
}

// Finalizer is the operator's finalizer, which the policy adds (internal/controller.Finalizer).
const Finalizer = "payments.clinicpay.dev/finalizer"

// Probe is a valid StripeIntegration named name in ns, to create with a dry run and see what the
// apiserver would store.
func Probe(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "payments.clinicpay.dev/v1alpha1", "kind": "StripeIntegration",
		"metadata": map[string]any{"namespace": ns, "name": name},
		"spec": map[string]any{"clinicID": "probe", "mode": "Test", "credentialsSecretRef": map[string]any{"name": "probe"},
			"invoiceFooterDisclaimer": "Payments are processed by Stripe."},
	}}
}

// WaitForFinalizer waits, 30 s at most, until a StripeIntegration created (dry run) in ns
// gets the operator's finalizer from the apiserver.
func WaitForFinalizer(ctx context.Context, c client.Client, ns string) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		si := Probe(ns, "admission-policy-probe")
		// Until the apiserver has loaded the CRD's schema for admission policies, it refuses
		// the creation (503, "Resource kind ... not found"): not yet.
		if err := c.Create(ctx, si, client.DryRunAll); err != nil {
			last = err
			return false, nil
		}
		return slices.Contains(si.GetFinalizers(), Finalizer), nil
	})
	if err != nil {
		return fmt.Errorf("the apiserver does not add the finalizer in %s: %w (last refusal: %v)", ns, err, last)
	}
	return nil
}
