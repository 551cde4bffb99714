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
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/relay/fhirrelay"
)

// Payout is what the finance steps observed.
type Payout struct {
	// ID is the payout the fake paid; PaidCharge the charge of the payment the clinic received
	// through its event (step 3), MissingCharge the one whose event never reached it.
	ID, PaidCharge, MissingCharge string
	// Status is status.finance.payouts once it named the payout; JSONPath what kubectl printed.
	Status   v1.PayoutsStatus
	JSONPath string
	// Received is what the clinic system got for the payout.
	Received []Received
}

// Delivery is the DeliveriesArriving condition the demo waited for.
type Delivery struct {
	Status, Reason, Message string
}

// stripeID makes an id of Stripe's shape for the demo's own payments.
func stripeID(prefix string) string {
	return prefix + "_" + crand.Text()[:20]
}

// paymentObject is a PaymentIntent that succeeded, naming its charge (latest_charge) as Stripe's
// does, so the clinic's PaymentNotice carries both ids and a payout settling the charge finds it.
func paymentObject(pi, ch string, amount int64) map[string]any {
	return map[string]any{
		"id": pi, "object": "payment_intent", "amount": amount, "amount_received": amount, "currency": "usd",
		"status": "succeeded", "customer": "cus_demo1001", "created": time.Now().Unix(), "latest_charge": ch,
		"metadata": map[string]any{"patient_id": "pat-1001", "claim_id": "claim-a1", "invoice_id": "inv-a1"},
	}
}

// payoutTxn is one balance transaction of the fake's POST /_fake/payouts.
type payoutTxn struct {
	Type        string      `json:"type"`
	Amount      int64       `json:"amount"`
	Currency    string      `json:"currency"`
	Source      string      `json:"source"`
	Description string      `json:"description,omitempty"`
	Fees        []payoutFee `json:"fees,omitempty"`
}

type payoutFee struct {
	Amount      int64  `json:"amount"`
	Type        string `json:"type"`
	Description string `json:"description,omitempty"`
}

// payoutStep has Stripe pay out the payment the clinic received (with its fee) and one whose
// event never reached the clinic, waits for the operator to write it, and shows what the clinic's
// systems of record hold now.
func (e *Env) payoutStep(ctx context.Context, key, paidCharge string) (*Payout, error) {
	p := &Payout{PaidCharge: paidCharge, MissingCharge: stripeID("ch")}
	txns := []payoutTxn{
		{Type: "charge", Amount: 12500, Currency: "usd", Source: paidCharge, Description: "Visit, pat-1001",
			Fees: []payoutFee{{Amount: 393, Type: "stripe_fee", Description: "Stripe processing fees"}}},
		{Type: "charge", Amount: 8000, Currency: "usd", Source: p.MissingCharge, Description: "Visit, pat-1002",
			Fees: []payoutFee{{Amount: 262, Type: "stripe_fee", Description: "Stripe processing fees"}}},
	}
	shown, _ := json.Marshal(map[string]any{"key": mask(key), "transactions": txns, "pay": true}) // plain data
	e.out.cmd(fmt.Sprintf("curl -s -X POST $STRIPE_ADMIN_URL/payouts -d '%s'", shown))
	body, _ := json.Marshal(map[string]any{"key": key, "transactions": txns, "pay": true})
	var got struct {
		ID           string   `json:"id"`
		Transactions []string `json:"transactions"`
		Error        string   `json:"error"`
	}
	before := len(e.clinic.snapshot())
	status, err := e.call(ctx, http.MethodPost, e.fakeURL+"/_fake/payouts", "", bytes.NewReader(body), &got)
	if err != nil {
		return p, err
	}
	if status != http.StatusOK || got.ID == "" {
		return p, fmt.Errorf("create the payout: %d %s", status, got.Error)
	}
	p.ID = got.ID
	e.out.info("Stripe paid %s (automatic, reconciled): %s settled, %s never reached the clinic as an event", p.ID,
		paidCharge, p.MissingCharge)

	e.out.info("the operator checks payouts every %s here (--payout-check-interval) and hands this one to the receiver, which writes it:",
		payoutCheckInterval)
	if _, err := e.kubectl(ctx, "wait", "stripeintegration/"+sampleName, "-n", sampleNamespace,
		"--for=jsonpath={.status.finance.payouts.lastPayoutID}="+p.ID, "--timeout="+waitTimeout.String()); err != nil {
		return p, err
	}
	if p.JSONPath, err = e.kubectl(ctx, "get", "si", sampleName, "-n", sampleNamespace, "-o", "jsonpath={.status.finance.payouts}"); err != nil {
		return p, err
	}
	var si v1.StripeIntegration
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: sampleNamespace, Name: sampleName}, &si); err != nil {
		return p, fmt.Errorf("read %s: %w", sampleName, err)
	}
	if si.Status.Finance != nil && si.Status.Finance.Payouts != nil {
		p.Status = *si.Status.Finance.Payouts
	}
	p.Received = e.clinic.snapshot()[before:]
	e.showPayout(p)
	return p, nil
}

const resourceNotice = "PaymentNotice"

// showPayout prints the payout as a finance person reads it: the deposit's reconciliation on the
// FHIR server, the payments it filled in and found, and the billing system's envelope.
func (e *Env) showPayout(p *Payout) {
	for _, r := range p.Received {
		if r.ResourceType != "PaymentReconciliation" || !r.Created {
			continue
		}
		var pr fhirrelay.PaymentReconciliation
		if json.Unmarshal(r.Body, &pr) != nil {
			continue
		}
		e.out.info("FHIR PaymentReconciliation/%s, the bank deposit: %s %s arriving %s", r.ID, pr.PaymentAmount.Value,
			pr.PaymentAmount.Currency, pr.PaymentDate)
		e.out.info("  %-32s %-11s %-14s %8s  %s", "balance transaction", "type", "", "amount", "payment (its PaymentNotice)")
		for _, d := range pr.Detail {
			var txn, amount, pay, code string
			if d.Identifier != nil {
				txn = d.Identifier.Value
			}
			if d.Amount != nil {
				amount = string(d.Amount.Value)
			}
			if d.Request != nil && d.Request.Identifier != nil {
				pay = d.Request.Identifier.Value
			}
			if len(d.Type.Coding) > 0 {
				code = d.Type.Coding[0].Code
			}
			e.out.info("  %-32s %-11s %-14s %8s  %s", txn, code, d.Type.Text, amount, pay)
		}
	}
	for _, r := range p.Received {
		if r.ResourceType != resourceNotice {
			continue
		}
		if !r.Created {
			e.out.info("FHIR PaymentNotice/%s (%s): already there from its event, left alone", r.ID, strings.TrimPrefix(r.Key, "identifier="))
			continue
		}
		var n fhirrelay.PaymentNotice
		if json.Unmarshal(r.Body, &n) != nil {
			continue
		}
		ids := make([]string, 0, len(n.Identifier))
		for _, id := range n.Identifier {
			ids = append(ids, id.Value)
		}
		e.out.info("FHIR PaymentNotice/%s filled in from the payout: %s, %s %s paid on %s (its event never reached the clinic)",
			r.ID, strings.Join(ids, ", "), n.Amount.Value, n.Amount.Currency, n.PaymentDate)
	}
	for _, r := range p.Received {
		var env struct{ Type string }
		if r.System == systemBilling && json.Unmarshal(r.Body, &env) == nil {
			e.out.info("billing system: a %s envelope with every item (Idempotency-Key %s)", env.Type, r.Key)
		}
	}
}

// deliveryStep waits for the operator's delivery check and shows DeliveriesArriving.
func (e *Env) deliveryStep(ctx context.Context) (Delivery, error) {
	e.out.info("the operator checks every %s here (--delivery-check-interval): a signed probe to the public URL, and Stripe's undelivered events",
		deliveryCheckInterval)
	if _, err := e.kubectl(ctx, "wait", "--for=condition="+v1.ConditionDeliveriesArriving, "stripeintegration/"+sampleName,
		"-n", sampleNamespace, "--timeout="+waitTimeout.String()); err != nil {
		return Delivery{}, err
	}
	jsonPath := `jsonpath={range .status.conditions[?(@.type=="` + v1.ConditionDeliveriesArriving + `")]}` +
		`{.type}={.status} {.reason}: {.message}{"\n"}{end}`
	if _, err := e.kubectl(ctx, "get", "si", sampleName, "-n", sampleNamespace, "-o", jsonPath); err != nil {
		return Delivery{}, err
	}
	var si v1.StripeIntegration
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: sampleNamespace, Name: sampleName}, &si); err != nil {
		return Delivery{}, fmt.Errorf("read %s: %w", sampleName, err)
	}
	var d Delivery
	if c := meta.FindStatusCondition(si.Status.Conditions, v1.ConditionDeliveriesArriving); c != nil {
		d = Delivery{Status: string(c.Status), Reason: c.Reason, Message: c.Message}
	}
	return d, nil
}

// Dispute is what the dispute step observed.
type Dispute struct {
	// EventID is the charge.dispute.created event, DisputeID its dispute.
	EventID, DisputeID string
	// Flag is the FHIR Flag the clinic's server created for it, Envelope the billing system's
	// envelope of the flagged event.
	Flag, Envelope *Received
	// Status is status.finance.anomalies once it counted the flag.
	Status v1.AnomaliesStatus
}

// disputeStep has the patient of step 3's payment dispute it and waits for the operator's
// anomaly check to flag it in the clinic's systems of record.
func (e *Env) disputeStep(ctx context.Context, key, pi, ch string) (*Dispute, error) {
	d := &Dispute{DisputeID: stripeID("dp")}
	before := len(e.clinic.snapshot())
	ev, err := e.trigger(ctx, key, "charge.dispute.created", map[string]any{
		"id": d.DisputeID, "object": "dispute", "amount": 12500, "currency": "usd", "charge": ch, "payment_intent": pi,
		"reason": "fraudulent", "status": "needs_response", "created": time.Now().Unix(),
	})
	if err != nil {
		return d, err
	}
	d.EventID = ev.ID
	e.out.info("the operator reads the account's event log every %s here (--anomaly-check-interval), events once they are 5 s old",
		anomalyCheckInterval)
	if _, err := e.kubectl(ctx, "wait", "stripeintegration/"+sampleName, "-n", sampleNamespace,
		"--for=jsonpath={.status.finance.anomalies.lastFlag.eventID}="+d.EventID, "--timeout="+waitTimeout.String()); err != nil {
		return d, err
	}
	if _, err := e.kubectl(ctx, "get", "si", sampleName, "-n", sampleNamespace, "-o",
		"jsonpath={.status.finance.anomalies.lastFlag}{\"\\n\"}"); err != nil {
		return d, err
	}
	var si v1.StripeIntegration
	if err := e.client.Get(ctx, types.NamespacedName{Namespace: sampleNamespace, Name: sampleName}, &si); err != nil {
		return d, fmt.Errorf("read %s: %w", sampleName, err)
	}
	if si.Status.Finance != nil && si.Status.Finance.Anomalies != nil {
		d.Status = *si.Status.Finance.Anomalies
	}
	for _, r := range e.clinic.snapshot()[before:] {
		switch {
		case r.ResourceType == "Flag" && r.Created && d.Flag == nil:
			d.Flag = &r
			var f fhirrelay.Flag
			if json.Unmarshal(r.Body, &f) == nil {
				key, _ := url.QueryUnescape(strings.TrimPrefix(r.Key, "identifier=")) // shown only
				e.out.info("FHIR Flag/%s (%s), status %s: %s", r.ID, key, f.Status, f.Code.Text)
			}
		case r.System == systemBilling && strings.Contains(r.Key, "/") && d.Envelope == nil:
			d.Envelope = &r
			var env struct {
				Type  string
				Flags []struct{ Rule, Reason string }
			}
			if json.Unmarshal(r.Body, &env) == nil {
				for _, f := range env.Flags {
					e.out.info("billing system: the %s event's envelope with flags: %s (Idempotency-Key %s)", env.Type, f.Rule, r.Key)
				}
			}
		}
	}
	return d, nil
}
