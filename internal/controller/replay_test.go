package controller

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// verifyingSink stands in for the receiver: it accepts only what stripe-go's webhook package
// verifies with the clinic's signing secret (signature, 300 s tolerance, pinned API version).
type verifyingSink struct {
	mu       sync.Mutex
	secret   string
	received map[string]string // event id → type
	rejected int
}

func (s *verifyingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	ev, err := webhook.ConstructEvent(body, r.Header.Get("Stripe-Signature"), s.secret)
	if err != nil {
		s.rejected++
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.received[ev.ID] = string(ev.Type)
}

func (s *verifyingSink) count() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.received), s.rejected
}

func TestReplayRedeliversSignedEvents(t *testing.T) {
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-rp")
	markAvailable(t, ns, receiverName(si))
	si = waitCondition(t, ns, "clinic-rp", v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)

	sink := &verifyingSink{secret: string(signingSecret(t, si).Data[v1.SigningSecretKey]), received: map[string]string{}}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	replayTargets.Store(si.Spec.ClinicID, srv.URL+"/stripe/webhook-test/"+si.Spec.ClinicID)
	t.Cleanup(func() { replayTargets.Delete(si.Spec.ClinicID) })

	acct := fake.AccountForKey(k.secret)
	for i, typ := range []string{"charge.succeeded", "charge.succeeded", "charge.succeeded", "customer.created", "customer.created", "charge.updated"} {
		_, err := fake.TriggerEvent(acct, false, typ, map[string]any{"id": fmt.Sprintf("ch_%d", i), "object": "charge", "amount": 1000, "currency": "usd"})
		must(t, err)
	}
	annotate(t, si, time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))

	var got *v1.ReplayStatus
	eventually(t, waitShort, "replay finished", func() (bool, string) {
		got = getSI(t, ns, "clinic-rp").Status.Replay
		return got != nil, "no replay status"
	})
	if got.Phase != v1.ReplaySucceeded || got.Delivered != 5 || got.Failed != 0 {
		t.Fatalf("replay = %+v, want Succeeded with 5 delivered (charge.updated is not enabled)", got)
	}
	if n, rejected := sink.count(); n != 5 || rejected != 0 {
		t.Fatalf("sink verified %d events and rejected %d", n, rejected)
	}
	waitEvent(t, ns, "clinic-rp", v1.EventReplayCompleted)

	// The same request does not run twice.
	time.Sleep(testResync + time.Second)
	if n, _ := sink.count(); n != 5 {
		t.Errorf("replay ran again: sink has %d events", n)
	}

	// A malformed request fails with a message, and is not retried.
	annotate(t, getSI(t, ns, "clinic-rp"), "yesterday")
	eventually(t, waitShort, "invalid request reported", func() (bool, string) {
		got = getSI(t, ns, "clinic-rp").Status.Replay
		return got != nil && got.Since == "yesterday" && got.Phase == v1.ReplayFailed, fmt.Sprintf("%+v", got)
	})
}

func annotate(t *testing.T, si *v1.StripeIntegration, since string) {
	t.Helper()
	fresh := getSI(t, si.Namespace, si.Name)
	if fresh.Annotations == nil {
		fresh.Annotations = map[string]string{}
	}
	fresh.Annotations[v1.AnnotationReplaySince] = since
	must(t, k8sClient.Update(context.Background(), fresh))
}
