package controller

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/relay/httprelay"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// flagEnvelopes is the clinic's HTTP endpoint behind the real receiver: it keeps the envelopes
// that carry flags.
type flagEnvelopes struct {
	mu  sync.Mutex
	got []httprelay.Envelope
}

func (s *flagEnvelopes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var env httprelay.Envelope
	if json.Unmarshal(body, &env) == nil && len(env.Flags) > 0 {
		s.mu.Lock()
		s.got = append(s.got, env)
		s.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

func (s *flagEnvelopes) snapshot() []httprelay.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]httprelay.Envelope(nil), s.got...)
}

// TestAnomalyFlagThroughTheReceiver runs the anomaly check against the real receiver (in-process,
// its HTTP target only): the operator's signed flag passes the receiver's checks (the flagged
// event's id and mode), and the clinic's endpoint receives the dispute event's envelope with the
// flag in its flags field, once.
func TestAnomalyFlagThroughTheReceiver(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-an-rx"
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	si := integration(ns, name, uniqueClinic(name, ns), v1.ModeTest, name+"-keys")
	si.Spec.Finance = &v1.FinanceSpec{Anomalies: &v1.AnomaliesSpec{Enabled: true}}
	mustCreate(t, credentialsSecret(ns, name+"-keys", k), si)
	si = waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)

	sink := &flagEnvelopes{}
	startLedgerReceiver(t, si, sink)

	markAvailable(t, ns, receiverName(si))
	waitCondition(t, ns, name, v1.ConditionAnomaliesChecked, metav1.ConditionTrue, v1.ReasonAnomaliesChecked, waitAnomaly)
	obj := disputeObject(6100)
	id, err := fake.TriggerEvent(fake.AccountForKey(k.secret), false, evDisputeCreated, obj)
	must(t, err)
	var got []httprelay.Envelope
	eventually(t, waitAnomaly, "the flag at the clinic's endpoint", func() (bool, string) {
		got = sink.snapshot()
		return len(got) > 0, fmt.Sprintf("%d envelopes with flags", len(got))
	})
	si = eventuallyAnomalies(t, &anomalyClinic{ns: ns, name: name}, func(a *v1.AnomaliesStatus) bool { return a.Flags == 1 })
	if c := getCondition(t, si, v1.ConditionAnomaliesChecked); c.Status != metav1.ConditionTrue {
		t.Errorf("AnomaliesChecked = %s/%s: %s", c.Status, c.Reason, c.Message)
	}
	got = sink.snapshot()
	if len(got) != 1 || got[0].ID != id || got[0].Type != evDisputeCreated || got[0].Flags[0].Rule != "Dispute" ||
		got[0].Flags[0].DisputeID != obj["id"] || got[0].Flags[0].EventID != id {
		t.Fatalf("envelopes = %+v, want the dispute's once with its Dispute flag", got)
	}
}
