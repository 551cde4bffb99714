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

// The receiver under attack: hostile deliveries through the real webhook server (Serve on
// 127.0.0.1 listeners), oversized and slow requests, and a time-bounded mutation run of the
// FuzzHandler properties. RELIABILITY_FULL=1 runs the long variant of the mutation run.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/test/testreport"
)

// reliabilityFull reports whether the long variants of the reliability tests run.
func reliabilityFull() bool { return os.Getenv("RELIABILITY_FULL") == "1" }

// attackServer is a receiver served by Serve on 127.0.0.1 listeners, relaying to a recording
// target.
type attackServer struct {
	f      *fixture
	target *fakeTarget
	addr   string
	client *http.Client
}

func startAttackServer(t *testing.T, mutate ...func(*Config)) *attackServer {
	t.Helper()
	target := &fakeTarget{name: "attack"}
	// Shutdown must not wait long for a connection a test left half-open.
	mutate = append([]func(*Config){func(c *Config) { c.ShutdownTimeout = 3 * time.Second }}, mutate...)
	f := newFixture(t, secretOld+"\n", []relay.Target{target}, mutate...)
	webhookLn, opsLn := listen(t), listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.r.Serve(ctx, webhookLn, opsLn) }()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return within 10 s of its context ending")
		}
	})
	return &attackServer{f: f, target: target, addr: webhookLn.Addr().String(), client: client}
}

// deliver POSTs body with the given Stripe-Signature ("" sends none) and returns the status,
// the decoded JSON answer (zero if the answer is not the receiver's JSON) and the raw body.
func (s *attackServer) deliver(t *testing.T, body []byte, sig string) (int, response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+s.addr+testPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if sig != "" {
		req.Header.Set("Stripe-Signature", sig)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("delivery failed: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	var r response
	_ = json.Unmarshal(raw, &r)
	return resp.StatusCode, r, string(raw)
}

func (s *attackServer) relayed() int { return len(s.target.calls()) }

// causeCounts snapshots stripe_receiver_signature_failures_total by cause.
func causeCounts(t *testing.T, f *fixture) map[cause]float64 {
	t.Helper()
	out := map[cause]float64{}
	for _, c := range allCauses() {
		out[c] = counter(t, f.r.metrics.signatureFailures.WithLabelValues(string(c)))
	}
	return out
}

// attackBody is a valid test-mode event with a unique id.
func attackBody(t testing.TB, n int) []byte {
	return goodBody(t, fmt.Sprintf("evt_attack_%03d", n))
}

// deepJSON nests depth arrays (or objects) inside an otherwise valid event's data.object.
func deepJSON(id string, depth int, objects bool) []byte {
	open, closing := "[", "]"
	if objects {
		open, closing = `{"a":`, "}"
	}
	var b bytes.Buffer
	b.WriteString(`{"id":"` + id + `","object":"event","api_version":"` + stripe.APIVersion +
		`","created":1700000000,"livemode":false,"type":"payment_intent.succeeded","data":{"object":{"id":"pi_1","object":"payment_intent","deep":`)
	b.WriteString(strings.Repeat(open, depth))
	if objects {
		b.WriteString("1")
	}
	b.WriteString(strings.Repeat(closing, depth))
	b.WriteString(`}}}`)
	return b.Bytes()
}

// withBytes replaces old (which must occur once in body) with replacement bytes.
func withBytes(t *testing.T, body []byte, old, replacement string) []byte {
	t.Helper()
	if bytes.Count(body, []byte(old)) != 1 {
		t.Fatalf("%q occurs %d times in the body", old, bytes.Count(body, []byte(old)))
	}
	return bytes.Replace(body, []byte(old), []byte(replacement), 1)
}

// hexFlip changes the last hex digit of a Stripe-Signature's v1 value.
func hexFlip(header string) string {
	last := header[len(header)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return header[:len(header)-1] + string(repl)
}

func v1Of(header string) string { return header[strings.Index(header, "v1=")+3:] }

func unixHeader(ts time.Time, v1s ...string) string {
	h := "t=" + strconv.FormatInt(ts.Unix(), 10)
	for _, v := range v1s {
		h += ",v1=" + v
	}
	return h
}

// TestAttackHostileDeliveries sends forged, replayed and hostile-payload deliveries through the
// real webhook server: each is refused with the documented code and nothing reaches the
// target; a valid delivery still works afterwards and an exact replay of it is not relayed
// again.
func TestAttackHostileDeliveries(t *testing.T) {
	s := startAttackServer(t)
	rng := rand.New(rand.NewPCG(1, 2))
	randHex := func() string {
		b := make([]byte, sha256.Size)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return hex.EncodeToString(b)
	}
	// futureTS is an integer-second timestamp at least 301 s ahead of the receiver's clock when
	// it checks (sign truncates to seconds, so now+301 s could be 300.x s ahead).
	futureTS := func(ahead time.Duration) time.Time {
		return time.Unix(time.Now().Unix()+int64(ahead/time.Second)+1, 0)
	}

	type attackCase struct {
		name      string
		body      func(n int) []byte // default attackBody
		sig       func(b []byte) string
		wantCode  int
		wantState string // the JSON status; "" when the answer is not the receiver's JSON
		wantCause cause  // +1 in signature failures; "" for none
		wantRelay int
	}
	signed := func(b []byte) string { return sign(b, secretOld, time.Now()) }
	cases := []attackCase{
		// Forged signatures.
		{name: "forged: signed with another secret", sig: func(b []byte) string { return sign(b, secretUnknown, time.Now()) },
			wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: v1 of the right length, last hex digit changed", sig: func(b []byte) string { return hexFlip(signed(b)) },
			wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: v1 of the right length, random", sig: func([]byte) string { return unixHeader(time.Now(), randHex()) },
			wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: no Stripe-Signature header", sig: func([]byte) string { return "" },
			wantCode: 400, wantState: "rejected", wantCause: causeMissingHeader},
		{name: "forged: header with only t=", sig: func([]byte) string { return unixHeader(time.Now()) },
			wantCode: 400, wantState: "rejected", wantCause: causeInvalidHeader},
		{name: "forged: empty v1", sig: func([]byte) string { return unixHeader(time.Now(), "") },
			wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: three v1 values, all wrong", sig: func(b []byte) string {
			return unixHeader(time.Now(), v1Of(sign(b, secretUnknown, time.Now())), randHex(), hexFlip(v1Of(signed(b))))
		}, wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: 700 v1 values, all wrong", sig: func([]byte) string {
			v1s := make([]string, 700)
			for i := range v1s {
				v1s[i] = randHex()
			}
			return unixHeader(time.Now(), v1s...)
		}, wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: valid HMAC under the v0 scheme only", sig: func(b []byte) string {
			return strings.Replace(signed(b), "v1=", "v0=", 1)
		}, wantCode: 400, wantState: "rejected", wantCause: causeInvalidHeader},
		{name: "forged: valid signature over the original body, amount tampered", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"amount": 1234`, `"amount": 9234`)
		}, sig: func(b []byte) string {
			return signed(withBytes(t, b, `"amount": 9234`, `"amount": 1234`))
		}, wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: stale v1 re-dated to now", sig: func(b []byte) string {
			return unixHeader(time.Now(), v1Of(sign(b, secretOld, time.Now().Add(-10*time.Minute))))
		}, wantCode: 400, wantState: "rejected", wantCause: causeBadSignature},
		{name: "forged: Stripe-Signature over the 64 KiB header limit", sig: func(b []byte) string {
			return signed(b) + ",v1=" + strings.Repeat("ab", 40<<10)
		}, wantCode: http.StatusRequestHeaderFieldsTooLarge},

		// Replays outside the 300 s tolerance, validly signed, and the bounds' controls.
		{name: "replay: signed 301 s ago", sig: func(b []byte) string { return sign(b, secretOld, time.Now().Add(-301*time.Second)) },
			wantCode: 400, wantState: "rejected", wantCause: causeStale},
		{name: "replay: signed 301 s in the future", sig: func(b []byte) string { return sign(b, secretOld, futureTS(301*time.Second)) },
			wantCode: 400, wantState: "rejected", wantCause: causeFuture},
		{name: "control: signed 290 s ago is accepted", sig: func(b []byte) string { return sign(b, secretOld, time.Now().Add(-290*time.Second)) },
			wantCode: 200, wantState: resultRelayed, wantRelay: 1},
		{name: "control: signed 290 s in the future is accepted", sig: func(b []byte) string { return sign(b, secretOld, time.Now().Add(290*time.Second)) },
			wantCode: 200, wantState: resultRelayed, wantRelay: 1},

		// Hostile payloads, validly signed: only Stripe (or a leaked secret) can send these.
		{name: "payload: invalid UTF-8 in a metadata string", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"p-1"`, "\"p-\xff\xfe1\"")
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: invalid UTF-8 in the event id", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"evt_attack_`, "\"evt_\xc3\x28attack_")
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: UTF-8-encoded surrogate half in the type", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"payment_intent.succeeded"`, "\"payment_intent.succeeded\xed\xa0\x80\"")
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: overlong UTF-8 encoding of '/'", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"usd"`, "\"usd\xc0\xaf\"")
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: invalid UTF-8 outside any string", body: func(n int) []byte {
			return withBytes(t, attackBody(t, n), `"livemode": false`, "\"livemode\": \xfffalse")
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: 100,000 nested arrays in data.object", body: func(n int) []byte {
			return deepJSON(fmt.Sprintf("evt_attack_%03d", n), 100_000, false)
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: 40,000 nested objects in data.object", body: func(n int) []byte {
			return deepJSON(fmt.Sprintf("evt_attack_%03d", n), 40_000, true)
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
		{name: "payload: the whole body 120,000 nested arrays", body: func(int) []byte {
			return []byte(strings.Repeat("[", 120_000) + strings.Repeat("]", 120_000))
		}, sig: signed, wantCode: 400, wantState: "rejected", wantCause: causeMalformed},
	}

	wantTotal, codes := 0, map[int]int{}
	for n, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := attackBody(t, n)
			if tc.body != nil {
				body = tc.body(n)
			}
			if int64(len(body)) > DefaultMaxBodyBytes {
				t.Fatalf("test body of %d bytes exceeds the body cap; it would test the cap instead", len(body))
			}
			before, causesBefore := s.relayed(), causeCounts(t, s.f)
			start := time.Now()
			code, resp, raw := s.deliver(t, body, tc.sig(body))
			took := time.Since(start)
			if code != tc.wantCode || resp.Status != tc.wantState {
				t.Errorf("got %d %q (%.200s), want %d %q", code, resp.Status, raw, tc.wantCode, tc.wantState)
			}
			if got := s.relayed() - before; got != tc.wantRelay {
				t.Errorf("target got %d events, want %d", got, tc.wantRelay)
			}
			causesAfter := causeCounts(t, s.f)
			for _, c := range allCauses() {
				want := 0.0
				if c == tc.wantCause {
					want = 1
				}
				if got := causesAfter[c] - causesBefore[c]; got != want {
					t.Errorf("signature failures{cause=%s} rose by %v, want %v", c, got, want)
				}
			}
			if took > 2*time.Second {
				t.Errorf("answer took %s", took)
			}
			t.Logf("%d %s in %s", code, resp.Message, took.Round(time.Microsecond))
			codes[code]++
		})
		wantTotal += tc.wantRelay
	}

	// Control: a valid event still works, exactly once, and an exact replay of the same
	// delivery (within the tolerance) is acknowledged without being relayed again.
	body := goodBody(t, "evt_attack_control")
	sig := sign(body, secretOld, time.Now())
	before := s.relayed()
	if code, resp, raw := s.deliver(t, body, sig); code != 200 || resp.Status != resultRelayed {
		t.Fatalf("valid delivery after the attacks: %d %s", code, raw)
	}
	if code, resp, raw := s.deliver(t, body, sig); code != 200 || resp.Status != resultDuplicate {
		t.Errorf("exact replay: %d %s, want 200 %q", code, raw, resultDuplicate)
	}
	calls := s.target.calls()
	if got := len(calls) - before; got != 1 || calls[len(calls)-1].Stripe.ID != "evt_attack_control" {
		t.Errorf("control relayed %d times, want once", got)
	}
	if got := len(calls); got != wantTotal+1 {
		t.Errorf("target got %d events over the whole attack, want %d (the controls only)", got, wantTotal+1)
	}
	assertNoSecrets(t, "logs", s.f.logs.String(), secretOld)
	testreport.Report(t, "%d hostile deliveries (forged and tampered signatures, replays outside the 300 s tolerance, an oversized "+
		"header, invalid UTF-8, deep JSON) answered %v by status; only the %d tolerance controls and the final valid event were "+
		"relayed, each once; an exact replay was acknowledged as a duplicate; no secret in the logs", len(cases), codes, wantTotal)
}

var fuzzTokens = []string{
	`"`, `{`, `}`, `[`, `]`, `,`, `:`, `\`, `\u0000`, `\ud800`, "\xff", "\xc3", "\xed\xa0\x80", "\xc0\xaf",
	`null`, `true`, `false`, `0`, `-1`, `1e999`, `""`, `{}`, `[]`, `"livemode":true`, `"livemode":false`,
	`"api_version":"2020-08-27"`, `"api_version":"` + stripe.APIVersion + `"`, `"id":""`, `"type":""`,
	`"data":null`, `"data":{"object":{}}`, strings.Repeat("[", 200), strings.Repeat("{\"a\":", 100),
}

var headerSuffixes = []string{
	",v1=deadbeef", ",v1=", ",t=1", ",t=", ",t=99999999999", ",v0=abc", ",", "=", ",x", ",v1=" + strings.Repeat("0", 64),
	",t=-1", " ", ",t=1700000000,v1=00", "\x00", ",v1=" + strings.Repeat("zz", 32),
}
