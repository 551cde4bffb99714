package controller

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomKeyBody returns n alphanumeric characters, like the body of a Stripe key.
func randomKeyBody(t *testing.T, n int) string {
	t.Helper()
	var sb strings.Builder
	for range n {
		i, err := rand.Int(rand.Reader, big.NewInt(int64(len(alnum))))
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteByte(alnum[i.Int64()])
	}
	return sb.String()
}

// testKeys is a clinic's key pair registered in the Stripe fake.
type testKeys struct{ publishable, secret string }

func newTestKeys(t *testing.T, mode string) testKeys {
	t.Helper()
	return testKeys{
		publishable: fmt.Sprintf("pk_%s_%s", mode, randomKeyBody(t, 32)),
		secret:      fmt.Sprintf("sk_%s_%s", mode, randomKeyBody(t, 32)),
	}
}

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	needSuite(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "si-test-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), ns) })
	return ns.Name
}

// clinicSetup is what newClinic creates; clinicOptions change it.
type clinicSetup struct {
	mode     paymentsv1alpha1.Mode // spec.mode
	keysMode paymentsv1alpha1.Mode // the keys' mode; spec.mode unless set
}

type clinicOption func(*clinicSetup)

// withMode sets spec.mode (and the keys' mode, unless withKeysFor says otherwise).
func withMode(m paymentsv1alpha1.Mode) clinicOption { return func(c *clinicSetup) { c.mode = m } }

// withKeysFor gives the clinic keys of mode m whatever spec.mode says (a mode mismatch).
func withKeysFor(m paymentsv1alpha1.Mode) clinicOption {
	return func(c *clinicSetup) { c.keysMode = m }
}

// newClinic is the usual opening of a test: fresh keys registered with the Stripe fake, the
// credentials Secret <name>-keys, and the StripeIntegration name with a clinic ID unique in the suite
// (uniqueClinic), so webhook URLs never conflict across tests. It does not wait.
func newClinic(t *testing.T, ns, name string, opts ...clinicOption) testKeys {
	t.Helper()
	c := clinicSetup{mode: paymentsv1alpha1.ModeTest}
	for _, o := range opts {
		o(&c)
	}
	if c.keysMode == "" {
		c.keysMode = c.mode
	}
	k := newTestKeys(t, strings.ToLower(string(c.keysMode)))
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	mustCreate(t, credentialsSecret(ns, name+"-keys", k), integration(ns, name, uniqueClinic(name, ns), c.mode, name+"-keys"))
	return k
}

func credentialsSecret(ns, name string, k testKeys) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data: map[string][]byte{
			paymentsv1alpha1.DefaultPublishableKeyKey: []byte(k.publishable),
			paymentsv1alpha1.DefaultSecretKeyKey:      []byte(k.secret),
		},
	}
}

func integration(ns, name, clinic string, mode paymentsv1alpha1.Mode, secretName string) *paymentsv1alpha1.StripeIntegration {
	return &paymentsv1alpha1.StripeIntegration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: paymentsv1alpha1.StripeIntegrationSpec{
			ClinicID:                clinic,
			Mode:                    mode,
			CredentialsSecretRef:    paymentsv1alpha1.CredentialsSecretRef{Name: secretName},
			InvoiceFooterDisclaimer: "Payments are processed by Stripe.",
		},
	}
}

func mustCreate(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8sClient.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// eventually polls cond every 50 ms until it returns true or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
}

func getSI(t *testing.T, ns, name string) *paymentsv1alpha1.StripeIntegration {
	t.Helper()
	si := &paymentsv1alpha1.StripeIntegration{}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, si); err != nil {
		t.Fatalf("getting StripeIntegration: %v", err)
	}
	return si
}

// waitCondition waits until the named condition has the status and reason and returns the object.
func waitCondition(t *testing.T, ns, name, condType string, status metav1.ConditionStatus, reason string,
	timeout time.Duration) *paymentsv1alpha1.StripeIntegration {
	t.Helper()
	var si *paymentsv1alpha1.StripeIntegration
	eventually(t, timeout, fmt.Sprintf("%s=%s/%s", condType, status, reason), func() (bool, string) {
		si = getSI(t, ns, name)
		c := meta.FindStatusCondition(si.Status.Conditions, condType)
		if c == nil {
			return false, "condition absent"
		}
		return c.Status == status && c.Reason == reason, fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
	})
	return si
}

// conditionOrNone is the named condition, or a zero one (empty status) before the first status
// write: for polls, where a missing condition means "not yet", not a failure.
func conditionOrNone(si *paymentsv1alpha1.StripeIntegration, condType string) metav1.Condition {
	if c := meta.FindStatusCondition(si.Status.Conditions, condType); c != nil {
		return *c
	}
	return metav1.Condition{Type: condType}
}

func getCondition(t *testing.T, si *paymentsv1alpha1.StripeIntegration, condType string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(si.Status.Conditions, condType)
	if c == nil {
		t.Fatalf("condition %s missing in %+v", condType, si.Status.Conditions)
	}
	return *c
}

func intOrString(p int) intstr.IntOrString { return intstr.FromInt32(int32(p)) }
