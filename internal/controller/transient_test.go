package controller

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// TestTransientFailuresWithinGraceKeepConnected: a Connected integration whose Stripe calls fail
// with 429 and then 500 stays Connected, without a Warning Event and without a status write per
// pass, while the failures are younger than the grace; the metric shows them meanwhile. Past the
// grace it turns False with a Warning; once Stripe answers again it is Connected again.
func TestTransientFailuresWithinGraceKeepConnected(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const name = "clinic-grace"
	k, _ := connected(t, ns, name)
	markAvailable(t, ns, receiverName(getSI(t, ns, name)))
	waitCondition(t, ns, name, v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
	warningsBefore := warnings(t, ns, name)

	injected := time.Now()
	fake.InjectFault(stripefake.Fault{Key: k.secret, Status: http.StatusTooManyRequests})
	t.Cleanup(func() { fake.ClearFaultsFor(k.secret) })
	// The next resync fails; the first failing pass writes the message, once.
	var si *v1.StripeIntegration
	eventually(t, waitShort, "failing calls shown in Authenticated", func() (bool, string) {
		si = getSI(t, ns, name)
		c := conditionOrNone(si, v1.ConditionAuthenticated)
		return strings.HasPrefix(c.Message, "Stripe calls failing since"), c.Message
	})
	graced := si.ResourceVersion
	if v, ok := failingSinceMetric(ns, name); !ok || v < float64(injected.Unix()) || v > float64(time.Now().Unix()) {
		t.Errorf("stripe_operator_transient_failure_since_timestamp_seconds = %v (present: %t), want the failures' start", v, ok)
	}
	// A few more failing passes (backoff from testRetryBase), now with 500s: nothing changes.
	calls := fake.Calls(k.secret)
	fake.ClearFaultsFor(k.secret)
	fake.InjectFault(stripefake.Fault{Key: k.secret, Status: http.StatusInternalServerError})
	eventually(t, testGrace, "more failing passes", func() (bool, string) {
		assertConnectedWithin(t, ns, name, injected)
		n := fake.Calls(k.secret) - calls
		return n >= 3, fmt.Sprintf("%d failing calls", n)
	})
	// Events first, then the object: while it is still Connected, no flip can have raised a Warning.
	n := warnings(t, ns, name)
	cur := getSI(t, ns, name)
	if c := getCondition(t, cur, v1.ConditionConnected); c.Status != metav1.ConditionTrue {
		t.Fatalf("Connected = %s/%s %s after the faults began (grace %s): too slow to observe the grace",
			c.Status, c.Reason, time.Since(injected).Round(time.Millisecond), testGrace)
	}
	if cur.ResourceVersion != graced {
		t.Errorf("failing passes within the grace rewrote the object: resourceVersion %s -> %s", graced, cur.ResourceVersion)
	}
	if n != warningsBefore {
		t.Errorf("%d Warning Events within the grace", n-warningsBefore)
	}

	// Past the grace: the old behaviour, False with the transient reason and a Warning Event.
	si = waitCondition(t, ns, name, v1.ConditionConnected, metav1.ConditionFalse, v1.ReasonStripeUnavailable, testGrace+waitShort)
	if d := time.Since(injected); d < testGrace {
		t.Errorf("reported after %s, before the %s grace", d, testGrace)
	}
	if c := getCondition(t, si, v1.ConditionAuthenticated); c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonStripeUnavailable {
		t.Errorf("Authenticated = %s/%s past the grace", c.Status, c.Reason)
	}
	eventually(t, waitShort, "a Warning Event", func() (bool, string) {
		n := warnings(t, ns, name)
		return n > warningsBefore, fmt.Sprintf("%d Warnings", n)
	})

	fake.ClearFaultsFor(k.secret)
	si = waitCondition(t, ns, name, v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)
	if c := getCondition(t, si, v1.ConditionAuthenticated); strings.Contains(c.Message, "failing") {
		t.Errorf("Authenticated message after recovery: %q", c.Message)
	}
	if _, ok := failingSinceMetric(ns, name); ok {
		t.Error("the failing-since series outlived the failures")
	}
}

// assertConnectedWithin fails the test if the integration is not Connected while the failures
// that began after start are still younger than the grace.
func assertConnectedWithin(t *testing.T, ns, name string, start time.Time) {
	t.Helper()
	c := getCondition(t, getSI(t, ns, name), v1.ConditionConnected)
	if c.Status != metav1.ConditionTrue && time.Since(start) < testGrace {
		t.Fatalf("Connected = %s/%s (%s) %s after the faults began, within the %s grace",
			c.Status, c.Reason, c.Message, time.Since(start).Round(time.Millisecond), testGrace)
	}
}

func warnings(t *testing.T, ns, name string) int {
	t.Helper()
	n := 0
	for _, e := range listEvents(t, ns) {
		if e.Regarding.Name == name && e.Type == "Warning" {
			n++
		}
	}
	return n
}

// failingSinceMetric reads the integration's failing-since gauge, if the series exists.
func failingSinceMetric(ns, name string) (float64, bool) {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		testMetrics.FailingSince.Collect(ch)
		close(ch)
	}()
	var v float64
	found := false
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			continue
		}
		labels := map[string]string{}
		for _, l := range d.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["namespace"] == ns && labels["name"] == name {
			v, found = d.GetGauge().GetValue(), true
		}
	}
	return v, found
}
