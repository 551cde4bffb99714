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

// envelopeSink is the clinic's HTTP endpoint behind the real receiver: it counts the envelopes
// it took by type and object id.
type envelopeSink struct {
	mu  sync.Mutex
	got map[string]int // "<type> <object id>" → times
}

func (s *envelopeSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var env httprelay.Envelope
	_ = json.Unmarshal(body, &env)
	items := -1
	if env.Payout != nil {
		items = len(env.Payout.Items)
	}
	s.mu.Lock()
	s.got[fmt.Sprintf("%s %s %d", env.Type, env.Object.ID, items)]++
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (s *envelopeSink) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.got))
	for k, v := range s.got {
		out[k] = v
	}
	return out
}

// TestPayoutThroughTheReceiver runs the payout check against the real receiver (in-process, its
// HTTP target only): the operator's signed ledger message passes the receiver's checks, the
// receiver relays the payout to the clinic's endpoint and answers "written", and status records
// the payout.
func TestPayoutThroughTheReceiver(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-po-rx"
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	si := integration(ns, name, uniqueClinic(name, ns), v1.ModeTest, name+"-keys")
	si.Spec.Finance = &v1.FinanceSpec{Payouts: &v1.PayoutsSpec{Enabled: true}}
	mustCreate(t, credentialsSecret(ns, name+"-keys", k), si)
	si = waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)

	sink := &envelopeSink{got: map[string]int{}}
	startLedgerReceiver(t, si, sink)

	pc := &payoutClinic{ns: ns, name: name, account: fake.AccountForKey(k.secret), keys: k}
	po, _ := pc.seedPayout(t, daysAgo(1), true, charge(5000, 175, "jpy", "", "pi_rx1"),
		stripefake.BalanceTransactionSeed{Type: "refund", Amount: -1000, Currency: "jpy", SourcePaymentIntent: "pi_rx1"})
	markAvailable(t, ns, receiverName(si))
	st := pc.waitWritten(t, po)
	if st.LastItems != 2 || st.Reconciled != 1 {
		t.Errorf("status = %+v, want the payout's 2 items", st)
	}
	got := sink.snapshot()
	if n := got[fmt.Sprintf("%s %s 2", httprelay.TypePayoutReconciled, po)]; n != 1 {
		t.Errorf("the clinic's endpoint took the payout with its 2 items %d times, want once (it took %v)", n, got)
	}
}
