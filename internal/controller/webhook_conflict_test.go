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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// namedNamespace creates a namespace with a chosen name (so tests can order names) and deletes it
// afterwards.
func namedNamespace(t *testing.T, name string) string {
	t.Helper()
	mustCreate(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	t.Cleanup(func() {
		_ = k8sClient.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	return name
}

// TestWebhookURLConflictSameNamespace: a clinic's Test and Live integrations given one explicit
// URL. The later one registers nothing and names the older one; the older moving releases it.
func TestWebhookURLConflictSameNamespace(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	clinic := uniqueClinic("clinic-tl", ns)
	url := "https://emr.clinic-tl.example/stripe_webhook/" + clinic
	// Names sort in creation order, so a tie on creationTimestamp (one-second resolution) agrees.
	older := integration(ns, "a-test", clinic, v1.ModeTest, "test-keys")
	older.Spec.Webhook = &v1.WebhookSpec{URL: url}
	olderKeys := keyedIntegration(t, older)
	waitCondition(t, ns, older.Name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)

	later := integration(ns, "b-live", clinic, v1.ModeLive, "live-keys")
	later.Spec.Webhook = &v1.WebhookSpec{URL: url}
	live := keyedIntegration(t, later)
	got := waitCondition(t, ns, later.Name, v1.ConditionWebhookEndpointReady, metav1.ConditionFalse, v1.ReasonWebhookURLConflict, waitShort)
	msg := getCondition(t, got, v1.ConditionWebhookEndpointReady).Message
	if !strings.Contains(msg, `"a-test"`) || !strings.Contains(msg, url) {
		t.Errorf("message %q should name the older integration and the URL", msg)
	}
	if c := getCondition(t, got, v1.ConditionConnected); c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonWebhookURLConflict {
		t.Errorf("Connected = %s/%s", c.Status, c.Reason)
	}
	assertRegistersNothing(t, got, live, true)
	waitMapped(t, older, got)

	// The older one moves to a URL of its own (as EMRs publish one per mode): the later is released.
	moved := "https://emr.clinic-tl.example/stripe_webhook_test/" + clinic
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := getSI(t, ns, older.Name)
		cur.Spec.Webhook.URL = moved
		return k8sClient.Update(context.Background(), cur)
	}))
	got = waitCondition(t, ns, later.Name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	if eps := fake.Endpoints(fake.AccountForKey(live.secret), true); len(eps) != 1 || eps[0].URL != url || got.Status.WebhookURL != url {
		t.Errorf("after release: %d endpoints, status URL %q", len(eps), got.Status.WebhookURL)
	}
	eventually(t, waitShort, "the older one's endpoint moved", func() (bool, string) {
		eps := fake.Endpoints(fake.AccountForKey(olderKeys.secret), false)
		return len(eps) == 1 && eps[0].URL == moved, fmt.Sprint(len(eps))
	})
}

// TestWebhookURLConflictAcrossNamespaces: one clinicID in two namespaces on one base URL. The
// older wins even though its namespace sorts later; the message does not reveal it.
func TestWebhookURLConflictAcrossNamespaces(t *testing.T) {
	t.Parallel()
	suffix := strings.TrimPrefix(newNamespace(t), "si-test-")
	olderNS, laterNS := namedNamespace(t, "si-url-z-"+suffix), namedNamespace(t, "si-url-a-"+suffix)
	clinic := "clinic-xns-" + suffix
	spec := func(ns, name string) *v1.StripeIntegration {
		si := integration(ns, name, clinic, v1.ModeTest, "keys")
		si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://hooks.shared.example"}
		return si
	}
	older := spec(olderNS, "z-older-secret-name")
	keyedIntegration(t, older)
	older = waitCondition(t, olderNS, older.Name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	// creationTimestamp has one-second resolution: let the clock pass it, so age decides, not names.
	eventually(t, 3*time.Second, "a later second", func() (bool, string) {
		return time.Now().After(older.CreationTimestamp.Add(time.Second)), ""
	})

	later := spec(laterNS, "a-later")
	k := keyedIntegration(t, later)
	got := waitCondition(t, laterNS, later.Name, v1.ConditionWebhookEndpointReady, metav1.ConditionFalse, v1.ReasonWebhookURLConflict, waitShort)
	msg := getCondition(t, got, v1.ConditionWebhookEndpointReady).Message
	if !strings.Contains(msg, "in another namespace") || strings.Contains(msg, olderNS) || strings.Contains(msg, older.Name) {
		t.Errorf("message %q must say another namespace without naming it or the object", msg)
	}
	if c := getCondition(t, getSI(t, olderNS, older.Name), v1.ConditionWebhookEndpointReady); c.Status != metav1.ConditionTrue {
		t.Errorf("the older integration lost its URL: %s/%s", c.Status, c.Reason)
	}
	assertRegistersNothing(t, got, k, false)

	must(t, k8sClient.Delete(context.Background(), getSI(t, olderNS, older.Name)))
	waitCondition(t, laterNS, later.Name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
}

// assertRegistersNothing: a conflicted integration has no endpoint, signing Secret or receiver.
func assertRegistersNothing(t *testing.T, si *v1.StripeIntegration, k testKeys, live bool) {
	t.Helper()
	if eps := fake.Endpoints(fake.AccountForKey(k.secret), live); len(eps) != 0 {
		t.Errorf("the later integration registered %d endpoints", len(eps))
	}
	if si.Status.WebhookEndpointID != "" || si.Status.SigningSecretName != "" {
		t.Errorf("status names endpoint %q, Secret %q", si.Status.WebhookEndpointID, si.Status.SigningSecretName)
	}
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: si.Namespace, Name: receiverName(si)}, &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("receiver Deployment of the later integration: %v", err)
	}
}

// waitMapped: an event on the older integration re-queues the later one (the watch that releases
// it promptly), through the manager's cache and field index.
func waitMapped(t *testing.T, older *v1.StripeIntegration, later *v1.StripeIntegration) {
	t.Helper()
	want := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(later)}
	eventually(t, waitShort, "older integration maps to the later one", func() (bool, string) {
		reqs := testReconciler.integrationsSharingURL(context.Background(), getSI(t, older.Namespace, older.Name))
		return slices.Contains(reqs, want), fmt.Sprint(reqs)
	})
}

// TestWebhookURLMovedPredicate: only creations, deletions and URL changes reach the mapping.
func TestWebhookURLMovedPredicate(t *testing.T) {
	t.Parallel()
	r := &StripeIntegrationReconciler{WebhookBaseURL: "https://hooks.example"}
	p := r.webhookURLMoved()
	a := integration("ns", "a", "clinic-a", v1.ModeTest, "keys")
	footer := a.DeepCopy()
	footer.Spec.InvoiceFooterDisclaimer = "changed"
	moved := a.DeepCopy()
	moved.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://other.example"}
	upper := a.DeepCopy()
	upper.Spec.Webhook = &v1.WebhookSpec{BaseURL: "HTTPS://HOOKS.example:443"}
	if !p.Create(event.CreateEvent{Object: a}) || !p.Delete(event.DeleteEvent{Object: a}) {
		t.Error("creation and deletion must pass")
	}
	if p.Update(event.UpdateEvent{ObjectOld: a, ObjectNew: footer}) {
		t.Error("an edit that keeps the URL passed")
	}
	if p.Update(event.UpdateEvent{ObjectOld: a, ObjectNew: upper}) {
		t.Error("the same URL spelled with upper case and the default port counted as a move")
	}
	if !p.Update(event.UpdateEvent{ObjectOld: a, ObjectNew: moved}) {
		t.Error("a URL change did not pass")
	}
}
