package receiver

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/yaml"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// TestFailingTargetIsVisible: while a system of record refuses events (and Stripe keeps retrying),
// the failing-since gauge holds when the run of failures began; it stays put across retries, so
// an alert measures the outage, and goes back to 0 when the target accepts again.
func TestFailingTargetIsVisible(t *testing.T) {
	failing := true
	target := &fakeTarget{name: "fhir", fail: func(int) error {
		if failing {
			return errors.New("503 from the FHIR server")
		}
		return nil
	}}
	ok := &fakeTarget{name: "http"}
	f := newFixture(t, secretOld, []relay.Target{ok, target})
	since := func() float64 {
		return testutil.ToFloat64(f.r.metrics.failingSince.WithLabelValues("fhir"))
	}
	if since() != 0 {
		t.Fatalf("failing since %v before any delivery", since())
	}
	before := time.Now().Unix()
	body := goodBody(t, "evt_alert_1")
	if rec, _ := post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now())); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("answer %d while a target fails, want 503", rec.Code)
	}
	first := since()
	if first < float64(before) || first > float64(time.Now().Unix()) {
		t.Fatalf("failing since %v, want the time of the first failure", first)
	}
	// Stripe's retry fails again: the run goes on, its start does not move.
	if rec, _ := post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now())); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("retry answered %d, want 503", rec.Code)
	}
	if since() != first {
		t.Errorf("failing since moved from %v to %v on a retry", first, since())
	}
	failing = false
	if rec, _ := post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now())); rec.Code != http.StatusOK {
		t.Fatalf("answer %d once the target recovered, want 200", rec.Code)
	}
	if since() != 0 {
		t.Errorf("failing since %v after the target accepted, want 0", since())
	}
	for target, want := range map[[2]string]float64{{"fhir", relayFailed}: 2, {"fhir", relayAccepted}: 1, {"http", relayAccepted}: 1,
		{"http", relayFailed}: 0} {
		if got := testutil.ToFloat64(f.r.metrics.relays.WithLabelValues(target[0], target[1])); got != want {
			t.Errorf("relays{target=%s,result=%s} = %v, want %v", target[0], target[1], got, want)
		}
	}
	if testutil.ToFloat64(f.r.metrics.failingSince.WithLabelValues("http")) != 0 {
		t.Error("the healthy target reports failures")
	}
}

// TestAlertRulesUseRealMetrics: every stripe_receiver_* series the shipped alert rules query is one
// the receiver registers, so a renamed metric cannot silently disable an alert.
func TestAlertRulesUseRealMetrics(t *testing.T) {
	f := newFixture(t, secretOld, []relay.Target{&fakeTarget{name: "http"}, &fakeTarget{name: "fhir"}})
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := make([]string, 0, len(families))
	for _, mf := range families {
		registered = append(registered, mf.GetName())
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		Spec struct {
			Groups []struct {
				Rules []struct {
					Alert, Expr, For string
					Labels           map[string]string
					Annotations      map[string]string
				}
			}
		}
	}
	if err := yaml.Unmarshal(raw, &rule); err != nil {
		t.Fatal(err)
	}
	series := regexp.MustCompile(`stripe_receiver_[a-z_]+`)
	alerts := 0
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			alerts++
			if r.Alert == "" || r.Expr == "" || r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" ||
				r.Annotations["description"] == "" {
				t.Errorf("rule %q lacks alert, expr, for, severity, summary or description", r.Alert)
			}
			for _, name := range series.FindAllString(r.Expr, -1) {
				base := regexp.MustCompile(`_(bucket|sum|count)$`).ReplaceAllString(name, "")
				if !slices.Contains(registered, name) && !slices.Contains(registered, base) {
					t.Errorf("rule %s queries %s, which the receiver does not register (it has %v)", r.Alert, name, registered)
				}
			}
		}
	}
	if alerts < 2 {
		t.Errorf("%d alert rules, want the failing-target ones", alerts)
	}
}
