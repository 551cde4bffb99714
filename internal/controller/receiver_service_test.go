package controller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// clusterIPReceiverService is the receiver Service as versions before the headless one made it:
// same name, labels, selector and ports, and a ClusterIP the apiserver allocates.
func clusterIPReceiverService(si *v1.StripeIntegration, owners ...metav1.OwnerReference) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: si.Namespace, Name: receiverName(si), Labels: receiverLabels(si),
			OwnerReferences: owners},
		Spec: corev1.ServiceSpec{
			Selector: receiverSelector(si),
			Ports: []corev1.ServicePort{
				{Name: "webhook", Port: webhookPort, TargetPort: intstr.FromString("webhook"), Protocol: corev1.ProtocolTCP},
				{Name: "metrics", Port: opsPort, TargetPort: intstr.FromString("ops"), Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

// integrationWaitingForKeys creates a StripeIntegration whose credentials Secret does not exist
// yet, so the operator makes no receiver objects until createKeys is called.
func integrationWaitingForKeys(t *testing.T, ns, name string) (si *v1.StripeIntegration, createKeys func()) {
	t.Helper()
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	mustCreate(t, integration(ns, name, uniqueClinic(name, ns), v1.ModeTest, name+"-keys"))
	return getSI(t, ns, name), func() { mustCreate(t, credentialsSecret(ns, name+"-keys", k)) }
}

func servicePorts(svc *corev1.Service) []string {
	out := make([]string, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		out = append(out, fmt.Sprintf("%s %d->%s/%s", p.Name, p.Port, p.TargetPort.String(), p.Protocol))
	}
	return out
}

var wantReceiverPorts = []string{"webhook 8080->webhook/TCP", "metrics 9090->ops/TCP"}

// TestReceiverServiceIsHeadless: a new integration's receiver Service has no ClusterIP (the
// apiserver allocates none) and keeps its ports and selector.
func TestReceiverServiceIsHeadless(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	_, si := connected(t, ns, "clinic-headless")
	svc := &corev1.Service{}
	getObj(t, ns, receiverName(si), svc)
	if svc.Spec.ClusterIP != corev1.ClusterIPNone || !slices.Equal(svc.Spec.ClusterIPs, []string{corev1.ClusterIPNone}) {
		t.Errorf("clusterIP %q clusterIPs %v, want headless", svc.Spec.ClusterIP, svc.Spec.ClusterIPs)
	}
	if got := servicePorts(svc); !slices.Equal(got, wantReceiverPorts) {
		t.Errorf("ports %v, want %v", got, wantReceiverPorts)
	}
	if !metav1.IsControlledBy(svc, si) || fmt.Sprint(svc.Spec.Selector) != fmt.Sprint(receiverSelector(si)) {
		t.Errorf("owner %v selector %v", svc.OwnerReferences, svc.Spec.Selector)
	}
}

// TestClusterIPReceiverServiceReplaced: the receiver Service an older version made with a
// ClusterIP (immutable) is deleted and a headless one takes its name, and the receiver gets ready.
func TestClusterIPReceiverServiceReplaced(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-svc-migrate"
	si, createKeys := integrationWaitingForKeys(t, ns, name)
	old := clusterIPReceiverService(si, ownerRef(si))
	mustCreate(t, old)
	if old.Spec.ClusterIP == "" || old.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Fatalf("the old Service got clusterIP %q", old.Spec.ClusterIP)
	}
	createKeys()

	svc := &corev1.Service{}
	eventually(t, waitShort, "headless Service replacing the ClusterIP one", func() (bool, string) {
		svc = &corev1.Service{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: receiverName(si)}, svc); err != nil {
			return false, err.Error()
		}
		return svc.UID != old.UID && svc.Spec.ClusterIP == corev1.ClusterIPNone,
			fmt.Sprintf("uid %s (old %s) clusterIP %s", svc.UID, old.UID, svc.Spec.ClusterIP)
	})
	if got := servicePorts(svc); !metav1.IsControlledBy(svc, si) || !slices.Equal(got, wantReceiverPorts) {
		t.Errorf("replacement: owners %v ports %v", svc.OwnerReferences, got)
	}
	markAvailable(t, ns, receiverName(si))
	waitCondition(t, ns, name, v1.ConditionReceiverReady, metav1.ConditionTrue, v1.ReasonReceiverAvailable, waitShort)
}

// TestForeignClusterIPServiceKept: a Service with the receiver's name (and the operator's labels)
// that the integration does not control is never deleted: the headless apply over its ClusterIP
// fails and ReceiverReady says so. Once its owner removes it, the headless Service is made.
func TestForeignClusterIPServiceKept(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-svc-foreign"
	si, createKeys := integrationWaitingForKeys(t, ns, name)
	foreign := clusterIPReceiverService(si)
	mustCreate(t, foreign)
	createKeys()

	waitCondition(t, ns, name, v1.ConditionReceiverReady, metav1.ConditionUnknown, v1.ReasonReceiverApplyFailed, waitShort)
	time.Sleep(2 * time.Second) // passes retry meanwhile
	svc := &corev1.Service{}
	getObj(t, ns, receiverName(si), svc)
	if svc.UID != foreign.UID || svc.Spec.ClusterIP != foreign.Spec.ClusterIP || len(svc.OwnerReferences) != 0 {
		t.Fatalf("the foreign Service changed: uid %s (was %s) clusterIP %s (was %s) owners %v",
			svc.UID, foreign.UID, svc.Spec.ClusterIP, foreign.Spec.ClusterIP, svc.OwnerReferences)
	}

	must(t, k8sClient.Delete(context.Background(), svc))
	eventually(t, waitShort, "headless Service once the foreign one is gone", func() (bool, string) {
		fresh := &corev1.Service{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: receiverName(si)}, fresh); err != nil {
			return false, err.Error()
		}
		return fresh.Spec.ClusterIP == corev1.ClusterIPNone && metav1.IsControlledBy(fresh, si),
			fmt.Sprintf("clusterIP %s owners %v", fresh.Spec.ClusterIP, fresh.OwnerReferences)
	})
}
