package controller

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// TestSecretsNeverLeak plants sentinel keys in every path that produces text (success, Stripe
// 401 that echoes a masked key, 403, policy failures, malformed values) and scans what the
// operator wrote: its logs (including stripe-go's), Events and status.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	sentinel := func(tag string) string { return "SENTINEL" + tag + randomKeyBody(t, 24) }
	type plant struct {
		name   string
		keys   testKeys
		mode   v1.Mode
		setup  func(k testKeys)
		reason string
		cond   string
		status metav1.ConditionStatus
	}
	good := testKeys{publishable: "pk_test_" + sentinel("pA"), secret: "sk_test_" + sentinel("sA")}
	revoked := testKeys{publishable: "pk_test_" + sentinel("pB"), secret: "sk_test_" + sentinel("sB")}
	restricted := testKeys{publishable: "pk_test_" + sentinel("pC"), secret: "rk_test_" + sentinel("sC")}
	wrongMode := testKeys{publishable: "pk_test_" + sentinel("pD"), secret: "sk_test_" + sentinel("sD")}
	padded := testKeys{publishable: "pk_test_" + sentinel("pE"), secret: " sk_test_" + sentinel("sE") + " "}
	swapped := testKeys{publishable: "sk_test_" + sentinel("pF"), secret: "pk_test_" + sentinel("sF")}
	plants := []plant{
		{name: "leak-good", keys: good, mode: v1.ModeTest,
			setup: func(k testKeys) { fake.AddKey(k.secret, stripefake.KeyOptions{}) },
			cond:  v1.ConditionWebhookEndpointReady, reason: v1.ReasonEndpointReady, status: metav1.ConditionTrue},
		{name: "leak-revoked", keys: revoked, mode: v1.ModeTest,
			setup: func(k testKeys) { fake.AddKey(k.secret, stripefake.KeyOptions{}); fake.RevokeKey(k.secret) },
			cond:  v1.ConditionAuthenticated, reason: v1.ReasonInvalidKey},
		{name: "leak-restricted", keys: restricted, mode: v1.ModeTest,
			setup: func(k testKeys) { fake.AddKey(k.secret, stripefake.KeyOptions{Permissions: []string{}}) },
			cond:  v1.ConditionAuthenticated, reason: v1.ReasonPermissionDenied},
		{name: "leak-mode", keys: wrongMode, mode: v1.ModeLive, cond: v1.ConditionKeysValid, reason: v1.ReasonModeMismatch},
		{name: "leak-padded", keys: padded, mode: v1.ModeTest, cond: v1.ConditionKeysValid, reason: v1.ReasonKeyWhitespace},
		{name: "leak-swapped", keys: swapped, mode: v1.ModeTest, cond: v1.ConditionKeysValid, reason: v1.ReasonWrongKeyType},
	}
	for _, p := range plants {
		if p.setup != nil {
			p.setup(p.keys)
		}
		mustCreate(t, credentialsSecret(ns, p.name, p.keys), integration(ns, p.name, p.name, p.mode, p.name))
	}
	for _, p := range plants {
		want := p.status
		if want == "" {
			want = metav1.ConditionFalse
		}
		waitCondition(t, ns, p.name, p.cond, want, p.reason, waitShort)
	}
	// Let the failing ones go through a few retries and the good one through a resync.
	time.Sleep(testResync + 500*time.Millisecond)

	events := listEvents(t, ns)
	haystacks := make([]string, 0, 1+2*len(events)+len(plants))
	haystacks = append(haystacks, logs.String())
	for _, e := range events {
		haystacks = append(haystacks, e.Note, e.Reason)
	}
	for _, p := range plants {
		raw, err := json.Marshal(getSI(t, ns, p.name).Status)
		if err != nil {
			t.Fatal(err)
		}
		haystacks = append(haystacks, string(raw))
	}
	all := strings.Join(haystacks, "\n")
	// The signing secret Stripe returned for the good plant's endpoint must not leak either.
	endpoints := fake.Endpoints(fake.AccountForKey(good.secret), false)
	whsecs := make([]string, 0, len(endpoints))
	for _, ep := range endpoints {
		whsecs = append(whsecs, ep.Secret)
	}
	if len(whsecs) != 1 {
		t.Fatalf("good plant has %d endpoints, want 1", len(whsecs))
	}
	for _, w := range whsecs {
		if body := strings.TrimPrefix(w, "whsec_"); strings.Contains(all, body) || strings.Contains(all, body[len(body)-8:]) {
			t.Error("webhook signing secret found in logs, Events or status")
		}
	}
	if !strings.Contains(all, "InvalidKey") || len(logs.String()) == 0 {
		t.Fatal("captured output looks empty; the scan would prove nothing")
	}
	// Stripe's 401 echoes a masked key ending in its last four characters ("sk_test_****abcd");
	// that must not survive either. (Four bare random characters could match by chance; "*abcd"
	// and the last eight cannot.)
	for _, p := range plants {
		for _, k := range []string{p.keys.publishable, p.keys.secret} {
			body := strings.TrimSpace(k)[len("sk_test_"):]
			for _, needle := range []string{body, body[8:20], body[len(body)-8:], "*" + body[len(body)-4:]} {
				if strings.Contains(all, needle) {
					t.Errorf("%s: key material %q found in logs, Events or status", p.name, needle)
				}
			}
		}
	}
}
