package controller

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// TestReplayLogsNoPersonalData replays events whose customers carry sentinel personal data, with
// the suite's logger at its highest verbosity, and finds the sentinels in no log line: not in
// stripe-go's (the /v1/events pages), not in the manager's.
func TestReplayLogsNoPersonalData(t *testing.T) {
	// Not parallel: it checks the log lines written since its start, which parallel tests would
	// mix in; serial tests run before the parallel ones start.
	const (
		name  = "Qwertzu Sentinelpatient"
		email = "qwertzu.sentinel@patients.example"
	)
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-pii")
	markAvailable(t, ns, receiverName(si))
	si = waitCondition(t, ns, "clinic-pii", v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)

	sink := &verifyingSink{secret: string(signingSecret(t, si).Data[v1.SigningSecretKey]), received: map[string]string{}}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	// Replays are routed by clinic ID, which connected() makes unique per namespace.
	replayTargets.Store(si.Spec.ClinicID, srv.URL+"/stripe/webhook-test/"+si.Spec.ClinicID)
	t.Cleanup(func() { replayTargets.Delete(si.Spec.ClinicID) })
	acct := fake.AccountForKey(k.secret)
	for i, typ := range []string{"customer.created", "customer.updated", "charge.succeeded"} {
		_, err := fake.TriggerEvent(acct, false, typ, map[string]any{"id": fmt.Sprintf("cus_pii%d", i), "object": "customer",
			"name": name, "email": email, "billing_details": map[string]any{"name": name, "email": email}})
		must(t, err)
	}
	before := len(logs.String())
	annotate(t, si, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	eventually(t, waitShort, "replay finished", func() (bool, string) {
		r := getSI(t, ns, "clinic-pii").Status.Replay
		return r != nil && r.Phase == v1.ReplaySucceeded && r.Delivered == 3, fmt.Sprintf("%+v", r)
	})

	out := logs.String()[before:]
	if !strings.Contains(out, "/v1/events") {
		t.Fatalf("no log line for the /v1/events call: the scan would prove nothing:\n%s", out)
	}
	for _, s := range []string{name, "Qwertzu", email, "patients.example"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("personal data %q reached the operator log", s)
		}
	}
}
