package controller

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/receiver"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// testDeliveryCheckInterval is the delivery check interval of these tests' clinics (every other
// clinic of the suite keeps the 30 min default).
const testDeliveryCheckInterval = 500 * time.Millisecond

// deliveryClinic creates a Test-mode clinic whose registered webhook URL is urlFor(clinicID),
// checked every testDeliveryCheckInterval, and waits for its endpoint.
func deliveryClinic(t *testing.T, ns, name string, urlFor func(clinic string) string) (testKeys, *v1.StripeIntegration) {
	t.Helper()
	clinic := uniqueClinic(name, ns)
	deliveryCheckIntervals.Store(clinic, testDeliveryCheckInterval)
	t.Cleanup(func() { deliveryCheckIntervals.Delete(clinic) })
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	si := integration(ns, name, clinic, v1.ModeTest, name+"-keys")
	si.Spec.Webhook = &v1.WebhookSpec{URL: urlFor(clinic)}
	mustCreate(t, credentialsSecret(ns, name+"-keys", k), si)
	return k, waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
}

// connectDelivery plays the Deployment controller and waits for Connected.
func connectDelivery(t *testing.T, si *v1.StripeIntegration) {
	t.Helper()
	markAvailable(t, si.Namespace, receiverName(si))
	waitCondition(t, si.Namespace, si.Name, v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
}

// startProbeTarget serves the real receiver for si on ln with the stored signing secret, relaying
// to an HTTP and a FHIR system of record that answer sinkStatus; it returns the sinks' hit count.
func startProbeTarget(t *testing.T, si *v1.StripeIntegration, ln net.Listener, sinkStatus *atomic.Int32) func() int {
	t.Helper()
	var hits atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(sinkStatus.Load()))
	}))
	t.Cleanup(sink.Close)
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	secretFile := filepath.Join(t.TempDir(), v1.SigningSecretKey)
	must(t, os.WriteFile(secretFile, signingSecret(t, si).Data[v1.SigningSecretKey], 0o600))
	startReceiverLogging(t, si, secretFile, sink.URL+"/events", sink.URL+"/r4", ln, opsLn, logr.Discard())
	return func() int { return int(hits.Load()) }
}

// The registered public URL leads to the clinic's real receiver: the probe is answered with its
// nonce and reaches no system of record, Stripe reports nothing undelivered, and the condition
// is True, outside Connected. Suspending the integration turns it Unknown.
func TestDeliveriesArrivingThroughTheReceiver(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	_, si := deliveryClinic(t, ns, "clinic-da", func(clinic string) string {
		return "http://" + ln.Addr().String() + receiver.WebhookPath(receiver.ModeTest, clinic)
	})
	var status atomic.Int32
	status.Store(http.StatusOK)
	sinkHits := startProbeTarget(t, si, ln, &status)
	connectDelivery(t, si)
	got := waitCondition(t, ns, "clinic-da", v1.ConditionDeliveriesArriving, metav1.ConditionTrue, v1.ReasonDeliveriesArriving, waitShort)
	if c := getCondition(t, got, v1.ConditionDeliveriesArriving); !strings.Contains(c.Message, si.Status.WebhookURL) {
		t.Errorf("message %q does not name the public URL", c.Message)
	}
	if n := sinkHits(); n != 0 {
		t.Errorf("the systems of record saw %d writes; a probe must never reach them", n)
	}
	// Later checks find the same: nothing is written.
	rv := got.ResourceVersion
	time.Sleep(2 * testResync)
	if now := getSI(t, ns, "clinic-da"); now.ResourceVersion != rv {
		t.Errorf("status rewritten by checks that found the same (%s → %s): %+v", rv, now.ResourceVersion, now.Status.Conditions)
	}

	cur := getSI(t, ns, "clinic-da")
	orig := cur.DeepCopy()
	cur.Spec.Suspend = true
	must(t, k8sClient.Patch(context.Background(), cur, client.MergeFrom(orig)))
	waitCondition(t, ns, "clinic-da", v1.ConditionDeliveriesArriving, metav1.ConditionUnknown, v1.ReasonSuspended, waitShort)
}

// The public URL leads nowhere from inside the cluster (a closed port) and Stripe reports nothing
// undelivered: Unknown PublicURLUnreachable, saying both.
func TestDeliveriesPublicURLUnreachable(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	must(t, ln.Close())
	_, si := deliveryClinic(t, ns, "clinic-du", func(clinic string) string {
		return "http://" + addr + receiver.WebhookPath(receiver.ModeTest, clinic)
	})
	connectDelivery(t, si)
	got := waitCondition(t, ns, "clinic-du", v1.ConditionDeliveriesArriving, metav1.ConditionUnknown, v1.ReasonPublicURLUnreachable, waitShort)
	msg := getCondition(t, got, v1.ConditionDeliveriesArriving).Message
	for _, want := range []string{"cannot reach " + si.Status.WebhookURL + " from inside the cluster (connection refused)",
		"Stripe reports no undelivered events", "may still arrive"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if c := getCondition(t, got, v1.ConditionConnected); c.Status != metav1.ConditionTrue {
		t.Errorf("Connected = %s/%s: DeliveriesArriving must stay outside it", c.Status, c.Reason)
	}
}

// Something other than the clinic's receiver answers the public URL (an ingress 404):
// False ProbeAnsweredByOther with the status code.
func TestDeliveriesProbeAnsweredByOther(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	_, si := deliveryClinic(t, ns, "clinic-do", func(clinic string) string {
		return srv.URL + receiver.WebhookPath(receiver.ModeTest, clinic)
	})
	connectDelivery(t, si)
	got := waitCondition(t, ns, "clinic-do", v1.ConditionDeliveriesArriving, metav1.ConditionFalse, v1.ReasonProbeAnsweredByOther, waitShort)
	if msg := getCondition(t, got, v1.ConditionDeliveriesArriving).Message; !strings.Contains(msg, "HTTP 404") {
		t.Errorf("message %q lacks the status code", msg)
	}
}

// The receiver answers the probe, but its system of record refuses events, so Stripe's
// deliveries fail: Stripe lists them as undelivered (delivery_success=false,
// https://docs.stripe.com/api/events/list) and the condition turns False StripeDeliveriesFailing,
// and stays so until Stripe delivers the event; then it is True again.
func TestDeliveriesStripeReportsFailures(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	k, si := deliveryClinic(t, ns, "clinic-df", func(clinic string) string {
		return "http://" + ln.Addr().String() + receiver.WebhookPath(receiver.ModeTest, clinic)
	})
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	startProbeTarget(t, si, ln, &status)
	connectDelivery(t, si)
	waitCondition(t, ns, "clinic-df", v1.ConditionDeliveriesArriving, metav1.ConditionTrue, v1.ReasonDeliveriesArriving, waitShort)

	id, err := fake.TriggerEvent(fake.AccountForKey(k.secret), false, "customer.created",
		map[string]any{"id": "cus_deliveryprobe", "object": "customer"})
	must(t, err)
	got := waitCondition(t, ns, "clinic-df", v1.ConditionDeliveriesArriving, metav1.ConditionFalse, v1.ReasonStripeDeliveriesFailing, waitShort)
	msg := getCondition(t, got, v1.ConditionDeliveriesArriving).Message
	if !strings.Contains(msg, "did reach this clinic's receiver") {
		t.Errorf("message %q does not say the probe reached the receiver", msg)
	}
	if c := getCondition(t, got, v1.ConditionConnected); c.Status != metav1.ConditionTrue {
		t.Errorf("Connected = %s/%s: DeliveriesArriving must stay outside it", c.Status, c.Reason)
	}
	t.Logf("event %s undelivered: %s", id, msg)
	// Later checks read the same window again: the failure stays reported while the event is
	// undelivered, not only at the check that first saw it.
	time.Sleep(2 * testResync)
	if c := getCondition(t, getSI(t, ns, "clinic-df"), v1.ConditionDeliveriesArriving); c.Reason != v1.ReasonStripeDeliveriesFailing {
		t.Errorf("a later check reports %s/%s while the event is still undelivered", c.Status, c.Reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	must(t, fake.WaitForEventDeliveries(ctx, id)) // the fake's retries are over
	status.Store(http.StatusOK)
	must(t, fake.Redeliver(id))
	waitCondition(t, ns, "clinic-df", v1.ConditionDeliveriesArriving, metav1.ConditionTrue, v1.ReasonDeliveriesArriving, waitShort)
}

// The delivery check keeps to its cadence and rides on passes that run anyway. A connected clinic
// with the default interval (30 min) makes no events call over several resyncs and gets no
// condition yet; one checked every 500 ms is checked at most once per pass, never in a pass of
// its own: its event lists never outnumber its endpoint lists (one per resync).
func TestDeliveryCheckCadence(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	urlFor := func(clinic string) string { return srv.URL + receiver.WebhookPath(receiver.ModeTest, clinic) }

	kd := newTestKeys(t, "test")
	fake.AddKey(kd.secret, stripefake.KeyOptions{})
	def := integration(ns, "clinic-dd", uniqueClinic("clinic-dd", ns), v1.ModeTest, "clinic-dd-keys")
	def.Spec.Webhook = &v1.WebhookSpec{URL: urlFor(def.Spec.ClinicID)}
	mustCreate(t, credentialsSecret(ns, "clinic-dd-keys", kd), def)
	def = waitCondition(t, ns, "clinic-dd", v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	connectDelivery(t, def)

	kf, fast := deliveryClinic(t, ns, "clinic-dq", urlFor)
	connectDelivery(t, fast)
	waitCondition(t, ns, "clinic-dq", v1.ConditionDeliveriesArriving, metav1.ConditionFalse, v1.ReasonProbeAnsweredByOther, waitShort)

	eventsDef, eventsFast := fake.CallsTo(kd.secret, "GET", stripefake.PathEvents), fake.CallsTo(kf.secret, "GET", stripefake.PathEvents)
	listsFast := fake.CallsTo(kf.secret, "GET", stripefake.PathWebhookEndpoints)
	time.Sleep(3 * testResync)
	if n := fake.CallsTo(kd.secret, "GET", stripefake.PathEvents) - eventsDef; n != 0 {
		t.Errorf("the default-interval clinic made %d events calls over 3 resyncs, want 0", n)
	}
	if c := conditionOrNone(getSI(t, ns, "clinic-dd"), v1.ConditionDeliveriesArriving); c.Status != "" {
		t.Errorf("the default-interval clinic has DeliveriesArriving %s/%s before its first check", c.Status, c.Reason)
	}
	checks := fake.CallsTo(kf.secret, "GET", stripefake.PathEvents) - eventsFast
	lists := fake.CallsTo(kf.secret, "GET", stripefake.PathWebhookEndpoints) - listsFast
	t.Logf("over 3 resyncs the 500 ms clinic made %d events calls and %d endpoint lists", checks, lists)
	if checks == 0 || checks > lists+1 {
		t.Errorf("%d delivery checks for %d resync passes: want at least one, and at most one per pass", checks, lists)
	}
}

// The delivery check keeps to the resync's Stripe budget: the pass in which it is due lists no
// endpoints (its events call stands in for the list), so an integration makes one Stripe call
// per resync, the check included, and the endpoints are still listed on the other resyncs.
func TestDeliveryCheckStandsInForTheResyncList(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	k, si := deliveryClinic(t, ns, "clinic-dsi", func(clinic string) string {
		return srv.URL + receiver.WebhookPath(receiver.ModeTest, clinic)
	})
	// Due every 1.5 resyncs: every second or third resync pass carries the check.
	deliveryCheckIntervals.Store(si.Spec.ClinicID, testResync*3/2)
	connectDelivery(t, si)
	waitCondition(t, ns, si.Name, v1.ConditionDeliveriesArriving, metav1.ConditionFalse, v1.ReasonProbeAnsweredByOther, waitShort)

	events, lists := fake.CallsTo(k.secret, "GET", stripefake.PathEvents), fake.CallsTo(k.secret, "GET", stripefake.PathWebhookEndpoints)
	at := stripeCallTimes(t, k.secret, 6, waitShort+6*testResync)
	events = fake.CallsTo(k.secret, "GET", stripefake.PathEvents) - events
	lists = fake.CallsTo(k.secret, "GET", stripefake.PathWebhookEndpoints) - lists
	t.Logf("6 Stripe calls %s apart (resync %s): %d delivery checks, %d endpoint lists", callGaps(at), testResync, events, lists)
	// Without the stand-in every check adds a call right after its pass's list: at least as many
	// short gaps as checks. A loaded machine adds some of its own (a timed-out call retried after
	// the backoff, a pass a watch event brought forward past the view's age), which the bound
	// allows as long as they are fewer than the checks.
	short := 0
	for i := 1; i < len(at); i++ {
		if at[i].Sub(at[i-1]) < testResync*8/10 {
			short++
		}
	}
	if short >= events {
		t.Errorf("%d of the gaps under 0.8 resync with %d delivery checks: the delivery check adds a call to its resync", short, events)
	}
	if events == 0 || lists == 0 {
		t.Errorf("%d delivery checks and %d endpoint lists in 6 resyncs: want both (a check stands in once, then the list returns)", events, lists)
	}
}
