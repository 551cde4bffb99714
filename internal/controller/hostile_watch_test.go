package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

func condSummary(si *v1.StripeIntegration) string {
	s := make([]string, 0, len(si.Status.Conditions))
	for _, c := range si.Status.Conditions {
		s = append(s, fmt.Sprintf("%s=%s/%s@%d", c.Type, c.Status, c.Reason, c.ObservedGeneration))
	}
	return strings.Join(s, " ")
}

func logLinesWith(parts ...string) int {
	n := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// crCounter sums a controller-runtime counter of the stripeintegration controller.
func crCounter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "stripeintegration" {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// writeCounter counts writes (creates, updates, deletes) in one namespace, of the objects a
// reconcile writes or that trigger one: StripeIntegrations, Secrets and the receiver objects.
type writeCounter struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	byKind map[string]int
	total  atomic.Int64
}

var (
	watchClientOnce sync.Once
	watchClient     client.WithWatch
	watchClientErr  error
)

var watchedKinds = []schema.GroupVersionKind{
	v1.GroupVersion.WithKind("StripeIntegrationList"),
	{Version: "v1", Kind: "SecretList"},
	{Group: "apps", Version: "v1", Kind: "DeploymentList"},
	{Version: "v1", Kind: "ServiceList"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicyList"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "IngressList"},
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudgetList"},
}

// sharedWatchClient is one direct client with watch for the tests that watch the apiserver.
func sharedWatchClient(t *testing.T) client.WithWatch {
	t.Helper()
	watchClientOnce.Do(func() {
		watchClient, watchClientErr = client.NewWithWatch(restConfig, client.Options{Scheme: k8sClient.Scheme()})
	})
	if watchClientErr != nil {
		t.Fatal(watchClientErr)
	}
	return watchClient
}

func countWrites(t *testing.T, ns string) *writeCounter {
	t.Helper()
	watchClient := sharedWatchClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	w := &writeCounter{cancel: cancel, byKind: map[string]int{}}
	for _, gvk := range watchedKinds {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk)
		if err := watchClient.List(ctx, list, client.InNamespace(ns)); err != nil {
			cancel()
			t.Fatalf("listing %s: %v", gvk.Kind, err)
		}
		wl := &metav1.PartialObjectMetadataList{}
		wl.SetGroupVersionKind(gvk)
		wi, err := watchClient.Watch(ctx, wl, client.InNamespace(ns),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			cancel()
			t.Fatalf("watching %s: %v", gvk.Kind, err)
		}
		kind := strings.TrimSuffix(gvk.Kind, "List")
		w.wg.Add(2)
		go func() {
			defer w.wg.Done()
			<-ctx.Done()
			wi.Stop()
		}()
		go func() {
			defer w.wg.Done()
			for ev := range wi.ResultChan() {
				switch ev.Type {
				case watch.Added, watch.Modified, watch.Deleted:
					w.mu.Lock()
					w.byKind[kind]++
					w.mu.Unlock()
					w.total.Add(1)
				case watch.Error:
					if ctx.Err() == nil { // errors after stop are the stream closing
						t.Errorf("watch %s: %v", kind, apierrors.FromObject(ev.Object))
					}
				}
			}
		}()
	}
	return w
}

func (w *writeCounter) stop() int {
	w.cancel()
	w.wg.Wait()
	return int(w.total.Load())
}

func (w *writeCounter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.byKind) == 0 {
		return "none"
	}
	s := make([]string, 0, len(w.byKind))
	for k, n := range w.byKind {
		s = append(s, fmt.Sprintf("%s %d", k, n))
	}
	return strings.Join(s, ", ")
}
