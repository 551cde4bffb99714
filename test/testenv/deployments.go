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
	"context"
	"sync/atomic"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/clinicpay/stripe-operator/internal/controller"
)

// NewCache is a cache for test tools that sees the receiver Deployments the manager does (only
// those the operator labelled), whole (the manager's own cache trims them), and everything else
// unfiltered.
func NewCache(cfg *rest.Config, scheme *runtime.Scheme) (cache.Cache, error) {
	byObject := map[client.Object]cache.ByObject{}
	for obj, by := range controller.CacheByObject() {
		if _, ok := obj.(*appsv1.Deployment); ok {
			byObject[&appsv1.Deployment{}] = cache.ByObject{Label: by.Label}
		}
	}
	return cache.New(cfg, cache.Options{Scheme: scheme, ByObject: byObject})
}

// DeploymentAvailable reports whether d's status says Available for its current generation.
func DeploymentAvailable(d *appsv1.Deployment) bool {
	if d.Status.ObservedGeneration < d.Generation {
		return false
	}
	for _, cnd := range d.Status.Conditions {
		if cnd.Type == appsv1.DeploymentAvailable && cnd.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// MarkDeploymentsAvailable plays the Deployment controller and kubelet, which envtest lacks: every
// receiver Deployment the cache sees is reported available with all its replicas, by c (use a
// user other than the manager's, so audit counts stay the manager's own). It returns the number of
// status updates made so far. It must be called before the cache starts.
func MarkDeploymentsAvailable(ctx context.Context, ca cache.Cache, c client.Client, workers int) (*atomic.Int64, error) {
	inf, err := ca.GetInformer(ctx, &appsv1.Deployment{})
	if err != nil {
		return nil, err
	}
	queue := make(chan types.NamespacedName, 1<<16)
	enqueue := func(obj any) {
		if d, ok := obj.(*appsv1.Deployment); ok && !DeploymentAvailable(d) {
			select {
			case queue <- client.ObjectKeyFromObject(d):
			case <-ctx.Done():
			}
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, n any) { enqueue(n) },
	}); err != nil {
		return nil, err
	}
	var marked atomic.Int64
	for range max(workers, 1) {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case key := <-queue:
					if markAvailable(ctx, c, key) {
						marked.Add(1)
					}
				}
			}
		}()
	}
	return &marked, nil
}

func markAvailable(ctx context.Context, c client.Client, key types.NamespacedName) bool {
	for range 5 {
		var d appsv1.Deployment
		if err := c.Get(ctx, key, &d); err != nil || DeploymentAvailable(&d) {
			return false
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		now := metav1.Now()
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: want, UpdatedReplicas: want, ReadyReplicas: want, AvailableReplicas: want,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
				Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now}},
		}
		err := c.Status().Update(ctx, &d)
		if err == nil {
			return true
		}
		if !apierrors.IsConflict(err) {
			return false
		}
	}
	return false
}
