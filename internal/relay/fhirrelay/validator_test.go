package fhirrelay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// validationResult is one entry of hack/fhir-validator/validate.js's output.
type validationResult struct {
	Index        int    `json:"index"`
	ResourceType string `json:"resourceType"`
	Valid        bool   `json:"valid"`
	Messages     []struct {
		Location string `json:"location"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
	} `json:"messages"`
}

// validatorScript finds validate.js: $FHIR_VALIDATOR (set by `make test`), else the copy
// `make fhir-validator` installs under bin/. A missing validator fails the test rather than
// skipping it, so resources are never reported valid without having been checked.
func validatorScript(t *testing.T) (node, script string) {
	t.Helper()
	script = os.Getenv("FHIR_VALIDATOR")
	if script == "" {
		script = filepath.Join("..", "..", "..", "bin", "fhir-validator", "validate.js")
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("FHIR validator %s not found (%v): run `make fhir-validator`", script, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "fhir", "package.json")); err != nil {
		t.Fatalf("FHIR validator's npm package missing next to %s: run `make fhir-validator`", script)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found (%v): install Node.js, then run `make fhir-validator`", err)
	}
	return node, script
}

// runValidator validates all resources in one node process (FHIR.js takes a moment to load
// R4) and returns the per-resource results and the exit code.
func runValidator(t *testing.T, resources []json.RawMessage) ([]validationResult, int) {
	t.Helper()
	node, script := validatorScript(t)
	input, err := json.Marshal(resources)
	if err != nil {
		t.Fatalf("encode resources: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("run %s %s: %v\n%s", node, script, err, stderr.String())
		}
		code = exit.ExitCode()
	}
	var results []validationResult
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("validator output is not JSON (exit %d): %v\nstdout: %s\nstderr: %s", code, err, stdout.String(), stderr.String())
	}
	if len(results) != len(resources) {
		t.Fatalf("validator returned %d results for %d resources", len(results), len(resources))
	}
	return results, code
}

// emitted is one resource the mapping produced, named for failure messages.
type emitted struct {
	name string
	json json.RawMessage
}

// everythingEmitted maps every mapping case, plus a payment in every currency of the
// conversion table, and returns all resources written.
func everythingEmitted(t *testing.T) []emitted {
	t.Helper()
	var out []emitted
	add := func(name string, target *Target, fixture string, patch func(event, object map[string]any)) {
		writes, err := target.mapEvent(loadEvent(t, fixture, patch))
		if err != nil {
			t.Fatalf("%s: mapEvent: %v", name, err)
		}
		for _, w := range writes {
			out = append(out, emitted{name: name, json: json.RawMessage(mustJSON(t, w.resource))})
		}
	}
	for _, tc := range mappingCases() {
		add(tc.name, newTestTarget(t, tc.cfg), tc.fixture, tc.patch)
	}
	target := newTestTarget(t, Config{})
	for _, c := range conversionCases {
		add("payment in "+c.code+" "+c.value, target, "payment_intent.succeeded", func(_, o map[string]any) {
			o["amount"], o["amount_received"], o["currency"] = c.amount, c.amount, c.currency
		})
	}
	return out
}

// TestEmittedResourcesAreValidFHIR sends everything the mapping emits through FHIR.js (an
// independent R4 validator) and through the R4 rules FHIR.js does not check (fhirRules).
func TestEmittedResourcesAreValidFHIR(t *testing.T) {
	all := everythingEmitted(t)
	if len(all) < 30 {
		t.Fatalf("only %d resources emitted; the mapping cases lost their writes", len(all))
	}
	raw := make([]json.RawMessage, len(all))
	for i, e := range all {
		raw[i] = e.json
		for _, problem := range fhirRules(e.json) {
			t.Errorf("%s: %s", e.name, problem)
		}
	}
	results, code := runValidator(t, raw)
	for i, r := range results {
		if !r.Valid {
			t.Errorf("%s: FHIR.js says invalid: %+v\n%s", all[i].name, r.Messages, all[i].json)
		}
		for _, m := range r.Messages {
			// Info about the currencies value set FHIR.js lacks is expected; anything else
			// (unknown codes, warnings) deserves a look.
			if m.Severity != "info" {
				t.Errorf("%s: FHIR.js %s at %s: %s", all[i].name, m.Severity, m.Location, m.Message)
			}
		}
	}
	if code != 0 {
		t.Errorf("validator exit code %d, want 0", code)
	}
}

// TestValidatorRejectsInvalid is the negative control: resources broken on purpose must be
// reported invalid, so a green TestEmittedResourcesAreValidFHIR means something. It also
// pins what FHIR.js enforces: PaymentNotice's required elements, unknown elements, reference
// target types, decimal type, required code bindings, and required elements of contained
// resources.
func TestValidatorRejectsInvalid(t *testing.T) {
	target := newTestTarget(t, Config{})
	writes, err := target.mapEvent(loadEvent(t, "payment_intent.succeeded", nil))
	if err != nil || len(writes) != 1 {
		t.Fatalf("mapEvent: %v (%d writes)", err, len(writes))
	}
	valid := mustJSON(t, writes[0].resource)
	broken := []struct {
		name, location string
		edit           func(r map[string]any)
	}{
		{"without status", "PaymentNotice.status", func(r map[string]any) { delete(r, "status") }},
		{"without created", "PaymentNotice.created", func(r map[string]any) { delete(r, "created") }},
		{"without payment", "PaymentNotice.payment", func(r map[string]any) { delete(r, "payment") }},
		{"without recipient", "PaymentNotice.recipient", func(r map[string]any) { delete(r, "recipient") }},
		{"without amount", "PaymentNotice.amount", func(r map[string]any) { delete(r, "amount") }},
		{"with an unknown element", "PaymentNotice.stripeEvent", func(r map[string]any) { r["stripeEvent"] = "evt_1" }},
		{"with a status outside fm-status", "PaymentNotice.status", func(r map[string]any) { r["status"] = "succeeded" }},
		{"paying a Claim instead of a PaymentReconciliation", "PaymentNotice.payment",
			func(r map[string]any) { r["payment"] = map[string]any{"reference": "Claim/claim-2002"} }},
		{"notifying a Patient", "PaymentNotice.recipient",
			func(r map[string]any) { r["recipient"] = map[string]any{"reference": "Patient/pat-1001"} }},
		{"with the amount as a string", "PaymentNotice.amount.value",
			func(r map[string]any) { r["amount"].(map[string]any)["value"] = "125.50" }},
		{"with a contained reconciliation lacking paymentAmount", "PaymentReconciliation.paymentAmount",
			func(r map[string]any) { delete(r["contained"].([]any)[0].(map[string]any), "paymentAmount") }},
	}
	resources := []json.RawMessage{json.RawMessage(valid)}
	for _, b := range broken {
		var r map[string]any
		if err := json.Unmarshal([]byte(valid), &r); err != nil {
			t.Fatal(err)
		}
		b.edit(r)
		resources = append(resources, json.RawMessage(mustJSON(t, r)))
	}
	results, code := runValidator(t, resources)
	if code != 1 {
		t.Errorf("validator exit code %d, want 1 (some invalid)", code)
	}
	if !results[0].Valid {
		t.Errorf("control resource reported invalid: %+v", results[0].Messages)
	}
	for i, b := range broken {
		r := results[i+1]
		if r.Valid {
			t.Errorf("PaymentNotice %s: reported valid", b.name)
			continue
		}
		found := false
		for _, m := range r.Messages {
			found = found || (m.Severity == "error" && m.Location == b.location)
		}
		if !found {
			t.Errorf("PaymentNotice %s: no error at %s: %+v", b.name, b.location, r.Messages)
		}
	}
}
