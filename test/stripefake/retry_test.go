/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package stripefake

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// flakyReceiver answers 503 to its first failFirst requests, then 200.
type flakyReceiver struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	bodies    [][]byte
	sigs      []string
	srv       *httptest.Server
}

func newFlakyReceiver(t *testing.T, failFirst int) *flakyReceiver {
	t.Helper()
	r := &flakyReceiver{failFirst: failFirst}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.calls++
		fail := r.calls <= r.failFirst
		r.bodies = append(r.bodies, body)
		r.sigs = append(r.sigs, req.Header.Get("Stripe-Signature"))
		r.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *flakyReceiver) received() ([][]byte, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]string(nil), r.sigs...)
}

// closedURL returns a loopback URL nothing listens on, for transport errors.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	_ = ln.Close()
	return url
}

func waitDeliveries(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitForDeliveries(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDeliveryRetries(t *testing.T) {
	for name, tc := range map[string]struct {
		schedule     []time.Duration
		failFirst    int
		unreachable  bool
		wantAttempts int
		wantSuccess  bool
	}{
		"recovers after two failures": {
			schedule:  []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond},
			failFirst: 2, wantAttempts: 3, wantSuccess: true,
		},
		"first attempt succeeds": {
			schedule: []time.Duration{10 * time.Millisecond}, wantAttempts: 1, wantSuccess: true,
		},
		"schedule exhausted": {
			schedule: []time.Duration{5 * time.Millisecond, 5 * time.Millisecond}, failFirst: 100, wantAttempts: 3,
		},
		"transport errors are retried": {
			schedule: []time.Duration{5 * time.Millisecond, 5 * time.Millisecond}, unreachable: true, wantAttempts: 3,
		},
		"no schedule means no retry": {
			schedule: nil, failFirst: 1, wantAttempts: 1,
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, baseURL := startFake(t, WithDeliveryRetries(tc.schedule))
			key, acct := addKey(s, "sk_test_", KeyOptions{})
			rcv := newFlakyReceiver(t, tc.failFirst)
			url := rcv.srv.URL
			if tc.unreachable {
				url = closedURL(t)
			}
			p := endpointParams(url, "*")
			p.APIVersion = stripe.String(stripe.APIVersion)
			we, err := clientsFor(baseURL, key).we.New(p)
			if err != nil {
				t.Fatal(err)
			}
			evtID, err := s.TriggerEvent(acct, false, "charge.refunded", map[string]any{"id": "ch_1"})
			if err != nil {
				t.Fatal(err)
			}
			waitDeliveries(t, s)

			ds := s.Deliveries()
			if len(ds) != tc.wantAttempts {
				t.Fatalf("%d attempts, want %d: %+v", len(ds), tc.wantAttempts, ds)
			}
			for i, d := range ds {
				if d.EventID != evtID || d.EndpointID != we.ID {
					t.Errorf("attempt %d = %+v", i, d)
				}
				if last := i == len(ds)-1; d.Succeeded() != (last && tc.wantSuccess) {
					t.Errorf("attempt %d succeeded=%v", i, d.Succeeded())
				}
				if tc.unreachable && d.Err == nil {
					t.Errorf("attempt %d: want a transport error", i)
				}
			}
			bodies, sigs := rcv.received()
			for i := range bodies {
				if _, err := webhook.ConstructEvent(bodies[i], sigs[i], we.Secret); err != nil {
					t.Errorf("attempt %d signature: %v", i, err)
				}
			}
			undelivered := listEventIDs(t, clientsFor(baseURL, key), &stripe.EventListParams{DeliverySuccess: stripe.Bool(false)})
			if (len(undelivered) == 0) != tc.wantSuccess {
				t.Errorf("undelivered events = %v, want success=%v", undelivered, tc.wantSuccess)
			}
		})
	}
}

func TestDeliveryRetriesStopWhenEndpointDisabled(t *testing.T) {
	s, baseURL := startFake(t, WithDeliveryRetries([]time.Duration{50 * time.Millisecond, 50 * time.Millisecond}))
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	rcv := newFlakyReceiver(t, 100)
	we, err := clientsFor(baseURL, key).we.New(endpointParams(rcv.srv.URL, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TriggerEvent(acct, false, "customer.created", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DisableEndpoint(we.ID); err != nil {
		t.Fatal(err)
	}
	waitDeliveries(t, s)
	if n := len(s.Deliveries()); n != 1 {
		t.Errorf("%d attempts after disabling the endpoint, want 1", n)
	}
}

func TestDeliveryRetriesSkipEventsDeliveredMeanwhile(t *testing.T) {
	s, baseURL := startFake(t, WithDeliveryRetries([]time.Duration{100 * time.Millisecond}))
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	rcv := newFlakyReceiver(t, 1)
	if _, err := clientsFor(baseURL, key).we.New(endpointParams(rcv.srv.URL, "*")); err != nil {
		t.Fatal(err)
	}
	evtID, err := s.TriggerEvent(acct, false, "invoice.paid", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Redeliver(evtID); err != nil { // succeeds: the receiver failed only once
		t.Fatal(err)
	}
	waitDeliveries(t, s)
	if n := len(s.Deliveries()); n != 2 {
		t.Errorf("%d attempts, want 2 (the pending retry must see the redelivery)", n)
	}
}

func TestRedeliverStartsNoRetrySchedule(t *testing.T) {
	s, baseURL := startFake(t, WithDeliveryRetries([]time.Duration{5 * time.Millisecond}))
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	rcv := newFlakyReceiver(t, 100)
	if _, err := clientsFor(baseURL, key).we.New(endpointParams(rcv.srv.URL, "*")); err != nil {
		t.Fatal(err)
	}
	evtID, err := s.TriggerEvent(acct, false, "payout.paid", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitDeliveries(t, s) // first attempt + one retry
	if err := s.Redeliver(evtID); err != nil {
		t.Fatal(err)
	}
	waitDeliveries(t, s)
	if n := len(s.Deliveries()); n != 3 {
		t.Errorf("%d attempts, want 3 (trigger, one retry, one manual resend)", n)
	}
}

func TestDeliveryRetriesWaitAndClose(t *testing.T) {
	s, baseURL := startFake(t, WithDeliveryRetries([]time.Duration{time.Hour}))
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	rcv := newFlakyReceiver(t, 100)
	if _, err := clientsFor(baseURL, key).we.New(endpointParams(rcv.srv.URL, "*")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TriggerEvent(acct, false, "refund.created", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := s.WaitForDeliveries(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitForDeliveries with a retry pending = %v, want deadline exceeded", err)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with a retry pending", d)
	}
	waitDeliveries(t, s)
	if n := len(s.Deliveries()); n != 1 {
		t.Errorf("%d attempts, want 1 (Close cancels the pending retry)", n)
	}
}

// WaitForEventDeliveries waits for one event's retries only: another event still being retried
// does not hold it up, so parallel tests sharing one fake do not wait for each other.
func TestWaitForEventDeliveriesIgnoresOtherEvents(t *testing.T) {
	s, baseURL := startFake(t, WithDeliveryRetries([]time.Duration{time.Hour}))
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	rcv := newFlakyReceiver(t, 100)
	if _, err := clientsFor(baseURL, key).we.New(endpointParams(rcv.srv.URL, "*")); err != nil {
		t.Fatal(err)
	}
	pending, err := s.TriggerEvent(acct, false, "refund.created", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := s.WaitForEventDeliveries(ctx, pending); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting for the event with a retry pending = %v, want deadline exceeded", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := s.WaitForEventDeliveries(ctx2, "evt_other"); err != nil {
		t.Errorf("waiting for an event with nothing in flight = %v, want nil at once", err)
	}
}

// ClearFaultsFor clears one key's faults and leaves the others'.
func TestClearFaultsForKeepsOtherKeys(t *testing.T) {
	s, baseURL := startFake(t)
	k1, _ := addKey(s, "sk_test_", KeyOptions{})
	k2, _ := addKey(s, "sk_test_", KeyOptions{})
	for _, k := range []string{k1, k2} {
		s.InjectFault(Fault{Key: k, Status: http.StatusServiceUnavailable})
	}
	s.ClearFaultsFor(k1)
	if _, err := clientsFor(baseURL, k1).acct.Get(); err != nil {
		t.Errorf("cleared key still failing: %v", err)
	}
	if _, err := clientsFor(baseURL, k2).acct.Get(); err == nil {
		t.Error("other key's fault was cleared too")
	}
}
