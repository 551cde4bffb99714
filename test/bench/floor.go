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

// The apiserver's floor, measured in the same run as the cold start so that the cold start can be
// read as a ratio to what this machine's apiserver manages at that moment: small creates per
// second, and Service creates per second, which are slower because the apiserver allocates
// ClusterIPs one at a time (MetaAllocator.AllocateNextService in k8s.io/kubernetes
// pkg/registry/core/service/ipallocator holds one mutex across the IPAddress create it sends to
// itself), and every integration has a receiver Service.

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	floorNamespace = "bench-floor"
	// Twice N small creates (within these bounds) and up to floorServices Service creates.
	floorSmallMin, floorSmallMax = 500, 4000
	floorServices                = 300
)

// Floor is what the apiserver alone did just before the cold start, with the bench's concurrency.
type Floor struct {
	Small        int           // small ConfigMaps created
	SmallTook    time.Duration // wall time for them
	Services     int           // ClusterIP Services created
	ServicesTook time.Duration
	ServiceP50   time.Duration // per Service create
}

// SmallPerSec is small creates per second.
func (f Floor) SmallPerSec() float64 { return perSec(f.Small, f.SmallTook) }

// ServicesPerSec is Service creates per second.
func (f Floor) ServicesPerSec() float64 { return perSec(f.Services, f.ServicesTook) }

func perSec(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ColdFloor is the least time a cold start of n integrations can take at these rates: every write
// the manager and the bench made at least at the small-write rate, and every receiver Service at
// least at the Service rate. The larger bound wins; the two overlap in reality.
func (f Floor) ColdFloor(writes, n int) (byWrites, byServices time.Duration) {
	if r := f.SmallPerSec(); r > 0 {
		byWrites = time.Duration(float64(writes) / r * float64(time.Second))
	}
	if r := f.ServicesPerSec(); r > 0 {
		byServices = time.Duration(float64(n) / r * float64(time.Second))
	}
	return byWrites, byServices
}

// measureFloor creates small ConfigMaps, then Services, in a namespace of their own, with the
// bench's createWorkers. They are left in place: the manager caches neither (Services only with
// its label), and deleting Services would take the allocator's lock again.
func (c *cluster) measureFloor(ctx context.Context, small, services int) (Floor, error) {
	f := Floor{Small: small, Services: services}
	if err := c.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: floorNamespace}}); err != nil &&
		!apierrors.IsAlreadyExists(err) {
		return f, err
	}
	start := time.Now()
	if err := parallel(ctx, small, func(i int) error {
		return c.c.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: floorNamespace, Name: fmt.Sprintf("floor-%d", i)},
			Data: map[string]string{"k": "v"}})
	}); err != nil {
		return f, fmt.Errorf("small creates: %w", err)
	}
	f.SmallTook = time.Since(start)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, services)
	start = time.Now()
	if err := parallel(ctx, services, func(i int) error {
		t0 := time.Now()
		err := c.c.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: floorNamespace, Name: fmt.Sprintf("floor-%d", i)},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "floor"}, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}})
		mu.Lock()
		lat = append(lat, time.Since(t0))
		mu.Unlock()
		return err
	}); err != nil {
		return f, fmt.Errorf("creating Services: %w", err)
	}
	f.ServicesTook, f.ServiceP50 = time.Since(start), percentile(lat, 50)
	c.logf("floor: %d small creates in %s (%.0f/s); %d Services in %s (%.0f/s, p50 %s)", small, f.SmallTook.Round(time.Millisecond),
		f.SmallPerSec(), services, f.ServicesTook.Round(time.Millisecond), f.ServicesPerSec(), f.ServiceP50.Round(time.Millisecond))
	return f, nil
}
