package controller

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// liveClinic is an integration whose endpoint posts to a real receiver running in-process (the
// test plays the kubelet, mounting the signing Secret into a file), which relays to an HTTP sink.
type liveClinic struct {
	ns, name   string
	k          testKeys
	acct       string
	si         *v1.StripeIntegration
	sink       *httpSink
	secretFile string
}

// startLiveClinic connects an integration for keys k (registered by the caller) to a receiver.
func startLiveClinic(t *testing.T, name string, k testKeys) *liveClinic {
	t.Helper()
	ns := newNamespace(t)
	c := &liveClinic{ns: ns, name: name, k: k, acct: fake.AccountForKey(k.secret), sink: &httpSink{byKey: map[string]int{}}}
	hsrv, fsrv := httptest.NewServer(c.sink), httptest.NewServer(&fhirSink{resources: map[string]int{}})
	t.Cleanup(hsrv.Close)
	t.Cleanup(fsrv.Close)
	webhookLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	clinic := uniqueClinic(name, ns)
	url := fmt.Sprintf("http://%s/stripe/webhook-test/%s", webhookLn.Addr(), clinic)
	si := integration(ns, name, clinic, v1.ModeTest, name+"-keys")
	si.Spec.Webhook = &v1.WebhookSpec{URL: url}
	si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{
		HTTP: &v1.HTTPTarget{URL: hsrv.URL + "/stripe-events"},
		FHIR: &v1.FHIRTarget{BaseURL: fsrv.URL + "/r4"},
	}}
	mustCreate(t, credentialsSecret(ns, name+"-keys", k), si)
	c.si = waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	c.secretFile = filepath.Join(t.TempDir(), v1.SigningSecretKey)
	c.mount(t)
	startReceiver(t, c.si, c.secretFile, hsrv.URL+"/stripe-events", fsrv.URL+"/r4", webhookLn, opsLn)
	markAvailable(t, ns, receiverName(c.si))
	waitCondition(t, ns, name, v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
	replayTargets.Store(clinic, url)
	t.Cleanup(func() { replayTargets.Delete(clinic) })
	return c
}

// mount plays the kubelet: the receiver's file gets the signing Secret's current content.
func (c *liveClinic) mount(t *testing.T) {
	t.Helper()
	must(t, os.WriteFile(c.secretFile, c.secret(t).Data[v1.SigningSecretKey], 0o600))
}

func (c *liveClinic) secret(t *testing.T) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Namespace: c.ns, Name: signingSecretName(c.name)}, s))
	return s
}

// sinkDown makes the clinic's system refuse (503) every request until sinkUp.
func (c *liveClinic) sinkDown() { c.sink.mu.Lock(); c.sink.failNext = 1 << 30; c.sink.mu.Unlock() }
func (c *liveClinic) sinkUp()   { c.sink.mu.Lock(); c.sink.failNext = 0; c.sink.mu.Unlock() }

// ours lists the account's endpoints tagged with the integration.
func (c *liveClinic) ours() []stripe.WebhookEndpoint {
	return slices.DeleteFunc(fake.Endpoints(c.acct, false), func(e stripe.WebhookEndpoint) bool {
		return e.Metadata[tagUID] != string(c.si.UID)
	})
}

// failedOnce triggers an event while the sink is down and waits until Stripe (the fake) has
// given up retrying it: it stays undelivered (delivery_success=false).
func (c *liveClinic) failedOnce(t *testing.T, i int) string {
	t.Helper()
	c.sinkDown()
	id, err := fake.TriggerEvent(c.acct, false, "payment_intent.succeeded", paymentIntent(i))
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(t, fake.WaitForEventDeliveries(ctx, id))
	if got, refused := c.sink.snapshot(); got[id] != 0 || refused == 0 {
		t.Fatalf("event %s: sink accepted %d, refused %d; want it refused", id, got[id], refused)
	}
	return id
}

func (c *liveClinic) waitOnce(t *testing.T, ids ...string) {
	t.Helper()
	eventually(t, 20*time.Second, "events at the sink exactly once", func() (bool, string) {
		got, _ := c.sink.snapshot()
		for _, id := range ids {
			if got[id] != 1 {
				return false, fmt.Sprintf("%s: %d (all: %v)", id, got[id], got)
			}
		}
		return true, ""
	})
}

func secretLines(s *corev1.Secret) []string {
	return strings.Fields(string(s.Data[v1.SigningSecretKey]))
}

// TestReplacementKeepsPendingRetries is issue 13's test: an event the receiver answered 503 for
// is still being retried by Stripe when the endpoint is replaced (API version change). The old
// endpoint must stay, its secret still accepted, until Stripe delivered it; then it is deleted
// and the Secret holds one secret again.
func TestReplacementKeepsPendingRetries(t *testing.T) {
	t.Parallel()
	needSuite(t) // the fake is used before the first namespace
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	c := startLiveClinic(t, "clinic-mbb", k)
	old := c.si.Status.WebhookEndpointID
	oldSecret := secretLines(c.secret(t))[0]
	id := c.failedOnce(t, 0)

	must(t, fake.UpdateEndpoint(old, func(e *stripe.WebhookEndpoint) { e.APIVersion = "2020-08-27" }))
	ev := waitEvent(t, c.ns, c.name, v1.EventEndpointRetiring)
	if !strings.Contains(ev.note, old) {
		t.Errorf("retiring event %q does not name %s", ev.note, old)
	}
	var successor string
	eventually(t, waitShort, "successor live, old retiring, both secrets stored", func() (bool, string) {
		s := c.secret(t)
		lines, eps := secretLines(s), c.ours()
		successor = s.Annotations[v1.AnnotationWebhookEndpointID]
		return len(eps) == 2 && len(lines) == 2 && lines[1] == oldSecret && successor != old &&
				s.Annotations[v1.AnnotationRetiringEndpointID] == old,
			fmt.Sprintf("%d endpoints, %d secrets, annotations %v", len(eps), len(lines), s.Annotations)
	})
	eventually(t, waitShort, "status names the successor, Connected", func() (bool, string) {
		si := getSI(t, c.ns, c.name)
		cc := conditionOrNone(si, v1.ConditionConnected)
		return si.Status.WebhookEndpointID == successor && cc.Status == metav1.ConditionTrue,
			fmt.Sprintf("status %s, Connected %s/%s", si.Status.WebhookEndpointID, cc.Status, cc.Reason)
	})
	if msg := getCondition(t, getSI(t, c.ns, c.name), v1.ConditionWebhookEndpointReady).Message; !strings.Contains(msg, old) {
		t.Errorf("WebhookEndpointReady message %q does not mention the retiring endpoint", msg)
	}
	// The retiring endpoint stays while its event is pending (a few resyncs here).
	time.Sleep(3 * testResync)
	if eps := c.ours(); len(eps) != 2 {
		t.Fatalf("%d endpoints while an event is pending for the old one; want it kept", len(eps))
	}

	// The kubelet mounts the new Secret; the receiver recovers; Stripe's next retry of the
	// event (hours later in production) goes to the old endpoint, signed with its secret.
	c.mount(t)
	c.sinkUp()
	must(t, fake.Redeliver(id))
	c.waitOnce(t, id)

	waitEvent(t, c.ns, c.name, v1.EventRetiredEndpointDeleted)
	eventually(t, waitShort, "old endpoint deleted, one secret left", func() (bool, string) {
		s, eps := c.secret(t), c.ours()
		lines := secretLines(s)
		return len(eps) == 1 && eps[0].ID == successor && len(lines) == 1 && lines[0] == eps[0].Secret &&
				s.Annotations[v1.AnnotationRetiringEndpointID] == "",
			fmt.Sprintf("%d endpoints, %d secrets", len(eps), len(lines))
	})
	c.mount(t)
	// New events reach the sink through the successor alone, once each.
	id2, err := fake.TriggerEvent(c.acct, false, "payment_intent.succeeded", paymentIntent(1))
	must(t, err)
	c.waitOnce(t, id, id2)
}

// TestLostSecretReplacementRedeliversGap: past Stripe's 24 h idempotency window a lost signing
// secret forces a new endpoint, and the old one cannot be kept (its deliveries could not be
// verified). The events Stripe had not delivered arrive through the replay path instead, signed
// with the new secret.
func TestLostSecretReplacementRedeliversGap(t *testing.T) {
	// Not parallel: it moves the Stripe fake's clock (fakeClockOffset), which every test shares;
	// serial tests run before the parallel ones start.
	needSuite(t) // the fake is used before the first namespace
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	c := startLiveClinic(t, "clinic-lsg", k)
	old := c.si.Status.WebhookEndpointID
	id := c.failedOnce(t, 0)

	fakeClockOffset.Store(int64(48 * time.Hour))
	t.Cleanup(func() { fakeClockOffset.Store(0) })
	must(t, k8sClient.Delete(context.Background(), c.secret(t)))
	waitEvent(t, c.ns, c.name, v1.ReasonSigningSecretRotated)
	eventually(t, waitShort, "one new endpoint", func() (bool, string) {
		eps := c.ours()
		return len(eps) == 1 && eps[0].ID != old, fmt.Sprintf("%d endpoints", len(eps))
	})
	if si := getSI(t, c.ns, c.name); si.Annotations[v1.AnnotationRedeliverUndeliveredSince] == "" {
		// Not yet re-delivered: the receiver holds the old secret and the sink is down.
		t.Errorf("no re-delivery recorded: %v", si.Annotations)
	}
	c.mount(t)
	c.sinkUp()
	c.waitOnce(t, id)
	ev := waitEvent(t, c.ns, c.name, v1.EventGapRedelivered)
	if ev.typ != corev1.EventTypeNormal || !strings.Contains(ev.note, "re-delivered 1 events") {
		t.Errorf("re-delivery event = %+v", ev)
	}
	eventually(t, waitShort, "re-delivery request cleared", func() (bool, string) {
		si := getSI(t, c.ns, c.name)
		return !gapPending(si), fmt.Sprint(si.Annotations)
	})
}

// TestReplacementAtEndpointCap: with 15 foreign endpoints and ours the account is at Stripe's cap
// of 16, so the successor cannot be created beside the old endpoint. The operator deletes the old
// one first; what it had pending and what was created while no endpoint existed are re-delivered.
func TestReplacementAtEndpointCap(t *testing.T) {
	t.Parallel()
	needSuite(t) // the fake is used before the first namespace
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	sc := directClient(k.secret)
	for i := range 15 {
		_, _, err := sc.CreateWebhookEndpoint(context.Background(), stripeclient.EndpointSpec{
			URL: fmt.Sprintf("https://other.example/%d", i), EnabledEvents: []string{"charge.succeeded"},
		}, fmt.Sprintf("prefill-cap-%s-%d", k.secret[8:20], i))
		must(t, err)
	}
	c := startLiveClinic(t, "clinic-capr", k)
	old := c.si.Status.WebhookEndpointID
	pending := c.failedOnce(t, 0)

	must(t, fake.UpdateEndpoint(old, func(e *stripe.WebhookEndpoint) { e.APIVersion = "2020-08-27" }))
	ev := waitEvent(t, c.ns, c.name, v1.EventEndpointReplacedAtLimit)
	if ev.typ != corev1.EventTypeWarning || !strings.Contains(ev.note, old) || !strings.Contains(ev.note, "cap") {
		t.Errorf("cap event = %+v", ev)
	}
	si := getSI(t, c.ns, c.name)
	since, err := time.Parse(time.RFC3339, si.Annotations[v1.AnnotationRedeliverAllSince])
	if err != nil {
		t.Fatalf("no gap recorded: %v", si.Annotations)
	}
	// An event Stripe created while no endpoint of ours existed: it was delivered nowhere of ours.
	gap, err := fake.RecordPastEvent(c.acct, false, "payment_intent.succeeded", "", since, paymentIntent(1))
	must(t, err)

	c.mount(t)
	c.sinkUp()
	c.waitOnce(t, pending, gap)
	waitEvent(t, c.ns, c.name, v1.EventGapRedelivered)
	eps := c.ours()
	if len(eps) != 1 || eps[0].ID == old || eps[0].APIVersion != stripe.APIVersion {
		t.Fatalf("%d endpoints of ours after the replacement, want one new one", len(eps))
	}
	if n := len(fake.Endpoints(c.acct, false)); n != 16 {
		t.Errorf("%d endpoints in the account, want the 15 foreign ones and ours", n)
	}
	eventually(t, waitShort, "status names the successor", func() (bool, string) {
		si := getSI(t, c.ns, c.name)
		return si.Status.WebhookEndpointID == eps[0].ID, si.Status.WebhookEndpointID
	})
}

// startRetirement connects a clinic, leaves one event undelivered (the endpoint's URL does not
// answer) and moves the endpoint off the pinned API version, so the operator replaces it and the
// old endpoint retires beside its successor. It returns the old endpoint's id.
func startRetirement(t *testing.T, ns, name string) (testKeys, *v1.StripeIntegration, string) {
	t.Helper()
	k, si := connected(t, ns, name)
	old := si.Status.WebhookEndpointID
	_, err := fake.TriggerEvent(fake.AccountForKey(k.secret), false, "payment_intent.succeeded", paymentIntent(0))
	must(t, err)
	must(t, fake.UpdateEndpoint(old, func(e *stripe.WebhookEndpoint) { e.APIVersion = "2020-08-27" }))
	eventually(t, waitShort, "old endpoint retiring beside its successor", func() (bool, string) {
		s := signingSecret(t, si)
		return len(accountEndpoints(k)) == 2 && s.Annotations[v1.AnnotationRetiringEndpointID] == old &&
				getSI(t, ns, name).Status.WebhookEndpointID != old,
			fmt.Sprintf("%d endpoints, %v", len(accountEndpoints(k)), s.Annotations)
	})
	return k, si, old
}

// TestDeletionWhileRetiringDeletesBoth: an integration deleted while its replaced endpoint still
// retires leaves nothing behind in Stripe.
func TestDeletionWhileRetiringDeletesBoth(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si, old := startRetirement(t, ns, "clinic-retdel")
	must(t, k8sClient.Delete(context.Background(), si))
	eventually(t, 20*time.Second, "object gone", func() (bool, string) {
		err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(si), si)
		return errors.IsNotFound(err), fmt.Sprint(err)
	})
	if eps := accountEndpoints(k); len(eps) != 0 {
		t.Errorf("%d endpoints left after deletion", len(eps))
	}
	ev := waitEvent(t, ns, "clinic-retdel", v1.EventEndpointDeleted)
	if !strings.Contains(ev.note, old) {
		t.Errorf("deletion event %q does not name the retiring endpoint %s", ev.note, old)
	}
}

// TestKeyChangeWhileRetiringCleansBoth: keys moved to another account while a replaced endpoint
// retires; both endpoints in the previous account are removed with the previous key.
func TestKeyChangeWhileRetiringCleansBoth(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si, _ := startRetirement(t, ns, "clinic-retmv")
	next := newTestKeys(t, "test")
	fake.AddKey(next.secret, stripefake.KeyOptions{})
	updateKeys(t, ns, "clinic-retmv-keys", next)
	eventually(t, waitShort, "previous account emptied, one endpoint in the new one", func() (bool, string) {
		return len(accountEndpoints(k)) == 0 && len(accountEndpoints(next)) == 1,
			fmt.Sprintf("previous %d, new %d", len(accountEndpoints(k)), len(accountEndpoints(next)))
	})
	if lines := secretLines(signingSecret(t, si)); len(lines) != 1 {
		t.Errorf("%d secrets stored after the move, want 1", len(lines))
	}
}

// TestRetiringEndpointGoesAfterRetryWindow: while Stripe still lists undelivered events (the
// endpoint's URL never answers), the retiring endpoint stays, but no longer than Stripe's retry
// window after the replacement (24 h in test mode; the test backdates the record).
func TestRetiringEndpointGoesAfterRetryWindow(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si, old := startRetirement(t, ns, "clinic-retwin")
	time.Sleep(3 * testResync)
	if n := len(accountEndpoints(k)); n != 2 {
		t.Fatalf("%d endpoints while an event is undelivered, want the retiring one kept", n)
	}
	s := signingSecret(t, si)
	s.Annotations[v1.AnnotationRetiringSince] = time.Now().Add(-testRetryWindow - time.Minute).UTC().Format(time.RFC3339)
	must(t, k8sClient.Update(context.Background(), s))
	ev := waitEvent(t, ns, "clinic-retwin", v1.EventRetiredEndpointDeleted)
	if !strings.Contains(ev.note, old) || !strings.Contains(ev.note, "retry window") {
		t.Errorf("event %q does not say the window passed for %s", ev.note, old)
	}
	eventually(t, waitShort, "one endpoint, one secret", func() (bool, string) {
		return len(accountEndpoints(k)) == 1 && len(secretLines(signingSecret(t, si))) == 1, fmt.Sprint(len(accountEndpoints(k)))
	})
}
