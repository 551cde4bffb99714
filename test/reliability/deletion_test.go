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

package reliability

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
	"github.com/clinicpay/stripe-operator/test/testreport"
)

// removalCase deletes an integration and its credentials Secret in one order, with the manager
// SIGKILLed after the first deletion and the second one made before or after a new manager starts.
type removalCase struct {
	secretFirst bool
	beforeStart bool
	key         types.NamespacedName
}

func (c removalCase) String() string {
	order, when := "integration first", "after"
	if c.secretFirst {
		order = "Secret first"
	}
	if c.beforeStart {
		when = "before"
	}
	return fmt.Sprintf("%s, second deletion %s the new manager starts", order, when)
}

func (c removalCase) secretKey() types.NamespacedName {
	return types.NamespacedName{Namespace: c.key.Namespace, Name: c.key.Name + "-keys"}
}

// TestRemovalAcrossRestart: no endpoint outlives its integration, in either deletion order, when
// the manager dies (SIGKILL) between the two deletions. An in-memory key would not survive this;
// the credentials Secret's in-use finalizer keeps the keys readable until the endpoint is removed.
func TestRemovalAcrossRestart(t *testing.T) {
	t.Parallel() // each test runs its own control plane, Stripe fake and managers
	w := newWorld(t, 3*time.Second)
	ctx := context.Background()
	mgr := w.startManager(false)
	var cases []removalCase
	for _, secretFirst := range []bool{true, false} {
		for _, beforeStart := range []bool{true, false} {
			cases = append(cases, removalCase{secretFirst: secretFirst, beforeStart: beforeStart, key: w.createIntegration(ctx)})
		}
	}
	keys := make([]types.NamespacedName, len(cases))
	for i, c := range cases {
		keys[i] = c.key
	}
	w.waitFor(time.Minute, "all Connected", func() (bool, string) {
		n, msg := w.connected(ctx, keys)
		return n == len(keys), msg
	})
	// Connected implies protected: the in-use finalizer is placed before the endpoint is created.

	// First deletions. An integration deleted first is caught mid-removal: Stripe holds its endpoint
	// deletes past the manager's call timeout, so it records failed attempts and keeps its finalizer.
	for _, c := range cases {
		if c.secretFirst {
			w.deleteSecret(ctx, c.secretKey())
			continue
		}
		w.fake.InjectFault(stripefake.Fault{Key: w.keyOf(c.key), Method: http.MethodDelete, PathPrefix: "/v1/webhook_endpoints", Latency: time.Minute})
		w.deleteIntegration(ctx, c.key)
	}
	for _, c := range cases {
		if c.secretFirst {
			continue
		}
		w.waitFor(time.Minute, "a failed removal attempt recorded", func() (bool, string) {
			var si v1.StripeIntegration
			err := w.c.Get(ctx, c.key, &si)
			return err == nil && si.Annotations[v1.AnnotationDeletionAttempts] != "", fmt.Sprint(err)
		})
	}
	mgr.Kill()
	w.fake.ClearFaults()

	second := func(beforeStart bool) {
		for _, c := range cases {
			if c.beforeStart != beforeStart {
				continue
			}
			if c.secretFirst {
				w.deleteIntegration(ctx, c.key)
			} else {
				w.deleteSecret(ctx, c.secretKey())
			}
		}
	}
	second(true)
	mgr = w.startManager(false)
	second(false)

	start := time.Now()
	w.waitFor(2*time.Minute, "every integration and credentials Secret gone", func() (bool, string) {
		var left []string
		for _, c := range cases {
			var si v1.StripeIntegration
			if err := w.c.Get(ctx, c.key, &si); !apierrors.IsNotFound(err) {
				left = append(left, "StripeIntegration "+c.key.Name)
			}
			var s corev1.Secret
			if err := w.c.Get(ctx, c.secretKey(), &s); !apierrors.IsNotFound(err) {
				left = append(left, fmt.Sprintf("Secret %s %v", s.Name, s.Finalizers))
			}
		}
		return len(left) == 0, strings.Join(left, ", ")
	})
	took := time.Since(start)
	w.checkInvariants(ctx, nil, keys) // each deleted integration left 0 endpoints in its account
	left := 0
	for _, k := range keys {
		left += len(w.fake.Endpoints(w.account(k), false))
	}
	places, needles := w.scanForLeaks(ctx, mgr)
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.String()
	}
	testreport.Report(t,
		"%d removals across a SIGKILL (%s): %d endpoints left in Stripe, every integration and credentials Secret gone %s after the last deletion; "+
			"leak scan: %d places × %d secrets", len(cases), strings.Join(names, "; "), left, took.Round(time.Second), places, needles)
}

func (w *world) deleteIntegration(ctx context.Context, key types.NamespacedName) {
	w.t.Helper()
	if err := w.c.Delete(ctx, &v1.StripeIntegration{ObjectMeta: objectMeta(key)}); err != nil {
		w.t.Fatalf("delete %s: %v", key.Name, err)
	}
}

func (w *world) deleteSecret(ctx context.Context, key types.NamespacedName) {
	w.t.Helper()
	if err := w.c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}); err != nil {
		w.t.Fatalf("delete Secret %s: %v", key.Name, err)
	}
}
