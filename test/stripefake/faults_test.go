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
	"net/http"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhookendpoint"
)

func TestInjectedFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		typ    stripe.ErrorType
		code   stripe.ErrorCode
		msg    string
	}{
		{"rate limited", http.StatusTooManyRequests, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeRateLimit, "Request rate limit exceeded"},
		{"internal error", http.StatusInternalServerError, stripe.ErrorTypeAPI, "", "something went wrong"},
		{"bad gateway", http.StatusBadGateway, stripe.ErrorTypeAPI, "", "something went wrong"},
		{"unavailable", http.StatusServiceUnavailable, stripe.ErrorTypeAPI, "", "something went wrong"},
		{"unauthorized", http.StatusUnauthorized, stripe.ErrorTypeInvalidRequest, "", "Invalid API Key provided"},
		{"forbidden", http.StatusForbidden, stripe.ErrorTypeInvalidRequest, "", "does not have the required permissions"},
		{"conflict", http.StatusConflict, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeLockTimeout, "cannot be accessed right now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, baseURL := startFake(t)
			key, _ := addKey(s, "sk_test_", KeyOptions{})
			c := clientsFor(baseURL, key)
			s.InjectFault(Fault{Key: key, Method: http.MethodPost, PathPrefix: PathWebhookEndpoints, Status: tc.status, Times: 1})

			if _, err := c.acct.Get(); err != nil {
				t.Fatalf("unmatched call failed: %v", err)
			}
			_, err := c.we.New(endpointParams("https://example.com/h"))
			wantStripeError(t, err, tc.status, tc.typ, tc.code, tc.msg)
			if _, err := c.we.New(endpointParams("https://example.com/h")); err != nil {
				t.Errorf("call after Times ran out failed: %v", err)
			}
		})
	}
}

func TestFaultMatching(t *testing.T) {
	s, baseURL := startFake(t)
	k1, a1 := addKey(s, "sk_test_", KeyOptions{})
	k2, _ := addKey(s, "sk_live_", KeyOptions{Account: a1})
	k3, _ := addKey(s, "sk_test_", KeyOptions{})

	s.InjectFault(Fault{Account: a1, Status: http.StatusServiceUnavailable, Code: "custom", Message: "down for maintenance"})
	for _, k := range []string{k1, k2} {
		_, err := clientsFor(baseURL, k).acct.Get()
		wantStripeError(t, err, http.StatusServiceUnavailable, stripe.ErrorTypeAPI, "custom", "down for maintenance")
	}
	if _, err := clientsFor(baseURL, k3).acct.Get(); err != nil {
		t.Errorf("other account affected: %v", err)
	}
	// Times == 0 keeps failing until cleared.
	if _, err := clientsFor(baseURL, k1).acct.Get(); err == nil {
		t.Error("persistent fault stopped")
	}
	s.ClearFaults()
	if _, err := clientsFor(baseURL, k1).acct.Get(); err != nil {
		t.Errorf("after ClearFaults: %v", err)
	}
}

func TestFaultLatencyHonorsContext(t *testing.T) {
	s, baseURL := startFake(t)
	key, _ := addKey(s, "sk_test_", KeyOptions{})
	c := clientsFor(baseURL, key)
	s.InjectFault(Fault{Key: key, Latency: 10 * time.Second})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	p := endpointParams("https://example.com/h")
	p.Context = ctx
	start := time.Now()
	_, err := c.we.New(p)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("call took %v despite the context deadline", d)
	}

	// A latency-only fault with a short delay answers normally afterwards.
	s.ClearFaults()
	s.InjectFault(Fault{Key: key, Latency: 20 * time.Millisecond, Times: 1})
	start = time.Now()
	if _, err := c.acct.Get(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("latency not applied: %v", d)
	}
}

func TestRateLimits(t *testing.T) {
	s, baseURL := startFake(t, WithRateLimits(3, 0))
	testKey, acct := addKey(s, "sk_test_", KeyOptions{})
	liveKey, _ := addKey(s, "sk_live_", KeyOptions{Account: acct})
	var limited int
	for range 10 {
		_, err := clientsFor(baseURL, testKey).acct.Get()
		if err != nil {
			wantStripeError(t, err, http.StatusTooManyRequests, stripe.ErrorTypeInvalidRequest, stripe.ErrorCodeRateLimit, "rate limit")
			limited++
		}
	}
	if limited == 0 {
		t.Error("10 burst calls at 3/s were never rate limited")
	}
	for range 10 {
		if _, err := clientsFor(baseURL, liveKey).acct.Get(); err != nil {
			t.Fatalf("live mode is unlimited but got %v", err)
		}
	}
}

func TestCounters(t *testing.T) {
	s, baseURL := startFake(t)
	k1, _ := addKey(s, "sk_test_", KeyOptions{})
	k2, _ := addKey(s, "sk_test_", KeyOptions{})
	c1 := clientsFor(baseURL, k1)
	we, err := c1.we.New(endpointParams("https://example.com/h"))
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c1.we.Get(we.ID, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := clientsFor(baseURL, k2).acct.Get(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want int
	}{
		{"Calls k1", s.Calls(k1), 4},
		{"Calls k2", s.Calls(k2), 1},
		{"CallsTo get", s.CallsTo(k1, "GET", PathWebhookEndpoint), 3},
		{"CallsTo create", s.CallsTo(k1, http.MethodPost, PathWebhookEndpoints), 1},
		{"CallsTo other key", s.CallsTo(k2, http.MethodGet, PathWebhookEndpoint), 0},
		{"TotalCalls", s.TotalCalls(), 5},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	s.ResetCounters()
	if s.Calls(k1) != 0 || s.TotalCalls() != 0 {
		t.Error("counters not reset")
	}
}

func TestConcurrentClients(t *testing.T) {
	s, baseURL := startFake(t, WithEndpointLimit(1000))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 8 {
		key, _ := addKey(s, "sk_test_", KeyOptions{})
		c := clientsFor(baseURL, key)
		wg.Go(func() {
			for range 8 {
				we, err := c.we.New(endpointParams("https://example.com/h"))
				if err != nil {
					errs <- err
					return
				}
				if _, err := c.we.Get(we.ID, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.TotalCalls(); got != 8*8*2 {
		t.Errorf("TotalCalls = %d, want %d", got, 8*8*2)
	}
}

func TestCloseAbortsLatency(t *testing.T) {
	s := New()
	baseURL, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	key, _ := addKey(s, "sk_test_", KeyOptions{})
	s.InjectFault(Fault{Latency: 10 * time.Second})
	errc := make(chan error, 1)
	go func() {
		_, err := clientsFor(baseURL, key).acct.Get()
		errc <- err
	}()
	for s.TotalCalls() == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a pending latency fault", d)
	}
	wantStripeError(t, <-errc, http.StatusServiceUnavailable, stripe.ErrorTypeAPI, "", "something went wrong")
	if s.URL() == "" {
		t.Error("URL() empty after Start")
	}
}

func TestFaultProbabilityAndRetryAfter(t *testing.T) {
	s, base := startFake(t, WithFaultSeed(7))
	key, _ := addKey(s, "sk_test_", KeyOptions{})
	s.InjectFault(Fault{Key: key, Status: http.StatusTooManyRequests, Probability: 0.2, RetryAfter: 2 * time.Second})
	const calls = 500
	failed := 0
	for range calls {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/webhook_endpoints", nil)
		req.SetBasicAuth(key, "")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			failed++
			if got := resp.Header.Get("Retry-After"); got != "2" {
				t.Fatalf("Retry-After = %q, want 2", got)
			}
		} else if resp.StatusCode != http.StatusOK || resp.Header.Get("Retry-After") != "" {
			t.Fatalf("status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if failed < calls/10 || failed > calls*3/10 {
		t.Errorf("%d of %d calls failed with probability 0.2", failed, calls)
	}
}

func TestFaultAfterExecuteLosesTheAnswerNotTheEffect(t *testing.T) {
	s, base := startFake(t)
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	s.InjectFault(Fault{Key: key, Method: http.MethodPost, PathPrefix: "/v1/webhook_endpoints", Latency: 2 * time.Second, AfterExecute: true, Times: 1})
	b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL: stripe.String(base), LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}, MaxNetworkRetries: stripe.Int64(0),
		HTTPClient: &http.Client{Timeout: 200 * time.Millisecond},
	})
	start := time.Now()
	_, err := (&webhookendpoint.Client{B: b, Key: key}).New(endpointParams("https://example.test/hook"))
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("create answered (%v) after %s; want a client timeout", err, time.Since(start))
	}
	if eps := s.Endpoints(acct, false); len(eps) != 1 {
		t.Fatalf("%d endpoints after a lost answer, want 1 (the create took effect)", len(eps))
	}
	// The next call is unaffected (Times: 1).
	if _, err := clientsFor(base, key).we.New(endpointParams("https://example.test/hook2")); err != nil {
		t.Fatal(err)
	}
}

// TestRateCounters feeds the counters requests at chosen times: the largest per-second count
// is kept per key and for the whole fake, whichever key or second it came from.
func TestRateCounters(t *testing.T) {
	c := newCounters()
	t0 := time.Unix(1_000, 0)
	for i := range 3 {
		c.record("k1", "GET", PathWebhookEndpoints, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	c.record("k2", "GET", PathWebhookEndpoints, t0.Add(500*time.Millisecond))
	for i := range 5 {
		c.record("k2", "GET", PathWebhookEndpoints, t0.Add(2*time.Second+time.Duration(i)*time.Millisecond))
	}
	c.record("", "GET", "/v1/unknown", t0.Add(2*time.Second))
	s := &Server{counters: c}
	perKey, overall := s.MaxRates()
	if perKey != 5 || overall != 6 {
		t.Errorf("MaxRates() = %d, %d; want 5 (k2 in second 1002), 6 (second 1002)", perKey, overall)
	}
	if got := s.CallsBySecond(); len(got) != 2 || got[1000] != 4 || got[1002] != 6 {
		t.Errorf("CallsBySecond() = %v, want map[1000:4 1002:6]", got)
	}
	s.ResetCounters()
	if perKey, overall := s.MaxRates(); perKey != 0 || overall != 0 || len(s.CallsBySecond()) != 0 {
		t.Error("rate counters not reset")
	}
}
