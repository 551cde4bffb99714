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

package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/relay/fhirrelay"
	"github.com/clinicpay/stripe-operator/test/envtestbins"
	"github.com/clinicpay/stripe-operator/test/testbin"
)

// The sample keys the demo applies (config/samples): none may appear in any output or log.
var sampleKeys = []string{
	"sk_test_clinicAdemo0000000000000000", "pk_test_clinicAdemo0000000000000000",
	"sk_test_clinicBdemo0000000000000000", "pk_test_clinicBdemo0000000000000000",
}

// buildBinary returns the binary of one of the operator's commands (testbin.Build).
func buildBinary(t *testing.T, root, pkg string) string {
	t.Helper()
	bin, err := testbin.Build(root, pkg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestDemo runs `make demo`'s scenario end to end, with the real manager and receiver binaries,
// and checks each step's outcome, that nothing is left running, and that no key leaked.
func TestDemo(t *testing.T) {
	ctrllog.SetLogger(logr.Discard()) // envtest logs through controller-runtime's logger
	assets, err := envtestbins.Dir()
	if err != nil {
		t.Fatal(err)
	}
	kubectl := os.Getenv("KUBECTL")
	if kubectl == "" {
		var err error
		if kubectl, err = exec.LookPath("kubectl"); err != nil {
			t.Fatal("kubectl not found in PATH and KUBECTL is not set: the demo drives the cluster with kubectl")
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	manager, receiverBin := buildBinary(t, root, "./cmd"), buildBinary(t, root, "./cmd/receiver")

	var out bytes.Buffer
	work := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, Config{
		Root: root, Assets: assets, Kubectl: kubectl, WorkDir: work, Out: &out,
		Manager: manager, Receiver: receiverBin,
	})
	t.Logf("demo ran in %s", time.Since(start).Round(time.Millisecond))
	if err != nil || t.Failed() {
		t.Logf("demo output:\n%s", out.String())
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	text := out.String()
	defer func() {
		if t.Failed() {
			t.Logf("demo output:\n%s", text)
		}
	}()

	t.Run("headed steps", func(t *testing.T) {
		for _, h := range []string{"== Starting", "== 1. ", "== 2. ", "== 3. ", "== 4. ", "== 5. ", "== 6. ", "== 7. ", "== 8. ",
			"== Cleaning up", "== Demo finished"} {
			if !strings.Contains(text, h) {
				t.Errorf("output has no %q heading", h)
			}
		}
	})

	t.Run("step 2: Connected, shown by kubectl's printer columns", func(t *testing.T) {
		if !res.Connected || !strings.HasPrefix(res.EndpointID, "we_") {
			t.Fatalf("connected=%v endpoint=%q", res.Connected, res.EndpointID)
		}
		header := regexp.MustCompile(`NAMESPACE\s+NAME\s+CLINIC\s+MODE\s+CONNECTED\s+REASON\s+ENDPOINT\s+AGE`)
		row := regexp.MustCompile(`default\s+clinic-a-test\s+clinic-a\s+Test\s+True\s+Connected\s+` + res.EndpointID + `\s+`)
		if !header.MatchString(res.Table) || !row.MatchString(res.Table) {
			t.Errorf("kubectl get si -A printed:\n%s", res.Table)
		}
	})

	t.Run("step 3: both events reached the clinic's billing and FHIR systems once", func(t *testing.T) {
		if len(res.Events) != 2 {
			t.Fatalf("events = %+v", res.Events)
		}
		var billing []Received
		fhir := map[string]int{}
		for _, r := range res.Received {
			switch r.System {
			case "billing":
				billing = append(billing, r)
			case "fhir":
				if r.Created {
					fhir[r.ResourceType]++
				}
			}
		}
		for i, ev := range res.Events {
			if !slices.Equal(ev.Statuses, []int{200}) {
				t.Errorf("%s (%s): first delivery statuses %v, want [200]", ev.Type, ev.ID, ev.Statuses)
			}
			if i >= len(billing) {
				t.Errorf("billing got %d envelopes, want 2", len(billing))
				continue
			}
			var env struct {
				ID, Type, ClinicID string
				Object             map[string]any
			}
			if err := json.Unmarshal(billing[i].Body, &env); err != nil {
				t.Fatalf("envelope: %v", err)
			}
			if env.ID != ev.ID || env.Type != ev.Type || env.ClinicID != "clinic-a" || billing[i].Key != ev.ID || env.Object["currency"] != "usd" {
				t.Errorf("envelope %d = %+v (Idempotency-Key %q), want event %s", i, env, billing[i].Key, ev.ID)
			}
		}
		if len(billing) != 2 || fhir["PaymentNotice"] != 1 || fhir["PaymentReconciliation"] != 1 {
			t.Errorf("clinic system received %d envelopes and FHIR %v, want 2 and one PaymentNotice + one PaymentReconciliation", len(billing), fhir)
		}
		if !strings.Contains(text, "clinic billing system ← POST /stripe-events") || !strings.Contains(text, `"resourceType": "PaymentNotice"`) {
			t.Error("the output does not show what the clinic system received")
		}
	})

	t.Run("step 4: the payout is written once, with exactly the payment the clinic never received filled in", func(t *testing.T) {
		checkPayout(t, res.Payout)
	})

	t.Run("step 5: the dispute is flagged on the FHIR server and to the billing system", func(t *testing.T) {
		checkDispute(t, res.Dispute)
	})

	t.Run("step 6: DeliveriesArriving is True through the public URL", func(t *testing.T) {
		if res.Delivery.Status != "True" || !strings.Contains(text, "DeliveriesArriving=True") {
			t.Errorf("DeliveriesArriving = %+v", res.Delivery)
		}
	})

	t.Run("step 7: a Live integration with a test key is refused without a Stripe call", func(t *testing.T) {
		if res.LiveReason != v1.ReasonModeMismatch || !strings.Contains(res.LiveMessage, "spec.mode is Live") {
			t.Errorf("reason %q message %q, want %s", res.LiveReason, res.LiveMessage, v1.ReasonModeMismatch)
		}
		if res.LiveStripeCalls != 0 {
			t.Errorf("%d Stripe calls with the refused key, want 0", res.LiveStripeCalls)
		}
		if !regexp.MustCompile(`clinic-b-live\s+clinic-b\s+Live\s+False\s+ModeMismatch`).MatchString(text) {
			t.Error("the output does not show the Reason column of clinic-b-live")
		}
	})

	t.Run("step 8: deletion removed the endpoint and the receivers", func(t *testing.T) {
		if res.EndpointStatusAfter != 404 || res.EndpointsLeft != 0 {
			t.Errorf("after deletion: GET endpoint %d, %d endpoints left; want 404 and 0", res.EndpointStatusAfter, res.EndpointsLeft)
		}
		if res.ReceiversAfterDeletion != 0 {
			t.Errorf("%d receivers still running after deletion", res.ReceiversAfterDeletion)
		}
	})

	t.Run("cleanup: nothing left running", func(t *testing.T) {
		if res.RunningAfterDown != 0 {
			t.Errorf("%d processes still running", res.RunningAfterDown)
		}
		if len(res.PIDs) != 1 {
			t.Errorf("started %d receiver processes, want 1 (a Test-mode receiver's default replicas)", len(res.PIDs))
		}
		for _, pid := range res.PIDs {
			if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
				t.Errorf("receiver pid %d still exists", pid)
			}
		}
	})

	t.Run("no key in the output or any log", func(t *testing.T) {
		logs := 0
		err := filepath.WalkDir(work, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".log") {
				return err
			}
			logs++
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, k := range sampleKeys {
				if bytes.Contains(raw, []byte(k)) {
					t.Errorf("%s contains a sample key", path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if logs < 2 {
			t.Errorf("scanned %d logs, want the manager's and the receiver's (one replica in Test mode)", logs)
		}
		for _, k := range sampleKeys {
			if strings.Contains(text, k) {
				t.Errorf("the demo output contains %s…", k[:8])
			}
		}
	})
}

func TestResolveArg(t *testing.T) {
	n := newNetwork("127.0.0.1:1001", "127.0.0.1:1002")
	for in, want := range map[string]string{
		"--http-target-url=http://billing.clinic-a.svc.cluster.local/stripe-events": "--http-target-url=http://127.0.0.1:1001/stripe-events",
		"--fhir-base-url=https://fhir.ns.svc.cluster.local:8443/r4":                 "--fhir-base-url=http://127.0.0.1:1002/r4",
		"--http-target-url=https://billing.example.com/hook":                        "--http-target-url=https://billing.example.com/hook",
		"--http-target-url=http://other.ns.svc.cluster.local/x":                     "--http-target-url=http://other.ns.svc.cluster.local/x",
		"--clinic-id=clinic-a": "--clinic-id=clinic-a",
		"positional":           "positional",
	} {
		if got := n.resolveArg(in); got != want {
			t.Errorf("resolveArg(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"sk_test_clinicAdemo0000000000000000": "sk_test_…0000",
		"rk_live_abcdefgh":                    "rk_live_…efgh",
		"sk_test_ab":                          "****",
		"nounderscore":                        "****",
	} {
		if got := mask(in); got != want {
			t.Errorf("mask(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkPayout checks step 4: the FHIR server got one PaymentReconciliation of the payout, found
// the notice of the payment whose event it had, and created one notice, the missing payment's,
// marked as filled in from the payout; the billing system got the payout.reconciled envelope;
// status.finance.payouts says so.
func checkPayout(t *testing.T, p *Payout) {
	t.Helper()
	if p == nil || !strings.HasPrefix(p.ID, "po_") {
		t.Fatalf("payout = %+v", p)
	}
	st := p.Status
	if st.LastPayoutID != p.ID || st.LastFilled != 1 || !slices.Equal(st.LastFilledIDs, []string{p.MissingCharge}) {
		t.Errorf("status.finance.payouts = %+v, want lastPayoutID %s, lastFilled 1, lastFilledIDs [%s]", st, p.ID, p.MissingCharge)
	}
	if !strings.Contains(p.JSONPath, `"lastFilled":1`) || !strings.Contains(p.JSONPath, p.MissingCharge) {
		t.Errorf("kubectl printed %s", p.JSONPath)
	}
	var recons, created, found, envelopes int
	for _, r := range p.Received {
		switch {
		case r.System == "billing":
			var env struct{ Type string }
			if json.Unmarshal(r.Body, &env) == nil && env.Type == "payout.reconciled" {
				envelopes++
			}
		case r.ResourceType == "PaymentReconciliation" && r.Created:
			recons++
			var pr fhirrelay.PaymentReconciliation
			if err := json.Unmarshal(r.Body, &pr); err != nil {
				t.Fatal(err)
			}
			if pr.PaymentAmount.Value != "198.45" || pr.PaymentAmount.Currency != "USD" || len(pr.Detail) != 4 {
				t.Errorf("PaymentReconciliation: %s %s with %d details, want 198.45 USD (two payments less their fees) in 4",
					pr.PaymentAmount.Value, pr.PaymentAmount.Currency, len(pr.Detail))
			}
		case r.ResourceType == "PaymentNotice" && r.Created:
			created++
			var n fhirrelay.PaymentNotice
			if err := json.Unmarshal(r.Body, &n); err != nil {
				t.Fatal(err)
			}
			if len(n.Identifier) == 0 || n.Identifier[0].Value != p.MissingCharge || len(n.Extension) == 0 ||
				n.Extension[0].URL != fhirrelay.ExtensionFilledFromPayout || n.Extension[0].ValueString != p.ID {
				t.Errorf("filled-in PaymentNotice %s", r.Body)
			}
		case r.ResourceType == "PaymentNotice":
			found++
			if !strings.HasSuffix(r.Key, "|"+p.PaidCharge) {
				t.Errorf("found a notice by %q, want the paid charge %s", r.Key, p.PaidCharge)
			}
		}
	}
	if recons != 1 || created != 1 || found < 1 || envelopes < 1 {
		t.Errorf("for the payout the clinic got %d PaymentReconciliation, %d new and %d found PaymentNotice, %d payout.reconciled envelopes; "+
			"want 1, 1, ≥1 (a retry finds it again), ≥1", recons, created, found, envelopes)
	}
}

// checkDispute checks step 5: one Flag keyed on the Dispute flag of the event, about the dispute,
// and the event's envelope with the flag, keyed on the flag id; status counts it.
func checkDispute(t *testing.T, d *Dispute) {
	t.Helper()
	if d == nil || !strings.HasPrefix(d.EventID, "evt_") {
		t.Fatalf("dispute = %+v", d)
	}
	flagID := "Dispute/" + d.EventID
	if d.Flag == nil {
		t.Fatal("the FHIR server received no Flag")
	}
	var f fhirrelay.Flag
	if err := json.Unmarshal(d.Flag.Body, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Identifier) != 1 || f.Identifier[0].Value != flagID || f.Status != "active" ||
		len(f.Code.Coding) == 0 || f.Code.Coding[0].Code != "Dispute" ||
		!slices.ContainsFunc(f.Extension, func(e fhirrelay.Extension) bool { return e.ValueString == d.DisputeID }) {
		t.Errorf("Flag %s", d.Flag.Body)
	}
	if d.Envelope == nil {
		t.Fatal("the billing system received no flagged envelope")
	}
	var env struct {
		ID, Type string
		Flags    []struct{ Rule string }
	}
	if err := json.Unmarshal(d.Envelope.Body, &env); err != nil {
		t.Fatal(err)
	}
	if d.Envelope.Key != flagID || env.ID != d.EventID || env.Type != "charge.dispute.created" || len(env.Flags) != 1 || env.Flags[0].Rule != "Dispute" {
		t.Errorf("envelope %s (Idempotency-Key %q)", d.Envelope.Body, d.Envelope.Key)
	}
	if d.Status.Flags != 1 || d.Status.LastFlag == nil || d.Status.LastFlag.Rule != "Dispute" || d.Status.LastFlag.EventID != d.EventID {
		t.Errorf("status.finance.anomalies = %+v", d.Status)
	}
}
