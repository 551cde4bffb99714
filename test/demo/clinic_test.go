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
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestFHIRConditionalCreate checks the demo FHIR server the way the receiver's payout path uses
// it: If-None-Exist on identifier matches any one of a stored resource's identifiers and answers
// 200 with the stored resource; no match creates (201); several matches are 412.
func TestFHIRConditionalCreate(t *testing.T) {
	c, err := startClinicSystem(&printer{w: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.close(context.Background()) }()
	base := "http://" + c.fhirAddr + "/r4/"
	post := func(typ, cond, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+typ, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		if cond != "" {
			req.Header.Set("If-None-Exist", cond)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var got map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&got)
		return resp.StatusCode, got
	}
	const (
		pi = `{"system":"https://stripe.com/payment_intents","value":"pi_1"}`
		ch = `{"system":"https://stripe.com/charges","value":"ch_1"}`
	)
	eventNotice := `{"resourceType":"PaymentNotice","identifier":[` + pi + `,` + ch + `],"status":"active"}`
	st, got := post("PaymentNotice", "identifier=https://stripe.com/payment_intents|pi_1", eventNotice)
	if st != http.StatusCreated || got["id"] != "1" {
		t.Fatalf("first create: %d %v", st, got)
	}
	// The payout's gap-fill looks the same payment up by its charge (the value query-escaped).
	filled := `{"resourceType":"PaymentNotice","identifier":[` + ch + `],"extension":[{"url":"x","valueString":"po_1"}]}`
	st, got = post("PaymentNotice", "identifier=https://stripe.com/charges|"+url.QueryEscape("ch_1"), filled)
	if st != http.StatusOK || got["id"] != "1" || got["extension"] != nil {
		t.Errorf("conditional create of an existing payment: %d %v, want 200 with the stored notice", st, got)
	}
	filled2 := strings.ReplaceAll(filled, "ch_1", "ch_2")
	if st, _ := post("PaymentNotice", "identifier=https://stripe.com/charges|ch_2", filled2); st != http.StatusCreated {
		t.Errorf("a new payment: %d, want 201", st)
	}
	// Another system with the same value does not match; a value without system matches any.
	if st, _ := post("Flag", "identifier=https://stripe.com/charges|ch_1", `{"resourceType":"Flag","identifier":[`+ch+`]}`); st != http.StatusCreated {
		t.Errorf("another resource type: %d, want 201", st)
	}
	_, _ = post("PaymentNotice", "", eventNotice) // an unconditional duplicate
	if st, got := post("PaymentNotice", "identifier=ch_1", filled); st != http.StatusPreconditionFailed || got["resourceType"] != "OperationOutcome" {
		t.Errorf("two matches: %d %v, want 412 with an OperationOutcome", st, got)
	}
	if st, _ := post("PaymentNotice", "patient=1", filled); st != http.StatusBadRequest {
		t.Errorf("an unsupported search: %d, want 400", st)
	}
	if st, _ := post("Flag", "", eventNotice); st != http.StatusBadRequest {
		t.Errorf("a PaymentNotice posted as a Flag: %d, want 400", st)
	}

	resp, err := http.Get(base + "PaymentNotice?identifier=" + url.QueryEscape("https://stripe.com/charges|ch_1"))
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Type  string
		Total int
	}
	_ = json.NewDecoder(resp.Body).Decode(&bundle)
	_ = resp.Body.Close()
	if bundle.Type != "searchset" || bundle.Total != 2 {
		t.Errorf("search: %+v, want a searchset of 2", bundle)
	}
	resp, err = http.Get(base + "PaymentNotice/2")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("read PaymentNotice/2: %d", resp.StatusCode)
	}
}
