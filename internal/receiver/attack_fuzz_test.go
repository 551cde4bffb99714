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

package receiver

// A time-bounded mutation run of the FuzzHandler properties (RELIABILITY_FULL=1 runs it longer).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/test/testreport"
)

// fuzzInput is one input of FuzzHandler's signature: the body, the Stripe-Signature header (a
// suffix when signIt), whether to sign the body validly now, and the clinic path segment.
type fuzzInput struct {
	body   []byte
	header string
	signIt bool
	clinic string
}

// loadFuzzSeeds parses the FuzzHandler seed corpus ("go test fuzz v1" files).
func loadFuzzSeeds(t *testing.T) []fuzzInput {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzHandler", "*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no FuzzHandler seed corpus (err %v)", err)
	}
	seeds := make([]fuzzInput, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 5 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a 4-value go test fuzz v1 file", p)
		}
		arg := func(line, typ string) string {
			if !strings.HasPrefix(line, typ+"(") || !strings.HasSuffix(line, ")") {
				t.Fatalf("%s: %q is not a %s value", p, line, typ)
			}
			return line[len(typ)+1 : len(line)-1]
		}
		unquote := func(s string) string {
			u, err := strconv.Unquote(s)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			return u
		}
		signIt, err := strconv.ParseBool(arg(lines[3], "bool"))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		seeds = append(seeds, fuzzInput{
			body: []byte(unquote(arg(lines[1], "[]byte"))), header: unquote(arg(lines[2], "string")),
			signIt: signIt, clinic: unquote(arg(lines[4], "string")),
		})
	}
	return seeds
}

// mutator produces FuzzHandler inputs from the seeds with a seeded generator.
type mutator struct {
	rng   *rand.Rand
	seeds []fuzzInput
	n     int
}

func (m *mutator) next() fuzzInput {
	r := m.rng
	m.n++
	in := m.seeds[r.IntN(len(m.seeds))]
	body := append([]byte(nil), in.body...)
	if r.IntN(3) == 0 {
		body = m.structural(body)
	}
	if r.IntN(3) == 0 { // a fresh id reaches the relay instead of the dedup set
		body = bytes.Replace(body, []byte(`"evt_seed_`), fmt.Appendf(nil, `"evt_m%d_`, m.n), 1)
	}
	for range r.IntN(4) {
		body = m.byteMutation(body)
	}
	in.body = body

	switch r.IntN(10) {
	case 0, 1, 2, 3, 4: // validly signed, usually with nothing appended
		in.signIt = true
		in.header = ""
		if r.IntN(4) == 0 {
			in.header = headerSuffixes[r.IntN(len(headerSuffixes))]
		}
	case 5: // forged: another secret, a flipped digit, or stale / future
		in.signIt = false
		switch r.IntN(4) {
		case 0:
			in.header = sign(body, secretUnknown, time.Now())
		case 1:
			in.header = hexFlip(sign(body, secretOld, time.Now()))
		case 2:
			in.header = sign(body, secretOld, time.Now().Add(-SignatureTolerance-time.Duration(r.IntN(1000))*time.Second))
		default:
			in.header = sign(body, secretOld, time.Now().Add(SignatureTolerance+time.Duration(2+r.IntN(1000))*time.Second))
		}
	case 6: // signed, then the body is changed after signing
		in.signIt = false
		in.header = sign(body, secretOld, time.Now())
		in.body = m.byteMutation(append([]byte(nil), body...))
	case 7: // random header bytes
		in.signIt = false
		h := make([]byte, r.IntN(80))
		for i := range h {
			h[i] = byte(r.UintN(256))
		}
		in.header = string(h)
	default: // the seed's own header and signing choice
	}
	switch r.IntN(20) {
	case 0:
		in.clinic = "clinic-b"
	case 1:
		in.clinic = testClinic + "/x"
	case 2:
		in.clinic = ""
	case 3:
		in.clinic = strings.ToUpper(testClinic)
	default:
		if in.clinic == "" || r.IntN(2) == 0 {
			in.clinic = testClinic
		}
	}
	return in
}

// structural rewrites one top-level field of a JSON body, or leaves it if it is not JSON.
func (m *mutator) structural(body []byte) []byte {
	var obj map[string]any
	if json.Unmarshal(body, &obj) != nil {
		obj = map[string]any{"object": "event", "api_version": stripe.APIVersion, "livemode": false,
			"type": "payment_intent.succeeded", "data": map[string]any{"object": map[string]any{"id": "pi_1"}}}
	}
	r := m.rng
	values := []any{nil, "", 0, -1, 1.5, true, false, "x", []any{}, map[string]any{}, strings.Repeat("y", 300)}
	switch r.IntN(7) {
	case 0, 1:
		obj["id"] = fmt.Sprintf("evt_mut_%d", m.n) // fresh ids reach the relay, not the dedup
	case 2:
		obj["type"] = []any{"charge.refunded", "Not.A.Type", "", "a." + strings.Repeat("b", 150)}[r.IntN(4)]
	case 3:
		obj["livemode"] = values[r.IntN(len(values))]
	case 4:
		obj["api_version"] = []any{stripe.APIVersion, "2020-08-27", "", nil}[r.IntN(4)]
	case 5:
		obj["data"] = []any{nil, "x", map[string]any{}, map[string]any{"object": nil},
			map[string]any{"object": map[string]any{"id": "ch_1", "amount": 5}}}[r.IntN(5)]
	default:
		delete(obj, []string{"id", "type", "data", "livemode", "api_version", "object"}[r.IntN(6)])
	}
	if r.IntN(2) == 0 {
		obj["id"] = fmt.Sprintf("evt_mut_%d", m.n)
	}
	out, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return body
	}
	return out
}

func (m *mutator) byteMutation(b []byte) []byte {
	r := m.rng
	if len(b) == 0 {
		return []byte(fuzzTokens[r.IntN(len(fuzzTokens))])
	}
	i := r.IntN(len(b))
	switch r.IntN(8) {
	case 0: // flip a bit
		b[i] ^= 1 << r.UintN(8)
	case 1: // random byte
		b[i] = byte(r.UintN(256))
	case 2: // insert a token
		tok := fuzzTokens[r.IntN(len(fuzzTokens))]
		b = append(b[:i], append([]byte(tok), b[i:]...)...)
	case 3: // delete a range
		j := min(len(b), i+1+r.IntN(16))
		b = append(b[:i], b[j:]...)
	case 4: // duplicate a range
		j := min(len(b), i+1+r.IntN(64))
		b = append(b[:j], append(append([]byte(nil), b[i:j]...), b[j:]...)...)
	case 5: // truncate
		b = b[:i]
	case 6: // splice with another seed
		other := m.seeds[r.IntN(len(m.seeds))].body
		if len(other) > 0 {
			b = append(b[:i], other[r.IntN(len(other)):]...)
		}
	default: // grow past the 4 KiB cap now and then
		if r.IntN(8) == 0 {
			b = append(b, bytes.Repeat([]byte(" "), 4096)...)
		} else {
			b[i] = fuzzTokens[r.IntN(len(fuzzTokens))][0]
		}
	}
	return b
}

// countingTarget counts deliveries without keeping them (the mutation run makes many).
type countingTarget struct{ n atomic.Int64 }

func (*countingTarget) Name() string { return "fuzz" }

func (c *countingTarget) Deliver(context.Context, relay.Event) error {
	c.n.Add(1)
	return nil
}

// fuzzOutcome is what one input got.
type fuzzOutcome struct {
	code    int
	relayed bool
}

// checkFuzzInput runs one input through the handler and checks FuzzHandler's properties, plus:
// no 503 (the target never fails here), and nothing answered 2xx or relayed unless its body is
// valid UTF-8.
func checkFuzzInput(t *testing.T, h http.Handler, target *countingTarget, in fuzzInput) (out fuzzOutcome) {
	header := in.header
	if in.signIt {
		header = sign(in.body, secretOld, time.Now()) + header
	}
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\ninput: body %.400q, header %.200q, clinic %q", fmt.Sprintf(format, args...), in.body, header, in.clinic)
	}
	defer func() {
		if p := recover(); p != nil {
			fail("handler panicked: %v", p)
		}
	}()
	req := httptest.NewRequest(http.MethodPost, testPath, bytes.NewReader(in.body))
	req.URL.Path = TestWebhookPathPrefix + in.clinic
	if header != "" {
		req.Header.Set("Stripe-Signature", header)
	}
	before := target.n.Load()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	out = fuzzOutcome{code: rec.Code, relayed: target.n.Load() > before}

	switch rec.Code {
	case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
	default:
		fail("unexpected status %d", rec.Code)
	}
	var resp response
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.Status == "" {
		fail("answer is not the JSON envelope: %q", rec.Body.String())
	}
	if out.relayed && rec.Code != http.StatusOK {
		fail("relayed but answered %d", rec.Code)
	}
	if !out.relayed && rec.Code != http.StatusOK {
		return out
	}
	// Answered 2xx or relayed: everything must have checked out.
	if in.clinic != testClinic {
		fail("accepted a delivery for clinic %q", in.clinic)
	}
	if err := webhook.ValidatePayloadWithTolerance(in.body, header, secretOld, SignatureTolerance); err != nil {
		fail("answered %d (relayed %t) to an invalid signature: %v", rec.Code, out.relayed, err)
	}
	if !utf8.Valid(in.body) {
		fail("answered %d (relayed %t) to a body that is not UTF-8", rec.Code, out.relayed)
	}
	var ev stripe.Event
	if err := json.Unmarshal(in.body, &ev); err != nil || ev.Livemode || ev.ID == "" {
		fail("accepted an unusable event (err %v)", err)
	}
	return out
}

// TestAttackFuzzMutations is a time-bounded stand-in for `go test -fuzz=FuzzHandler`, which a
// normal test run cannot do: FuzzHandler's properties over N inputs mutated from its seed
// corpus with a seeded generator (20,000 inputs, or 500,000 with RELIABILITY_FULL=1;
// RELIABILITY_SEED picks another seed).
func TestAttackFuzzMutations(t *testing.T) {
	n, budget := 20_000, 15*time.Second
	if reliabilityFull() {
		n, budget = 500_000, 10*time.Minute
	}
	seed := uint64(20260501)
	if s := os.Getenv("RELIABILITY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RELIABILITY_SEED: %v", err)
		}
		seed = v
	}
	seeds := loadFuzzSeeds(t)
	for i := range 4 {
		seeds = append(seeds, fuzzInput{body: goodBody(t, fmt.Sprintf("evt_seed_%d", i)), signIt: true, clinic: testClinic})
	}
	target := &countingTarget{}
	fx := newFixture(t, secretOld, []relay.Target{target}, func(c *Config) { c.MaxBodyBytes = 4096 })
	fx.r.log = logr.Discard()
	h := fx.r.WebhookHandler()
	m := &mutator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seeds: seeds}

	codes := map[int]int{}
	relayed, ran := 0, 0
	start := time.Now()
	for ran < n && time.Since(start) < budget {
		out := checkFuzzInput(t, h, target, m.next())
		codes[out.code]++
		if out.relayed {
			relayed++
		}
		ran++
	}
	took := time.Since(start)
	testreport.Report(t, "seed %d: %d inputs in %s (%.0f/s): status counts %v, %d relayed, %d signature failures by cause %v",
		seed, ran, took.Round(time.Millisecond), float64(ran)/took.Seconds(), codes, relayed,
		int(sumCauses(causeCounts(t, fx))), causeCounts(t, fx))
	// The run must have explored every outcome, or the generator has degenerated.
	if ran < min(n, 5000) {
		t.Errorf("only %d inputs ran within %s", ran, budget)
	}
	for code, atLeast := range map[int]int{http.StatusOK: ran / 50, http.StatusBadRequest: ran / 4,
		http.StatusNotFound: ran / 100, http.StatusRequestEntityTooLarge: ran / 500} {
		if codes[code] < atLeast {
			t.Errorf("only %d inputs answered %d, want at least %d", codes[code], code, atLeast)
		}
	}
	if relayed < ran/100 {
		t.Errorf("only %d inputs relayed, want at least %d: too few reach the relay", relayed, ran/100)
	}
	for _, c := range []cause{causeBadSignature, causeStale, causeFuture, causeInvalidHeader, causeMalformed, causeLivemode} {
		if got := causeCounts(t, fx)[c]; got == 0 {
			t.Errorf("no input was rejected for %s", c)
		}
	}
}

func sumCauses(m map[cause]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}
