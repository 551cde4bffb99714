package controller

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// endpointWatch samples the account's endpoints until stopped: the most seen at once and every id.
type endpointWatch struct {
	mu    sync.Mutex
	most  int
	ids   map[string]bool
	order []string // ids in the order first seen
	stop  chan struct{}
	done  chan struct{}
}

func watchEndpoints(t *testing.T, k testKeys) *endpointWatch {
	w := &endpointWatch{ids: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			eps := fake.Endpoints(fake.AccountForKey(k.secret), false)
			w.mu.Lock()
			w.most = max(w.most, len(eps))
			for i := len(eps) - 1; i >= 0; i-- { // oldest first
				if id := eps[i].ID; !w.ids[id] {
					w.ids[id] = true
					w.order = append(w.order, id)
				}
			}
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *endpointWatch) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// seen stops the watch and returns the most endpoints seen at once and every id, oldest first.
func (w *endpointWatch) seen() (most int, ids []string) {
	w.halt()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.most, w.order
}

// failFirstCreate makes Stripe answer the key's next create with a 500 that its idempotency layer
// saves; afterCommit makes the create take effect first. The fault is scoped to this key.
func failFirstCreate(k testKeys, afterCommit bool) {
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	fake.InjectFault(stripefake.Fault{Key: k.secret, Method: http.MethodPost, PathPrefix: stripefake.PathWebhookEndpoints,
		Status: http.StatusInternalServerError, AfterExecute: afterCommit, Times: 1})
}

// startAfterFirstCreate creates the integration and returns once its first create was answered.
func startAfterFirstCreate(t *testing.T, ns, name string, k testKeys) time.Time {
	mustCreate(t, credentialsSecret(ns, name+"-keys", k), integration(ns, name, uniqueClinic(name, ns), v1.ModeTest, name+"-keys"))
	eventually(t, waitShort, "the first create", func() (bool, string) {
		n := fake.CallsTo(k.secret, http.MethodPost, stripefake.PathWebhookEndpoints)
		return n >= 1, fmt.Sprintf("%d creates", n)
	})
	return time.Now()
}

// A 500 that Stripe saved under the first create's key (nothing created) must not keep the clinic
// unconnected for Stripe's 24 h: the next pass finds nothing of ours and creates under a fresh key.
func TestSavedCreateErrorRecoversWithinOneResync(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-saved500"
	k := newTestKeys(t, "test")
	failFirstCreate(k, false)
	w := watchEndpoints(t, k)
	failed := startAfterFirstCreate(t, ns, name, k)

	// The next pass recovers: its create, under a fresh key, is the second and last. A wall-clock
	// bound would say the same on a quiet machine only; counting the creates says it on any.
	si := waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	t.Logf("connected %s after the saved 500 (resync %s)", time.Since(failed).Round(time.Millisecond), testResync)
	if n := fake.CallsTo(k.secret, http.MethodPost, stripefake.PathWebhookEndpoints); n != 2 {
		t.Errorf("%d creates, want 2: the saved 500 and the next pass's create under a fresh key", n)
	}
	eps := accountEndpoints(k)
	if len(eps) != 1 || eps[0].ID != si.Status.WebhookEndpointID {
		t.Fatalf("%d endpoints, status names %s; want exactly the one in status", len(eps), si.Status.WebhookEndpointID)
	}
	if string(signingSecret(t, si).Data[v1.SigningSecretKey]) != eps[0].Secret {
		t.Error("stored signing secret is not the endpoint's")
	}
	if most, ids := w.seen(); most != 1 || len(ids) != 1 {
		t.Errorf("seen %d endpoints at once, %v in all; want one", most, ids)
	}
	if got := si.Annotations[v1.AnnotationCreateAttempt]; got != "1" {
		t.Errorf("create attempt = %q, want 1 (attempt 0's key holds the saved 500)", got)
	}
}

// After the saved 500, the fresh attempt's answer is lost although the endpoint was created: the
// list shows it, so the operator replays that attempt for its secret and never makes a second one.
func TestSavedCreateErrorThenLostAnswerNeverDuplicates(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-saved500-lost"
	k := newTestKeys(t, "test")
	failFirstCreate(k, false)
	stripeClients.loseCreates(k.secret, 1)
	w := watchEndpoints(t, k)
	startAfterFirstCreate(t, ns, name, k)

	si := waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	waitEvent(t, ns, name, v1.EventSigningSecretRecovered)
	eps := accountEndpoints(k)
	if len(eps) != 1 || eps[0].ID != si.Status.WebhookEndpointID {
		t.Fatalf("%d endpoints, status names %s; want exactly the one in status", len(eps), si.Status.WebhookEndpointID)
	}
	if string(signingSecret(t, si).Data[v1.SigningSecretKey]) != eps[0].Secret {
		t.Error("stored signing secret is not the endpoint's")
	}
	if most, ids := w.seen(); most != 1 || len(ids) != 1 {
		t.Errorf("seen %d endpoints at once, %v in all; want one (no second endpoint, ever)", most, ids)
	}
}

// Stripe created the endpoint and then answered 500, which it saved: no replay can return the
// secret, so the operator replaces that endpoint once and ends with exactly one.
func TestSavedCreateErrorAfterCommitReplacesOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-saved500-commit"
	k := newTestKeys(t, "test")
	failFirstCreate(k, true)
	w := watchEndpoints(t, k)
	startAfterFirstCreate(t, ns, name, k)

	var si *v1.StripeIntegration
	eventually(t, waitShort, "connected with one endpoint", func() (bool, string) {
		si = getSI(t, ns, name)
		c := conditionOrNone(si, v1.ConditionWebhookEndpointReady)
		eps := accountEndpoints(k)
		return c.Status == metav1.ConditionTrue && len(eps) == 1, fmt.Sprintf("%s/%s, %d endpoints", c.Status, c.Reason, len(eps))
	})
	eps := accountEndpoints(k)
	if eps[0].ID != si.Status.WebhookEndpointID {
		t.Errorf("kept %s, status names %s", eps[0].ID, si.Status.WebhookEndpointID)
	}
	if string(signingSecret(t, si).Data[v1.SigningSecretKey]) != eps[0].Secret {
		t.Error("stored signing secret is not the endpoint's")
	}
	// Nothing may follow: wait a resync (a sleep, as nothing is to be awaited) and look again.
	time.Sleep(testResync)
	if n := len(accountEndpoints(k)); n != 1 {
		t.Errorf("%d endpoints a resync later, want 1", n)
	}
	if most, ids := w.seen(); most > 2 || len(ids) != 2 || ids[1] != eps[0].ID {
		t.Errorf("seen %d endpoints at once, %v in all; want the committed one, then its one replacement (%s)", most, ids, eps[0].ID)
	}
}

// Many passes at once (a second manager in a leader hand-over) that all meet the saved 500 agree
// on one fresh attempt: the counter moves once and one endpoint is ever created.
func TestSavedCreateErrorConcurrentPassesAgree(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-saved500-cc"
	k := newTestKeys(t, "test")
	failFirstCreate(k, false)
	w := watchEndpoints(t, k)
	mustCreate(t, credentialsSecret(ns, name+"-keys", k), integration(ns, name, uniqueClinic(name, ns), v1.ModeTest, name+"-keys"))

	second := &StripeIntegrationReconciler{
		Client: k8sClient, SecretReader: k8sClient, Recorder: events.NewFakeRecorder(1000),
		Stripe: stripeClients, WebhookBaseURL: testWebhookURL, ResyncPeriod: testResync,
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				_, _ = second.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
			}
		})
	}
	wg.Wait()
	si := waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	// Counted once the endpoint is ready: the 40 passes above may all have lost the optimistic
	// lock to the suite's manager, which reconciles the same object meanwhile.
	if n := fake.CallsTo(k.secret, http.MethodPost, stripefake.PathWebhookEndpoints); n < 2 {
		t.Errorf("%d creates reached Stripe; the test did not exercise the saved 500", n)
	}
	if got := si.Annotations[v1.AnnotationCreateAttempt]; got != "1" {
		t.Errorf("create attempt = %q, want 1: the passes moved past the failed attempt once", got)
	}
	if most, ids := w.seen(); most != 1 || len(ids) != 1 || ids[0] != si.Status.WebhookEndpointID {
		t.Errorf("seen %d endpoints at once, %v in all; want only %s", most, ids, si.Status.WebhookEndpointID)
	}
}

// Moving past a failed attempt is compare-and-set: a pass moves the counter only from the number
// that failed, and only if the object is still as it read it, so passes that read the object at
// different times (or concurrently) never skip a number nor go back to a spent one.
func TestSpendAttemptIsCompareAndSet(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-spend-cas"
	// No credentials Secret: the manager reports KeysValid=False and never writes the counter.
	mustCreate(t, integration(ns, name, uniqueClinic(name, ns), v1.ModeTest, "missing"))
	waitCondition(t, ns, name, v1.ConditionKeysValid, metav1.ConditionFalse, v1.ReasonSecretNotFound, waitShort)
	r := &StripeIntegrationReconciler{Client: k8sClient}
	answered := fmt.Errorf("create webhook endpoint: %w", &stripeclient.Error{Kind: stripeclient.KindUnavailable,
		HTTPStatus: http.StatusInternalServerError, Answered: true})
	spend := func(si *v1.StripeIntegration, failed int) string {
		r.spendAttemptOn5xx(context.Background(), si, failed, answered)
		return getSI(t, ns, name).Annotations[v1.AnnotationCreateAttempt]
	}

	var stale *v1.StripeIntegration
	eventually(t, waitShort, "attempt 0 spent", func() (bool, string) {
		stale = getSI(t, ns, name)
		got := spend(stale.DeepCopy(), 0)
		return got == "1", fmt.Sprintf("create attempt %q (empty: a write raced this one)", got)
	})
	if got := spend(getSI(t, ns, name), 0); got != "1" {
		t.Errorf("a pass that read attempt 1 and saw attempt 0 fail moved the counter to %q, want it left at 1", got)
	}
	if got := spend(getSI(t, ns, name), 1); got != "2" {
		t.Fatalf("spending attempt 1 gave %q, want 2", got)
	}
	if got := spend(stale, 0); got != "2" {
		t.Errorf("a pass holding the object from before both moves set the counter to %q, want it left at 2", got)
	}
	// No answer from Stripe (a timeout, a proxy's page) says nothing of what the key saved.
	for _, lost := range []error{
		fmt.Errorf("create webhook endpoint: %w", &stripeclient.Error{Kind: stripeclient.KindUnavailable, Err: context.DeadlineExceeded}),
		fmt.Errorf("create webhook endpoint: %w", &stripeclient.Error{Kind: stripeclient.KindUnavailable, HTTPStatus: http.StatusBadGateway,
			Message: "Stripe answered HTTP 502 with a body that is not a Stripe response"}),
	} {
		r.spendAttemptOn5xx(context.Background(), getSI(t, ns, name), 2, lost)
		if got := getSI(t, ns, name).Annotations[v1.AnnotationCreateAttempt]; got != "2" {
			t.Errorf("after %v the counter is %q, want it left at 2", lost, got)
		}
	}
}
