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

package bench

// The receiver bench's event pool: realistic payment_intent.succeeded bodies, stamped and signed per run.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/sigheader"
)

// eventIDLen is the length of every bench event id: "evt_" and 24 digits, like Stripe's.
const eventIDLen = 4 + 24

// eventPool holds the distinct event bodies and their Stripe-Signature headers. Every body has
// its id at the same offset, so ids can be rewritten in place.
type eventPool struct {
	bodies   [][]byte
	sigs     []string // Stripe-Signature of bodies[i], signed at signedAt
	signedAt time.Time
	idOffset int
	key      []byte
}

// eventID renders the id of the event sent as payload slot of pass (how many times the pool was
// gone through) in run; fixed width, unique within a bench process.
func eventID(run int, pass, slot int64) string {
	return fmt.Sprintf("evt_%02d%05d%017d", run, pass, slot)
}

// newEventPool prepares n realistic, distinct payment_intent.succeeded events. A fixed seed makes
// every bench process send the same bytes.
func newEventPool(n int) (*eventPool, error) {
	p := &eventPool{bodies: make([][]byte, n), sigs: make([]string, n), key: []byte(benchSigningSecret)}
	rng := rand.New(rand.NewPCG(20260101, uint64(n)))
	for i := range n {
		body := paymentIntentSucceeded(rng, eventID(0, 0, int64(i)))
		off := bytes.Index(body, []byte(`"evt_`)) + 1
		if i == 0 {
			p.idOffset = off
		} else if off != p.idOffset {
			return nil, fmt.Errorf("bench: event %d has its id at offset %d, not %d", i, off, p.idOffset)
		}
		p.bodies[i] = body
	}
	return p, nil
}

// stamp gives every payload run's pass-0 id and signs it at now.
func (p *eventPool) stamp(run int, now time.Time) {
	for i, body := range p.bodies {
		copy(body[p.idOffset:], eventID(run, 0, int64(i)))
		p.sigs[i] = sigheader.Sign(p.key, now, body)
	}
	p.signedAt = now
}

// event returns the k-th event of run (k counts from 0) and its signature. The first pass over
// the pool is pre-signed; later passes get a copy under a new id, signed at now, as does any
// event whose pre-signature is getting too old for the receiver's tolerance.
func (p *eventPool) event(run int, k int64, now time.Time) ([]byte, string) {
	n := int64(len(p.bodies))
	pass, slot := k/n, k%n
	if pass == 0 && now.Sub(p.signedAt) < resignAfter {
		return p.bodies[slot], p.sigs[slot]
	}
	body := slices.Clone(p.bodies[slot])
	copy(body[p.idOffset:], eventID(run, pass, slot))
	return body, sigheader.Sign(p.key, now, body)
}

func (p *eventPool) avgSize() int {
	total := 0
	for _, b := range p.bodies {
		total += len(b)
	}
	return total / max(len(p.bodies), 1)
}

// paymentIntentTemplate is a payment_intent.succeeded event as Stripe delivers it at API version
// 2023-10-16 (stripe-go v76): pretty-printed with two spaces, fields in Stripe's order. The
// {{…}} placeholders vary per event.
const paymentIntentTemplate = `{
  "id": "{{EVT}}",
  "object": "event",
  "api_version": "{{API}}",
  "created": {{CREATED}},
  "data": {
    "object": {
      "id": "{{PI}}",
      "object": "payment_intent",
      "amount": {{AMOUNT}},
      "amount_capturable": 0,
      "amount_details": {
        "tip": {}
      },
      "amount_received": {{AMOUNT}},
      "application": null,
      "application_fee_amount": null,
      "automatic_payment_methods": {
        "allow_redirects": "always",
        "enabled": true
      },
      "canceled_at": null,
      "cancellation_reason": null,
      "capture_method": "automatic",
      "client_secret": "{{PI}}_secret_{{SECRET}}",
      "confirmation_method": "automatic",
      "created": {{PICREATED}},
      "currency": "usd",
      "customer": "{{CUS}}",
      "description": "Co-payment, visit {{VISIT}}",
      "invoice": null,
      "last_payment_error": null,
      "latest_charge": "{{CH}}",
      "livemode": false,
      "metadata": {
        "claim_id": "clm-{{CLAIM}}",
        "invoice_id": "inv-{{INVOICE}}",
        "patient_id": "pat-{{PATIENT}}"
      },
      "next_action": null,
      "on_behalf_of": null,
      "payment_method": "{{PM}}",
      "payment_method_configuration_details": {
        "id": "{{PMC}}",
        "parent": null
      },
      "payment_method_options": {
        "card": {
          "installments": null,
          "mandate_options": null,
          "network": null,
          "request_three_d_secure": "automatic"
        },
        "link": {
          "persistent_token": null
        }
      },
      "payment_method_types": [
        "card",
        "link"
      ],
      "processing": null,
      "receipt_email": "patient{{PATIENT}}@example.org",
      "review": null,
      "setup_future_usage": null,
      "shipping": null,
      "source": null,
      "statement_descriptor": null,
      "statement_descriptor_suffix": null,
      "status": "succeeded",
      "transfer_data": null,
      "transfer_group": null
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {
    "id": "{{REQ}}",
    "idempotency_key": "{{IDEM}}"
  },
  "type": "payment_intent.succeeded"
}`

// paymentIntentSucceeded renders one event with id evtID and random but plausible values.
func paymentIntentSucceeded(rng *rand.Rand, evtID string) []byte {
	const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	rnd := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alnum[rng.IntN(len(alnum))]
		}
		return string(b)
	}
	digits := func(n int) string { return fmt.Sprintf("%0*d", n, rng.Int64N(1_000_000_000_000)%pow10(n)) }
	created := 1767225600 + rng.Int64N(30*24*3600) // January 2026
	pi := "pi_3Q" + rnd(22)
	return []byte(strings.NewReplacer(
		"{{EVT}}", evtID,
		"{{API}}", stripe.APIVersion,
		"{{CREATED}}", strconv.FormatInt(created, 10),
		"{{PICREATED}}", strconv.FormatInt(created-int64(rng.IntN(5)), 10),
		"{{PI}}", pi,
		"{{AMOUNT}}", strconv.Itoa(500+rng.IntN(50000)),
		"{{SECRET}}", rnd(25),
		"{{CUS}}", "cus_"+rnd(14),
		"{{VISIT}}", digits(8),
		"{{CH}}", "ch_3Q"+rnd(22),
		"{{CLAIM}}", digits(9),
		"{{INVOICE}}", digits(7),
		"{{PATIENT}}", digits(6),
		"{{PM}}", "pm_1Q"+rnd(22),
		"{{PMC}}", "pmc_1P"+rnd(22),
		"{{REQ}}", "req_"+rnd(14),
		"{{IDEM}}", rnd(8)+"-"+rnd(4)+"-"+rnd(4)+"-"+rnd(4)+"-"+rnd(12),
	).Replace(paymentIntentTemplate))
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// ---- Load generator ----
