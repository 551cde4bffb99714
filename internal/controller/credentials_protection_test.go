package controller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

func getSecret(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s))
	return s
}

// secretState reads a Secret's finalizers; found is false once it is gone.
func secretState(t *testing.T, ns, name string) (finalizers []string, found bool) {
	t.Helper()
	s := &corev1.Secret{}
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s)
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	must(t, err)
	return s.Finalizers, true
}

func waitSecretProtected(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, waitShort, "Secret "+name+" protected", func() (bool, string) {
		f, found := secretState(t, ns, name)
		return slices.Contains(f, v1.CredentialsInUseFinalizer), fmt.Sprintf("found %t, finalizers %v", found, f)
	})
}

// waitSecretReleased waits until the Secret no longer carries the in-use finalizer (or is gone).
func waitSecretReleased(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, waitShort, "Secret "+name+" released", func() (bool, string) {
		f, _ := secretState(t, ns, name)
		return !slices.Contains(f, v1.CredentialsInUseFinalizer), fmt.Sprintf("finalizers %v", f)
	})
}

func waitSecretGone(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, waitShort, "Secret "+name+" gone", func() (bool, string) {
		f, found := secretState(t, ns, name)
		return !found, fmt.Sprintf("finalizers %v", f)
	})
}

func deleteSecretNamed(t *testing.T, ns, name string) {
	t.Helper()
	err := k8sClient.Delete(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
	must(t, client.IgnoreNotFound(err))
}

// TestNamespaceDeletionRemovesEndpoint plays the namespace controller, which envtest lacks: the
// Namespace is marked for deletion, then every Secret and every StripeIntegration in it is deleted,
// Secrets first (the worst order). The real namespace controller is tested with issue 15's cluster.
func TestNamespaceDeletionRemovesEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-nsdel")
	must(t, k8sClient.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))

	var secrets corev1.SecretList
	must(t, k8sClient.List(ctx, &secrets, client.InNamespace(ns)))
	for i := range secrets.Items {
		must(t, client.IgnoreNotFound(k8sClient.Delete(ctx, &secrets.Items[i])))
	}
	var sis v1.StripeIntegrationList
	must(t, k8sClient.List(ctx, &sis, client.InNamespace(ns)))
	for i := range sis.Items {
		must(t, client.IgnoreNotFound(k8sClient.Delete(ctx, &sis.Items[i])))
	}

	eventually(t, 20*time.Second, "every Secret and StripeIntegration gone", func() (bool, string) {
		var s corev1.SecretList
		var l v1.StripeIntegrationList
		must(t, k8sClient.List(ctx, &s, client.InNamespace(ns)))
		must(t, k8sClient.List(ctx, &l, client.InNamespace(ns)))
		return len(s.Items) == 0 && len(l.Items) == 0, fmt.Sprintf("%d Secrets, %d StripeIntegrations", len(s.Items), len(l.Items))
	})
	if eps := accountEndpoints(k); len(eps) != 0 {
		t.Errorf("%d endpoints left after the namespace deletion (want 0; %s was %s)", len(eps), si.Name, si.Status.WebhookEndpointID)
	}
}

// TestCredentialsRefMovedMovesProtection points an integration at another Secret (same keys):
// the new Secret gets the in-use finalizer, the old one loses it.
func TestCredentialsRefMovedMovesProtection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-move")
	waitSecretProtected(t, ns, "clinic-move-keys")
	mustCreate(t, credentialsSecret(ns, "clinic-move-keys-2", k))

	orig := si.DeepCopy()
	si.Spec.CredentialsSecretRef.Name = "clinic-move-keys-2"
	must(t, k8sClient.Patch(ctx, si, client.MergeFrom(orig)))

	waitSecretProtected(t, ns, "clinic-move-keys-2")
	waitSecretReleased(t, ns, "clinic-move-keys")
	waitCondition(t, ns, "clinic-move", v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	if n := len(accountEndpoints(k)); n != 1 {
		t.Errorf("%d endpoints after the move, want 1", n)
	}
}

// TestSharedCredentialsStayProtected: two integrations use one Secret; it stays protected until
// the last of them is gone.
func TestSharedCredentialsStayProtected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	a := integration(ns, "clinic-sa", uniqueClinic("clinic-sa", ns), v1.ModeTest, "shared-keys")
	b := integration(ns, "clinic-sb", uniqueClinic("clinic-sb", ns), v1.ModeTest, "shared-keys")
	mustCreate(t, credentialsSecret(ns, "shared-keys", k), a, b)
	for _, name := range []string{"clinic-sa", "clinic-sb"} {
		waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	}
	deleteSecretNamed(t, ns, "shared-keys")
	must(t, k8sClient.Delete(ctx, a))
	eventually(t, waitShort, "clinic-sa gone", func() (bool, string) {
		err := k8sClient.Get(ctx, client.ObjectKeyFromObject(a), a)
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	// clinic-sa's removal triggers the protection reconciler at once; nothing observable marks its
	// no-op pass, so the Secret is watched for a while: it must stay held for clinic-sb.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if f, found := secretState(t, ns, "shared-keys"); !found || !slices.Contains(f, v1.CredentialsInUseFinalizer) {
			t.Fatalf("the Secret was released while clinic-sb still uses it (found %t, finalizers %v)", found, f)
		}
		time.Sleep(50 * time.Millisecond)
	}
	must(t, k8sClient.Delete(ctx, b))
	waitSecretGone(t, ns, "shared-keys")
	if n := len(accountEndpoints(k)); n != 0 {
		t.Errorf("%d endpoints left, want 0", n)
	}
}

// TestUnreferencedSecretsAreNotProtected: a Secret no integration references does not get the
// in-use finalizer while an integration next to it connects, a stale one (left by hand or from an earlier reference) is lifted, and other
// finalizers are left alone.
func TestUnreferencedSecretsAreNotProtected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	unused := credentialsSecret(ns, "unused-keys", k)
	unused.Finalizers = []string{"example.com/keep"}
	stale := credentialsSecret(ns, "stale-keys", k)
	stale.Finalizers = []string{"example.com/keep", v1.CredentialsInUseFinalizer}
	mustCreate(t, unused, stale)
	t.Cleanup(func() {
		for _, s := range []*corev1.Secret{unused, stale} {
			_ = k8sClient.Patch(ctx, s, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`)))
		}
	})
	connected(t, ns, "clinic-unref")
	waitSecretProtected(t, ns, "clinic-unref-keys")
	eventually(t, waitShort, "the stale in-use finalizer lifted", func() (bool, string) {
		f, _ := secretState(t, ns, "stale-keys")
		return slices.Equal(f, []string{"example.com/keep"}), fmt.Sprintf("finalizers %v", f)
	})
	// By now the integration's passes and the Secret events of all three have been handled.
	if got := getSecret(t, ns, "unused-keys"); !slices.Equal(got.Finalizers, []string{"example.com/keep"}) ||
		got.ResourceVersion != unused.ResourceVersion {
		t.Errorf("an unreferenced Secret was written: finalizers %v, resourceVersion %s → %s", got.Finalizers, unused.ResourceVersion, got.ResourceVersion)
	}
}

// TestTerminatingUnprotectedSecretGetsNoEndpoint: a Secret already being deleted (held by another
// finalizer) before any integration protected it cannot be protected any more, so the integration
// makes no Stripe call with it: an endpoint created then could not be removed.
func TestTerminatingUnprotectedSecretGetsNoEndpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	s := credentialsSecret(ns, "doomed-keys", k)
	s.Finalizers = []string{"example.com/keep"}
	mustCreate(t, s)
	must(t, k8sClient.Delete(ctx, s))
	mustCreate(t, integration(ns, "clinic-doomed", uniqueClinic("clinic-doomed", ns), v1.ModeTest, "doomed-keys"))

	waitCondition(t, ns, "clinic-doomed", v1.ConditionKeysValid, metav1.ConditionFalse, v1.ReasonSecretTerminating, waitShort)
	if n := fake.Calls(k.secret); n != 0 {
		t.Errorf("%d Stripe calls with the keys of a Secret being deleted, want 0", n)
	}
	// Once the other finalizer lets go, the Secret is gone and the usual reason says so.
	must(t, k8sClient.Patch(ctx, s, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`))))
	waitCondition(t, ns, "clinic-doomed", v1.ConditionKeysValid, metav1.ConditionFalse, v1.ReasonSecretNotFound, waitShort)
	if n := fake.Calls(k.secret); n != 0 {
		t.Errorf("%d Stripe calls, want 0", n)
	}
}
