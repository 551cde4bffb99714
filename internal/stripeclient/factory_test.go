package stripeclient

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

func limiterOf(t *testing.T, c Client) *rate.Limiter {
	t.Helper()
	cl, ok := c.(*client)
	if !ok {
		t.Fatalf("client is %T", c)
	}
	return cl.limiter
}

func TestConfigDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	if got.BaseURL != "https://api.stripe.com" || got.CallTimeout != 10*time.Second || got.HTTPClient == nil ||
		got.TestRate != 20 || got.LiveRate != 80 || got.Burst != 5 || got.MaxNetworkRetries != 1 {
		t.Errorf("defaults = %+v", got)
	}
	if got := (Config{MaxNetworkRetries: -1}).withDefaults().MaxNetworkRetries; got != 0 {
		t.Errorf("negative MaxNetworkRetries became %d, want 0", got)
	}
	f := NewFactory(Config{})
	if l := limiterOf(t, f.For(skLive, v1alpha1.ModeLive, "acct_1")); l.Limit() != 80 || l.Burst() != 5 {
		t.Errorf("live limiter %v/%d", l.Limit(), l.Burst())
	}
	if l := limiterOf(t, f.For(skTest, v1alpha1.ModeTest, "acct_1")); l.Limit() != 20 {
		t.Errorf("test limiter %v", l.Limit())
	}
}

func TestLimiterSharing(t *testing.T) {
	tests := map[string]struct {
		keyA, keyB   string
		modeA, modeB v1alpha1.Mode
		acctA, acctB string
		wantShared   bool
	}{
		"keys of one account share":         {keyA: skTest, keyB: rkTest, modeA: "Test", modeB: "Test", acctA: "acct_1", acctB: "acct_1", wantShared: true},
		"accounts do not share":             {keyA: skTest, keyB: skTest, modeA: "Test", modeB: "Test", acctA: "acct_1", acctB: "acct_2"},
		"modes of one account do not share": {keyA: skTest, keyB: skLive, modeA: "Test", modeB: "Live", acctA: "acct_1", acctB: "acct_1"},
		"unknown account: same key shares":  {keyA: skTest, keyB: skTest, modeA: "Test", modeB: "Test", wantShared: true},
		"unknown account: keys do not":      {keyA: skTest, keyB: rkTest, modeA: "Test", modeB: "Test"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := NewFactory(Config{})
			a := limiterOf(t, f.For(tc.keyA, tc.modeA, tc.acctA))
			b := limiterOf(t, f.For(tc.keyB, tc.modeB, tc.acctB))
			if (a == b) != tc.wantShared {
				t.Errorf("shared = %v, want %v", a == b, tc.wantShared)
			}
		})
	}
}

// TestLimiterLimits: at 20/s with burst 1, six calls need five waits of 50ms.
func TestLimiterLimits(t *testing.T) {
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"id": "acct_1", "object": "account"})
	})
	f := testFactory(t, srv.URL, func(c *Config) { c.TestRate, c.Burst = 20, 1 })
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 6 {
		key := skTest
		if i%2 == 1 {
			key = rkTest // another key of the same account draws from the same limiter
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.For(key, v1alpha1.ModeTest, "acct_1").GetAccount(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if elapsed := time.Since(start); elapsed < 225*time.Millisecond {
		t.Errorf("6 calls took %v, want ≥ 250ms at 20/s burst 1", elapsed)
	}
	if n := len(rec.all()); n != 6 {
		t.Errorf("server saw %d calls", n)
	}
	if tok := limiterOf(t, f.For(skTest, v1alpha1.ModeTest, "acct_1")).Tokens(); tok >= 1 {
		t.Errorf("limiter has %v tokens right after a burst", tok)
	}
}

// TestLimiterWaitRespectsDeadline: a wait longer than the caller's deadline fails at once as
// RateLimited, without a request.
func TestLimiterWaitRespectsDeadline(t *testing.T) {
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"id": "acct_1", "object": "account"})
	})
	c := testFactory(t, srv.URL, func(c *Config) { c.TestRate, c.Burst = 0.1, 1 }).For(skTest, v1alpha1.ModeTest, "acct_1")
	if _, err := c.GetAccount(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The next token is 10 s away, past the 2 s deadline: the call fails at once, not when the
	// deadline passes (half of it leaves a loaded machine room).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.GetAccount(ctx)
	if e := Classify(err); e == nil || e.Kind != KindRateLimited || !e.Transient() {
		t.Fatalf("error = %v, want RateLimited", err)
	}
	if time.Since(start) > time.Second || len(rec.all()) != 1 {
		t.Errorf("waited %v and made %d requests", time.Since(start), len(rec.all()))
	}
}

func TestCacheEviction(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	f := newFactory(Config{}, clock, 3)
	keys := []string{skTest, skLive, rkTest, "sk_test_FOURTHkeyBODY12345", "sk_test_FIFTHkeyBODY123456"}

	first := f.For(skTest, v1alpha1.ModeTest, "").(*client)
	if again := f.For(skTest, v1alpha1.ModeTest, "").(*client); again.backend != first.backend || again.limiter != first.limiter {
		t.Error("the same key did not reuse its backend and limiter")
	}
	for i, k := range keys {
		f.For(k, v1alpha1.ModeTest, "acct_"+k[8:14])
		if i < 2 {
			now = now.Add(time.Minute)
		}
	}
	if b, l := f.backends.len(), f.limiters.len(); b != 3 || l != 3 {
		t.Errorf("after %d keys with cap 3: %d backends, %d limiters", len(keys), b, l)
	}

	now = now.Add(cacheIdleTTL + time.Second)
	f.For(skTest, v1alpha1.ModeTest, "acct_x")
	if b, l := f.backends.len(), f.limiters.len(); b != 1 || l != 1 {
		t.Errorf("after idling past the TTL: %d backends, %d limiters, want 1 and 1", b, l)
	}
}

func TestFactoryConcurrentUse(t *testing.T) {
	f := newFactory(Config{}, time.Now, 8)
	keys := []string{skTest, skLive, rkTest, "sk_test_FOURTHkeyBODY12345"}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.For(keys[i%len(keys)], v1alpha1.ModeTest, "")
		}()
	}
	wg.Wait()
	if n := f.backends.len(); n != len(keys) {
		t.Errorf("%d backends for %d keys", n, len(keys))
	}
}
