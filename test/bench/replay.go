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

package bench

// The operator's own writes, replayed: the floor of a cold start made of exactly the requests an
// integration's creation costs the apiserver (the bench's two creates, the manager's seven writes
// with the bodies it sent, the Deployment's status), issued by the bench at the manager's
// concurrency with nothing else in between (no reads, no Stripe calls, no manager watching). The
// small-create floor prices every write as a ConfigMap; this one prices them as what they are.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	netv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

const (
	replayNamespace = "bench-replay"
	// The manager's field owner (internal/controller/receiver_phase.go): the replayed applies
	// are extracted for it and sent as it.
	managerFieldOwner = "stripe-operator"
)

// Replay is the replayed cold start: N integrations' creation writes, sent as the manager sends
// them (each worker one integration's writes in order) and then again one kind at a time.
type Replay struct {
	N int
	// Writes are the manager's writes replayed (sent as its user, counted by the audit log as
	// the cold start's were); BenchWrites the bench's own, its Deployment status writes included.
	Writes      Writes
	BenchWrites int
	Took        time.Duration
	// Steps are the same writes for another N integrations, one kind at a time, each timed.
	Steps []ReplayStep
}

// ReplayStep is one kind of write, sent for N integrations at once.
type ReplayStep struct {
	Name string
	Took time.Duration
}

// replayTemplate is one connected integration's writes, as the manager made them.
type replayTemplate struct {
	si      *v1.StripeIntegration
	signing *corev1.Secret
	// What the manager's field owner applied, extracted (client-go's Extract*) once.
	deployment, service, policy *unstructured.Unstructured
	event                       *eventsv1.Event
}

// loadReplayTemplate reads what the manager wrote for the cold start's first integration.
func (c *cluster) loadReplayTemplate(ctx context.Context) (*replayTemplate, error) {
	t := &replayTemplate{si: &v1.StripeIntegration{}}
	key := types.NamespacedName{Namespace: c.namespace(0), Name: clinicPrefix + "0"}
	if err := c.c.Get(ctx, key, t.si); err != nil {
		return nil, err
	}
	in := client.InNamespace(key.Namespace)
	var secrets corev1.SecretList
	var deployments appsv1.DeploymentList
	var services corev1.ServiceList
	var policies networkingv1.NetworkPolicyList
	var events eventsv1.EventList
	err := errors.Join(c.c.List(ctx, &secrets, in), c.c.List(ctx, &deployments, in), c.c.List(ctx, &services, in),
		c.c.List(ctx, &policies, in), c.c.List(ctx, &events, in))
	if err != nil {
		return nil, err
	}
	for i := range secrets.Items {
		if metav1.IsControlledBy(&secrets.Items[i], t.si) {
			t.signing = &secrets.Items[i]
		}
	}
	for i := range deployments.Items {
		if metav1.IsControlledBy(&deployments.Items[i], t.si) {
			if t.deployment, err = applied(appsv1ac.ExtractDeployment(&deployments.Items[i], managerFieldOwner)); err != nil {
				return nil, err
			}
		}
	}
	for i := range services.Items {
		if metav1.IsControlledBy(&services.Items[i], t.si) {
			if t.service, err = applied(corev1ac.ExtractService(&services.Items[i], managerFieldOwner)); err != nil {
				return nil, err
			}
		}
	}
	for i := range policies.Items {
		if metav1.IsControlledBy(&policies.Items[i], t.si) {
			if t.policy, err = applied(netv1ac.ExtractNetworkPolicy(&policies.Items[i], managerFieldOwner)); err != nil {
				return nil, err
			}
		}
	}
	for i := range events.Items {
		if events.Items[i].Regarding.UID == t.si.UID {
			t.event = &events.Items[i]
		}
	}
	if t.signing == nil || t.deployment == nil || t.service == nil || t.policy == nil || t.event == nil {
		return nil, fmt.Errorf("%s: not every object the manager writes was found (signing Secret %t, Deployment %t, "+
			"Service %t, NetworkPolicy %t, Event %t)", key, t.signing != nil, t.deployment != nil, t.service != nil,
			t.policy != nil, t.event != nil)
	}
	return t, nil
}

// replay stops the manager, then sends n integrations' creation writes, templated on the cold
// start's first integration, with createWorkers workers, each doing one integration's writes in
// the manager's order; then n more integrations' writes one kind at a time. It runs last: the
// manager is not started again.
func (c *cluster) replay(ctx context.Context, n int) (Replay, error) {
	r := Replay{N: n}
	t, err := c.loadReplayTemplate(ctx)
	if err != nil {
		return r, fmt.Errorf("replay template: %w", err)
	}
	if err := c.mgr.Stop(); err != nil {
		return r, fmt.Errorf("stopping the manager: %w", err)
	}
	c.mgr = nil
	for _, ns := range []string{replayNamespace, replayNamespace + "-steps"} {
		if err := c.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil &&
			!apierrors.IsAlreadyExists(err) {
			return r, err
		}
	}
	c.logf("replay: the manager's creation writes for %d integrations, without the manager", n)
	steps := c.replaySteps(t)
	ints := make([]*replayed, n)
	for i := range ints {
		ints[i] = &replayed{ns: replayNamespace, name: fmt.Sprintf("replay-%d", i), i: i}
	}
	auditStart, err := c.audit.offset()
	if err != nil {
		return r, err
	}
	marked := c.marked.Load()
	start := time.Now()
	if err := parallel(ctx, n, func(i int) error {
		for _, s := range steps {
			if err := s.send(ctx, ints[i]); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
		}
		return nil
	}); err != nil {
		return r, err
	}
	if err := c.waitMarked(ctx, marked, n); err != nil {
		return r, err
	}
	r.Took = time.Since(start)
	r.BenchWrites = 2*n + int(c.marked.Load()-marked)
	if r.Writes, err = c.audit.countSince(auditStart); err != nil {
		return r, err
	}
	c.logf("replay: %d integrations, %d + %d bench writes, in %s (%.0f writes/s): %s", n, r.Writes.Total, r.BenchWrites,
		r.Took.Round(time.Millisecond), perSec(r.Writes.Total+r.BenchWrites, r.Took), r.Writes.Summary())
	for i := range ints {
		ints[i] = &replayed{ns: replayNamespace + "-steps", name: fmt.Sprintf("replay-%d", i), i: i}
	}
	for k, s := range steps {
		var profiled <-chan error
		if c.cfg.ProfileDir != "" {
			// The step's first 3 s (at N = 1,000 most steps take 1–3 s, the Deployment's about 6).
			profiled = apiserverCPUProfile(ctx, c.admin, 3*time.Second,
				filepath.Join(c.cfg.ProfileDir, fmt.Sprintf("replay-%d-step-%d-apiserver.pprof", n, k)))
		}
		marked := c.marked.Load()
		start := time.Now()
		if err := parallel(ctx, n, func(i int) error { return s.send(ctx, ints[i]) }); err != nil {
			return r, fmt.Errorf("%s: %w", s.name, err)
		}
		if s.marks {
			if err := c.waitMarked(ctx, marked, n); err != nil {
				return r, err
			}
		}
		took := time.Since(start)
		if profiled != nil {
			if err := <-profiled; err != nil {
				return r, err
			}
		}
		r.Steps = append(r.Steps, ReplayStep{Name: s.name, Took: took})
		c.logf("replay, one kind at a time: %d × %s in %s", n, s.name, took.Round(time.Millisecond))
	}
	return r, nil
}

// waitMarked waits until the bench's marker has marked n more Deployments available than marked.
func (c *cluster) waitMarked(ctx context.Context, marked int64, n int) error {
	return c.waitFor(ctx, time.Minute+time.Duration(n)*10*time.Millisecond, func() (bool, string) {
		got := c.marked.Load() - marked
		return got >= int64(n), fmt.Sprintf("%d/%d Deployments marked available", got, n)
	})
}

// replayed is one replayed integration, as its writes build it up.
type replayed struct {
	ns, name string
	i        int
	creds    *corev1.Secret
	si       *v1.StripeIntegration
}

type replayStep struct {
	name  string
	marks bool // the bench's marker writes the status of what this step creates
	send  func(context.Context, *replayed) error
}

// replaySteps are an integration's creation writes in the order they happen: the bench's Secret
// and StripeIntegration, then the manager's (credentials protected, signing Secret, Deployment,
// Service and NetworkPolicy applied, status, Event). The bench's marker writes the Deployment's
// status as in the cold start.
func (c *cluster) replaySteps(t *replayTemplate) []replayStep {
	rename := func(r *replayed, s string) string { return strings.ReplaceAll(s, t.si.Name, r.name) }
	return []replayStep{
		{name: "create Secret (the bench's)", send: func(ctx context.Context, r *replayed) error {
			pk, sk := secretKeyFor(r.i, 0)
			r.creds = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.name + "-keys"},
				Data: map[string][]byte{"publishableKey": []byte(pk), "secretKey": []byte(sk)}}
			return c.c.Create(ctx, r.creds)
		}},
		{name: "create StripeIntegration (the bench's)", send: func(ctx context.Context, r *replayed) error {
			r.si = &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.name}, Spec: *t.si.Spec.DeepCopy()}
			r.si.Spec.ClinicID, r.si.Spec.CredentialsSecretRef.Name = r.name, r.creds.Name
			return c.c.Create(ctx, r.si)
		}},
		{name: "patch Secret (credentials protected)", send: func(ctx context.Context, r *replayed) error {
			orig := r.creds.DeepCopy()
			controllerutil.AddFinalizer(r.creds, v1.CredentialsInUseFinalizer)
			return c.asManager.Patch(ctx, r.creds, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		}},
		{name: "create Secret (signing secret)", send: func(ctx context.Context, r *replayed) error {
			return c.asManager.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: rename(r, t.signing.Name),
				Labels: t.signing.Labels, Annotations: t.signing.Annotations, OwnerReferences: r.ownedBy()},
				Type: t.signing.Type, Data: t.signing.Data})
		}},
		{name: "apply Deployment, with the bench's status write", marks: true, send: func(ctx context.Context, r *replayed) error {
			return c.applyFor(ctx, r, t.deployment, rename)
		}},
		{name: "apply Service", send: func(ctx context.Context, r *replayed) error { return c.applyFor(ctx, r, t.service, rename) }},
		{name: "apply NetworkPolicy", send: func(ctx context.Context, r *replayed) error { return c.applyFor(ctx, r, t.policy, rename) }},
		{name: "patch StripeIntegration status", send: func(ctx context.Context, r *replayed) error {
			orig := r.si.DeepCopy()
			r.si.Status = *t.si.Status.DeepCopy()
			return c.asManager.Status().Patch(ctx, r.si, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		}},
		{name: "create Event", send: func(ctx context.Context, r *replayed) error {
			ev := t.event.DeepCopy()
			ev.ObjectMeta = metav1.ObjectMeta{Namespace: r.ns, Name: fmt.Sprintf("%s.%x", r.name, time.Now().UnixNano())}
			ev.Regarding = corev1.ObjectReference{APIVersion: v1.GroupVersion.String(), Kind: "StripeIntegration", Namespace: r.ns,
				Name: r.si.Name, UID: r.si.UID, ResourceVersion: r.si.ResourceVersion}
			ev.EventTime = metav1.NewMicroTime(time.Now())
			return c.asManager.Create(ctx, ev)
		}},
	}
}

// ownedBy is the owner reference the manager puts on what it creates for the integration.
func (r *replayed) ownedBy() []metav1.OwnerReference {
	return []metav1.OwnerReference{*metav1.NewControllerRef(r.si, v1.GroupVersion.WithKind("StripeIntegration"))}
}

// applied turns an extracted apply configuration into the unstructured object applyFor copies.
func applied(ac any, err error) (*unstructured.Unstructured, error) {
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(ac)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	return u, json.Unmarshal(b, &u.Object)
}

// applyFor applies, as the manager, a copy of the template's applied object renamed for r, in
// r's namespace and owned by r's StripeIntegration: the body the manager sent.
func (c *cluster) applyFor(ctx context.Context, r *replayed, from *unstructured.Unstructured,
	rename func(*replayed, string) string) error {
	u := from.DeepCopy()
	u.SetName(rename(r, u.GetName()))
	u.SetNamespace(r.ns)
	u.SetOwnerReferences(r.ownedBy())
	return c.asManager.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(managerFieldOwner),
		client.ForceOwnership)
}
