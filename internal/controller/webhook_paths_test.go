package controller

import (
	"fmt"
	"strings"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/receiver"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// keyedIntegration registers fresh keys of mode in the fake and creates them with si.
func keyedIntegration(t *testing.T, si *v1.StripeIntegration) testKeys {
	t.Helper()
	mode := "test"
	if si.Spec.Mode == v1.ModeLive {
		mode = "live"
	}
	k := newTestKeys(t, mode)
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	mustCreate(t, credentialsSecret(si.Namespace, si.Spec.CredentialsSecretRef.Name, k), si)
	return k
}

// TestOneURLPerMode: a clinic's Test and Live integrations on one base URL register different
// URLs and route different Ingress paths, so neither conflicts nor shadows the other.
func TestOneURLPerMode(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	clinic := uniqueClinic("clinic-pm", ns)
	const base = "https://hooks.per-mode.example"
	byMode := map[v1.Mode]string{v1.ModeTest: base + "/stripe/webhook-test/" + clinic, v1.ModeLive: base + "/stripe/webhook/" + clinic}
	for mode, want := range byMode {
		name := "pm-" + strings.ToLower(string(mode))
		si := integration(ns, name, clinic, mode, name+"-keys")
		si.Spec.Webhook = &v1.WebhookSpec{BaseURL: base, Ingress: &v1.IngressSpec{Host: "hooks.per-mode.example"}}
		k := keyedIntegration(t, si)
		si = waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
		eps := fake.Endpoints(fake.AccountForKey(k.secret), mode == v1.ModeLive)
		if si.Status.WebhookURL != want || len(eps) != 1 || eps[0].URL != want {
			t.Errorf("%s: status URL %q, endpoints %d, want %s", mode, si.Status.WebhookURL, len(eps), want)
		}
		ing := &networkingv1.Ingress{}
		getObj(t, ns, receiverName(si), ing)
		if got := ing.Spec.Rules[0].HTTP.Paths[0].Path; base+got != want {
			t.Errorf("%s: Ingress path %q, want the path of %s", mode, got, want)
		}
	}
}

// TestTestEndpointMovedToItsOwnURL: a Test endpoint registered before each mode had its own path
// (…/stripe/webhook/<clinic>) is moved in place by drift repair: same endpoint, same secret.
func TestTestEndpointMovedToItsOwnURL(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-mv-url")
	before := accountEndpoints(k)[0]
	secretBefore := string(signingSecret(t, si).Data[v1.SigningSecretKey])
	legacyURL := testWebhookURL + "/stripe/webhook/" + si.Spec.ClinicID
	// The pre-upgrade state as the new operator meets it: its own endpoint, secret stored, old URL.
	must(t, fake.UpdateEndpoint(before.ID, func(e *stripe.WebhookEndpoint) { e.URL = legacyURL }))

	want := testWebhookURL + "/stripe/webhook-test/" + si.Spec.ClinicID
	eventually(t, waitShort, "endpoint moved to the Test path", func() (bool, string) {
		eps := accountEndpoints(k)
		return len(eps) == 1 && eps[0].ID == before.ID && eps[0].URL == want, fmt.Sprintf("%+v", eps)
	})
	waitEvent(t, ns, "clinic-mv-url", v1.EventEndpointRepaired)
	eventually(t, waitShort, "status follows", func() (bool, string) {
		got := getSI(t, ns, "clinic-mv-url")
		return got.Status.WebhookURL == want && got.Status.WebhookEndpointID == before.ID, got.Status.WebhookURL
	})
	if got := string(signingSecret(t, getSI(t, ns, "clinic-mv-url")).Data[v1.SigningSecretKey]); got != secretBefore {
		t.Error("the move replaced the signing secret; it must keep the endpoint and its secret")
	}
}

// TestWebhookPathsAgreeWithReceiver: the operator registers (and routes in the Ingress) exactly
// the path cmd/receiver serves, per mode.
func TestWebhookPathsAgreeWithReceiver(t *testing.T) {
	t.Parallel()
	for _, mode := range []v1.Mode{v1.ModeTest, v1.ModeLive} {
		si := integration("ns", "n", "clinic-a", mode, "keys")
		if got, want := webhookPath(si), receiver.WebhookPath(receiver.Mode(mode), "clinic-a"); got != want {
			t.Errorf("%s: operator path %q, receiver path %q", mode, got, want)
		}
	}
}
