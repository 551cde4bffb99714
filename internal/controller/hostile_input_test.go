package controller

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhookendpoint"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/keys"
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

func hostileCases() []hostileCase {
	const (
		kv       = v1.ConditionKeysValid
		webhook  = v1.ConditionWebhookEndpointReady
		conn     = v1.ConditionConnected
		isFalse  = metav1.ConditionFalse
		isTrue   = metav1.ConditionTrue
		mib      = 1 << 20
		oneStep  = 1 // Stripe calls per steady pass: the endpoint list that is also the probe
		twoSteps = 2 // list, plus the create that Stripe refuses again
	)
	return []hostileCase{
		// --- Key policy: refused locally, never sent to Stripe. ---
		{name: "key/malformed: invalid characters", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyMalformed,
			msg:   "starts like a Stripe key (sk_test_…)",
			setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string { return k[:20] + "$%^&*();'<>" + k[20:] }))},
		{name: "key/malformed: too short", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyMalformed,
			msg:   "10 to 247 letters and digits",
			setup: keysSetup(v1.ModeTest, thePub, secWith(func(string) string { return "sk_test_abc123" }))},
		{name: "key/malformed: whsec_ signing secret in the secret slot", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyMalformed,
			msg:   "webhook signing secret",
			setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string { return "whsec_" + k[8:] }))},
		{name: "key/malformed: unknown mode prefix sk_prod_", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyMalformed,
			msg:   "is not a Stripe API key",
			setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string { return "sk_prod_" + k[8:] }))},
		{name: "key/malformed: NUL and invalid UTF-8 bytes", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyMalformed,
			msg:   "secretKey",
			setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string { return k + "\x00\xff\xfe" }))},
		{name: "key/malformed: Cyrillic homoglyph", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyMalformed,
			msg:   "secretKey",
			setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string { return k[:10] + "А" + k[11:] }))},
		{name: "key/malformed: 900 KiB secret key", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyMalformed,
			msg: "10 to 247 letters and digits",
			setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string {
				return k + strings.Repeat("x", 900<<10)
			}))},
		{name: "key/publishable key in the secret slot", local: true, cond: kv, status: isFalse, reason: v1.ReasonWrongKeyType,
			msg: "secretKey holds a publishable key",
			setup: keysSetup(v1.ModeTest, thePub, func(t *testing.T, _ *hostileEnv) string {
				return newTestKeys(t, "test").publishable
			})},
		{name: "key/secret key in the publishable slot", local: true, cond: kv, status: isFalse, reason: v1.ReasonWrongKeyType,
			msg: "put the publishable key",
			setup: keysSetup(v1.ModeTest, func(t *testing.T, e *hostileEnv) string {
				return e.use(newTestKeys(t, "test").secret)
			}, theSec)},
		{name: "key/keys swapped", local: true, cond: kv, status: isFalse, reason: v1.ReasonWrongKeyType,
			msg: "swap the two values",
			setup: func(t *testing.T, e *hostileEnv) error {
				mustCreate(t, e.rawKeys(e.keys.secret, e.keys.publishable), e.si(v1.ModeTest))
				return nil
			}},
		{name: "key/modes mixed: pk_live with sk_test", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyModesDisagree,
			msg: "from the same mode",
			setup: keysSetup(v1.ModeTest, func(t *testing.T, e *hostileEnv) string {
				return liveKeys(t, e).publishable
			}, theSec)},
		{name: "key/Live integration with test keys", local: true, cond: kv, status: isFalse, reason: v1.ReasonModeMismatch,
			msg: "test key (sk_test_…) but spec.mode is Live", setup: keysSetup(v1.ModeLive, thePub, theSec)},
		{name: "key/Test integration with live keys", local: true, cond: kv, status: isFalse, reason: v1.ReasonModeMismatch,
			msg: "live key (sk_live_…) but spec.mode is Test",
			setup: func(t *testing.T, e *hostileEnv) error {
				k := liveKeys(t, e)
				mustCreate(t, e.rawKeys(k.publishable, k.secret), e.si(v1.ModeTest))
				return nil
			}},
		{name: "key/whitespace: leading space", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyWhitespace,
			msg: "spaces, tabs or line breaks", setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string { return " " + k }))},
		{name: "key/whitespace: trailing space", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyWhitespace,
			msg: "spaces, tabs or line breaks", setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string { return k + " " }))},
		{name: "key/whitespace: tab inside", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyWhitespace,
			msg: "spaces, tabs or line breaks", setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string { return k[:16] + "\t" + k[16:] }))},
		{name: "key/whitespace: two trailing CRLF", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyWhitespace,
			msg: "only one trailing newline", setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string { return k + "\r\n\r\n" }))},
		{name: "key/whitespace: lone CR at the end", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyWhitespace,
			msg: "spaces, tabs or line breaks", setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string { return k + "\r" }))},
		{name: "key/empty", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyEmpty,
			msg: "secretKey is empty", setup: keysSetup(v1.ModeTest, thePub, secWith(func(string) string { return "" }))},
		{name: "key/only whitespace", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyEmpty,
			msg: "secretKey is empty", setup: keysSetup(v1.ModeTest, thePub, secWith(func(string) string { return " \t\r\n" }))},
		{name: "key/secretKey data key missing", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyMissing,
			msg: `no data key "secretKey"`,
			setup: func(t *testing.T, e *hostileEnv) error {
				s := e.rawKeys(e.keys.publishable, e.keys.secret)
				s.Data["secret_key"] = s.Data[v1.DefaultSecretKeyKey] // a near miss
				delete(s.Data, v1.DefaultSecretKeyKey)
				mustCreate(t, s, e.si(v1.ModeTest))
				return nil
			}},
		{name: "key/custom key names pointing at absent keys", local: true, cond: kv, status: isFalse, reason: v1.ReasonKeyMissing,
			msg: `no data key "stripe-pk"`,
			setup: func(t *testing.T, e *hostileEnv) error {
				si := e.si(v1.ModeTest)
				si.Spec.CredentialsSecretRef.PublishableKeyKey, si.Spec.CredentialsSecretRef.SecretKeyKey = "stripe-pk", "stripe-sk"
				mustCreate(t, e.rawKeys(e.keys.publishable, e.keys.secret), si)
				return nil
			}},

		// --- The Secret itself. ---
		{name: "secret/not found", local: true, cond: kv, status: isFalse, reason: v1.ReasonSecretNotFound,
			msg: `Secret "keys" not found`,
			setup: func(t *testing.T, e *hostileEnv) error {
				mustCreate(t, e.si(v1.ModeTest))
				return nil
			}},
		{name: "secret/exists only in another namespace", local: true, cond: kv, status: isFalse, reason: v1.ReasonSecretNotFound,
			msg: "not found in namespace",
			setup: func(t *testing.T, e *hostileEnv) error {
				other := newNamespace(t)
				s := e.rawKeys(e.keys.publishable, e.keys.secret)
				s.Namespace = other
				mustCreate(t, s, e.si(v1.ModeTest))
				return nil
			}},
		// The reference has no namespace field; a name like "<ns>/<name>" is refused by the CRD's
		// pattern (it used to be accepted and then failed every read as SecretReadFailed).
		{name: "secret/reference naming another namespace", refused: isInvalid, msg: "credentialsSecretRef.name",
			setup: func(t *testing.T, e *hostileEnv) error {
				other := newNamespace(t)
				s := e.rawKeys(e.keys.publishable, e.keys.secret)
				s.Namespace = other
				mustCreate(t, s)
				si := e.si(v1.ModeTest)
				si.Spec.CredentialsSecretRef.Name = other + "/" + e.secret
				return k8sClient.Create(context.Background(), si)
			}},
		{name: "secret/10 MiB refused by the apiserver",
			// The body (13 MiB as JSON) exceeds the apiserver's 3 MiB request limit before validation.
			refused: apierrors.IsRequestEntityTooLargeError, msg: "Request entity too large",
			setup: func(t *testing.T, e *hostileEnv) error {
				err := createErr(bigSecret(e, 10*mib))
				if gerr := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: "huge"}, &corev1.Secret{}); !apierrors.IsNotFound(gerr) {
					t.Errorf("the 10 MiB Secret exists after all: %v", gerr)
				}
				return err
			}},
		{name: "secret/just over 1 MiB refused by validation", refused: isInvalid, msg: "Too long",
			setup: func(t *testing.T, e *hostileEnv) error { return createErr(bigSecret(e, mib+1)) }},

		// --- Spec validation (OpenAPI schema and CEL). ---
		{name: "spec/Live with an http baseURL", refused: isInvalid, msg: "Live mode requires an https webhook URL",
			setup: invalidSpec(func(_ *hostileEnv, si *v1.StripeIntegration) {
				si.Spec.Mode = v1.ModeLive
				si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "http://hooks.clinic-h.example"}
			})},
		{name: "spec/Live with an http url", refused: isInvalid, msg: "Live mode requires an https webhook URL",
			setup: invalidSpec(func(_ *hostileEnv, si *v1.StripeIntegration) {
				si.Spec.Mode = v1.ModeLive
				si.Spec.Webhook = &v1.WebhookSpec{URL: "http://hooks.clinic-h.example/stripe/webhook/" + si.Spec.ClinicID}
			})},
		{name: "spec/invalid URL: space in host", refused: isInvalid, msg: "baseURL must be an absolute http(s) URL",
			setup: invalidSpec(func(_ *hostileEnv, si *v1.StripeIntegration) {
				si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://hooks clinic.example"}
			})},
		{name: "spec/invalid URL: javascript scheme", refused: isInvalid, msg: "url must be an absolute http(s) URL",
			setup: invalidSpec(func(_ *hostileEnv, si *v1.StripeIntegration) {
				si.Spec.Webhook = &v1.WebhookSpec{URL: "javascript:alert(1)//" + si.Spec.ClinicID}
			})},
		{name: "spec/url not ending with the clinic ID", refused: isInvalid, msg: "webhook.url must end with /<clinicID>",
			setup: invalidSpec(func(_ *hostileEnv, si *v1.StripeIntegration) {
				si.Spec.Webhook = &v1.WebhookSpec{URL: "https://hooks.clinic-h.example/stripe/webhook/clinic-x"}
			})},
		{name: "spec/clinicID path traversal", refused: isInvalid, msg: "spec.clinicID",
			setup: invalidSpec(func(_ *hostileEnv, si *v1.StripeIntegration) { si.Spec.ClinicID = "../clinic-x" })},
		{name: "spec/empty credentials Secret name", refused: isInvalid, msg: "spec.credentialsSecretRef.name",
			setup: invalidSpec(func(_ *hostileEnv, si *v1.StripeIntegration) { si.Spec.CredentialsSecretRef.Name = "" })},
		{name: "spec/event type with a line break", refused: isInvalid, msg: "spec.webhook.enabledEvents",
			setup: invalidSpec(func(_ *hostileEnv, si *v1.StripeIntegration) {
				si.Spec.Webhook = &v1.WebhookSpec{EnabledEvents: []string{"charge.succeeded\nX-Injected: 1"}}
			})},
		{name: "spec/invoice footer over 5000 characters", refused: isInvalid, msg: "spec.invoiceFooterDisclaimer",
			setup: invalidSpec(func(_ *hostileEnv, si *v1.StripeIntegration) {
				si.Spec.InvoiceFooterDisclaimer = strings.Repeat("x", 5001)
			})},
		{name: "spec/clinicID change refused by CEL", refused: isInvalid, msg: "clinicID is immutable",
			setup: invalidUpdate(func(si *v1.StripeIntegration) { si.Spec.ClinicID = "clinic-other" })},
		{name: "spec/mode change refused by CEL", refused: isInvalid, msg: "mode is immutable",
			setup: invalidUpdate(func(si *v1.StripeIntegration) {
				si.Spec.Mode = v1.ModeLive
				si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://hooks.clinic-h.example"}
			})},

		// --- Accepted keys (positive controls): these reach Stripe. ---
		{name: "ok/restricted rk_ key accepted", cond: kv, status: isTrue, reason: v1.ReasonKeysValid, callsPerPass: oneStep,
			msg: "restricted key",
			setup: func(t *testing.T, e *hostileEnv) error {
				rk := e.use("rk_test_" + randomKeyBody(t, 32))
				fake.AddKey(rk, stripefake.KeyOptions{Permissions: []string{stripefake.PermWebhookWrite}})
				mustCreate(t, e.rawKeys(e.keys.publishable, rk), e.si(v1.ModeTest))
				// Let it finish connecting, so the window sees the steady state.
				waitCondition(t, e.ns, e.name, webhook, isTrue, v1.ReasonEndpointReady, hostileTimeout)
				return nil
			}},
		{name: "ok/one trailing CRLF accepted", cond: webhook, status: isTrue, reason: v1.ReasonEndpointReady, callsPerPass: oneStep,
			setup: keysSetup(v1.ModeTest, thePub, secWith(func(k string) string { return k + "\r\n" })),
			check: trimmedKeyUsed},
		{name: "ok/one trailing LF accepted", cond: webhook, status: isTrue, reason: v1.ReasonEndpointReady, callsPerPass: oneStep,
			setup: keysSetup(v1.ModeTest, func(_ *testing.T, e *hostileEnv) string { return e.keys.publishable + "\n" },
				secWith(func(k string) string { return k + "\n" })),
			check: trimmedKeyUsed},

		// --- Stripe refuses; the operator reports it and does not storm. ---
		{name: "stripe/unknown event type", cond: webhook, status: isFalse, reason: v1.ReasonInvalidWebhookConfig,
			callsPerPass: twoSteps, msg: "enabled_events",
			setup: func(t *testing.T, e *hostileEnv) error {
				si := e.si(v1.ModeTest)
				si.Spec.Webhook = &v1.WebhookSpec{EnabledEvents: []string{"charge.succeeded", "payment_intent.exploded"}}
				mustCreate(t, e.rawKeys(e.keys.publishable, e.keys.secret), si)
				return nil
			},
			check: endpointsInAccount(0)},
		{name: "stripe/URL without a host passes CEL, Stripe refuses", cond: webhook, status: isFalse,
			reason: v1.ReasonInvalidWebhookConfig, callsPerPass: twoSteps, msg: "url",
			setup: func(t *testing.T, e *hostileEnv) error {
				si := e.si(v1.ModeTest)
				si.Spec.Webhook = &v1.WebhookSpec{BaseURL: "https://"}
				mustCreate(t, e.rawKeys(e.keys.publishable, e.keys.secret), si)
				return nil
			},
			check: endpointsInAccount(0)},
		{name: "stripe/17th endpoint", cond: webhook, status: isFalse, reason: v1.ReasonEndpointLimitReached,
			callsPerPass: twoSteps, msg: "maximum number of webhook endpoints (16)", setup: sixteenForeignEndpoints,
			check: func(t *testing.T, e *hostileEnv) {
				endpointsInAccount(16)(t, e)
				si := getSI(t, e.ns, e.name)
				for _, ep := range fake.Endpoints(fake.AccountForKey(e.keys.secret), false) {
					if ep.Metadata[tagUID] == string(si.UID) {
						t.Errorf("endpoint %s created beyond the limit", ep.ID)
					}
				}
				k := e.keys.secret
				t.Logf("17th endpoint: %d Stripe calls with the clinic's key: %d creates (16 of them the test's own), %d lists, %d account lookups",
					fake.Calls(k), fake.CallsTo(k, "POST", stripefake.PathWebhookEndpoints),
					fake.CallsTo(k, "GET", stripefake.PathWebhookEndpoints), fake.CallsTo(k, "GET", stripefake.PathAccount))
			}},

		// --- Several objects, and changes over time. ---
		{name: "objects/duplicate clinicIDs in one namespace", cond: webhook, status: isTrue, reason: v1.ReasonEndpointReady,
			callsPerPass: 2 * oneStep, setup: duplicateClinicIDs, check: duplicateClinicIDsCheck},
		{name: "objects/Secret deleted while in use", cond: conn, status: isTrue, reason: v1.ReasonConnected,
			callsPerPass: oneStep, setup: secretDeletedWhileInUse, timeout: 20 * time.Second},
		{name: "objects/1,000 rapid spec edits", cond: conn, status: isTrue, reason: v1.ReasonConnected,
			callsPerPass: oneStep, setup: specEditStorm, timeout: 20 * time.Second,
			check: endpointsInAccount(1)},

		// --- Deletion while Stripe is down. ---
		{name: "delete/Stripe down longer than the deletion policy", goneEvent: v1.EventManualRemovalRequired,
			msg: "after 10 attempts", setup: deleteDuringOutage(200), timeout: 45 * time.Second,
			check: func(t *testing.T, e *hostileEnv) {
				// The endpoint is left for manual removal, and the Event names it.
				eps := fake.Endpoints(fake.AccountForKey(e.keys.secret), false)
				if len(eps) != 1 {
					t.Fatalf("%d endpoints left, want the one the operator gave up on", len(eps))
				}
				if ev := waitEvent(t, e.ns, e.name, v1.EventManualRemovalRequired); !strings.Contains(ev.note, eps[0].ID) {
					t.Errorf("Event %q does not name endpoint %s", ev.note, eps[0].ID)
				}
			}},
		{name: "delete/Stripe down for a few attempts", goneEvent: v1.EventEndpointDeleted,
			msg: "deleted webhook endpoint", setup: deleteDuringOutage(4), timeout: 30 * time.Second,
			check: func(t *testing.T, e *hostileEnv) {
				endpointsInAccount(0)(t, e)
				if n := logLinesWith("Removing Stripe webhook endpoint failed; will retry", e.ns); n < 1 {
					t.Errorf("no failed deletion attempt was logged: the fault missed the deletion")
				} else {
					t.Logf("%d failed deletion attempts before Stripe recovered", n)
				}
			}},
	}
}

// trimmedKeyUsed checks that Stripe saw the key without its trailing newline, and that the
// fingerprint covers the trimmed keys.
func trimmedKeyUsed(t *testing.T, e *hostileEnv) {
	t.Helper()
	if fake.Calls(e.keys.secret) == 0 {
		t.Error("Stripe never saw the trimmed key")
	}
	for _, v := range e.watched[1:] { // the raw values with their newline
		if fake.Calls(v) != 0 {
			t.Errorf("Stripe saw the key with its newline %q", v[len(v)-2:])
		}
	}
	si := getSI(t, e.ns, e.name)
	if want := keys.Fingerprint(e.keys.publishable, e.keys.secret); si.Status.KeyFingerprint != want {
		t.Errorf("fingerprint %s, want %s (of the trimmed keys)", si.Status.KeyFingerprint, want)
	}
}

func endpointsInAccount(n int) func(*testing.T, *hostileEnv) {
	return func(t *testing.T, e *hostileEnv) {
		t.Helper()
		if got := len(fake.Endpoints(fake.AccountForKey(e.keys.secret), false)); got != n {
			t.Errorf("%d endpoints in the clinic's account, want %d", got, n)
		}
	}
}

// sixteenForeignEndpoints fills the clinic's account to Stripe's limit with stripe-go, as another
// tool would, then creates the integration.
func sixteenForeignEndpoints(t *testing.T, e *hostileEnv) error {
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:           stripe.String(fake.URL()),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	})
	wc := webhookendpoint.Client{B: backend, Key: e.keys.secret}
	for i := range 16 {
		if _, err := wc.New(&stripe.WebhookEndpointParams{
			URL:           stripe.String(fmt.Sprintf("https://other-tool.example/%d", i)),
			EnabledEvents: stripe.StringSlice([]string{"charge.succeeded"}),
		}); err != nil {
			t.Fatalf("pre-creating endpoint %d: %v", i, err)
		}
	}
	mustCreate(t, e.rawKeys(e.keys.publishable, e.keys.secret), e.si(v1.ModeTest))
	return nil
}

// duplicateClinicIDs creates two integrations of one clinic, with the same keys, in one namespace.
func duplicateClinicIDs(t *testing.T, e *hostileEnv) error {
	e.objects = 2
	twin := e.si(v1.ModeTest)
	twin.Name = "si-twin"
	mustCreate(t, e.rawKeys(e.keys.publishable, e.keys.secret), e.si(v1.ModeTest), twin)
	waitCondition(t, e.ns, twin.Name, v1.ConditionWebhookEndpointReady, metav1.ConditionFalse, v1.ReasonWebhookURLConflict, hostileTimeout)
	return nil
}

// duplicateClinicIDsCheck: the two would register one URL, so the later one (same second: the
// name decides) registers nothing and names the older one; the older owns the only endpoint.
func duplicateClinicIDsCheck(t *testing.T, e *hostileEnv) {
	a, b := getSI(t, e.ns, e.name), getSI(t, e.ns, "si-twin")
	eps := fake.Endpoints(fake.AccountForKey(e.keys.secret), false)
	if len(eps) != 1 || eps[0].Metadata[tagUID] != string(a.UID) || a.Status.WebhookEndpointID != eps[0].ID || b.Status.WebhookEndpointID != "" {
		t.Errorf("%d endpoints; status %q and %q", len(eps), a.Status.WebhookEndpointID, b.Status.WebhookEndpointID)
	}
	if c := getCondition(t, b, v1.ConditionWebhookEndpointReady); !strings.Contains(c.Message, `"si"`) ||
		!strings.Contains(c.Message, a.Status.WebhookURL) {
		t.Errorf("conflict message %q does not name %q and the URL", c.Message, a.Name)
	}
}

// connectFully creates the case's Test integration with its keys, waits for the endpoint, and
// plays the Deployment controller so that it reaches Connected.
func connectFully(t *testing.T, e *hostileEnv) *v1.StripeIntegration {
	t.Helper()
	mustCreate(t, e.rawKeys(e.keys.publishable, e.keys.secret), e.si(v1.ModeTest))
	si := waitCondition(t, e.ns, e.name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, hostileTimeout)
	setReceiverAvailable(t, e.ns, receiverName(si))
	return waitCondition(t, e.ns, e.name, v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, hostileTimeout)
}

// setReceiverAvailable is markAvailable with retries on conflicts (the operator applies the
// Deployment concurrently).
func setReceiverAvailable(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, hostileTimeout, "receiver Deployment available", func() (bool, string) {
		dep := &appsv1.Deployment{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, dep); err != nil {
			return false, err.Error()
		}
		n := int32(2)
		if dep.Spec.Replicas != nil {
			n = *dep.Spec.Replicas
		}
		now := metav1.Now()
		dep.Status = appsv1.DeploymentStatus{
			ObservedGeneration: dep.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
				Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now}},
		}
		err := k8sClient.Status().Update(context.Background(), dep)
		return err == nil, fmt.Sprint(err)
	})
}

// secretDeletedWhileInUse connects and deletes the credentials Secret: the in-use finalizer keeps it
// (Terminating) with its keys, the integration stays Connected on its endpoint, and a Secret of that
// name cannot be created again with other keys until the integration is gone.
func secretDeletedWhileInUse(t *testing.T, e *hostileEnv) error {
	first := connectFully(t, e)
	must(t, k8sClient.Delete(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: e.secret}}))
	if s := getSecret(t, e.ns, e.secret); s.DeletionTimestamp == nil || !slices.Contains(s.Finalizers, v1.CredentialsInUseFinalizer) {
		t.Errorf("the deleted Secret is not held while in use: deletionTimestamp %v, finalizers %v", s.DeletionTimestamp, s.Finalizers)
	}
	other := newTestKeys(t, "test")
	if err := k8sClient.Create(context.Background(), e.rawKeys(other.publishable, other.secret)); !apierrors.IsAlreadyExists(err) {
		t.Errorf("re-creating the Secret while the old one is held: %v, want AlreadyExists", err)
	}
	if eps := fake.Endpoints(fake.AccountForKey(e.keys.secret), false); len(eps) != 1 || eps[0].ID != first.Status.WebhookEndpointID {
		t.Errorf("endpoints %d after the Secret deletion, want only %s", len(eps), first.Status.WebhookEndpointID)
	}
	return nil
}

// specEditStorm connects, then edits spec.invoiceFooterDisclaimer 1,000 times as fast as the
// apiserver takes it, and waits until the object converged on the last generation.
func specEditStorm(t *testing.T, e *hostileEnv) error {
	const edits = 1000
	ctx := context.Background()
	connectFully(t, e)
	cur := getSI(t, e.ns, e.name)
	gen0 := cur.Generation
	calls0 := fake.Calls(e.keys.secret)
	backoff := wait.Backoff{Steps: 50, Duration: time.Millisecond, Factor: 2, Cap: 50 * time.Millisecond}
	conflicts := 0
	start := time.Now()
	for i := range edits {
		err := retry.RetryOnConflict(backoff, func() error {
			cur.Spec.InvoiceFooterDisclaimer = fmt.Sprintf("Edit %d of %d: payments are processed by Stripe.", i+1, edits)
			err := k8sClient.Update(ctx, cur)
			if apierrors.IsConflict(err) {
				conflicts++
				if gerr := k8sClient.Get(ctx, client.ObjectKeyFromObject(cur), cur); gerr != nil {
					return gerr
				}
			}
			return err
		})
		must(t, err)
		if time.Since(start) > 60*time.Second {
			t.Fatalf("only %d edits in 60 s", i+1)
		}
	}
	stormTime := time.Since(start)
	stormCalls := fake.Calls(e.keys.secret) - calls0
	if cur.Generation != gen0+edits {
		t.Errorf("generation %d after %d edits from %d", cur.Generation, edits, gen0)
	}
	eventually(t, 20*time.Second, "status on the last generation", func() (bool, string) {
		si := getSI(t, e.ns, e.name)
		ok := si.Status.ObservedGeneration == si.Generation
		for _, c := range si.Status.Conditions {
			ok = ok && c.ObservedGeneration == si.Generation && c.Status == metav1.ConditionTrue
		}
		return ok, fmt.Sprintf("generation %d, observed %d, conditions %v", si.Generation, si.Status.ObservedGeneration, condSummary(si))
	})
	convergeTime := time.Since(start)
	totalCalls := fake.Calls(e.keys.secret) - calls0
	t.Logf("%d edits in %s (%d conflicts retried); Stripe calls: %d during the edits, %d until converged at %s",
		edits, stormTime.Round(time.Millisecond), conflicts, stormCalls, totalCalls, convergeTime.Round(time.Millisecond))
	// The footer is not something Stripe sees: passes for those generations reuse the last Stripe
	// view, so Stripe is probed at most about once per view age (testResync/2) plus the resyncs.
	if limit := 2 + int(3*convergeTime.Seconds()/testResync.Seconds()+0.5)*2; totalCalls > limit {
		t.Errorf("%d Stripe calls for %d footer edits in %s, want ≤ %d (a probe per edit would be a Stripe call storm)", totalCalls, edits, convergeTime,
			limit)
	}
	return nil
}

// deleteDuringOutage connects, makes every Stripe call with the clinic's key fail with 503 for the
// next n calls (scoped to this key, so parallel cases are untouched), and deletes the integration.
func deleteDuringOutage(n int) func(*testing.T, *hostileEnv) error {
	return func(t *testing.T, e *hostileEnv) error {
		si := connectFully(t, e)
		fake.InjectFault(stripefake.Fault{Key: e.keys.secret, Status: http.StatusServiceUnavailable, Times: n})
		t.Cleanup(func() { drainFault(t, e.keys.secret, n) })
		calls := fake.Calls(e.keys.secret)
		must(t, k8sClient.Delete(context.Background(), si))
		t.Cleanup(func() {
			t.Logf("Stripe calls from the deletion on: %d (fault covered %d)", fake.Calls(e.keys.secret)-calls, n)
		})
		return nil
	}
}

// drainFault uses up what is left of a Times-bounded fault on key, so that nothing of it lingers
// in the shared fake (it has no way to remove a single fault).
func drainFault(t *testing.T, key string, max int) {
	for range max + 1 {
		req, err := http.NewRequest(http.MethodGet, fake.URL()+stripefake.PathWebhookEndpoints, nil)
		if err != nil {
			t.Error(err)
			return
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return
		}
	}
}

func condSummary(si *v1.StripeIntegration) string {
	s := make([]string, 0, len(si.Status.Conditions))
	for _, c := range si.Status.Conditions {
		s = append(s, fmt.Sprintf("%s=%s/%s@%d", c.Type, c.Status, c.Reason, c.ObservedGeneration))
	}
	return strings.Join(s, " ")
}

func logLinesWith(parts ...string) int {
	n := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// crCounter sums a controller-runtime counter of the stripeintegration controller.
func crCounter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "stripeintegration" {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// writeCounter counts writes (creates, updates, deletes) in one namespace, of the objects a
// reconcile writes or that trigger one: StripeIntegrations, Secrets and the receiver objects.
type writeCounter struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	byKind map[string]int
	total  atomic.Int64
}

var (
	watchClientOnce sync.Once
	watchClient     client.WithWatch
	watchClientErr  error
)

var watchedKinds = []schema.GroupVersionKind{
	v1.GroupVersion.WithKind("StripeIntegrationList"),
	{Version: "v1", Kind: "SecretList"},
	{Group: "apps", Version: "v1", Kind: "DeploymentList"},
	{Version: "v1", Kind: "ServiceList"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicyList"},
	{Group: "networking.k8s.io", Version: "v1", Kind: "IngressList"},
}

func countWrites(t *testing.T, ns string) *writeCounter {
	t.Helper()
	watchClientOnce.Do(func() {
		watchClient, watchClientErr = client.NewWithWatch(restConfig, client.Options{Scheme: k8sClient.Scheme()})
	})
	if watchClientErr != nil {
		t.Fatal(watchClientErr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &writeCounter{cancel: cancel, byKind: map[string]int{}}
	for _, gvk := range watchedKinds {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk)
		if err := watchClient.List(ctx, list, client.InNamespace(ns)); err != nil {
			cancel()
			t.Fatalf("listing %s: %v", gvk.Kind, err)
		}
		wl := &metav1.PartialObjectMetadataList{}
		wl.SetGroupVersionKind(gvk)
		wi, err := watchClient.Watch(ctx, wl, client.InNamespace(ns),
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			cancel()
			t.Fatalf("watching %s: %v", gvk.Kind, err)
		}
		kind := strings.TrimSuffix(gvk.Kind, "List")
		w.wg.Add(2)
		go func() {
			defer w.wg.Done()
			<-ctx.Done()
			wi.Stop()
		}()
		go func() {
			defer w.wg.Done()
			for ev := range wi.ResultChan() {
				switch ev.Type {
				case watch.Added, watch.Modified, watch.Deleted:
					w.mu.Lock()
					w.byKind[kind]++
					w.mu.Unlock()
					w.total.Add(1)
				case watch.Error:
					if ctx.Err() == nil { // errors after stop are the stream closing
						t.Errorf("watch %s: %v", kind, apierrors.FromObject(ev.Object))
					}
				}
			}
		}()
	}
	return w
}

func (w *writeCounter) stop() int {
	w.cancel()
	w.wg.Wait()
	return int(w.total.Load())
}

func (w *writeCounter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.byKind) == 0 {
		return "none"
	}
	s := make([]string, 0, len(w.byKind))
	for k, n := range w.byKind {
		s = append(s, fmt.Sprintf("%s %d", k, n))
	}
	return strings.Join(s, ", ")
}
