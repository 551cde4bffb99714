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
	"net/http"
	"time"
)

// Defaults that mirror Stripe's documented limits.
const (
	// DefaultAPIVersion is the account default API version given to endpoints
	// created without api_version and to events.
	DefaultAPIVersion = "2020-08-27"
	// DefaultEndpointLimit is Stripe's cap on webhook endpoints per account
	// and mode.
	DefaultEndpointLimit = 16
	// DefaultIdempotencyLimit bounds how many idempotency keys are remembered
	// in total before the oldest are forgotten.
	DefaultIdempotencyLimit = 50_000
	// DefaultDeliveryLogLimit bounds the attempts kept for Deliveries.
	DefaultDeliveryLogLimit = 10_000
	// StripeTestRateLimit and StripeLiveRateLimit are Stripe's real per-account
	// request rates per second, for use with WithRateLimits.
	StripeTestRateLimit = 25
	StripeLiveRateLimit = 100
)

// Option configures a Server.
type Option func(*config)

type config struct {
	now              func() time.Time
	acceptAnyKey     bool
	testRate         int
	liveRate         int
	apiVersion       string
	httpClient       *http.Client
	async            bool
	idempotencyLimit int
	endpointLimit    int
	extraEventTypes  []string
	deliveryLogLimit int
	retrySchedule    []time.Duration
	adminAPI         bool
	faultSeed        uint64
}

func defaultConfig() config {
	return config{
		now:              time.Now,
		apiVersion:       DefaultAPIVersion,
		httpClient:       &http.Client{Timeout: 10 * time.Second},
		idempotencyLimit: DefaultIdempotencyLimit,
		endpointLimit:    DefaultEndpointLimit,
		deliveryLogLimit: DefaultDeliveryLogLimit,
	}
}

// WithClock sets the fake clock used for created timestamps, signature
// timestamps, idempotency expiry and the 30-day event window.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// AcceptAnyKey makes any well-formed sk_/rk_ test/live key valid on first use,
// with full permissions and its own new account (for the demo).
func AcceptAnyKey() Option {
	return func(c *config) { c.acceptAnyKey = true }
}

// WithRateLimits enables token-bucket rate limiting per account and mode;
// 0 disables the limit for that mode. Stripe's real limits are
// StripeTestRateLimit and StripeLiveRateLimit.
func WithRateLimits(testPerSec, livePerSec int) Option {
	return func(c *config) {
		c.testRate = max(testPerSec, 0)
		c.liveRate = max(livePerSec, 0)
	}
}

// WithDefaultAPIVersion sets the account default API version.
func WithDefaultAPIVersion(v string) Option {
	return func(c *config) {
		if v != "" {
			c.apiVersion = v
		}
	}
}

// WithHTTPClient sets the client used to deliver webhooks.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) {
		if hc != nil {
			c.httpClient = hc
		}
	}
}

// WithAsyncDelivery makes TriggerEvent and Redeliver return before webhooks
// are delivered; use WaitForDeliveries to wait for them.
func WithAsyncDelivery() Option {
	return func(c *config) { c.async = true }
}

// WithIdempotencyLimit bounds the number of idempotency keys remembered.
func WithIdempotencyLimit(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.idempotencyLimit = n
		}
	}
}

// WithEndpointLimit overrides the 16-endpoint cap per account and mode.
func WithEndpointLimit(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.endpointLimit = n
		}
	}
}

// WithEventTypes accepts extra event types besides KnownEventTypes.
func WithEventTypes(types ...string) Option {
	return func(c *config) { c.extraEventTypes = append(c.extraEventTypes, types...) }
}

// WithDeliveryLogLimit bounds how many delivery attempts Deliveries keeps.
func WithDeliveryLogLimit(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.deliveryLogLimit = n
		}
	}
}

// WithFaultSeed seeds the source that decides whether a fault with a
// Probability fires, so a run can be repeated.
func WithFaultSeed(seed uint64) Option {
	return func(c *config) { c.faultSeed = seed }
}
