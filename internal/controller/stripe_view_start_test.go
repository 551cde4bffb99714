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

package controller

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// countingProxy forwards to the Stripe fake over real HTTP and counts requests by secret key, so
// a test sees the calls of one manager while the suite's manager keeps running.
type countingProxy struct {
	mu    sync.Mutex
	byKey map[string]int
}

func startCountingProxy(t *testing.T) (*countingProxy, string) {
	t.Helper()
	target, err := url.Parse(fake.URL())
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{byKey: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		p.mu.Lock()
		p.byKey[strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")]++
		p.mu.Unlock()
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *countingProxy) calls(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byKey[key]
}

// TestRestartDefersStripePasses starts a second manager, as a restart would, against the same
// apiserver and Stripe, with integrations the first one connected. Its first pass of each checks
// the Kubernetes side and asks Stripe nothing: status proves a Stripe pass for the same
// generation and keys. Each Stripe pass is deferred to the start plus the integration's own
// offset within the resync period, and runs then with one call. The second manager's clock is a
// fake one that does not move by itself, so no deferred pass can come due while the test waits.
func TestRestartDefersStripePasses(t *testing.T) {
	ns := newNamespace(t)
	const n = 3
	names := make([]string, n)
	ks := make([]testKeys, n)
	for i := range n {
		names[i] = fmt.Sprintf("clinic-restart-%d", i)
		ks[i], _ = connected(t, ns, names[i])
	}
	rvs := map[string]string{}
	for _, name := range names {
		rvs[name] = getSI(t, ns, name).ResourceVersion
	}

	proxy, proxyURL := startCountingProxy(t)
	const resync = 10 * time.Minute
	start := time.Now()
	clk := clocktesting.NewFakePassiveClock(start)
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 k8sClient.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 suiteLog.WithName("restarted"),
		Cache: func() cache.Options {
			o := CacheOptions()
			o.DefaultNamespaces = map[string]cache.Config{ns: {}}
			return o
		}(),
		// The suite's manager runs a controller of the same name in this process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	restarted := &StripeIntegrationReconciler{
		Client: mgr.GetClient(), SecretReader: mgr.GetAPIReader(), Recorder: events.NewFakeRecorder(100),
		Stripe: stripeclient.NewFactory(stripeclient.Config{BaseURL: proxyURL, CallTimeout: 5 * time.Second}),
		Clock:  clk, ResyncPeriod: resync, MaxConcurrentReconciles: 2,
		WebhookBaseURL: testWebhookURL, ReceiverImage: testReceiverImage, TransientFailureGrace: testGrace,
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := restarted.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	uids := make([]types.UID, n)
	for i, name := range names {
		uids[i] = getSI(t, ns, name).UID
	}
	// Every integration's first pass leaves a view in the restarted manager's memory, whether it
	// asked Stripe (before this change) or deferred the Stripe pass.
	eventually(t, waitShort, "the restarted manager's first passes", func() (bool, string) {
		seen := 0
		for _, uid := range uids {
			if _, ok := restarted.stripeViews.get(uid); ok {
				seen++
			}
		}
		return seen == n, fmt.Sprintf("%d of %d passed", seen, n)
	})
	for i, name := range names {
		if c := proxy.calls(ks[i].secret); c != 0 {
			t.Errorf("%s: %d Stripe calls in the restarted manager's first pass, want 0 (status proves a Stripe pass)", name, c)
		}
		// A pass before the due time asks Stripe nothing either, and asks to run again when due.
		res, err := restarted.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
		if want := startOffset(uids[i], resync); err != nil || res.RequeueAfter != want {
			t.Errorf("%s: pass before due = %+v, %v; want RequeueAfter %s (its offset in the period)", name, res, err, want)
		}
		// Not behind the low-priority first passes of every other integration.
		if res.Priority == nil || *res.Priority != 0 {
			t.Errorf("%s: deferred pass requeued with priority %v, want 0 (normal)", name, res.Priority)
		}
		if c := proxy.calls(ks[i].secret); c != 0 {
			t.Errorf("%s: %d Stripe calls before the deferred pass is due", name, c)
		}
	}

	// Once due, the Stripe pass runs: one call, the endpoint list, and nothing to write.
	clk.SetTime(start.Add(resync))
	for i, name := range names {
		res, err := restarted.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
		if err != nil || res.RequeueAfter < resync*9/10 {
			t.Errorf("%s: due pass = %+v, %v; want the next resync", name, res, err)
		}
		if c := proxy.calls(ks[i].secret); c != 1 {
			t.Errorf("%s: %d Stripe calls in the due pass, want 1", name, c)
		}
	}
	for _, name := range names {
		si := getSI(t, ns, name)
		if si.ResourceVersion != rvs[name] {
			t.Errorf("%s: the restart wrote to the object (status %+v)", name, si.Status.Conditions)
		}
		if !metav1IsTrue(si, v1.ConditionWebhookEndpointReady) {
			t.Errorf("%s: WebhookEndpointReady is no longer True", name)
		}
	}
}

func metav1IsTrue(si *v1.StripeIntegration, t string) bool {
	c := conditionOrNone(si, t)
	return c.Status == metav1.ConditionTrue
}

// TestStatusProvesStripePass: only a status recording a successful Stripe pass for the current
// generation, keys, mode and webhook URL, with nothing pending that needs Stripe, lets a start
// defer the Stripe pass.
func TestStatusProvesStripePass(t *testing.T) {
	const fp, hookURL = "fp-1", "https://hooks.example/stripe/webhook-test/c1"
	good := func() *v1.StripeIntegration {
		si := &v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
		si.Status = v1.StripeIntegrationStatus{ObservedGeneration: 3, Mode: v1.ModeTest, KeyFingerprint: fp,
			WebhookEndpointID: "we_1", WebhookURL: hookURL, SigningSecretName: "c1-stripe-webhook"}
		for _, typ := range []string{v1.ConditionAuthenticated, v1.ConditionWebhookEndpointReady} {
			si.Status.Conditions = append(si.Status.Conditions, metav1.Condition{Type: typ, Status: metav1.ConditionTrue,
				Reason: "Ok", Message: "fine", ObservedGeneration: 3})
		}
		return si
	}
	cases := map[string]struct {
		edit func(si *v1.StripeIntegration)
		fp   string
		mode v1.Mode
		url  string
		want bool
	}{
		"proven":                 {want: true},
		"new generation":         {edit: func(si *v1.StripeIntegration) { si.Generation = 4 }},
		"other keys":             {fp: "fp-2"},
		"other mode":             {mode: v1.ModeLive},
		"other webhook URL":      {url: "https://moved.example/stripe/webhook-test/c1"},
		"no webhook URL":         {url: "-"},
		"no endpoint":            {edit: func(si *v1.StripeIntegration) { si.Status.WebhookEndpointID = "" }},
		"no signing Secret":      {edit: func(si *v1.StripeIntegration) { si.Status.SigningSecretName = "" }},
		"never accepted keys":    {edit: func(si *v1.StripeIntegration) { si.Status.KeyFingerprint = "" }, fp: "-"},
		"not authenticated":      {edit: func(si *v1.StripeIntegration) { si.Status.Conditions[0].Status = metav1.ConditionFalse }},
		"endpoint not ready":     {edit: func(si *v1.StripeIntegration) { si.Status.Conditions[1].Status = metav1.ConditionUnknown }},
		"condition of older gen": {edit: func(si *v1.StripeIntegration) { si.Status.Conditions[1].ObservedGeneration = 2 }},
		"no conditions":          {edit: func(si *v1.StripeIntegration) { si.Status.Conditions = nil }},
		"within failure grace": {edit: func(si *v1.StripeIntegration) {
			si.Status.Conditions[0].Message = failingPrefix(time.Unix(0, 0)) + " (RateLimited: …)"
		}},
		"replay requested": {edit: func(si *v1.StripeIntegration) {
			si.Annotations = map[string]string{v1.AnnotationReplaySince: "2026-12-01T00:00:00Z"}
		}},
		"re-delivery pending": {edit: func(si *v1.StripeIntegration) {
			si.Annotations = map[string]string{v1.AnnotationRedeliverUndeliveredSince: "2026-12-01T00:00:00Z"}
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			si := good()
			if tc.edit != nil {
				tc.edit(si)
			}
			f, m, u := fp, v1.ModeTest, hookURL
			if tc.fp != "" {
				f = strings.TrimPrefix(tc.fp, "-")
			}
			if tc.mode != "" {
				m = tc.mode
			}
			if tc.url != "" {
				u = strings.TrimPrefix(tc.url, "-")
			}
			if got := statusProvesStripePass(si, f, m, u); got != tc.want {
				t.Errorf("statusProvesStripePass = %t, want %t", got, tc.want)
			}
		})
	}
}

// TestStartOffsetSpreads: the deferred Stripe passes of many integrations fill the resync period
// evenly (each tenth within 10 % ± 1.5 points for 10,000 UIDs), inside [0, period), and an
// integration's offset is the same on every start.
func TestStartOffsetSpreads(t *testing.T) {
	const n, period = 10_000, 10 * time.Minute
	var tenths [10]int
	for i := range n {
		uid := types.UID(fmt.Sprintf("4f1c2a7e-%04x-4b7d-9a61-%012x", i%65536, i*7919))
		off := startOffset(uid, period)
		if off < 0 || off >= period {
			t.Fatalf("offset %s outside [0, %s)", off, period)
		}
		if off != startOffset(uid, period) {
			t.Fatal("offset differs between calls")
		}
		tenths[int(off*10/period)]++
	}
	for i, c := range tenths {
		if c < n*85/1000 || c > n*115/1000 {
			t.Errorf("tenth %d of the period holds %d of %d passes: %v", i, c, n, tenths)
		}
	}
}

// TestStartSlot: a deferred Stripe pass is due at the integration's offset into the first period
// after the start; a first pass that comes after that slot is due at the same offset of the next
// period (never at once, never more than a period away).
func TestStartSlot(t *testing.T) {
	start := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	const period = 5 * time.Minute
	offset := 2 * time.Minute
	for _, c := range []struct {
		after time.Duration // first pass this long after the start
		want  time.Duration // due this long after the start
	}{
		{0, 2 * time.Minute},
		{time.Minute, 2 * time.Minute},
		{2 * time.Minute, 7 * time.Minute}, // exactly at the slot: the next one
		{3 * time.Minute, 7 * time.Minute},
		{9 * time.Minute, 12 * time.Minute},
		{12*time.Minute + time.Second, 17 * time.Minute},
	} {
		now := start.Add(c.after)
		got := startSlot(start, now, offset, period)
		if got != start.Add(c.want) {
			t.Errorf("first pass %s after the start: due %s after it, want %s", c.after, got.Sub(start), c.want)
		}
		if !got.After(now) || got.Sub(now) > period {
			t.Errorf("first pass %s after the start: due in %s, want within (0, %s]", c.after, got.Sub(now), period)
		}
	}
}
