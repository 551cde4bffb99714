package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// receiverSettled waits until the pass that applied the receiver objects wrote its status: the
// objects that pass applies, or deletes, are then as it left them.
func receiverSettled(t *testing.T, ns, name string) *v1.StripeIntegration {
	t.Helper()
	return waitCondition(t, ns, name, v1.ConditionReceiverReady, metav1.ConditionFalse, v1.ReasonReceiverProgressing, waitShort)
}

func getPDB(ns, name string) (*policyv1.PodDisruptionBudget, error) {
	pdb := &policyv1.PodDisruptionBudget{}
	return pdb, k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pdb)
}

func goMemLimitEnv(c corev1.Container) string {
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			return e.Value
		}
	}
	return ""
}

// TestReceiverDefaultsPerMode: with spec.receiver unset, a Live receiver runs 2 replicas behind a
// PodDisruptionBudget and a Test receiver 1 replica without one; both get the measured requests
// and limits, and GOMEMLIMIT below the memory limit.
func TestReceiverDefaultsPerMode(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newClinic(t, ns, "clinic-live", withMode(v1.ModeLive))
	newClinic(t, ns, "clinic-test", withMode(v1.ModeTest))
	for _, tc := range []struct {
		name     string
		replicas int32
		pdb      bool
	}{
		{"clinic-live", 2, true},
		{"clinic-test", 1, false},
	} {
		si := receiverSettled(t, ns, tc.name)
		dep := &appsv1.Deployment{}
		getObj(t, ns, receiverName(si), dep)
		if got := ptr.Deref(dep.Spec.Replicas, -1); got != tc.replicas {
			t.Errorf("%s: %d replicas, want %d", tc.name, got, tc.replicas)
		}
		c := dep.Spec.Template.Spec.Containers[0]
		want := corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("24Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		}
		if !equality.Semantic.DeepEqual(c.Resources, want) {
			t.Errorf("%s: resources %v, want %v", tc.name, c.Resources, want)
		}
		if got := goMemLimitEnv(c); got != "57MiB" {
			t.Errorf("%s: GOMEMLIMIT %q, want 57MiB (90%% of the 64Mi limit)", tc.name, got)
		}
		pdb, err := getPDB(ns, receiverName(si))
		switch {
		case !tc.pdb && !apierrors.IsNotFound(err):
			t.Errorf("%s: PodDisruptionBudget %v (err %v), want none for one replica", tc.name, pdb.Spec, err)
		case tc.pdb && err != nil:
			t.Errorf("%s: no PodDisruptionBudget: %v", tc.name, err)
		case tc.pdb:
			if !metav1.IsControlledBy(pdb, si) || pdb.Labels[LabelManagedBy] != managedByValue {
				t.Errorf("%s: PodDisruptionBudget owners %v, labels %v", tc.name, pdb.OwnerReferences, pdb.Labels)
			}
			if pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) || pdb.Spec.MinAvailable != nil ||
				!equality.Semantic.DeepEqual(pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels) ||
				ptr.Deref(pdb.Spec.UnhealthyPodEvictionPolicy, "") != policyv1.AlwaysAllow {
				t.Errorf("%s: PodDisruptionBudget spec %+v", tc.name, pdb.Spec)
			}
		}
	}
}

// TestReceiverDisruptionBudgetFollowsReplicas: the budget follows the effective replicas, in
// either mode: dropped below two, restored at two or more, and a hand edit is undone.
func TestReceiverDisruptionBudgetFollowsReplicas(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newClinic(t, ns, "clinic-pdb", withMode(v1.ModeLive))
	si := receiverSettled(t, ns, "clinic-pdb")
	name := receiverName(si)
	eventually(t, waitShort, "PodDisruptionBudget created", func() (bool, string) {
		_, err := getPDB(ns, name)
		return err == nil, fmt.Sprint(err)
	})
	// A merge patch: the operator writes the object too, and an update could conflict with it.
	setReplicas := func(n *int32) {
		t.Helper()
		si := getSI(t, ns, "clinic-pdb")
		orig := si.DeepCopy()
		si.Spec.Receiver = &v1.ReceiverSpec{Replicas: n}
		must(t, k8sClient.Patch(context.Background(), si, client.MergeFrom(orig)))
	}
	waitReplicas := func(want int32, pdb bool) {
		t.Helper()
		eventually(t, waitShort, fmt.Sprintf("%d replicas, budget %t", want, pdb), func() (bool, string) {
			dep := &appsv1.Deployment{}
			getObj(t, ns, name, dep)
			_, err := getPDB(ns, name)
			got := ptr.Deref(dep.Spec.Replicas, -1)
			return got == want && (err == nil) == pdb && (pdb || apierrors.IsNotFound(err)),
				fmt.Sprintf("replicas %d, budget: %v", got, err)
		})
	}
	setReplicas(ptr.To[int32](1))
	waitReplicas(1, false)
	setReplicas(ptr.To[int32](3))
	waitReplicas(3, true)
	setReplicas(ptr.To[int32](0))
	waitReplicas(0, false)
	setReplicas(nil) // back to the Live default
	waitReplicas(2, true)

	pdb, err := getPDB(ns, name)
	must(t, err)
	pdb.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(2))
	must(t, k8sClient.Update(context.Background(), pdb))
	eventually(t, waitShort, "PodDisruptionBudget restored", func() (bool, string) {
		pdb, err := getPDB(ns, name)
		return err == nil && *pdb.Spec.MaxUnavailable == intstr.FromInt32(1), fmt.Sprint(pdb.Spec.MaxUnavailable, err)
	})
}

// TestReceiverDisruptionBudgetSteadyState: a pass over an unchanged Live integration sends no
// write for the budget (a no-op server-side apply would not move resourceVersion, so the writes
// are counted at the client), and resyncs rewrite neither the budget nor the Deployment.
func TestReceiverDisruptionBudgetSteadyState(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newClinic(t, ns, "clinic-pss", withMode(v1.ModeLive))
	si := receiverSettled(t, ns, "clinic-pss")
	name := receiverName(si)
	markAvailable(t, ns, name)
	waitCondition(t, ns, "clinic-pss", v1.ConditionReceiverReady, metav1.ConditionTrue, v1.ReasonReceiverAvailable, waitShort)
	time.Sleep(500 * time.Millisecond) // let the pass the Deployment's status started finish
	pdb, err := getPDB(ns, name)
	must(t, err)
	dep := &appsv1.Deployment{}
	getObj(t, ns, name, dep)

	time.Sleep(2*testResync + time.Second)
	after, err := getPDB(ns, name)
	must(t, err)
	if after.ResourceVersion != pdb.ResourceVersion {
		t.Errorf("resyncs rewrote the PodDisruptionBudget: resourceVersion %s -> %s", pdb.ResourceVersion, after.ResourceVersion)
	}
	depAfter := &appsv1.Deployment{}
	getObj(t, ns, name, depAfter)
	if depAfter.ResourceVersion != dep.ResourceVersion {
		t.Errorf("resyncs rewrote the Deployment: resourceVersion %s -> %s", dep.ResourceVersion, depAfter.ResourceVersion)
	}

	direct, err := client.NewWithWatch(restConfig, client.Options{Scheme: k8sClient.Scheme()})
	must(t, err)
	var writes []string
	count := func(verb string, obj any) { writes = append(writes, fmt.Sprintf("%s %T", verb, obj)) }
	r := &StripeIntegrationReconciler{Client: interceptor.NewClient(direct, interceptor.Funcs{
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			count("apply", obj)
			return c.Apply(ctx, obj, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			count("create", obj)
			return c.Create(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			count("patch", obj)
			return c.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			count("delete", obj)
			return c.Delete(ctx, obj, opts...)
		},
	})}
	must(t, r.applyReceiverDisruptionBudget(context.Background(), getSI(t, ns, "clinic-pss")))
	if len(writes) != 0 {
		t.Errorf("a pass over the unchanged budget wrote: %v", writes)
	}
}

// TestGoMemLimitFollowsTheMemoryLimit: GOMEMLIMIT is 90% of whatever memory limit the container
// gets, and absent without one.
func TestGoMemLimitFollowsTheMemoryLimit(t *testing.T) {
	si := integration("ns", "clinic", "clinic", v1.ModeTest, "keys")
	for _, tc := range []struct {
		resources *corev1.ResourceRequirements
		want      string
	}{
		{nil, "57MiB"},
		{&corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}, "230MiB"},
		{&corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1G")}}, "858MiB"},
		{&corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}, ""},
	} {
		si.Spec.Receiver = &v1.ReceiverSpec{Resources: tc.resources}
		c := receiverDeployment(si, "image", "secret").Spec.Template.Spec.Containers[0]
		var env corev1.Container
		for _, e := range c.Env {
			env.Env = append(env.Env, corev1.EnvVar{Name: *e.Name, Value: *e.Value})
		}
		if got := goMemLimitEnv(env); got != tc.want {
			t.Errorf("resources %v: GOMEMLIMIT %q, want %q", tc.resources, got, tc.want)
		}
	}
}
