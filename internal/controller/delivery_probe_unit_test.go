package controller

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/keys"
	"github.com/clinicpay/stripe-operator/internal/receiver"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

const probeSecret = "whsec_probeTESTsecret0123456789abcdef"

func probeIntegration(clinic string) *v1.StripeIntegration {
	return &v1.StripeIntegration{Spec: v1.StripeIntegrationSpec{ClinicID: clinic, Mode: v1.ModeTest}}
}

// realReceiverURL serves the real receiver (no system of record: it acknowledges events) for
// clinic with probeSecret, and returns its webhook URL.
func realReceiverURL(t *testing.T, clinic string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "signingSecret")
	must(t, os.WriteFile(file, []byte(probeSecret+"\n"), 0o600))
	rcv, err := receiver.New(receiver.Config{ClinicID: clinic, Mode: receiver.ModeTest, SigningSecretFile: file}, nil, logr.Discard(),
		prometheus.NewRegistry())
	must(t, err)
	srv := httptest.NewServer(rcv.WebhookHandler())
	t.Cleanup(srv.Close)
	return srv.URL + receiver.WebhookPath(receiver.ModeTest, clinic)
}

// The operator's probe is what the real receiver takes for a probe: signed as Stripe signs,
// marked, answered with the nonce. Every other answer is classified without guessing.
func TestDeliveryProbeOutcomes(t *testing.T) {
	t.Parallel()
	r := &StripeIntegrationReconciler{}
	ctx := context.Background()
	si := probeIntegration("clinic-probe")
	rcvURL := realReceiverURL(t, "clinic-probe")

	if got := r.sendDeliveryProbe(ctx, rcvURL, si, probeSecret); got.kind != probeReached {
		t.Errorf("probe to the clinic's own receiver = %+v, want reached", got)
	}
	if got := r.sendDeliveryProbe(ctx, realReceiverURL(t, "clinic-other"), probeIntegration("clinic-other"), "whsec_another"); got.kind != probeOther ||
		!strings.Contains(got.detail, "HTTP 400") || !strings.Contains(got.detail, "refused the signature") {
		t.Errorf("probe signed with another secret = %+v, want other, HTTP 400 refused", got)
	}
	// Another clinic's receiver that holds the same secret (a misrouted URL) answers the
	// probe with its own clinic ID: not this clinic's receiver.
	if got := r.sendDeliveryProbe(ctx, realReceiverURL(t, "clinic-x"), si, probeSecret); got.kind != probeOther ||
		!strings.Contains(got.detail, "another clinic's receiver") {
		t.Errorf("probe to another clinic's receiver = %+v, want other", got)
	}

	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)
	got := r.sendDeliveryProbe(ctx, notFound.URL+"/stripe/webhook-test/clinic-probe", si, probeSecret)
	if got.kind != probeOther || got.detail != "HTTP 404" {
		t.Errorf("probe answered 404 = %+v, want other HTTP 404", got)
	}
	redirect := httptest.NewServer(http.RedirectHandler(rcvURL, http.StatusFound))
	t.Cleanup(redirect.Close)
	if got := r.sendDeliveryProbe(ctx, redirect.URL+"/x", si, probeSecret); got.kind != probeOther || !strings.Contains(got.detail, "redirect") {
		t.Errorf("probe redirected to the receiver = %+v, want other (redirects are not followed)", got)
	}
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsSrv.Close)
	if got := r.sendDeliveryProbe(ctx, tlsSrv.URL+"/x", si, probeSecret); got.kind != probeUnreachable || !strings.Contains(got.detail, "TLS") {
		t.Errorf("probe to an untrusted certificate = %+v, want unreachable TLS", got)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	closed := "http://" + ln.Addr().String() + "/x"
	must(t, ln.Close())
	if got := r.sendDeliveryProbe(ctx, closed, si, probeSecret); got.kind != probeUnreachable || got.detail != "connection refused" {
		t.Errorf("probe to a closed port = %+v, want unreachable, connection refused", got)
	}
}

func TestDialErrorClass(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("https://hooks.clinic.example/stripe/webhook/c1")
	dns := &url.Error{Op: "Post", URL: u.String(),
		Err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: u.Hostname(), IsNotFound: true}}}
	if got := dialErrorClass(dns, u); got != "DNS lookup of hooks.clinic.example failed" {
		t.Errorf("DNS error class = %q", got)
	}
	timeout := &url.Error{Op: "Post", URL: u.String(), Err: context.DeadlineExceeded}
	if got := dialErrorClass(timeout, u); !strings.HasPrefix(got, "no answer within") {
		t.Errorf("timeout class = %q", got)
	}
	if got := dialErrorClass(errors.New("something odd"), u); got != "connection failed" {
		t.Errorf("other class = %q", got)
	}
}

// Stripe's report wins; a probe answered by something else is False; a URL the cluster cannot
// reach is Unknown while Stripe reports nothing undelivered, and says so.
func TestDeliveryCondition(t *testing.T) {
	t.Parallel()
	const u = "https://hooks.example/stripe/webhook/c1"
	reached := probeOutcome{kind: probeReached}
	unreachable := probeOutcome{kind: probeUnreachable, detail: "connection refused"}
	other := probeOutcome{kind: probeOther, detail: "HTTP 404"}
	unavailable := &stripeclient.Error{Kind: stripeclient.KindUnavailable, Message: "boom"}
	denied := &stripeclient.Error{Kind: stripeclient.KindPermissionDenied}
	for name, tc := range map[string]struct {
		p           probeOutcome
		undelivered bool
		err         error
		status      metav1.ConditionStatus
		reason      string
		contains    []string
	}{
		"all good": {reached, false, nil, metav1.ConditionTrue, v1.ReasonDeliveriesArriving,
			[]string{u, "reached this clinic's receiver"}},
		"Stripe reports failures":        {reached, true, nil, metav1.ConditionFalse, v1.ReasonStripeDeliveriesFailing, []string{"did reach"}},
		"failures and unreachable":       {unreachable, true, nil, metav1.ConditionFalse, v1.ReasonStripeDeliveriesFailing, []string{"connection refused"}},
		"failures and answered by other": {other, true, nil, metav1.ConditionFalse, v1.ReasonStripeDeliveriesFailing, []string{"HTTP 404"}},
		"unreachable, Stripe silent": {unreachable, false, nil, metav1.ConditionUnknown, v1.ReasonPublicURLUnreachable,
			[]string{"cannot reach " + u + " from inside the cluster (connection refused)", "Stripe reports no undelivered events", "may still arrive"}},
		"unreachable, Stripe unreadable": {unreachable, false, unavailable, metav1.ConditionUnknown, v1.ReasonPublicURLUnreachable,
			[]string{"could not be read"}},
		"answered by other": {other, false, nil, metav1.ConditionFalse, v1.ReasonProbeAnsweredByOther,
			[]string{"HTTP 404", "without the probe's nonce"}},
		"reached, Stripe unavailable":      {reached, false, unavailable, metav1.ConditionUnknown, v1.ReasonStripeUnavailable, nil},
		"reached, no event permission":     {reached, false, denied, metav1.ConditionUnknown, v1.ReasonEventPermissionMissing, []string{"rak_event_read"}},
		"reached, unexpected Stripe error": {reached, false, errors.New("weird"), metav1.ConditionUnknown, v1.ReasonDeliveryCheckFailed, nil},
	} {
		c := deliveryCondition(u, tc.p, tc.undelivered, tc.err)
		if c.Type != v1.ConditionDeliveriesArriving || c.Status != tc.status || c.Reason != tc.reason {
			t.Errorf("%s: %s/%s (%s), want %s/%s", name, c.Status, c.Reason, c.Message, tc.status, tc.reason)
		}
		for _, s := range tc.contains {
			if !strings.Contains(c.Message, s) {
				t.Errorf("%s: message %q lacks %q", name, c.Message, s)
			}
		}
	}
}

// recordingClients hands out one Stripe client and records the keys it was asked for.
type recordingClients struct {
	mu     sync.Mutex
	keys   []string
	client stripeclient.Client
}

func (c *recordingClients) For(key string, _ v1.Mode, _ string) stripeclient.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, key)
	return c.client
}

// A due check in a pass that reused the cached Stripe view (no client in the pass) makes a client
// for the keys the view was recorded for, as the probe would, and reads Stripe's undelivered
// events in one call over [endpoint creation, now - settle). Keys that changed under the pass
// make no client and no check: the next pass, which asks Stripe anyway, checks.
func TestDeliveryCheckOnReusedView(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pub, sec := "pk_test_"+randomKeyBody(t, 32), "sk_test_"+randomKeyBody(t, 32)
	for _, keysChanged := range []bool{false, true} {
		si := branchSI()
		si.Status.WebhookURL = realReceiverURL(t, si.Spec.ClinicID)
		creds := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: si.Namespace, Name: "keys"},
			Data: map[string][]byte{v1.DefaultPublishableKeyKey: []byte(pub), v1.DefaultSecretKeyKey: []byte(sec)}}
		c := crfake.NewClientBuilder().WithScheme(branchScheme(t)).
			WithObjects(si, creds, signingSecretObject(si, &storedSigning{endpointID: "we_1", data: probeSecret})).Build()
		f := &fakeStripe{t: t}
		f.ListEventsFn = func(context.Context, stripeclient.EventWindow) ([]stripeclient.RawEvent, error) { return nil, nil }
		sc := &recordingClients{client: f}
		r := &StripeIntegrationReconciler{Client: c, SecretReader: c, Stripe: sc, WebhookBaseURL: bBaseURL}
		created := time.Now().Add(-time.Hour).Truncate(time.Second)
		r.deliveryChecks.set(si.UID, deliveryCheck{due: time.Now().Add(-time.Second), endpointCreated: created})
		obs := observation{statusInput: statusInput{
			KeysValid:      trueCond(v1.ConditionKeysValid, v1.ReasonKeysValid, ""),
			Authenticated:  trueCond(v1.ConditionAuthenticated, v1.ReasonAuthenticated, ""),
			Webhook:        trueCond(v1.ConditionWebhookEndpointReady, v1.ReasonEndpointReady, ""),
			Receiver:       trueCond(v1.ConditionReceiverReady, v1.ReasonReceiverAvailable, ""),
			KeyFingerprint: keys.Fingerprint(pub, sec),
		}, reusedView: true}
		if keysChanged {
			obs.KeyFingerprint = "another-fingerprint"
		}
		obs.deliveryDue = r.deliveryCheckDue(si) // as the pass decides it when its Stripe phase begins
		began := time.Now()
		r.reconcileDelivery(ctx, si, &obs)

		calls := f.Calls()
		if keysChanged {
			if len(sc.keys) != 0 || len(calls) != 0 || len(obs.Informational) != 0 {
				t.Errorf("keys changed under the pass: clients %d, calls %v, conditions %+v; want none", len(sc.keys), calls, obs.Informational)
			}
			continue
		}
		if !slices.Equal(sc.keys, []string{sec}) {
			t.Errorf("clients made for %d keys, want one for the secret key", len(sc.keys))
		}
		if len(calls) != 1 || calls[0].Method != "ListEvents" {
			t.Fatalf("Stripe calls = %v, want one ListEvents", calls)
		}
		w := calls[0].Args[0].(stripeclient.EventWindow)
		wantTo := began.Add(-defaultDeliverySettle).Truncate(time.Second)
		if !w.Undelivered || w.Max != 1 || !w.From.Equal(created) || w.To.Before(wantTo) || w.To.After(wantTo.Add(time.Second)) ||
			!slices.Equal(w.Types, branchDesired().EnabledEvents) {
			t.Errorf("window = %+v, want undelivered %s..%s, Max 1, the endpoint's types", w, created, wantTo)
		}
		if len(obs.Informational) != 1 || obs.Informational[0].Reason != v1.ReasonDeliveriesArriving {
			t.Errorf("conditions = %+v, want DeliveriesArriving True", obs.Informational)
		}
		if next, _ := r.deliveryChecks.get(si.UID); !next.due.After(began) || next.checkedUntil.IsZero() {
			t.Errorf("schedule after the check = %+v, want a later due time and the window's end", next)
		}
	}
}

// Not connected, suspended or turned off: the condition an integration had says so (or goes);
// one that never had it gets none.
func TestDeliveryConditionWhenNotChecked(t *testing.T) {
	t.Parallel()
	had := []metav1.Condition{{Type: v1.ConditionDeliveriesArriving, Status: metav1.ConditionTrue, Reason: v1.ReasonDeliveriesArriving}}
	notConnected := observation{statusInput: statusInput{
		KeysValid: trueCond(v1.ConditionKeysValid, v1.ReasonKeysValid, ""),
		Receiver:  falseCond(v1.ConditionReceiverReady, v1.ReasonReceiverProgressing, ""),
	}}
	for name, tc := range map[string]struct {
		stored   []metav1.Condition
		suspend  bool
		interval time.Duration
		reason   string // "" none; "-" cleared
	}{
		"never had it":        {reason: ""},
		"no longer connected": {stored: had, reason: v1.ReasonNotConnected},
		"suspended":           {stored: had, suspend: true, reason: v1.ReasonSuspended},
		"turned off":          {stored: had, interval: -1, reason: "-"},
		"turned off, never":   {interval: -1, reason: ""},
	} {
		si := branchSI()
		si.Status.Conditions, si.Spec.Suspend = tc.stored, tc.suspend
		r := &StripeIntegrationReconciler{DeliveryCheckInterval: tc.interval}
		obs := notConnected
		r.reconcileDelivery(context.Background(), si, &obs)
		switch tc.reason {
		case "-":
			if len(obs.Cleared) != 1 || len(obs.Informational) != 0 {
				t.Errorf("%s: cleared %v, conditions %+v; want the condition removed", name, obs.Cleared, obs.Informational)
			}
		case "":
			if len(obs.Cleared)+len(obs.Informational) != 0 {
				t.Errorf("%s: cleared %v, conditions %+v; want nothing", name, obs.Cleared, obs.Informational)
			}
		default:
			if len(obs.Informational) != 1 || obs.Informational[0].Status != metav1.ConditionUnknown || obs.Informational[0].Reason != tc.reason {
				t.Errorf("%s: conditions %+v, want Unknown %s", name, obs.Informational, tc.reason)
			}
		}
	}
}

// A check that falls due during a pass (after its Stripe phase listed the endpoints, because it
// was not due then) waits for the next pass, whose list it replaces: one pass never makes both
// calls. Before, the delivery phase read the clock again and ran the check in that same pass.
func TestDeliveryCheckDueMidPassWaitsForTheNextPass(t *testing.T) {
	t.Parallel()
	si := branchSI()
	f := &fakeStripe{t: t}
	r := &StripeIntegrationReconciler{Stripe: &recordingClients{client: f}}
	due := time.Now().Add(-time.Millisecond) // due by the time the delivery phase runs
	r.deliveryChecks.set(si.UID, deliveryCheck{due: due})
	obs := observation{statusInput: statusInput{
		KeysValid:     trueCond(v1.ConditionKeysValid, v1.ReasonKeysValid, ""),
		Authenticated: trueCond(v1.ConditionAuthenticated, v1.ReasonAuthenticated, ""),
		Webhook:       trueCond(v1.ConditionWebhookEndpointReady, v1.ReasonEndpointReady, ""),
		Receiver:      trueCond(v1.ConditionReceiverReady, v1.ReasonReceiverAvailable, ""),
	}, stripe: f, deliveryDue: false} // the Stripe phase found it not due and listed
	r.reconcileDelivery(context.Background(), si, &obs)
	if calls := f.Calls(); len(calls) != 0 || len(obs.Informational) != 0 {
		t.Errorf("the pass checked: calls %v, conditions %+v; want the check left to the next pass", calls, obs.Informational)
	}
	if sched, _ := r.deliveryChecks.get(si.UID); !sched.due.Equal(due) {
		t.Errorf("due moved to %s, want it kept (%s) for the next pass", sched.due, due)
	}
	if !r.deliveryCheckDue(si) {
		t.Error("the next pass does not find the check due")
	}
}
