package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// nameOfLen builds a valid StripeIntegration name of exactly n characters from head, padding
// with "a" and ending in a letter.
func nameOfLen(head string, n int) string {
	return head + strings.Repeat("a", n-len(head))
}

// edgeNames are valid metadata.names (DNS-1123 subdomains) at the edges of what child names and
// label values can hold.
var edgeNames = map[string]string{
	"short":                       "clinic-a-test",
	"one character":               "a",
	"digits first":                "1clinic",
	"all digits":                  "42",
	"dots":                        "clinic.a.test",
	"dots and digits":             "1.2.3",
	"dot and dash look-alikes":    "clinic-a.test",
	"47: receiver name fits":      nameOfLen("c", 47),
	"48: receiver name hashed":    nameOfLen("c", 48),
	"dot where the cut ends":      nameOfLen("c", 37) + "." + nameOfLen("d", 20),
	"63 characters":               nameOfLen("c", 63),
	"64 characters":               nameOfLen("c", 64),
	"63 with dots":                nameOfLen("c.", 63),
	"dot at label cut (54)":       nameOfLen("c", 53) + "." + nameOfLen("d", 30),
	"238: Secret name fits":       nameOfLen("c", 238),
	"239: Secret name hashed":     nameOfLen("c", 239),
	"dot at Secret name cut":      nameOfLen("c", 228) + "." + nameOfLen("d", 24),
	"253 characters":              nameOfLen("c", 253),
	"253, digits first with dots": strings.Repeat("1.", 126) + "a",
}

// uniqueClinic makes a clinicID unique in the suite: envtest runs no namespace controller, so a
// finished test's integrations stay, keep their URLs, and would conflict with a later test's.
func uniqueClinic(base, ns string) string {
	return base + "-" + strings.TrimPrefix(ns, "si-test-")
}

// TestChildNamesAreValid: every valid name yields child objects the real apiserver accepts. The
// reconciler's own apply and Secret write run against a dry-run client, so nothing is stored.
func TestChildNamesAreValid(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	dry := client.NewDryRunClient(k8sClient)
	r := &StripeIntegrationReconciler{Client: dry, SecretReader: k8sClient, ReceiverImage: testReceiverImage}
	seen := map[string]string{}
	for label, name := range edgeNames {
		t.Run(label, func(t *testing.T) {
			if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
				t.Fatalf("test name %q is not a valid object name: %v", name, errs)
			}
			si := integration(ns, name, "clinic-n", v1.ModeTest, "keys")
			si.UID = types.UID("uid-" + fmt.Sprint(len(name)))
			si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://hooks.example",
				Ingress: &v1.IngressSpec{Host: "hooks.example", ClassName: ptr.To("nginx")}}
			if err := r.applyReceiver(ctx, si, signingSecretName(si.Name)); err != nil {
				t.Errorf("receiver objects for %q refused: %v", name, err)
			}
			if err := r.writeSigningSecret(ctx, si, "we_123", "whsec_test", retiringEndpoint{}); err != nil {
				t.Errorf("signing Secret for %q refused: %v", name, err)
			}
			if errs := validation.IsDNS1035Label(receiverName(si)); len(errs) > 0 {
				t.Errorf("receiver name %q: %v", receiverName(si), errs)
			}
			if errs := validation.IsValidLabelValue(labelValue(si.Name)); len(errs) > 0 {
				t.Errorf("label value %q: %v", labelValue(si.Name), errs)
			}
		})
		if other, dup := seen[receiverName(&v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Name: name}})]; dup {
			t.Errorf("%q and %q share a receiver name", name, other)
		}
		seen[receiverName(&v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Name: name}})] = name
	}
}

// TestChildNamesKeptForUpgrades: names that were valid before keep exactly the names and label
// values they had, so an upgraded operator finds (and does not orphan) the objects it made.
func TestChildNamesKeptForUpgrades(t *testing.T) {
	t.Parallel()
	long := nameOfLen("c", 70)
	cases := map[string]struct {
		name                       string
		receiver, secret, instance string
	}{
		"short": {name: "clinic-a-test", receiver: "stripe-receiver-clinic-a-test",
			secret: "clinic-a-test-stripe-webhook", instance: "clinic-a-test"},
		"47 characters": {name: nameOfLen("c", 47), receiver: "stripe-receiver-" + nameOfLen("c", 47),
			secret: nameOfLen("c", 47) + "-stripe-webhook", instance: nameOfLen("c", 47)},
		"long, no dots": {name: long, receiver: "stripe-receiver-" + long[:38] + "-" + shortHash(long),
			secret: long + "-stripe-webhook", instance: long[:54] + "-" + shortHash(long)},
	}
	for label, tc := range cases {
		t.Run(label, func(t *testing.T) {
			si := &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Name: tc.name}}
			if got := receiverName(si); got != tc.receiver {
				t.Errorf("receiverName = %q, want %q", got, tc.receiver)
			}
			if got := signingSecretName(tc.name); got != tc.secret {
				t.Errorf("signingSecretName = %q, want %q", got, tc.secret)
			}
			if got := receiverSelector(si)[labelInstance]; got != tc.instance {
				t.Errorf("instance label = %q, want %q", got, tc.instance)
			}
		})
	}
}

// TestDottedNameReachesReceiverReady: integrations whose names hold dots (one of them 253
// characters long and starting with a digit) get their endpoint, signing Secret, receiver
// Deployment, Service, NetworkPolicy and Ingress, and connect.
func TestDottedNameReachesReceiverReady(t *testing.T) {
	t.Parallel()
	for label, name := range map[string]string{
		"dotted":                   "clinic.dot.test",
		"253, digit first, dotted": edgeNames["253, digits first with dots"],
	} {
		t.Run(label, func(t *testing.T) {
			ns := newNamespace(t)
			k := newTestKeys(t, "test")
			fake.AddKey(k.secret, stripefake.KeyOptions{})
			si := integration(ns, name, uniqueClinic("clinic-dot", ns), v1.ModeTest, "keys")
			si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://hooks.dots.example",
				Ingress: &v1.IngressSpec{Host: "hooks.dots.example"}}
			mustCreate(t, credentialsSecret(ns, "keys", k), si)
			si = waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)

			rn := receiverName(si)
			for _, obj := range []client.Object{&corev1.Service{}, &networkingv1.NetworkPolicy{}, &networkingv1.Ingress{}} {
				getObj(t, ns, rn, obj)
				if !metav1.IsControlledBy(obj, si) {
					t.Errorf("%T %s not controlled by the integration", obj, rn)
				}
			}
			secret := signingSecret(t, si)
			if got := secret.Labels["payments.clinicpay.dev/integration"]; got != labelValue(name) {
				t.Errorf("signing Secret label = %q", got)
			}
			markAvailable(t, ns, rn)
			waitCondition(t, ns, name, v1.ConditionReceiverReady, metav1.ConditionTrue, v1.ReasonReceiverAvailable, waitShort)
			waitCondition(t, ns, name, v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
		})
	}
}

// TestLegacyDottedDeploymentRemoved: before names were sanitised, a dotted name got a Deployment
// (a DNS subdomain) whose Service was always refused. The upgraded operator removes that
// Deployment, which ran with the signing secret but could receive nothing, and keeps the new one.
func TestLegacyDottedDeploymentRemoved(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic.legacy"
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	mustCreate(t, credentialsSecret(ns, "keys", k), integration(ns, name, uniqueClinic("clinic-legacy", ns), v1.ModeTest, "keys"))
	si := waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	getObj(t, ns, receiverName(si), &appsv1.Deployment{})

	// What the old operator left: a Deployment under the dotted name, controlled by the object.
	legacy := &appsv1.Deployment{}
	getObj(t, ns, receiverName(si), legacy)
	legacy.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: legacyReceiverName(si), Labels: legacy.Labels,
		OwnerReferences: []metav1.OwnerReference{ownerRef(si)}}
	legacy.Status = appsv1.DeploymentStatus{}
	mustCreate(t, legacy)

	eventually(t, waitShort, "legacy Deployment deleted", func() (bool, string) {
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: legacyReceiverName(si)}, &appsv1.Deployment{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	getObj(t, ns, receiverName(si), &appsv1.Deployment{})
}
