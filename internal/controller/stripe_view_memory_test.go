package controller

import (
	"runtime"
	"testing"
	"weak"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// passState stands for what a pass decoded and its observation points into: the account, the
// listed endpoint, the webhook phase's state holding the StripeIntegration.
type passState struct {
	si                               paymentsv1alpha1.StripeIntegration
	account, endpoint, url, secretNm string
}

// TestViewKeepsNothingOfThePass: a recorded Stripe view holds copies of what it needs, not
// pointers into the pass's decoded objects, which would keep them (and through the webhook phase
// the StripeIntegration, managedFields and all) alive for as long as the view: at 10,000
// integrations tens of MB that no cache accounted for.
func TestViewKeepsNothingOfThePass(t *testing.T) {
	r := &StripeIntegrationReconciler{}
	ps := &passState{account: "acct_1", endpoint: "we_1", url: "https://hooks.example/x", secretNm: "x-stripe-webhook"}
	ps.si.UID = "uid-view-memory"
	gone := weak.Make(ps)
	obs := &observation{}
	obs.KeyFingerprint = "sha256:0123"
	obs.AccountID, obs.EndpointID, obs.WebhookURL, obs.SigningSecretName = &ps.account, &ps.endpoint, &ps.url, &ps.secretNm
	obs.Authenticated.Status, obs.Webhook.Status = metav1.ConditionTrue, metav1.ConditionTrue
	r.recordView(&ps.si, obs)
	ps, obs = nil, nil //nolint:ineffassign,wastedassign // dropped so that only the view could keep them
	runtime.GC()
	runtime.GC()
	if gone.Value() != nil {
		t.Fatal("the recorded view keeps the pass's decoded objects alive")
	}
	v, ok := r.stripeViews.get("uid-view-memory")
	if !ok || v.accountID == nil || *v.accountID != "acct_1" || *v.endpointIDPtr != "we_1" || *v.webhookURL != "https://hooks.example/x" ||
		*v.signing != "x-stripe-webhook" || v.endpointID != "we_1" {
		t.Fatalf("view %+v lost what it recorded", v)
	}
}
