package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// editorClient returns a client that impersonates a user bound, in ns only, to the shipped
// stripeintegration-editor ClusterRole and to a Role that reads everything but Secrets.
func editorClient(t *testing.T, ns string) client.Client {
	t.Helper()
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "stripeintegration_editor_role.yaml"))
	must(t, err)
	role := &rbacv1.ClusterRole{}
	must(t, yaml.UnmarshalStrict(raw, role))
	if err := k8sClient.Create(ctx, role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating %s: %v", role.Name, err)
	}
	read := []string{"get", "list", "watch"}
	user := "editor@" + ns + ".clinic.test"
	mustCreate(t,
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "read-non-secrets"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps", "services", "pods", "events"}, Verbs: read},
			{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: read},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses", "networkpolicies"}, Verbs: read},
			{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: read},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "editor"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "editor-read"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-non-secrets"}},
	)
	cfg := rest.CopyConfig(restConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: k8sClient.Scheme()})
	must(t, err)
	return c
}

// TestEditorCannotReachSecrets proves the contract of docs/security.md against the real apiserver:
// a person bound only to stripeintegration-editor (and able to read non-Secret objects) cannot,
// through any spec path, make a Secret's content reach a pod, leave the cluster or appear where
// they can read it. Every attempt is made by the impersonated editor; the integration reports a
// named reason instead.
func TestEditorCannotReachSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	editor := editorClient(t, ns)

	// The identity really is limited: no Secret, no Deployment, no Pod of its own.
	if err := editor.Get(ctx, client.ObjectKey{Namespace: ns, Name: "keys"}, &corev1.Secret{}); !apierrors.IsForbidden(err) {
		t.Fatalf("editor reading a Secret: %v, want Forbidden", err)
	}
	if err := editor.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}); !apierrors.IsForbidden(err) {
		t.Fatalf("editor creating a Pod: %v, want Forbidden", err)
	}

	// What an admin made: the clinic's keys (carrying, by mistake, a forward-to binding: it must
	// still never be a forward credential), two properly bound forward credentials, and an
	// unrelated Secret.
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	keys := credentialsSecret(ns, "keys", k)
	keys.Annotations = map[string]string{v1.AnnotationForwardTo: "https://fhir.clinic.example/r4 https://emr.clinic.example/stripe"}
	dbPassword := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-password"},
		Data: map[string][]byte{"password": []byte("sentinel-db-password-" + randomKeyBody(t, 12)), "user": []byte("sentinel-db-user")}}
	mustCreate(t, keys, dbPassword)
	mustCreate(t, forwardSecrets(ns)...)

	// The editor connects a clinic the legitimate way: the bound credentials are mounted.
	legit := withForwarding(integration(ns, "legit", uniqueClinic("legit", ns), v1.ModeTest, "keys"))
	legit.Spec.Webhook.Ingress.Annotations = map[string]string{"cert-manager.io/cluster-issuer": "letsencrypt"}
	must(t, editor.Create(ctx, legit))
	legit = waitCondition(t, ns, "legit", v1.ConditionReceiverReady, metav1.ConditionFalse, v1.ReasonReceiverProgressing, waitShort)
	legitDep := &appsv1.Deployment{}
	getObj(t, ns, receiverName(legit), legitDep)
	if got := mountedSecrets(legitDep); !slices.Equal(got, []string{legit.Status.SigningSecretName, "emr-creds", "fhir-creds"}) {
		t.Fatalf("legit receiver mounts %v", got)
	}

	fhirToken := func(secret, key, baseURL string) func(si *v1.StripeIntegration) {
		return func(si *v1.StripeIntegration) {
			si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{FHIR: &v1.FHIRTarget{BaseURL: baseURL,
				TokenSecretRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}}}
		}
	}
	httpKey := func(secret, key, url string) func(si *v1.StripeIntegration) {
		return func(si *v1.StripeIntegration) {
			si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{HTTP: &v1.HTTPTarget{URL: url,
				SigningKeySecretRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key}}}}
		}
	}
	attacks := map[string]struct {
		spec         func(si *v1.StripeIntegration)
		cond, reason string
	}{
		"stripe keys as FHIR token to the attacker": {spec: fhirToken("keys", "secretKey", "https://attacker.example/r4"),
			cond: v1.ConditionReceiverReady, reason: v1.ReasonForwardCredentialNotAllowed},
		"stripe keys as FHIR token to the bound target": {spec: fhirToken("keys", "secretKey", "https://fhir.clinic.example/r4"),
			cond: v1.ConditionReceiverReady, reason: v1.ReasonForwardCredentialNotAllowed},
		"stripe keys as HTTP signing key": {spec: httpKey("keys", "secretKey", "https://emr.clinic.example/stripe"),
			cond: v1.ConditionReceiverReady, reason: v1.ReasonForwardCredentialNotAllowed},
		"unbound Secret as FHIR token": {spec: fhirToken("db-password", "password", "https://attacker.example/r4"),
			cond: v1.ConditionReceiverReady, reason: v1.ReasonForwardCredentialNotAllowed},
		"unbound Secret as HTTP signing key": {spec: httpKey("db-password", "password", "https://attacker.example/hook"),
			cond: v1.ConditionReceiverReady, reason: v1.ReasonForwardCredentialNotAllowed},
		"bound token sent elsewhere": {spec: fhirToken("fhir-creds", "token", "https://attacker.example/r4"),
			cond: v1.ConditionReceiverReady, reason: v1.ReasonForwardCredentialNotAllowed},
		"bound token to a sibling path": {spec: fhirToken("fhir-creds", "token", "https://fhir.clinic.example/r4-evil"),
			cond: v1.ConditionReceiverReady, reason: v1.ReasonForwardCredentialNotAllowed},
		"bound key over plain http": {spec: httpKey("emr-creds", "hmac", "http://emr.clinic.example/stripe"),
			cond: v1.ConditionReceiverReady, reason: v1.ReasonForwardCredentialNotAllowed},
		"another integration's signing secret": {spec: fhirToken(signingSecretName("legit"), v1.SigningSecretKey, "https://attacker.example/r4"),
			cond: v1.ConditionReceiverReady, reason: v1.ReasonForwardCredentialNotAllowed},
		"a Secret that does not exist": {spec: fhirToken("not-there", "token", "https://attacker.example/r4"),
			cond: v1.ConditionReceiverReady, reason: v1.ReasonForwardCredentialNotAllowed},
		"privileged ingress annotation": {spec: func(si *v1.StripeIntegration) {
			si.Spec.Webhook = &v1.WebhookSpec{Ingress: &v1.IngressSpec{Host: "hooks.clinic.example", Annotations: map[string]string{
				"nginx.ingress.kubernetes.io/server-snippet": "location /x { return 200 'pwned'; }"}}}
		}, cond: v1.ConditionReceiverReady, reason: v1.ReasonIngressAnnotationNotAllowed},
		"another Secret as Stripe credentials": {spec: func(si *v1.StripeIntegration) {
			si.Spec.CredentialsSecretRef = v1.CredentialsSecretRef{Name: "db-password", PublishableKeyKey: "user", SecretKeyKey: "password"}
		}, cond: v1.ConditionKeysValid, reason: v1.ReasonKeyMalformed},
	}
	names := map[string]string{}
	i := 0
	for what, a := range attacks {
		i++
		name := fmt.Sprintf("attack-%d", i)
		names[name] = what
		si := integration(ns, name, uniqueClinic(name, ns), v1.ModeTest, "keys")
		a.spec(si)
		if err := editor.Create(ctx, si); err != nil {
			t.Fatalf("%s: the editor may write any spec the API accepts, got %v", what, err)
		}
	}
	for name, what := range names {
		a := attacks[what]
		waitCondition(t, ns, name, a.cond, metav1.ConditionFalse, a.reason, waitShort)
	}

	// An edit of the legitimate integration that would send its bound token elsewhere leaves the
	// running receiver as it was.
	must(t, editor.Get(ctx, client.ObjectKeyFromObject(legit), legit))
	legit.Spec.Receiver.Forward.FHIR.BaseURL = "https://attacker.example/r4"
	must(t, editor.Update(ctx, legit))
	waitCondition(t, ns, "legit", v1.ConditionReceiverReady, metav1.ConditionFalse, v1.ReasonForwardCredentialNotAllowed, waitShort)
	getObj(t, ns, receiverName(legit), legitDep)
	if slices.Contains(legitDep.Spec.Template.Spec.Containers[0].Args, "--fhir-base-url=https://attacker.example/r4") {
		t.Error("the receiver was re-pointed at the attacker's FHIR server with its token")
	}

	assertNoSecretReachable(t, ns, []*corev1.Secret{keys, dbPassword})

	// The operator changed nothing of a Secret the editor named: no in-use finalizer on a Secret
	// that holds no Stripe keys, no write at all.
	got := &corev1.Secret{}
	must(t, k8sClient.Get(ctx, client.ObjectKeyFromObject(dbPassword), got))
	if got.ResourceVersion != dbPassword.ResourceVersion || len(got.Finalizers) != 0 {
		t.Errorf("the unrelated Secret was written: finalizers %v, resourceVersion %s → %s", got.Finalizers, dbPassword.ResourceVersion,
			got.ResourceVersion)
	}
}

// assertNoSecretReachable checks every Deployment and Ingress in ns, and everything the editor can
// read there, against the Secrets that must never leave.
func assertNoSecretReachable(t *testing.T, ns string, forbidden []*corev1.Secret) {
	t.Helper()
	ctx := context.Background()
	var sis v1.StripeIntegrationList
	must(t, k8sClient.List(ctx, &sis, client.InNamespace(ns)))
	signing := map[string]bool{}
	for _, si := range sis.Items {
		signing[signingSecretName(si.Name)] = true
	}
	var deps appsv1.DeploymentList
	must(t, k8sClient.List(ctx, &deps, client.InNamespace(ns)))
	for _, d := range deps.Items {
		for _, s := range mountedSecrets(&d) {
			if signing[s] {
				continue
			}
			sec := &corev1.Secret{}
			must(t, k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: s}, sec))
			if !forwardBoundToArgs(sec, d.Spec.Template.Spec.Containers[0].Args) {
				t.Errorf("Deployment %s mounts Secret %s, which no admin bound to its target", d.Name, s)
			}
			for _, f := range forbidden {
				if f.Name == s {
					t.Errorf("Deployment %s mounts the forbidden Secret %s", d.Name, s)
				}
			}
		}
	}
	var ings networkingv1.IngressList
	must(t, k8sClient.List(ctx, &ings, client.InNamespace(ns)))
	for _, ing := range ings.Items {
		if bad := disallowedAnnotations(ing.Annotations, DefaultIngressAnnotationAllowlist); len(bad) > 0 {
			t.Errorf("Ingress %s carries %v", ing.Name, bad)
		}
	}
	// Nothing the editor can read holds a forbidden value: status, Events, Deployments.
	var evs eventsv1.EventList
	must(t, k8sClient.List(ctx, &evs, client.InNamespace(ns)))
	readable := fmt.Sprintf("%+v %+v %+v", sis.Items, evs.Items, deps.Items)
	for _, f := range forbidden {
		for key, val := range f.Data {
			if strings.Contains(readable, string(val)) {
				t.Errorf("the value of %s/%s is readable by the editor", f.Name, key)
			}
		}
	}
}

func mountedSecrets(d *appsv1.Deployment) []string {
	var names []string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			names = append(names, v.Secret.SecretName)
		}
	}
	return names
}

// forwardBoundToArgs tells whether the Secret's forward-to binding covers the receiver's targets.
func forwardBoundToArgs(sec *corev1.Secret, args []string) bool {
	for _, a := range args {
		for _, flag := range []string{"--http-target-url=", "--fhir-base-url="} {
			if target, ok := strings.CutPrefix(a, flag); ok && forwardTargetAllowed(sec.Annotations[v1.AnnotationForwardTo], target) {
				return true
			}
		}
	}
	return false
}

// TestSigningSecretNameTakenIsNeverAdopted: a Secret the operator did not create that happens to
// carry the signing Secret's name is neither overwritten nor adopted (which would have it deleted
// with the integration); the integration says why and registers no endpoint until it is gone.
func TestSigningSecretNameTakenIsNeverAdopted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	theirs := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: signingSecretName("clinic-sc"), Labels: map[string]string{"team": "billing"}},
		Data:       map[string][]byte{v1.SigningSecretKey: []byte("the-users-own-value"), "other": []byte("kept")},
	}
	mustCreate(t, credentialsSecret(ns, "keys", k), theirs, integration(ns, "clinic-sc", uniqueClinic("clinic-sc", ns), v1.ModeTest, "keys"))
	si := waitCondition(t, ns, "clinic-sc", v1.ConditionWebhookEndpointReady, metav1.ConditionFalse, v1.ReasonSigningSecretNameConflict, waitShort)
	if c := getCondition(t, si, v1.ConditionConnected); c.Reason != v1.ReasonSigningSecretNameConflict {
		t.Errorf("Connected reason = %s", c.Reason)
	}

	got := &corev1.Secret{}
	must(t, k8sClient.Get(ctx, client.ObjectKeyFromObject(theirs), got))
	if len(got.OwnerReferences) != 0 || string(got.Data[v1.SigningSecretKey]) != "the-users-own-value" ||
		string(got.Data["other"]) != "kept" || len(got.Labels) != 1 || len(got.Annotations) != 0 {
		t.Errorf("the user's Secret was changed: owners %v labels %v annotations %v", got.OwnerReferences, got.Labels, got.Annotations)
	}
	if eps := fake.Endpoints(fake.AccountForKey(k.secret), false); len(eps) != 0 {
		t.Errorf("%d endpoints registered whose signing secret has nowhere to go", len(eps))
	}

	// Once the user removes their Secret, the integration connects on its own.
	must(t, k8sClient.Delete(ctx, got))
	si = waitCondition(t, ns, "clinic-sc", v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)
	mine := &corev1.Secret{}
	must(t, k8sClient.Get(ctx, client.ObjectKeyFromObject(theirs), mine))
	if !metav1.IsControlledBy(mine, si) {
		t.Error("the signing Secret the operator wrote is not controlled by the integration")
	}
}
