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

package testenv

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

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AdmissionPolicyFile is config/admission's policy, relative to the repository root: what an
// install puts beside the CRD (the operator's finalizer, added as an integration is created).
const AdmissionPolicyFile = "config/admission/finalizer_policy.yaml"

// InstallAdmissionPolicy creates the objects of AdmissionPolicyFile as they are written (the
// policy and its binding, bound in every namespace) and waits, 30 s at most, until the apiserver
// acts on them: a StripeIntegration created (dry run) in namespace ns gets the operator's finalizer.
func InstallAdmissionPolicy(ctx context.Context, c client.Client, root, ns string) error {
	data, err := os.ReadFile(filepath.Join(root, AdmissionPolicyFile))
	if err != nil {
		return err
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("decoding %s: %w", AdmissionPolicyFile, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("installing %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	const finalizer = "payments.clinicpay.dev/finalizer"
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		si := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "payments.clinicpay.dev/v1alpha1", "kind": "StripeIntegration",
			"metadata": map[string]any{"namespace": ns, "name": "admission-policy-probe"},
			"spec": map[string]any{"clinicID": "probe", "mode": "Test", "credentialsSecretRef": map[string]any{"name": "probe"},
				"invoiceFooterDisclaimer": "probe"},
		}}
		// Until the apiserver has loaded the CRD's schema for admission policies, it refuses
		// the creation (503, "Resource kind ... not found"): not yet.
		if err := c.Create(ctx, si, client.DryRunAll); err != nil {
			last = err
			return false, nil
		}
		return slices.Contains(si.GetFinalizers(), finalizer), nil
	})
	if err != nil {
		return fmt.Errorf("the apiserver does not act on %s: %w (last refusal: %v)", AdmissionPolicyFile, err, last)
	}
	return nil
}
