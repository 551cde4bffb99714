package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

func withForwarding(si *v1.StripeIntegration) *v1.StripeIntegration {
	si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{
		HTTP: &v1.HTTPTarget{URL: "https://emr.clinic.example/stripe", SigningKeySecretRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "emr-creds"}, Key: "hmac"}},
		FHIR: &v1.FHIRTarget{BaseURL: "https://fhir.clinic.example/r4", TokenSecretRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "fhir-creds"}, Key: "token"}, PatientMetadataKey: "emr_patient"},
	}}
	si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://hooks.clinic.example", Ingress: &v1.IngressSpec{
		Host: "hooks.clinic.example", ClassName: ptr.To("nginx"), TLSSecretName: "hooks-tls"}}
	return si
}

// forwardSecrets are the admin-made Secrets withForwarding names, each bound to its target.
func forwardSecrets(ns string) []client.Object {
	return []client.Object{
		forwardSecret(ns, "emr-creds", "hmac", "https://emr.clinic.example/stripe"),
		forwardSecret(ns, "fhir-creds", "token", "https://fhir.clinic.example/r4"),
	}
}

// forwardSecret is a Secret an admin bound to the targets in forwardTo ("" for none).
func forwardSecret(ns, name, key, forwardTo string) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data:       map[string][]byte{key: []byte("forward-credential-" + name)},
	}
	if forwardTo != "" {
		s.Annotations = map[string]string{v1.AnnotationForwardTo: forwardTo}
	}
	return s
}

func getObj(t *testing.T, ns, name string, obj client.Object) {
	t.Helper()
	eventually(t, waitShort, fmt.Sprintf("%T %s", obj, name), func() (bool, string) {
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
		return err == nil, fmt.Sprint(err)
	})
}

// markAvailable plays the Deployment controller's part, which envtest does not run.
func markAvailable(t *testing.T, ns, name string) {
	t.Helper()
	dep := &appsv1.Deployment{}
	getObj(t, ns, name, dep)
	n := ptr.Deref(dep.Spec.Replicas, 1)
	now := metav1.Now()
	dep.Status = appsv1.DeploymentStatus{
		ObservedGeneration: dep.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now}},
	}
	must(t, k8sClient.Status().Update(context.Background(), dep))
}

func TestReceiverObjects(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	si := withForwarding(integration(ns, "clinic-rx", uniqueClinic("clinic-rx", ns), v1.ModeTest, "keys"))
	mustCreate(t, forwardSecrets(ns)...)
	mustCreate(t, credentialsSecret(ns, "keys", k), si)
	si = waitCondition(t, ns, "clinic-rx", v1.ConditionReceiverReady, metav1.ConditionFalse, v1.ReasonReceiverProgressing, waitShort)
	name := receiverName(si)

	dep := &appsv1.Deployment{}
	getObj(t, ns, name, dep)
	// Test mode's default: spec.receiver is set (forwarding) but not its replicas.
	if !metav1.IsControlledBy(dep, si) || ptr.Deref(dep.Spec.Replicas, 0) != 1 {
		t.Errorf("owner/replicas wrong: %v %v", dep.OwnerReferences, dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	if c.Image != testReceiverImage || !slices.Equal(c.Command, []string{"/receiver"}) {
		t.Errorf("image/command = %s %v", c.Image, c.Command)
	}
	for _, want := range []string{"--clinic-id=" + uniqueClinic("clinic-rx", ns), "--mode=Test",
		"--signing-secret-file=/var/run/stripe-webhook/signingSecret",
		"--http-target-url=https://emr.clinic.example/stripe", "--http-signing-key-file=/var/run/clinicpay/http-signing-key/key",
		"--fhir-base-url=https://fhir.clinic.example/r4", "--fhir-token-file=/var/run/clinicpay/fhir-token/token",
		"--fhir-patient-metadata-key=emr_patient", "--fhir-claim-metadata-key=claim_id"} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("args %v lack %s", c.Args, want)
		}
	}
	// Restricted pod security, no API token, no Stripe key anywhere in the pod.
	sc := c.SecurityContext
	if sc == nil || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) || ptr.Deref(sc.AllowPrivilegeEscalation, true) ||
		!ptr.Deref(sc.RunAsNonRoot, false) || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext = %+v", sc)
	}
	if ptr.Deref(pod.AutomountServiceAccountToken, true) || !ptr.Deref(pod.SecurityContext.RunAsNonRoot, false) {
		t.Error("pod mounts a service account token or may run as root")
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil {
		t.Error("probes missing")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources = %+v", c.Resources)
	}
	secretsMounted := make([]string, 0, len(pod.Volumes))
	for _, v := range pod.Volumes {
		secretsMounted = append(secretsMounted, v.Secret.SecretName)
	}
	if !slices.Equal(secretsMounted, []string{si.Status.SigningSecretName, "emr-creds", "fhir-creds"}) {
		t.Errorf("mounted Secrets = %v (never the credentials Secret)", secretsMounted)
	}

	svc := &corev1.Service{}
	getObj(t, ns, name, svc)
	if len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].Port != webhookPort || svc.Spec.Ports[1].Port != opsPort {
		t.Errorf("service ports = %+v", svc.Spec.Ports)
	}
	np := &networkingv1.NetworkPolicy{}
	getObj(t, ns, name, np)
	// Webhook and metrics rules, egress to DNS and the forward targets (TestReceiverNetworkPolicy).
	if len(np.Spec.Ingress) != 2 || len(np.Spec.Egress) != 2 || !slices.Equal(np.Spec.PolicyTypes,
		[]networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("network policy = %+v", np.Spec)
	}
	ing := &networkingv1.Ingress{}
	getObj(t, ns, name, ing)
	rule := ing.Spec.Rules[0]
	if rule.Host != "hooks.clinic.example" || rule.HTTP.Paths[0].Path != "/stripe/webhook-test/"+uniqueClinic("clinic-rx", ns) ||
		ptr.Deref(ing.Spec.IngressClassName, "") != "nginx" || ing.Spec.TLS[0].SecretName != "hooks-tls" {
		t.Errorf("ingress = %+v", ing.Spec)
	}
}

func TestReceiverHandEditsAreReverted(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	_, si := connected(t, ns, "clinic-he")
	name := receiverName(si)
	dep := &appsv1.Deployment{}
	getObj(t, ns, name, dep)

	dep.Spec.Template.Spec.Containers[0].Image = "evil.example/miner:latest"
	dep.Spec.Template.Spec.AutomountServiceAccountToken = ptr.To(true)
	must(t, k8sClient.Update(context.Background(), dep))
	eventually(t, waitShort, "Deployment restored", func() (bool, string) {
		getObj(t, ns, name, dep)
		c := dep.Spec.Template.Spec.Containers[0]
		return c.Image == testReceiverImage && !ptr.Deref(dep.Spec.Template.Spec.AutomountServiceAccountToken, true), c.Image
	})

	np := &networkingv1.NetworkPolicy{}
	getObj(t, ns, name, np)
	applied := len(np.Spec.Ingress[0].Ports)
	np.Spec.Ingress[0].Ports = append(np.Spec.Ingress[0].Ports, networkingv1.NetworkPolicyPort{Port: ptr.To(intOrString(22))})
	must(t, k8sClient.Update(context.Background(), np))
	eventually(t, waitShort, "NetworkPolicy restored", func() (bool, string) {
		getObj(t, ns, name, np)
		return len(np.Spec.Ingress[0].Ports) == applied, fmt.Sprint(np.Spec.Ingress[0].Ports)
	})

	svc := &corev1.Service{}
	getObj(t, ns, name, svc)
	must(t, k8sClient.Delete(context.Background(), svc))
	eventually(t, waitShort, "Service recreated", func() (bool, string) {
		fresh := &corev1.Service{}
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, fresh)
		return err == nil && fresh.UID != svc.UID, fmt.Sprint(err)
	})
}

func TestConnectedEndToEnd(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	_, si := connected(t, ns, "clinic-ok")
	if c := getCondition(t, si, v1.ConditionConnected); c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonReceiverProgressing {
		t.Errorf("before the receiver is available Connected = %s/%s", c.Status, c.Reason)
	}
	markAvailable(t, ns, receiverName(si))
	si = waitCondition(t, ns, "clinic-ok", v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
	if c := getCondition(t, si, v1.ConditionReceiverReady); c.Status != metav1.ConditionTrue || c.Reason != v1.ReasonReceiverAvailable {
		t.Errorf("ReceiverReady = %s/%s", c.Status, c.Reason)
	}
	waitEvent(t, ns, "clinic-ok", v1.ReasonConnected)
	// Connected and nothing changes: the resyncs write nothing.
	rv := si.ResourceVersion
	time.Sleep(testResync + time.Second)
	if getSI(t, ns, "clinic-ok").ResourceVersion != rv {
		t.Error("a connected integration is rewritten on resync")
	}
}

func TestIngressRemovedWithSpec(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	si := withForwarding(integration(ns, "clinic-ing", uniqueClinic("clinic-ing", ns), v1.ModeTest, "keys"))
	mustCreate(t, forwardSecrets(ns)...)
	mustCreate(t, credentialsSecret(ns, "keys", k), si)
	si = waitCondition(t, ns, "clinic-ing", v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	getObj(t, ns, receiverName(si), &networkingv1.Ingress{})

	si.Spec.Webhook.Ingress = nil
	must(t, k8sClient.Update(context.Background(), si))
	eventually(t, waitShort, "Ingress deleted", func() (bool, string) {
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: receiverName(si)}, &networkingv1.Ingress{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if !strings.HasPrefix(receiverName(si), "stripe-receiver-") {
		t.Error("unexpected receiver name")
	}
}
