package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
	"github.com/clinicpay/stripe-operator/test/testreport"
)

// Timing of the "no hot loop" check, derived from the suite's resync period.
const (
	// hostileSettle lets the passes that produced the outcome (and the writes they triggered) finish.
	hostileSettle = time.Second
	// hostileWindow is how long an object that reached its outcome is watched.
	hostileWindow = 3 * time.Second
	// hostileTimeout bounds the wait for an outcome.
	hostileTimeout = 15 * time.Second
)

// hostileMaxPasses bounds the reconciles of one unchanged object in hostileWindow: the periodic
// resync (jittered down by at most 10 %) plus one incidental trigger. Transient failures back off
// from testRetryBase to testRetryMax (1 s), which stays within the same bound.
var hostileMaxPasses = int(hostileWindow/(testResync*9/10)) + 2

// hostileEnv is one case's world: its own namespace and its own fresh keys, registered in the fake.
type hostileEnv struct {
	ns     string
	name   string // the StripeIntegration
	secret string // the credentials Secret
	keys   testKeys
	// watched are the values whose Stripe calls are counted: every value a case puts in a secret
	// slot, so a call made with a mangled key would be seen too.
	watched []string
	// objects is how many StripeIntegrations the case runs in its namespace (bounds writes).
	objects int
}

// use records v as a value whose Stripe calls are counted and returns it.
func (e *hostileEnv) use(v string) string {
	if !slices.Contains(e.watched, v) {
		e.watched = append(e.watched, v)
	}
	return v
}

func (e *hostileEnv) calls() int {
	n := 0
	for _, k := range e.watched {
		n += fake.Calls(k)
	}
	return n
}

// si is the case's integration in mode, with the clinic ID "clinic-h-<namespace suffix>": unique,
// so that cases running side by side never share a webhook URL.
func (e *hostileEnv) si(mode v1.Mode) *v1.StripeIntegration {
	si := integration(e.ns, e.name, uniqueClinic("clinic-h", e.ns), mode, e.secret)
	if mode == v1.ModeLive {
		si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://hooks-live.clinic-h.example"}
	}
	return si
}

// rawKeys is a credentials Secret holding exactly pub and sec under the default data keys.
func (e *hostileEnv) rawKeys(pub, sec string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: e.secret},
		Data: map[string][]byte{
			v1.DefaultPublishableKeyKey: []byte(pub),
			v1.DefaultSecretKeyKey:      []byte(e.use(sec)),
		},
	}
}

// createErr creates objs in order and returns the first error.
func createErr(objs ...client.Object) error {
	for _, o := range objs {
		if err := k8sClient.Create(context.Background(), o); err != nil {
			return err
		}
	}
	return nil
}

// keysSetup creates a Secret holding pub and sec (computed from the case's keys) and a
// StripeIntegration of mode that references it.
func keysSetup(mode v1.Mode, pub, sec func(t *testing.T, e *hostileEnv) string) func(*testing.T, *hostileEnv) error {
	return func(t *testing.T, e *hostileEnv) error {
		mustCreate(t, e.rawKeys(pub(t, e), sec(t, e)), e.si(mode))
		return nil
	}
}

func thePub(_ *testing.T, e *hostileEnv) string { return e.keys.publishable }
func theSec(_ *testing.T, e *hostileEnv) string { return e.keys.secret }

// secWith derives the secret-slot value from the case's real secret key.
func secWith(f func(k string) string) func(*testing.T, *hostileEnv) string {
	return func(_ *testing.T, e *hostileEnv) string { return f(e.keys.secret) }
}

// liveKeys registers a pair of live keys in the fake, so that a call made by mistake would succeed.
func liveKeys(t *testing.T, e *hostileEnv) testKeys {
	k := newTestKeys(t, "live")
	fake.AddKey(e.use(k.secret), stripefake.KeyOptions{})
	return k
}

// invalidSpec creates the case's integration after mutate; the apiserver must refuse it.
func invalidSpec(mutate func(e *hostileEnv, si *v1.StripeIntegration)) func(*testing.T, *hostileEnv) error {
	return func(t *testing.T, e *hostileEnv) error {
		si := e.si(v1.ModeTest)
		mutate(e, si)
		return createErr(e.rawKeys(e.keys.publishable, e.keys.secret), si)
	}
}

// invalidUpdate creates a suspended integration (no Stripe calls) and then tries to change it.
func invalidUpdate(mutate func(si *v1.StripeIntegration)) func(*testing.T, *hostileEnv) error {
	return func(t *testing.T, e *hostileEnv) error {
		si := e.si(v1.ModeTest)
		si.Spec.Suspend = true
		mustCreate(t, e.rawKeys(e.keys.publishable, e.keys.secret), si)
		waitCondition(t, e.ns, e.name, v1.ConditionConnected, metav1.ConditionFalse, v1.ReasonSuspended, hostileTimeout)
		// The controller writes the object meanwhile (finalizer, status): retry conflicts only.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur := getSI(t, e.ns, e.name)
			mutate(cur)
			return k8sClient.Update(context.Background(), cur)
		})
		if got := getSI(t, e.ns, e.name); got.Spec.ClinicID != uniqueClinic("clinic-h", e.ns) || got.Spec.Mode != v1.ModeTest {
			t.Errorf("a refused update changed the object: clinicID %q mode %q", got.Spec.ClinicID, got.Spec.Mode)
		}
		return err
	}
}

// bigSecret is a Secret whose one value has n bytes.
func bigSecret(e *hostileEnv, n int) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "huge"},
		Data:       map[string][]byte{"blob": []byte(strings.Repeat("A", n))},
	}
}

func isInvalid(err error) bool { return apierrors.IsInvalid(err) }

// hostileCase is one row of the table: a setup, and what it must end in.
type hostileCase struct {
	name  string
	setup func(t *testing.T, e *hostileEnv) error

	// (a) The apiserver refuses: the error setup returns satisfies refused and contains msg.
	refused func(error) bool

	// (b) The object ends in a documented reason: condition cond of e.name reaches status/reason
	// (its message contains msg), stays there, and is watched for a hot loop.
	cond   string
	status metav1.ConditionStatus
	reason string
	// local: refused before any Stripe call, so no watched value ever reaches Stripe.
	local bool
	// callsPerPass bounds the Stripe calls of one resync pass (with every object of the case).
	callsPerPass int

	// (c) The object was deleted in setup: it must be gone, with an Event of this reason.
	goneEvent string

	msg     string
	check   func(t *testing.T, e *hostileEnv)
	timeout time.Duration
}

// TestHostileInput feeds the operator hostile and broken input and checks that each case ends in a
// documented reason or a clean rejection by the apiserver; that no reconcile panics; that an
// object in its end state does not loop (bounded writes and Stripe calls over a window of
// hostileWindow); and that input the key policy rejects never reaches Stripe.
//
// Cases run concurrently: each t.Run is started from its own goroutine (testing.T.Run allows
// this), so the number of concurrent cases does not depend on -parallel, which defaults to
// GOMAXPROCS (2 on small CI machines) and would serialise the waits. Each case has its own
// namespace and keys; faults are scoped to a case's key and bounded with Times.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	start := time.Now()
	panicsBefore := crCounter(t, "controller_runtime_reconcile_panics_total")
	reconcilesBefore := crCounter(t, "controller_runtime_reconcile_total")
	logStart := len(logs.String())

	cases := hostileCases()
	var wg sync.WaitGroup
	for _, tc := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(tc.name, func(t *testing.T) { runHostileCase(t, tc) })
		}()
	}
	wg.Wait()

	if n := crCounter(t, "controller_runtime_reconcile_panics_total") - panicsBefore; n != 0 {
		t.Errorf("%v reconciles panicked", n)
	}
	for _, line := range strings.Split(logs.String()[logStart:], "\n") {
		// A recovered panic is logged as a "Reconciler error" whose error ends in "[recovered]".
		if strings.Contains(line, "[recovered]") || strings.Contains(line, "Observed a panic") {
			t.Errorf("panic in the operator log: %s", line)
		}
	}
	refused, reasons, deleted := 0, 0, 0
	for _, tc := range cases {
		switch {
		case tc.refused != nil:
			refused++
		case tc.goneEvent != "":
			deleted++
		default:
			reasons++
		}
	}
	testreport.Report(t, "%d cases in %s: %d refused by the apiserver (schema or CEL), %d ended in a documented reason with no hot loop "+
		"(bounded writes and Stripe calls over %s) and no Stripe call for input refused locally, %d deleted per the deletion policy; "+
		"%v reconciles, 0 panics", len(cases), time.Since(start).Round(100*time.Millisecond), refused, reasons, hostileWindow, deleted,
		crCounter(t, "controller_runtime_reconcile_total")-reconcilesBefore)
}

func runHostileCase(t *testing.T, tc hostileCase) {
	e := &hostileEnv{ns: newNamespace(t), name: "si", secret: "keys", keys: newTestKeys(t, "test"), objects: 1}
	fake.AddKey(e.use(e.keys.secret), stripefake.KeyOptions{})
	timeout := tc.timeout
	if timeout == 0 {
		timeout = hostileTimeout
	}
	began := time.Now()
	err := tc.setup(t, e)

	switch {
	case tc.refused != nil: // (a)
		if err == nil || !tc.refused(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Fatalf("got %v, want a rejection mentioning %q", err, tc.msg)
		}
		t.Logf("refused: %s", truncate(err.Error(), 200))
		if n := e.calls(); n != 0 {
			t.Errorf("%d Stripe calls for input the apiserver refused", n)
		}

	case tc.goneEvent != "": // (c)
		must(t, err)
		eventually(t, timeout, "StripeIntegration gone", func() (bool, string) {
			err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: e.name}, &v1.StripeIntegration{})
			if apierrors.IsNotFound(err) {
				return true, ""
			}
			si := &v1.StripeIntegration{}
			_ = k8sClient.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: e.name}, si)
			return false, fmt.Sprintf("present, deletion attempts %q", si.Annotations[v1.AnnotationDeletionAttempts])
		})
		ev := waitEvent(t, e.ns, e.name, tc.goneEvent)
		if !strings.Contains(ev.note, tc.msg) {
			t.Errorf("%s Event %q does not mention %q", tc.goneEvent, ev.note, tc.msg)
		}
		t.Logf("gone after %s with %s: %s", time.Since(began).Round(100*time.Millisecond), tc.goneEvent, ev.note)

	default: // (b)
		must(t, err)
		si := waitCondition(t, e.ns, e.name, tc.cond, tc.status, tc.reason, timeout)
		reached := time.Now()
		c := getCondition(t, si, tc.cond)
		if !strings.Contains(c.Message, tc.msg) {
			t.Errorf("%s message %q does not mention %q", tc.cond, c.Message, tc.msg)
		}
		if tc.cond == v1.ConditionKeysValid && tc.status != metav1.ConditionTrue {
			// Connected carries the reason of the first condition that is not True.
			want := metav1.ConditionFalse
			if tc.reason == v1.ReasonSecretReadFailed {
				want = metav1.ConditionUnknown
			}
			if cc := getCondition(t, si, v1.ConditionConnected); cc.Status != want || cc.Reason != tc.reason {
				t.Errorf("Connected = %s/%s, want %s/%s", cc.Status, cc.Reason, want, tc.reason)
			}
		}
		noKeyInStatus(t, e, si)

		// No hot loop: once settled, an unchanged object costs at most one write and callsPerPass
		// Stripe calls per resync pass.
		time.Sleep(hostileSettle)
		w := countWrites(t, e.ns)
		calls := e.calls()
		time.Sleep(hostileWindow)
		writes := w.stop()
		calls = e.calls() - calls
		maxWrites, maxCalls := e.objects*hostileMaxPasses, tc.callsPerPass*hostileMaxPasses
		t.Logf("%s=%s/%s after %s; in %s: %d writes (%s, max %d), %d Stripe calls (max %d)", tc.cond, tc.status, tc.reason,
			reached.Sub(began).Round(100*time.Millisecond), hostileWindow, writes, w, maxWrites, calls, maxCalls)
		if writes > maxWrites {
			t.Errorf("hot loop: %d writes in %s (%s), want ≤ %d", writes, hostileWindow, w, maxWrites)
		}
		if calls > maxCalls {
			t.Errorf("hot loop: %d Stripe calls in %s, want ≤ %d", calls, hostileWindow, maxCalls)
		}
		if got := getCondition(t, getSI(t, e.ns, e.name), tc.cond); got.Status != tc.status || got.Reason != tc.reason {
			t.Errorf("%s moved on to %s/%s: not an end state", tc.cond, got.Status, got.Reason)
		}
		if tc.local {
			if d := 2*testResync - time.Since(reached); d > 0 {
				time.Sleep(d) // at least two resyncs have passed
			}
			if n := e.calls(); n != 0 {
				t.Errorf("%d Stripe calls for input the key policy rejects", n)
			}
		}
	}
	if tc.check != nil {
		tc.check(t, e)
	}
}

// noKeyInStatus checks that no key value the case used shows up in status messages.
func noKeyInStatus(t *testing.T, e *hostileEnv, si *v1.StripeIntegration) {
	t.Helper()
	for _, c := range si.Status.Conditions {
		for _, k := range append([]string{e.keys.publishable}, e.watched...) {
			body := strings.TrimSpace(k)
			if len(body) > 16 {
				body = body[8:24] // past any prefix
			}
			if len(body) >= 8 && strings.Contains(c.Message, body) {
				t.Errorf("condition %s message shows key material: %q", c.Type, truncate(c.Message, 200))
			}
		}
	}
}
