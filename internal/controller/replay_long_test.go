package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// orderedSink stands in for the receiver: it accepts what verifies with the clinic's signing
// secret and carries the replay marker, and records the event ids and creation times in the
// order they arrived.
type orderedSink struct {
	mu       sync.Mutex
	secret   string
	ids      []string
	created  []int64
	times    map[string]int
	rejected int
}

func (s *orderedSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), s.secret,
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	var head struct {
		ID      string `json:"id"`
		Created int64  `json:"created"`
	}
	if err != nil || r.Header.Get(sigheader.ReplayHeader) == "" || json.Unmarshal(body, &head) != nil {
		s.rejected++
		http.Error(w, "rejected", http.StatusBadRequest)
		return
	}
	s.ids = append(s.ids, head.ID)
	s.created = append(s.created, head.Created)
	s.times[head.ID]++
	answerRelayed(w)
}

// startOrderedSink points the clinic's replays at a new orderedSink.
func startOrderedSink(t *testing.T, si *v1.StripeIntegration) *orderedSink {
	t.Helper()
	s := &orderedSink{secret: string(signingSecret(t, si).Data[v1.SigningSecretKey]), times: map[string]int{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	replayTargets.Store(si.Spec.ClinicID, srv.URL)
	t.Cleanup(func() { replayTargets.Delete(si.Spec.ClinicID) })
	return s
}

// check asserts that the sink got exactly want, each once, in non-decreasing created order.
func (s *orderedSink) check(t *testing.T, want []string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejected > 0 {
		t.Errorf("sink rejected %d deliveries", s.rejected)
	}
	for _, id := range want {
		if s.times[id] != 1 {
			t.Errorf("event %s delivered %d times, want once", id, s.times[id])
		}
	}
	if len(s.ids) != len(want) || len(s.times) != len(want) {
		t.Errorf("sink got %d deliveries of %d events, want %d events once each", len(s.ids), len(s.times), len(want))
	}
	for i := 1; i < len(s.created); i++ {
		if s.created[i] < s.created[i-1] {
			t.Fatalf("delivery %d (%s, created %d) came after one created %d: not oldest first", i, s.ids[i], s.created[i], s.created[i-1])
		}
	}
}

// recordHistory puts n past events in the clinic's log, two per second every 51 s from start
// (so the events of one second arrive together), with mixed API versions; every tenth has a
// type the endpoint does not enable. It returns the ids of the enabled ones, oldest first.
func recordHistory(t *testing.T, acct string, start time.Time, n int) (enabled []string, at []time.Time) {
	t.Helper()
	versions := []string{"2020-08-27", "2023-10-16", "2024-06-20"}
	for i := range n {
		typ := []string{"charge.succeeded", "customer.created", "payment_intent.succeeded"}[i%3]
		if i%10 == 9 {
			typ = "charge.updated"
		}
		created := start.Add(time.Duration(i/2) * 51 * time.Second)
		id, err := fake.RecordPastEvent(acct, false, typ, versions[i%3], created, map[string]any{"id": fmt.Sprintf("obj_%d", i), "object": "charge"})
		must(t, err)
		if typ != "charge.updated" {
			enabled, at = append(enabled, id), append(at, created)
		}
	}
	return enabled, at
}

// TestReplayDeliversEveryEventOldestFirst replays 10,050 enabled events spread over three days
// (more than the 10,000 the replay used to stop at, newest first): every one arrives exactly
// once, oldest first, in passes that report progress while running, with event-list calls
// within the 5-a-second budget.
func TestReplayDeliversEveryEventOldestFirst(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-rl")
	markAvailable(t, ns, receiverName(si))
	si = waitCondition(t, ns, "clinic-rl", v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
	sink := startOrderedSink(t, si)

	acct := fake.AccountForKey(k.secret)
	start := time.Now().Add(-80 * time.Hour).Truncate(time.Second)
	enabled, _ := recordHistory(t, acct, start, 11166) // over 79 hours, 10,050 of them enabled
	if len(enabled) != 10050 {
		t.Fatalf("recorded %d enabled events, want 10050", len(enabled))
	}
	listed := fake.CallsTo(k.secret, http.MethodGet, stripefake.PathEvents)
	since := start.Add(-time.Hour).UTC().Format(time.RFC3339)
	began := time.Now()
	annotate(t, si, since)

	var got *v1.ReplayStatus
	sawRunning := false
	eventually(t, 4*time.Minute, "replay finished", func() (bool, string) {
		got = getSI(t, ns, "clinic-rl").Status.Replay
		if got != nil && got.Since == since && got.Phase == v1.ReplayRunning && got.ResumeAfter != nil &&
			got.Delivered > 0 && strings.Contains(got.Message, "so far") {
			sawRunning = true
		}
		return got != nil && got.Since == since && got.Phase != v1.ReplayRunning, fmt.Sprintf("%+v", got)
	})
	took := time.Since(began)
	if got.Phase != v1.ReplaySucceeded || got.Delivered != 10050 || got.Failed != 0 || got.ResumeAfter != nil || got.CompletionTime == nil {
		t.Fatalf("replay = %+v, want Succeeded with 10050 delivered", got)
	}
	if !sawRunning {
		t.Error("the replay never showed Running with a cursor and its progress")
	}
	sink.check(t, enabled)
	calls := fake.CallsTo(k.secret, http.MethodGet, stripefake.PathEvents) - listed
	if limit := int(5*took.Seconds()) + 1; calls > limit || calls < 101 {
		t.Errorf("%d event-list calls in %s: want at least the 101 pages, at most 5 a second (%d)", calls, took.Round(time.Millisecond), limit)
	}
	t.Logf("10050 events replayed in %s with %d event-list calls", took.Round(time.Millisecond), calls)

	// A finished replay writes nothing more.
	rv := getSI(t, ns, "clinic-rl").ResourceVersion
	time.Sleep(testResync + time.Second)
	if now := getSI(t, ns, "clinic-rl").ResourceVersion; now != rv {
		t.Errorf("the object changed after the replay finished (resourceVersion %s → %s)", rv, now)
	}
	sink.check(t, enabled)
}

// TestReplayResumesFromItsCursor plays a manager that restarts in the middle of a replay: the
// status a previous manager wrote (Running, with its cursor and counts) is all the new one
// knows, and it sends exactly the events from the cursor on, once each, and counts on.
func TestReplayResumesFromItsCursor(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	k, si := connected(t, ns, "clinic-rr")
	markAvailable(t, ns, receiverName(si))
	si = waitCondition(t, ns, "clinic-rr", v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
	sink := startOrderedSink(t, si)

	start := time.Now().Add(-30 * time.Hour).Truncate(time.Second)
	enabled, at := recordHistory(t, fake.AccountForKey(k.secret), start, 2666) // 2,400 enabled
	done := 1000                                                               // delivered before the "restart"; the cursor does not split a second
	for at[done-1].Equal(at[done]) {
		done++
	}
	cursor := at[done]
	since := start.Add(-time.Minute).UTC().Format(time.RFC3339)
	until := metav1.NewTime(time.Now().Truncate(time.Second))
	must(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		fresh := getSI(t, ns, "clinic-rr")
		fresh.Status.Replay = &v1.ReplayStatus{Since: since, Phase: v1.ReplayRunning, Delivered: int32(done),
			Until: &until, ResumeAfter: &metav1.Time{Time: cursor}, Message: fmt.Sprintf("delivered %d so far", done)}
		return k8sClient.Status().Update(context.Background(), fresh)
	}))
	annotate(t, si, since)
	got := waitReplayDone(t, ns, "clinic-rr", since)
	if got.Phase != v1.ReplaySucceeded || got.Delivered != int32(len(enabled)) || got.Failed != 0 {
		t.Fatalf("replay = %+v, want Succeeded with %d delivered", got, len(enabled))
	}
	sink.check(t, enabled[done:])
}

// waitReplayDone waits for the replay of the request since to finish.
func waitReplayDone(t *testing.T, ns, name, since string) *v1.ReplayStatus {
	t.Helper()
	var got *v1.ReplayStatus
	eventually(t, 2*time.Minute, "replay of "+since+" finished", func() (bool, string) {
		got = getSI(t, ns, name).Status.Replay
		return got != nil && got.Since == since && got.Phase != v1.ReplayRunning, fmt.Sprintf("%+v", got)
	})
	return got
}
