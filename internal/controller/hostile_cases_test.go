package controller

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhookendpoint"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/keys"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

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
		// A bound on the loop, not a speed target: the apiserver takes about 200 edits a
		// second alone, much fewer while the package's tests run in parallel on 2 cores.
		if time.Since(start) > 3*time.Minute {
			t.Fatalf("only %d edits in 3 min", i+1)
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
