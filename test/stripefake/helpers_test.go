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
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/account"
	"github.com/stripe/stripe-go/v76/balancetransaction"
	"github.com/stripe/stripe-go/v76/event"
	"github.com/stripe/stripe-go/v76/payout"
	"github.com/stripe/stripe-go/v76/webhookendpoint"
)

// startFake starts a fake on loopback and closes it when the test ends.
func startFake(t testing.TB, opts ...Option) (*Server, string) {
	t.Helper()
	s := New(opts...)
	baseURL, err := s.Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, baseURL
}

// newBackend returns a real stripe-go backend aimed at the fake, with retries
// and logging off so failures surface immediately and quietly.
func newBackend(baseURL string) stripe.Backend {
	return stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(baseURL),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		MaxNetworkRetries: stripe.Int64(0),
	})
}

// clients bundles the stripe-go clients the operator uses, for one key.
type clients struct {
	we   webhookendpoint.Client
	acct account.Client
	ev   event.Client
	po   payout.Client
	bt   balancetransaction.Client
}

func clientsFor(baseURL, key string) clients {
	b := newBackend(baseURL)
	return clients{
		we:   webhookendpoint.Client{B: b, Key: key},
		acct: account.Client{B: b, Key: key},
		ev:   event.Client{B: b, Key: key},
		po:   payout.Client{B: b, Key: key},
		bt:   balancetransaction.Client{B: b, Key: key},
	}
}

// newKey returns a unique, realistic-looking key with the given prefix.
func newKey(prefix string) string {
	return prefix + randomID(32)
}

// addKey registers a fresh key and returns it with its account.
func addKey(s *Server, prefix string, opts KeyOptions) (string, string) {
	k := newKey(prefix)
	return k, s.AddKey(k, opts)
}

// endpointParams builds create params for a test endpoint.
func endpointParams(url string, events ...string) *stripe.WebhookEndpointParams {
	if len(events) == 0 {
		events = []string{"payment_intent.succeeded"}
	}
	return &stripe.WebhookEndpointParams{URL: stripe.String(url), EnabledEvents: stripe.StringSlice(events)}
}

// asStripeError fails the test unless err is a *stripe.Error.
func asStripeError(t *testing.T, err error) *stripe.Error {
	t.Helper()
	var se *stripe.Error
	if !errors.As(err, &se) {
		t.Fatalf("want *stripe.Error, got %T: %v", err, err)
	}
	return se
}

// wantStripeError checks the fields tests care about on an API error.
func wantStripeError(t *testing.T, err error, status int, typ stripe.ErrorType, code stripe.ErrorCode, msgPart string) {
	t.Helper()
	_ = gotStripeError(t, err, status, typ, code, msgPart) // the check is the point here; tests that look at the error call gotStripeError
}

// gotStripeError is wantStripeError for tests that go on to look at the error: it returns it.
func gotStripeError(t *testing.T, err error, status int, typ stripe.ErrorType, code stripe.ErrorCode, msgPart string) *stripe.Error {
	t.Helper()
	se := asStripeError(t, err)
	if se.HTTPStatusCode != status || se.Type != typ || se.Code != code {
		t.Errorf("got status=%d type=%q code=%q, want %d %q %q (msg %q)", se.HTTPStatusCode, se.Type, se.Code, status, typ, code, se.Msg)
	}
	if !strings.Contains(se.Msg, msgPart) {
		t.Errorf("message %q does not contain %q", se.Msg, msgPart)
	}
	return se
}

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
