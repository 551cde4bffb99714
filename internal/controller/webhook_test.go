package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// connected opens a clinic (newClinic) and waits for its endpoint to be ready.
func connected(t *testing.T, ns, name string) (testKeys, *v1.StripeIntegration) {
	t.Helper()
	k := newClinic(t, ns, name)
	si := waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	return k, si
}

// accountEndpoints lists the endpoints Stripe holds for the key's account (test mode).
func accountEndpoints(k testKeys) []stripe.WebhookEndpoint {
	return fake.Endpoints(fake.AccountForKey(k.secret), false)
}

func signingSecret(t *testing.T, si *v1.StripeIntegration) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: si.Namespace, Name: si.Status.SigningSecretName}, s); err != nil {
		t.Fatalf("signing Secret: %v", err)
	}
	return s
}

// directClient talks to the fake with the clinic's key, as a person in the dashboard would.
func directClient(key string) stripeclient.Client {
	return stripeclient.NewFactory(stripeclient.Config{BaseURL: fake.URL()}).For(key, v1.ModeTest, "")
}

func waitEvent(t *testing.T, ns, name, reason string) eventsNote {
	t.Helper()
	var found eventsNote
	eventually(t, waitShort, "Event "+reason, func() (bool, string) {
		var seen []string
		for _, e := range listEvents(t, ns) {
			if e.Regarding.Name == name && e.Reason == reason {
				found = eventsNote{typ: e.Type, note: e.Note}
				return true, ""
			}
			seen = append(seen, e.Reason)
		}
		return false, strings.Join(seen, ",")
	})
	return found
}

type eventsNote struct{ typ, note string }

func TestEndpointCreatedExactlyOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-w")

	eps := accountEndpoints(k)
	if len(eps) != 1 {
		t.Fatalf("Stripe holds %d endpoints, want 1", len(eps))
	}
	ep := eps[0]
	if ep.URL != testWebhookURL+"/stripe/webhook-test/"+si.Spec.ClinicID || ep.APIVersion != stripe.APIVersion || ep.Status != "enabled" || ep.Livemode {
		t.Errorf("endpoint = url %s version %s status %s livemode %t", ep.URL, ep.APIVersion, ep.Status, ep.Livemode)
	}
	if !slices.Equal(sortedUnique(ep.EnabledEvents), sortedUnique(v1.DefaultEnabledEvents)) {
		t.Errorf("events = %v", ep.EnabledEvents)
	}
	if ep.Metadata[tagUID] != string(si.UID) || ep.Metadata[tagNamespace] != ns || ep.Metadata[tagName] != "clinic-w" ||
		ep.Metadata[tagClinicID] != si.Spec.ClinicID {
		t.Errorf("metadata = %v", ep.Metadata)
	}
	if si.Status.WebhookEndpointID != ep.ID || si.Status.WebhookURL != ep.URL {
		t.Errorf("status endpoint %s %s", si.Status.WebhookEndpointID, si.Status.WebhookURL)
	}
	sec := signingSecret(t, si)
	if string(sec.Data[v1.SigningSecretKey]) != ep.Secret || !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Error("signing Secret does not hold the endpoint's whsec_ secret")
	}
	if !metav1.IsControlledBy(sec, si) || sec.Annotations[v1.AnnotationWebhookEndpointID] != ep.ID {
		t.Errorf("signing Secret owner/annotation wrong: %v %v", sec.OwnerReferences, sec.Annotations)
	}
	// The status write of the creating pass announces the endpoint; it has no Event of its own.
	eventually(t, waitShort, "an Event naming the endpoint", func() (bool, string) {
		var seen []string
		for _, e := range listEvents(t, ns) {
			if e.Regarding.Name == "clinic-w" && strings.Contains(e.Note, "WebhookEndpointReady is True: endpoint "+ep.ID) {
				return true, ""
			}
			seen = append(seen, e.Reason)
		}
		return false, strings.Join(seen, ",")
	})
	for _, e := range listEvents(t, ns) {
		if e.Regarding.Name == "clinic-w" && e.Reason == v1.EventEndpointCreated {
			t.Errorf("an EndpointCreated Event besides the status Event: %q", e.Note)
		}
	}
	// Calls at create: probe list, account lookup, create. Reported in the closing note.
	t.Logf("Stripe calls to connect one integration: %d", fake.Calls(k.secret))
	if n := fake.Calls(k.secret); n > 5 {
		t.Errorf("%d Stripe calls to connect, want ≤ 5", n)
	}
}

// In the steady state each resync makes one Stripe call: the calls come one resync apart, never
// two to a pass, and nothing is written. The test watches the calls happen rather than count
// them in a wall-clock window, which a loaded machine (later passes) would fail for no defect.
func TestSteadyStateResyncIsOneStripeCall(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, _ := connected(t, ns, "clinic-ss")
	time.Sleep(500 * time.Millisecond)
	rv := getSI(t, ns, "clinic-ss").ResourceVersion
	secretRV := getSecret(t, ns, "clinic-ss-keys").ResourceVersion
	lists := fake.CallsTo(k.secret, "GET", stripefake.PathWebhookEndpoints)
	calls := fake.Calls(k.secret)
	at := stripeCallTimes(t, k.secret, 3, waitShort+3*testResync)
	t.Logf("steady state: 3 Stripe calls, %s apart (resync %s ±10 %%)", callGaps(at), testResync)
	// A pass's own calls are milliseconds apart; the resync's jitter keeps passes ≥ 0.9 resync
	// apart. The bound leaves room for the 50 ms polling.
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < testResync*8/10 {
			t.Errorf("calls %d and %d only %s apart: more than one Stripe call per resync", i, i+1, gap)
		}
	}
	if n := fake.CallsTo(k.secret, "GET", stripefake.PathWebhookEndpoints) - lists; n != fake.Calls(k.secret)-calls {
		t.Errorf("%d of %d steady-state calls were endpoint lists, want all", n, fake.Calls(k.secret)-calls)
	}
	if getSI(t, ns, "clinic-ss").ResourceVersion != rv {
		t.Error("steady-state resync wrote to the object")
	}
	if getSecret(t, ns, "clinic-ss-keys").ResourceVersion != secretRV {
		t.Error("steady-state resync wrote to the credentials Secret")
	}
	if len(accountEndpoints(k)) != 1 {
		t.Error("resync changed the number of endpoints")
	}
}

// stripeCallTimes waits, up to within, for n more Stripe calls with key and returns when each was
// seen (polled every 50 ms: a call's time is known to 50 ms). Calls that arrive together are
// each given the same time.
func stripeCallTimes(t *testing.T, key string, n int, within time.Duration) []time.Time {
	t.Helper()
	start, deadline := fake.Calls(key), time.Now().Add(within)
	at := make([]time.Time, 0, n)
	for len(at) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d Stripe calls within %s: the resync stopped", len(at), n, within)
		}
		now := time.Now()
		for seen := fake.Calls(key) - start; len(at) < min(seen, n); {
			at = append(at, now)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return at
}

func callGaps(at []time.Time) string {
	gaps := make([]string, 0, len(at))
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, at[i].Sub(at[i-1]).Round(10*time.Millisecond).String())
	}
	return strings.Join(gaps, ", ")
}

func TestDriftIsRepaired(t *testing.T) {
	t.Parallel()
	needSuite(t) // the fake is used before the first namespace
	cases := map[string]struct {
		drift func(t *testing.T, id string)
		event string
		check func(t *testing.T, before, after stripe.WebhookEndpoint)
	}{
		"deleted in dashboard": {
			drift: func(t *testing.T, id string) { must(t, fake.DeleteEndpoint(id)) },
			event: v1.EventEndpointRecreated,
			check: func(t *testing.T, before, after stripe.WebhookEndpoint) {
				if after.ID == before.ID {
					t.Error("endpoint id unchanged after deletion")
				}
			},
		},
		"disabled": {
			drift: func(t *testing.T, id string) { must(t, fake.DisableEndpoint(id)) },
			event: v1.EventEndpointRepaired,
		},
		"url changed": {
			drift: func(t *testing.T, id string) {
				must(t, fake.UpdateEndpoint(id, func(e *stripe.WebhookEndpoint) { e.URL = "https://attacker.example/hook" }))
			},
			event: v1.EventEndpointRepaired,
		},
		"events changed": {
			drift: func(t *testing.T, id string) {
				must(t, fake.UpdateEndpoint(id, func(e *stripe.WebhookEndpoint) { e.EnabledEvents = []string{"charge.succeeded"} }))
			},
			event: v1.EventEndpointRepaired,
		},
		"metadata and description changed": {
			drift: func(t *testing.T, id string) {
				must(t, fake.UpdateEndpoint(id, func(e *stripe.WebhookEndpoint) {
					e.Description = "edited"
					e.Metadata["added_by_hand"] = "yes"
				}))
			},
			event: v1.EventEndpointRepaired,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t)
			k, si := connected(t, ns, "clinic-d")
			before := accountEndpoints(k)[0]
			calls := fake.Calls(k.secret)
			tc.drift(t, si.Status.WebhookEndpointID)

			waitEvent(t, ns, "clinic-d", tc.event)
			var after stripe.WebhookEndpoint
			eventually(t, waitShort, "endpoint back to spec", func() (bool, string) {
				eps := accountEndpoints(k)
				if len(eps) != 1 {
					return false, fmt.Sprintf("%d endpoints", len(eps))
				}
				after = eps[0]
				ok := after.URL == before.URL && after.Status == "enabled" && after.Description == before.Description &&
					slices.Equal(sortedUnique(after.EnabledEvents), sortedUnique(before.EnabledEvents)) && len(after.Metadata) == len(before.Metadata)
				return ok, fmt.Sprintf("%+v", after)
			})
			if tc.check != nil {
				tc.check(t, before, after)
			}
			// The condition was True before the repair too: wait for status to name the endpoint.
			eventually(t, waitShort, "status and signing Secret follow the endpoint", func() (bool, string) {
				si = getSI(t, ns, "clinic-d")
				if si.Status.WebhookEndpointID != after.ID {
					return false, "status names " + si.Status.WebhookEndpointID
				}
				return string(signingSecret(t, si).Data[v1.SigningSecretKey]) == after.Secret, "signing Secret differs"
			})
			if c := getCondition(t, si, v1.ConditionWebhookEndpointReady); c.Status != metav1.ConditionTrue {
				t.Errorf("WebhookEndpointReady = %s/%s", c.Status, c.Reason)
			}
			if n := fake.Calls(k.secret) - calls; n > 10 {
				t.Errorf("%d Stripe calls to repair one drift, want ≤ 10", n)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A crash (or lost response) after Stripe created the endpoint and before anything was stored,
// twenty times in a row, must still leave exactly one endpoint: retries replay the same
// Idempotency-Key, and the secret is recovered from the replay.
func TestCrashAfterCreateNeverDuplicates(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	stripeClients.loseCreates(k.secret, 20)
	mustCreate(t, credentialsSecret(ns, "keys", k), integration(ns, "clinic-x", uniqueClinic("clinic-x", ns), v1.ModeTest, "keys"))

	eventually(t, 60*time.Second, "all 20 lost creates consumed", func() (bool, string) {
		stripeClients.mu.Lock()
		defer stripeClients.mu.Unlock()
		return stripeClients.lose[k.secret] == 0, fmt.Sprintf("%d left, %d endpoints", stripeClients.lose[k.secret], len(accountEndpoints(k)))
	})
	si := waitCondition(t, ns, "clinic-x", v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	eps := accountEndpoints(k)
	if len(eps) != 1 {
		t.Fatalf("%d endpoints after 20 crashes, want 1", len(eps))
	}
	if string(signingSecret(t, si).Data[v1.SigningSecretKey]) != eps[0].Secret {
		t.Error("stored signing secret is not the endpoint's")
	}
	if n := fake.CallsTo(k.secret, "POST", stripefake.PathWebhookEndpoints); n < 21 {
		t.Errorf("only %d creates reached Stripe; the test did not exercise 20 crashes", n)
	}
}

// Many reconciles of one object at once (a second manager during a leader hand-over, or requeues)
// must still create one endpoint.
func TestConcurrentReconcilesCreateOneEndpoint(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	si := integration(ns, "clinic-cc", uniqueClinic("clinic-cc", ns), v1.ModeTest, "keys")
	mustCreate(t, credentialsSecret(ns, "keys", k), si)

	second := &StripeIntegrationReconciler{
		Client: k8sClient, SecretReader: k8sClient, Recorder: events.NewFakeRecorder(1000),
		Stripe: stripeClients, WebhookBaseURL: testWebhookURL, ResyncPeriod: testResync,
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				_, _ = second.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(si)})
			}
		}()
	}
	wg.Wait()
	waitCondition(t, ns, "clinic-cc", v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	time.Sleep(testResync)
	if n := len(accountEndpoints(k)); n != 1 {
		t.Fatalf("%d endpoints after 40 concurrent reconciles, want 1", n)
	}
}

func TestLostSigningSecret(t *testing.T) {
	// Not parallel: it moves the Stripe fake's clock (fakeClockOffset), which every test shares;
	// serial tests run before the parallel ones start.
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-l")
	first := accountEndpoints(k)[0]

	// Within Stripe's 24 h idempotency window the create is replayed: same endpoint, same secret.
	must(t, k8sClient.Delete(context.Background(), signingSecret(t, si)))
	waitEvent(t, ns, "clinic-l", v1.EventSigningSecretRecovered)
	eventually(t, waitShort, "secret restored", func() (bool, string) {
		s := &corev1.Secret{}
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: si.Status.SigningSecretName}, s)
		return err == nil && string(s.Data[v1.SigningSecretKey]) == first.Secret, fmt.Sprint(err)
	})
	if eps := accountEndpoints(k); len(eps) != 1 || eps[0].ID != first.ID {
		t.Fatalf("recovery changed the endpoints: %d", len(eps))
	}

	// Two days later Stripe has forgotten the key: the endpoint must be replaced, loudly.
	fakeClockOffset.Store(int64(48 * time.Hour))
	t.Cleanup(func() { fakeClockOffset.Store(0) })
	must(t, k8sClient.Delete(context.Background(), signingSecret(t, si)))
	ev := waitEvent(t, ns, "clinic-l", v1.ReasonSigningSecretRotated)
	if ev.typ != corev1.EventTypeWarning || !strings.Contains(ev.note, first.ID) {
		t.Errorf("rotation event = %+v", ev)
	}
	si = waitCondition(t, ns, "clinic-l", v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonSigningSecretRotated, waitShort)
	eps := accountEndpoints(k)
	if len(eps) != 1 || eps[0].ID == first.ID || eps[0].ID != si.Status.WebhookEndpointID {
		t.Fatalf("after rotation: %d endpoints, status %s, first %s", len(eps), si.Status.WebhookEndpointID, first.ID)
	}
	if got := string(signingSecret(t, si).Data[v1.SigningSecretKey]); got != eps[0].Secret || got == first.Secret {
		t.Error("signing Secret does not hold the new endpoint's secret")
	}
}

func TestEndpointLimitReached(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	sc := directClient(k.secret)
	for i := range 16 {
		_, _, err := sc.CreateWebhookEndpoint(context.Background(), stripeclient.EndpointSpec{
			URL: fmt.Sprintf("https://other.example/%d", i), EnabledEvents: []string{"charge.succeeded"},
		}, fmt.Sprintf("prefill-%s-%d", ns, i))
		must(t, err)
	}
	mustCreate(t, credentialsSecret(ns, "keys", k), integration(ns, "clinic-cap", uniqueClinic("clinic-cap", ns), v1.ModeTest, "keys"))
	waitCondition(t, ns, "clinic-cap", v1.ConditionWebhookEndpointReady, metav1.ConditionFalse, v1.ReasonEndpointLimitReached, waitShort)
	calls := fake.Calls(k.secret)
	const window = 8 * time.Second
	time.Sleep(window)
	// Not transient: retried only on resync (every 2 s ± 10 % here, 10 min by default), two calls
	// a pass (list, create): at most window/(0.9·resync) passes, plus one that began before the
	// window and one at its start. Transient backoff (250 ms doubling to 1 s) would make about
	// nine passes, 18 calls.
	passes := int(window/time.Duration(float64(testResync)*(1-resyncJitter))) + 2
	if n, limit := fake.Calls(k.secret)-calls, 2*passes; n > limit {
		t.Errorf("%d calls in %s at the endpoint cap, want ≤ %d: a retry storm", n, window, limit)
	}
	if n := len(accountEndpoints(k)); n != 16 {
		t.Errorf("%d endpoints, want the 16 untouched foreign ones", n)
	}
}

func TestWritePermissionDenied(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	k.secret = "rk_test_" + randomKeyBody(t, 32)
	fake.AddKey(k.secret, stripefake.KeyOptions{Permissions: []string{stripefake.PermWebhookRead}})
	mustCreate(t, credentialsSecret(ns, "keys", k), integration(ns, "clinic-ro", uniqueClinic("clinic-ro", ns), v1.ModeTest, "keys"))
	si := waitCondition(t, ns, "clinic-ro", v1.ConditionWebhookEndpointReady, metav1.ConditionFalse, v1.ReasonPermissionDenied, waitShort)
	if getCondition(t, si, v1.ConditionAuthenticated).Status != metav1.ConditionTrue {
		t.Error("a read-only key is still authenticated")
	}
	if msg := getCondition(t, si, v1.ConditionWebhookEndpointReady).Message; !strings.Contains(msg, "rak_webhook_write") {
		t.Errorf("message %q does not name rak_webhook_write", msg)
	}
}

func TestInvalidEventIsReported(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	si := integration(ns, "clinic-inv", uniqueClinic("clinic-inv", ns), v1.ModeTest, "keys")
	si.Spec.Webhook = &v1.WebhookSpec{EnabledEvents: []string{"charge.succeeded", "not_a.real_event"}}
	mustCreate(t, credentialsSecret(ns, "keys", k), si)
	si = waitCondition(t, ns, "clinic-inv", v1.ConditionWebhookEndpointReady, metav1.ConditionFalse, v1.ReasonInvalidWebhookConfig, waitShort)
	if msg := getCondition(t, si, v1.ConditionWebhookEndpointReady).Message; !strings.Contains(msg, "enabled_events") {
		t.Errorf("message %q lacks Stripe's explanation", msg)
	}
	if n := len(accountEndpoints(k)); n != 0 {
		t.Errorf("%d endpoints created from an invalid spec", n)
	}
}

func TestAPIVersionDriftRecreates(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-av")
	old := si.Status.WebhookEndpointID
	must(t, fake.UpdateEndpoint(old, func(e *stripe.WebhookEndpoint) { e.APIVersion = "2020-08-27" }))
	ev := waitEvent(t, ns, "clinic-av", v1.EventEndpointRecreated)
	if !strings.Contains(ev.note, "2020-08-27") {
		t.Errorf("event does not announce the version: %q", ev.note)
	}
	eventually(t, waitShort, "one endpoint on the pinned version", func() (bool, string) {
		eps := accountEndpoints(k)
		return len(eps) == 1 && eps[0].ID != old && eps[0].APIVersion == stripe.APIVersion, fmt.Sprintf("%d endpoints", len(eps))
	})
}

func TestDuplicateTaggedEndpointsAreRemoved(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-dup")
	desired := desiredEndpoint(si, testWebhookURL, stripe.APIVersion)
	dup, _, err := directClient(k.secret).CreateWebhookEndpoint(context.Background(), desired, "accident-"+string(si.UID))
	must(t, err)
	foreign, _, err := directClient(k.secret).CreateWebhookEndpoint(context.Background(), stripeclient.EndpointSpec{
		URL: "https://someone-else.example/hook", EnabledEvents: []string{"charge.succeeded"},
	}, "foreign-"+string(si.UID))
	must(t, err)

	ev := waitEvent(t, ns, "clinic-dup", v1.EventDuplicateEndpointDelete)
	if !strings.Contains(ev.note, dup.ID) {
		t.Errorf("event %q does not name the duplicate %s", ev.note, dup.ID)
	}
	eventually(t, waitShort, "duplicate gone, foreign kept", func() (bool, string) {
		var ids []string
		for _, e := range accountEndpoints(k) {
			ids = append(ids, e.ID)
		}
		return len(ids) == 2 && slices.Contains(ids, si.Status.WebhookEndpointID) && slices.Contains(ids, foreign.ID), strings.Join(ids, ",")
	})
}

func TestEndpointLivemodeMismatch(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, _ := connected(t, ns, "clinic-lm")
	stripeClients.flipLivemode.Store(k.secret, true)
	t.Cleanup(func() { stripeClients.flipLivemode.Delete(k.secret) })
	si := waitCondition(t, ns, "clinic-lm", v1.ConditionWebhookEndpointReady, metav1.ConditionFalse, v1.ReasonEndpointModeMismatch, waitShort)
	if c := getCondition(t, si, v1.ConditionConnected); c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonEndpointModeMismatch {
		t.Errorf("Connected = %s/%s", c.Status, c.Reason)
	}
	if n := len(accountEndpoints(k)); n != 1 {
		t.Errorf("a mode mismatch changed the endpoints: %d", n)
	}
}

func TestSuspendLeavesEndpoint(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-sp")
	si.Spec.Suspend = true
	must(t, k8sClient.Update(context.Background(), si))
	waitCondition(t, ns, "clinic-sp", v1.ConditionWebhookEndpointReady, metav1.ConditionUnknown, v1.ReasonSuspended, waitShort)
	calls := fake.Calls(k.secret)
	must(t, fake.DisableEndpoint(si.Status.WebhookEndpointID))
	time.Sleep(testResync + time.Second)
	if n := fake.Calls(k.secret) - calls; n != 0 {
		t.Errorf("suspended integration made %d Stripe calls", n)
	}
	if eps := accountEndpoints(k); len(eps) != 1 || eps[0].Status != "disabled" {
		t.Error("suspend touched the endpoint")
	}
}

func TestKeyRotationSameAccountKeepsEndpoint(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-rot")
	secretBefore := string(signingSecret(t, si).Data[v1.SigningSecretKey])
	rotated := newTestKeys(t, "test")
	fake.AddKey(rotated.secret, stripefake.KeyOptions{Account: fake.AccountForKey(k.secret)})
	updateKeys(t, ns, "clinic-rot-keys", rotated)

	eventually(t, waitShort, "new fingerprint", func() (bool, string) {
		got := getSI(t, ns, "clinic-rot")
		return got.Status.KeyFingerprint != si.Status.KeyFingerprint, got.Status.KeyFingerprint
	})
	after := getSI(t, ns, "clinic-rot")
	if after.Status.WebhookEndpointID != si.Status.WebhookEndpointID || string(signingSecret(t, after).Data[v1.SigningSecretKey]) != secretBefore {
		t.Error("rotation within the account changed the endpoint or its secret")
	}
	if n := len(accountEndpoints(k)); n != 1 {
		t.Errorf("%d endpoints after rotation", n)
	}
}

func TestKeyRotationToAnotherAccount(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		oldKeyWorks bool
	}{
		"old key still works": {oldKeyWorks: true},
		"old key revoked":     {oldKeyWorks: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t)
			old, si := connected(t, ns, "clinic-mv")
			oldID := si.Status.WebhookEndpointID
			next := newTestKeys(t, "test")
			fake.AddKey(next.secret, stripefake.KeyOptions{})
			if !tc.oldKeyWorks {
				fake.RevokeKey(old.secret)
			}
			updateKeys(t, ns, "clinic-mv-keys", next)

			eventually(t, waitShort, "endpoint in the new account", func() (bool, string) {
				got := getSI(t, ns, "clinic-mv")
				eps := accountEndpoints(next)
				return len(eps) == 1 && got.Status.WebhookEndpointID == eps[0].ID && got.Status.AccountID == fake.AccountForKey(next.secret),
					got.Status.WebhookEndpointID
			})
			if tc.oldKeyWorks {
				waitEvent(t, ns, "clinic-mv", v1.EventOldEndpointRemoved)
				if n := len(accountEndpoints(old)); n != 0 {
					t.Errorf("old account still has %d endpoints", n)
				}
				return
			}
			ev := waitEvent(t, ns, "clinic-mv", v1.EventManualRemovalRequired)
			if !strings.Contains(ev.note, oldID) {
				t.Errorf("event %q does not name %s", ev.note, oldID)
			}
			// The Event comes before the status write of the same pass.
			eventually(t, waitShort, "manualCleanup recorded", func() (bool, string) {
				got := getSI(t, ns, "clinic-mv")
				return len(got.Status.ManualCleanup) == 1 && strings.Contains(got.Status.ManualCleanup[0], oldID), fmt.Sprint(got.Status.ManualCleanup)
			})
			got := getSI(t, ns, "clinic-mv")
			if c := getCondition(t, got, v1.ConditionWebhookEndpointReady); c.Status != metav1.ConditionTrue {
				t.Errorf("rotation blocked the integration: %s/%s", c.Status, c.Reason)
			}
		})
	}
}

func updateKeys(t *testing.T, ns, name string, k testKeys) {
	t.Helper()
	s := &corev1.Secret{}
	must(t, k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s))
	s.Data[v1.DefaultPublishableKeyKey] = []byte(k.publishable)
	s.Data[v1.DefaultSecretKeyKey] = []byte(k.secret)
	must(t, k8sClient.Update(context.Background(), s))
}

// TestDeletionRemovesEndpoint deletes an integration in each order with its credentials Secret.
// The Secret deleted first stays readable under the in-use finalizer, so the endpoint is removed;
// only keys Stripe refuses leave it for manual removal. Either way the Secret goes in the end.
func TestDeletionRemovesEndpoint(t *testing.T) {
	t.Parallel()
	needSuite(t) // the fake is used before the first namespace
	revoke := func(t *testing.T, _ string, k testKeys) { fake.RevokeKey(k.secret) }
	deleteSecret := func(t *testing.T, ns string, _ testKeys) { deleteSecretNamed(t, ns, "clinic-del-keys") }
	cases := map[string]struct {
		breakIt   []func(t *testing.T, ns string, k testKeys)
		wantEvent string
		remaining int
	}{
		"valid key, integration first": {wantEvent: v1.EventEndpointDeleted},
		"revoked key, integration first": {
			breakIt: []func(*testing.T, string, testKeys){revoke}, wantEvent: v1.EventManualRemovalRequired, remaining: 1,
		},
		"credentials Secret deleted first": {
			breakIt: []func(*testing.T, string, testKeys){deleteSecret}, wantEvent: v1.EventEndpointDeleted,
		},
		"revoked key, credentials Secret deleted first": {
			breakIt: []func(*testing.T, string, testKeys){revoke, deleteSecret}, wantEvent: v1.EventManualRemovalRequired, remaining: 1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t)
			k, si := connected(t, ns, "clinic-del")
			foreign, _, err := directClient(k.secret).CreateWebhookEndpoint(context.Background(), stripeclient.EndpointSpec{
				URL: "https://not-ours.example/hook", EnabledEvents: []string{"charge.succeeded"},
			}, "foreign-del-"+ns)
			must(t, err)
			for _, b := range tc.breakIt {
				b(t, ns, k)
			}
			must(t, k8sClient.Delete(context.Background(), si))
			eventually(t, 20*time.Second, "object gone", func() (bool, string) {
				err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(si), si)
				return errors.IsNotFound(err), fmt.Sprint(err)
			})
			ev := waitEvent(t, ns, "clinic-del", tc.wantEvent)
			if !strings.Contains(ev.note, si.Status.WebhookEndpointID) {
				t.Errorf("event %q does not name endpoint %s", ev.note, si.Status.WebhookEndpointID)
			}
			eps := accountEndpoints(k)
			if !slices.ContainsFunc(eps, func(e stripe.WebhookEndpoint) bool { return e.ID == foreign.ID }) {
				t.Error("deletion removed an endpoint this object did not create")
			}
			if len(eps) != 1+tc.remaining {
				t.Errorf("%d endpoints left, want %d", len(eps), 1+tc.remaining)
			}
			// The Secret is released with the integration: deleted first, it is gone now; else it
			// is unprotected and a deletion goes through at once.
			waitSecretReleased(t, ns, "clinic-del-keys")
			deleteSecretNamed(t, ns, "clinic-del-keys")
			waitSecretGone(t, ns, "clinic-del-keys")
		})
	}
}
