package controller

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// signingSecretPass runs the webhook phase of a first creation against controller-runtime's fake
// client and counts the reads of the signing Secret. hide makes the first read answer NotFound
// whatever the store holds, as when another writer creates the Secret between the pass's read
// and its write.
func signingSecretPass(t *testing.T, existing *corev1.Secret, hide bool) (observation, int, client.Client) {
	t.Helper()
	ctx := context.Background()
	si := branchSI()
	objs := []client.Object{si}
	if existing != nil {
		objs = append(objs, existing)
	}
	reads := 0
	c := crfake.NewClientBuilder().WithScheme(branchScheme(t)).WithObjects(objs...).
		WithStatusSubresource(&v1.StripeIntegration{}).
		WithIndex(&v1.StripeIntegration{}, webhookURLIndex, func(client.Object) []string { return nil }).
		WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if _, ok := obj.(*corev1.Secret); ok && key.Name == signingSecretName(bName) {
					reads++
					if hide && reads == 1 {
						return apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, key.Name)
					}
				}
				return c.Get(ctx, key, obj, opts...)
			},
		}).Build()
	r := &StripeIntegrationReconciler{Client: c, SecretReader: c, Recorder: events.NewFakeRecorder(10),
		Clock: clocktesting.NewFakePassiveClock(bNow), WebhookBaseURL: bBaseURL}
	f := &fakeStripe{t: t}
	f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_new", secret: "whsec_new"})
	var obs observation
	r.reconcileEndpoint(ctx, si, f, nil, &obs)
	return obs, reads, c
}

// TestFirstSigningSecretCreatedWithoutReadingAgain: a new integration's pass reads the signing
// Secret once (absent), and after Stripe's create writes it with one create, not a second read
// and then a create: one apiserver round trip fewer per new integration.
func TestFirstSigningSecretCreatedWithoutReadingAgain(t *testing.T) {
	obs, reads, c := signingSecretPass(t, nil, false)
	if obs.Webhook.Status != metav1.ConditionTrue || obs.Webhook.Reason != v1.ReasonEndpointReady {
		t.Fatalf("WebhookEndpointReady %s/%s: %s", obs.Webhook.Status, obs.Webhook.Reason, obs.Webhook.Message)
	}
	if reads != 1 {
		t.Errorf("the signing Secret was read %d times, want once (before the Stripe call)", reads)
	}
	sec := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: bNS, Name: signingSecretName(bName)}, sec); err != nil {
		t.Fatal(err)
	}
	if string(sec.Data[v1.SigningSecretKey]) != "whsec_new" || sec.Annotations[v1.AnnotationWebhookEndpointID] != "we_new" {
		t.Errorf("signing Secret holds endpoint %q", sec.Annotations[v1.AnnotationWebhookEndpointID])
	}
}

// TestSigningSecretCreateRaceKeepsOwnershipCheck: when a Secret of that name appears between the
// read and the create, the create's AlreadyExists falls back to reading it, and a Secret this
// integration does not control is left untouched and reported, as before.
func TestSigningSecretCreateRaceKeepsOwnershipCheck(t *testing.T) {
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: bNS, Name: signingSecretName(bName)},
		Data: map[string][]byte{"user": []byte("data")}}
	obs, _, c := signingSecretPass(t, foreign, true)
	if obs.Webhook.Reason != v1.ReasonSigningSecretNameConflict {
		t.Errorf("WebhookEndpointReady %s/%s, want SigningSecretNameConflict", obs.Webhook.Status, obs.Webhook.Reason)
	}
	sec := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(foreign), sec); err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["user"]) != "data" || len(sec.Data) != 1 {
		t.Errorf("the foreign Secret was changed: %v", sec.Data)
	}
}
