package controller

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

const waitShort = 10 * time.Second

func TestValidTestKeysAreAuthenticated(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newClinic(t, ns, "clinic-a")

	si := waitCondition(t, ns, "clinic-a", v1.ConditionAuthenticated, metav1.ConditionTrue, v1.ReasonAuthenticated, waitShort)
	if c := getCondition(t, si, v1.ConditionKeysValid); c.Status != metav1.ConditionTrue || c.Reason != v1.ReasonKeysValid {
		t.Errorf("KeysValid = %s/%s, want True/%s", c.Status, c.Reason, v1.ReasonKeysValid)
	}
	// envtest runs no Deployment controller: Connected says the receiver is not available yet.
	si = waitCondition(t, ns, "clinic-a", v1.ConditionConnected, metav1.ConditionFalse, v1.ReasonReceiverProgressing, waitShort)
	for _, c := range si.Status.Conditions {
		if c.ObservedGeneration != si.Generation {
			t.Errorf("condition %s observedGeneration = %d, want %d", c.Type, c.ObservedGeneration, si.Generation)
		}
	}
	if si.Status.Mode != v1.ModeTest || si.Status.ObservedGeneration != si.Generation {
		t.Errorf("status mode/observedGeneration = %s/%d", si.Status.Mode, si.Status.ObservedGeneration)
	}
	if want := fake.AccountForKey(k.secret); si.Status.AccountID != want || want == "" {
		t.Errorf("accountID = %q, want %q", si.Status.AccountID, want)
	}
	if !strings.HasPrefix(si.Status.KeyFingerprint, "sha256:") || si.Status.LastProbeTime == nil {
		t.Errorf("fingerprint %q / lastProbeTime %v not set", si.Status.KeyFingerprint, si.Status.LastProbeTime)
	}
	if len(si.Finalizers) != 1 || si.Finalizers[0] != Finalizer {
		t.Errorf("finalizers = %v", si.Finalizers)
	}
}

func TestPrinterColumns(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newClinic(t, ns, "clinic-p")
	waitCondition(t, ns, "clinic-p", v1.ConditionReceiverReady, metav1.ConditionFalse, v1.ReasonReceiverProgressing, waitShort)

	// Ask the apiserver for the same Table `kubectl get si` renders.
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cs.RESTClient().Get().AbsPath("/apis/payments.clinicpay.dev/v1alpha1/namespaces", ns, "stripeintegrations").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var table metav1.Table
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(table.ColumnDefinitions))
	for _, c := range table.ColumnDefinitions {
		names = append(names, c.Name)
	}
	if got, want := strings.Join(names, ","), "Name,Clinic,Mode,Connected,Reason,Endpoint,Age"; got != want {
		t.Fatalf("columns = %s, want %s", got, want)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("rows = %d", len(table.Rows))
	}
	cells := table.Rows[0].Cells
	endpoint, _ := cells[5].(string)
	if cells[1] != uniqueClinic("clinic-p", ns) || cells[2] != "Test" || cells[3] != "False" || cells[4] != v1.ReasonReceiverProgressing ||
		!strings.HasPrefix(endpoint, "we_") {
		t.Errorf("row = %v", cells)
	}
}

func TestTestKeyInLiveModeIsRejectedWithoutCallingStripe(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newClinic(t, ns, "clinic-live", withMode(v1.ModeLive), withKeysFor(v1.ModeTest))

	si := waitCondition(t, ns, "clinic-live", v1.ConditionKeysValid, metav1.ConditionFalse, v1.ReasonModeMismatch, waitShort)
	if msg := getCondition(t, si, v1.ConditionKeysValid).Message; !strings.Contains(msg, "test key (sk_test_…) but spec.mode is Live") {
		t.Errorf("message %q does not tell the admin what is wrong", msg)
	}
	if c := getCondition(t, si, v1.ConditionConnected); c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonModeMismatch {
		t.Errorf("Connected = %s/%s, want False/%s", c.Status, c.Reason, v1.ReasonModeMismatch)
	}
	// A few resyncs later still no call: the policy runs before any client is built.
	time.Sleep(testResync + time.Second)
	if n := fake.Calls(k.secret); n != 0 {
		t.Errorf("Stripe saw %d calls with a key that failed the policy", n)
	}
}

func TestMissingSecretThenCreatedRecovers(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	mustCreate(t, integration(ns, "clinic-b", uniqueClinic("clinic-b", ns), v1.ModeTest, "late-keys"))
	si := waitCondition(t, ns, "clinic-b", v1.ConditionKeysValid, metav1.ConditionFalse, v1.ReasonSecretNotFound, waitShort)
	gen := si.Generation

	mustCreate(t, credentialsSecret(ns, "late-keys", k))
	si = waitCondition(t, ns, "clinic-b", v1.ConditionAuthenticated, metav1.ConditionTrue, v1.ReasonAuthenticated, 3*time.Second)
	if si.Generation != gen {
		t.Errorf("generation moved %d -> %d: the CR was touched", gen, si.Generation)
	}
}

func TestRotatingToRevokedKeyFlipsAuthenticated(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	secret := credentialsSecret(ns, "stripe-keys", k)
	mustCreate(t, secret, integration(ns, "clinic-c", uniqueClinic("clinic-c", ns), v1.ModeTest, "stripe-keys"))
	before := waitCondition(t, ns, "clinic-c", v1.ConditionAuthenticated, metav1.ConditionTrue, v1.ReasonAuthenticated, waitShort)

	rotated := newTestKeys(t, "test")
	fake.AddKey(rotated.secret, stripefake.KeyOptions{})
	fake.RevokeKey(rotated.secret)
	// Re-read: the operator has since added its in-use finalizer to the Secret.
	must(t, k8sClient.Get(context.Background(), client.ObjectKeyFromObject(secret), secret))
	secret.Data[v1.DefaultSecretKeyKey] = []byte(rotated.secret)
	if err := k8sClient.Update(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	after := waitCondition(t, ns, "clinic-c", v1.ConditionAuthenticated, metav1.ConditionFalse, v1.ReasonInvalidKey, 5*time.Second)
	t.Logf("revoked key noticed after %s", time.Since(start).Round(time.Millisecond))
	// The fingerprint names the keys Stripe last accepted, so it stays on the old pair.
	if after.Status.KeyFingerprint != before.Status.KeyFingerprint {
		t.Errorf("fingerprint moved to keys Stripe rejected: %s -> %s", before.Status.KeyFingerprint, after.Status.KeyFingerprint)
	}
}

func TestRestrictedKeyWithoutWebhookPermission(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	k.secret = "rk_test_" + randomKeyBody(t, 32)
	fake.AddKey(k.secret, stripefake.KeyOptions{Permissions: []string{stripefake.PermAccountRead}})
	mustCreate(t, credentialsSecret(ns, "stripe-keys", k), integration(ns, "clinic-d", uniqueClinic("clinic-d", ns), v1.ModeTest, "stripe-keys"))

	si := waitCondition(t, ns, "clinic-d", v1.ConditionAuthenticated, metav1.ConditionFalse, v1.ReasonPermissionDenied, waitShort)
	if msg := getCondition(t, si, v1.ConditionAuthenticated).Message; !strings.Contains(msg, "rak_webhook_read") {
		t.Errorf("message %q does not name the missing permission", msg)
	}
}

func TestRestrictedKeyWithoutAccountReadIsAuthenticated(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	k.secret = "rk_test_" + randomKeyBody(t, 32)
	fake.AddKey(k.secret, stripefake.KeyOptions{Permissions: []string{stripefake.PermWebhookRead, stripefake.PermWebhookWrite}})
	mustCreate(t, credentialsSecret(ns, "stripe-keys", k), integration(ns, "clinic-r", uniqueClinic("clinic-r", ns), v1.ModeTest, "stripe-keys"))

	si := waitCondition(t, ns, "clinic-r", v1.ConditionAuthenticated, metav1.ConditionTrue, v1.ReasonAuthenticated, waitShort)
	if si.Status.AccountID != "" {
		t.Errorf("accountID = %q although the key may not read the account", si.Status.AccountID)
	}
	if si.Status.KeyFingerprint == "" {
		t.Error("fingerprint not recorded")
	}
}

// Transient Stripe errors must back off (exponentially, from testRetryBase) rather than loop hot,
// and the integration must recover by itself once Stripe does.
func TestTransientStripeErrorsBackOff(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		status int
		reason string
		// stripe-go itself retries 5xx on GET once (MaxNetworkRetries=1).
		maxCalls int
	}{
		"rate limited":        {status: 429, reason: v1.ReasonRateLimited, maxCalls: 8},
		"service unavailable": {status: 503, reason: v1.ReasonStripeUnavailable, maxCalls: 16},
		"internal error":      {status: 500, reason: v1.ReasonStripeUnavailable, maxCalls: 16},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t)
			k := newTestKeys(t, "test")
			fake.AddKey(k.secret, stripefake.KeyOptions{})
			fake.InjectFault(stripefake.Fault{Key: k.secret, Status: tc.status})
			t.Cleanup(func() { fake.ClearFaultsFor(k.secret) })
			mustCreate(t, credentialsSecret(ns, "stripe-keys", k), integration(ns, "clinic-e", uniqueClinic("clinic-e", ns), v1.ModeTest, "stripe-keys"))

			waitCondition(t, ns, "clinic-e", v1.ConditionAuthenticated, metav1.ConditionFalse, tc.reason, waitShort)
			start := fake.Calls(k.secret)
			time.Sleep(3 * time.Second)
			// Backoff 250ms, 500ms, 1s, 2s, 2s... allows at most ~5 passes in 3 s.
			if n := fake.Calls(k.secret) - start; n > tc.maxCalls || n < 1 {
				t.Errorf("%d Stripe calls in 3 s while failing: want 1..%d (backoff, not a hot loop)", n, tc.maxCalls)
			}
			fake.ClearFaultsFor(k.secret)
			waitCondition(t, ns, "clinic-e", v1.ConditionAuthenticated, metav1.ConditionTrue, v1.ReasonAuthenticated, waitShort)
		})
	}
}

func TestSteadyStateWritesNothing(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newClinic(t, ns, "clinic-s")
	waitCondition(t, ns, "clinic-s", v1.ConditionAuthenticated, metav1.ConditionTrue, v1.ReasonAuthenticated, waitShort)
	time.Sleep(500 * time.Millisecond) // let the pass that followed the finalizer patch settle
	si := getSI(t, ns, "clinic-s")

	// Two resyncs' probes, however long a loaded machine makes them take.
	stripeCallTimes(t, k.secret, 2, waitShort+2*testResync)
	if after := getSI(t, ns, "clinic-s"); after.ResourceVersion != si.ResourceVersion {
		t.Errorf("resync rewrote an unchanged object: resourceVersion %s -> %s\nbefore %+v\nafter  %+v",
			si.ResourceVersion, after.ResourceVersion, si.Status, after.Status)
	}
}

func TestSuspendMakesNoStripeCalls(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	si := integration(ns, "clinic-z", uniqueClinic("clinic-z", ns), v1.ModeTest, "stripe-keys")
	si.Spec.Suspend = true
	mustCreate(t, credentialsSecret(ns, "stripe-keys", k), si)
	waitCondition(t, ns, "clinic-z", v1.ConditionConnected, metav1.ConditionFalse, v1.ReasonSuspended, waitShort)
	time.Sleep(testResync)
	if n := fake.Calls(k.secret); n != 0 {
		t.Errorf("suspended integration made %d Stripe calls", n)
	}
}

func TestDeleteReleasesFinalizer(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	newClinic(t, ns, "clinic-f")
	si := waitCondition(t, ns, "clinic-f", v1.ConditionAuthenticated, metav1.ConditionTrue, v1.ReasonAuthenticated, waitShort)

	if err := k8sClient.Delete(context.Background(), si); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "StripeIntegration gone", func() (bool, string) {
		err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(si), si)
		return errors.IsNotFound(err), "still present"
	})
}

func TestConditionTransitionsEmitEvents(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	mustCreate(t, integration(ns, "clinic-g", uniqueClinic("clinic-g", ns), v1.ModeTest, "stripe-keys"))
	waitCondition(t, ns, "clinic-g", v1.ConditionKeysValid, metav1.ConditionFalse, v1.ReasonSecretNotFound, waitShort)
	mustCreate(t, credentialsSecret(ns, "stripe-keys", k))
	waitCondition(t, ns, "clinic-g", v1.ConditionAuthenticated, metav1.ConditionTrue, v1.ReasonAuthenticated, waitShort)

	// One Event per status write: the recovery is a Normal Event whose note lists every change.
	eventually(t, waitShort, "events for both transitions", func() (bool, string) {
		seen := map[string]bool{}
		recovered := false
		for _, e := range listEvents(t, ns) {
			if e.Regarding.Name == "clinic-g" {
				seen[e.Type+"/"+e.Reason] = true
				recovered = recovered || e.Type == "Normal" && strings.Contains(e.Note, "Authenticated is True") && strings.Contains(e.Note, "KeysValid is True")
			}
		}
		return seen["Warning/"+v1.ReasonSecretNotFound] && recovered, fmtKeys(seen)
	})
}

func listEvents(t *testing.T, ns string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := k8sClient.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func fmtKeys(m map[string]bool) string {
	s := make([]string, 0, len(m))
	for k := range m {
		s = append(s, k)
	}
	return strings.Join(s, ",")
}

// TestResyncJitterIsSymmetric: the resync period is spread ±10 % around --resync-period, as the
// docs say, not +0–10 %.
func TestResyncJitterIsSymmetric(t *testing.T) {
	t.Parallel()
	const d = 10 * time.Minute
	lo, hi := d-d/10, d+d/10
	if got := jittered(d, 0); got != lo {
		t.Errorf("jittered(d, 0) = %s, want %s", got, lo)
	}
	if got := jittered(d, 0.5); got != d {
		t.Errorf("jittered(d, 0.5) = %s, want %s", got, d)
	}
	if got := jittered(d, math.Nextafter(1, 0)); got >= hi || got < hi-time.Millisecond {
		t.Errorf("jittered(d, 1-ε) = %s, want just under %s", got, hi)
	}
	below, above := 0, 0
	for range 1000 {
		got := jittered(d, rand.Float64())
		if got < lo || got >= hi {
			t.Fatalf("jittered = %s, outside [%s, %s)", got, lo, hi)
		}
		if got < d {
			below++
		} else {
			above++
		}
	}
	if below < 400 || above < 400 {
		t.Errorf("%d of 1000 below and %d above the period: not spread around it", below, above)
	}
}
