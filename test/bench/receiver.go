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

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/receiver"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
	"github.com/clinicpay/stripe-operator/test/testenv"
)

// ReceiverConfig configures RunReceiver. Zero numeric fields take the defaults named below.
type ReceiverConfig struct {
	// ReceiverBin is the path of the built cmd/receiver binary (bin/receiver). Required.
	ReceiverBin string
	// Duration is the measuring time of each configuration and of the limit; default 5 s.
	Duration time.Duration
	// Concurrency is the number of concurrent senders, each on its own keep-alive connection;
	// default 16.
	Concurrency int
	// Payloads is the number of distinct events prepared and signed up front; default 20,000.
	// When a run sends more events than that, the later ones reuse a payload under a new event
	// id, re-signed by the sender, so no event is ever a duplicate.
	Payloads int
}

// ReceiverRun is one configuration's figures.
type ReceiverRun struct {
	// Cores is the number of CPUs the receiver process may use (GOMAXPROCS, and its CPU
	// affinity when taskset is available).
	Cores int
	// Events is the number of events the receiver acknowledged with 2xx.
	Events int
	// PerSecond is Events over the run's wall time.
	PerSecond float64
	// P50 and P99 are nearest-rank percentiles of the acknowledged requests' latencies, as the
	// sender saw them (request written to response read).
	P50, P99 time.Duration
	// Errors counts non-2xx answers and transport errors; it must be 0.
	Errors int
	// ErrorSample describes the first error, when Errors > 0.
	ErrorSample string
	// SinkCount is the number of relayed events the no-op sink received; it must equal Events
	// (each acknowledged event relayed exactly once).
	SinkCount int
	// SinkDuplicates counts Idempotency-Keys the sink received more than once; it must be 0.
	SinkDuplicates int
	// CPUPerEvent is the receiver process's CPU time (user + system, start to exit) per
	// acknowledged event: unlike PerSecond, it barely moves when other work shares the machine.
	CPUPerEvent time.Duration
	// CoresBusy is the receiver's CPU time over the run's wall time: close to Cores when the
	// receiver was the bottleneck, lower when it waited for the load generator or was preempted.
	CoresBusy float64
	// BenchCoresBusy is the same for the bench process (load generator and sink) during the run.
	BenchCoresBusy float64
}

// ReceiverResult is RunReceiver's report.
type ReceiverResult struct {
	// Runs holds the 1-core run, then the 2-core run.
	Runs []ReceiverRun
	// LimitPerSec is what one goroutine achieves doing only the unavoidable work on the same
	// payloads: HMAC-SHA256 over "t.body", hex compare, and json.Unmarshal into stripe.Event
	// (what stripe-go's webhook.ConstructEvent decodes).
	LimitPerSec float64
	// Ratio1Core is Runs[0].PerSecond / LimitPerSec; the target is at least 0.5.
	Ratio1Core float64
	// PayloadBytes is the average size of an event body.
	PayloadBytes int
	// Method says in a few sentences how the figures were measured.
	Method string
}

// Defaults for zero ReceiverConfig fields.
const (
	defaultReceiverDuration    = 5 * time.Second
	defaultReceiverConcurrency = 16
	defaultReceiverPayloads    = 20000
)

const (
	// benchClinicID is the clinic the bench's receiver serves.
	benchClinicID = "bench-clinic"
	// benchSigningSecret signs the bench's events; it is a throwaway value.
	benchSigningSecret = "whsec_benchBENCHbench0123456789abcdefABCD"
	// receiverStartTimeout bounds the wait for a started receiver's /readyz.
	receiverStartTimeout = 15 * time.Second
	// receiverStopGrace is how long a stopped receiver gets between SIGTERM and SIGKILL.
	receiverStopGrace = 20 * time.Second
	// resignAfter is the age after which a pre-signed header is replaced by a fresh signature:
	// the receiver refuses signatures older than receiver.SignatureTolerance (300 s).
	resignAfter = receiver.SignatureTolerance - time.Minute
)

// RunReceiver measures the real receiver binary: events/s and latency for verify + dedup + relay
// to a local no-op HTTP sink, with the receiver on 1 and then 2 cores, and the single-core limit
// (HMAC-SHA256 plus JSON decode alone) of the same payloads. Errors and lost or duplicated relays
// are reported in the result, not returned: the returned error means the bench could not run.
//
// When taskset is available it changes this process's CPU affinity while it runs (restoring it
// after each phase), so nothing else should be measured in this process at the same time.
func RunReceiver(ctx context.Context, cfg ReceiverConfig) (ReceiverResult, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return ReceiverResult{}, err
	}
	dir, err := os.MkdirTemp("", "receiver-bench-")
	if err != nil {
		return ReceiverResult{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	secretFile := dir + "/signingSecret"
	if err := os.WriteFile(secretFile, []byte(benchSigningSecret+"\n"), 0o600); err != nil {
		return ReceiverResult{}, err
	}
	pool, err := newEventPool(cfg.Payloads)
	if err != nil {
		return ReceiverResult{}, err
	}
	cpus := planCPUs()
	res := ReceiverResult{PayloadBytes: pool.avgSize()}
	for run, cores := range []int{1, 2} {
		r, err := runReceiverOnce(ctx, cfg, cpus, pool, run, cores, secretFile, dir)
		if err != nil {
			return res, fmt.Errorf("receiver on %d core(s): %w", cores, err)
		}
		res.Runs = append(res.Runs, r)
	}
	limitCPU, err := cpus.pinSelf(1)
	if err != nil {
		return res, err
	}
	res.LimitPerSec, err = measureLimit(ctx, pool, cfg.Duration)
	limitCPU.restore()
	if err != nil {
		return res, err
	}
	res.Ratio1Core = res.Runs[0].PerSecond / res.LimitPerSec
	res.Method = method(cfg, cpus, res.PayloadBytes)
	return res, nil
}

func (c ReceiverConfig) withDefaults() (ReceiverConfig, error) {
	if c.ReceiverBin == "" {
		return c, errors.New("bench: ReceiverConfig.ReceiverBin is required (build it with: go build -o bin/receiver ./cmd/receiver)")
	}
	if _, err := os.Stat(c.ReceiverBin); err != nil {
		return c, fmt.Errorf("bench: receiver binary: %w", err)
	}
	if c.Duration <= 0 {
		c.Duration = defaultReceiverDuration
	}
	if c.Concurrency <= 0 {
		c.Concurrency = defaultReceiverConcurrency
	}
	if c.Payloads <= 0 {
		c.Payloads = defaultReceiverPayloads
	}
	return c, nil
}

// runReceiverOnce starts a sink and a receiver restricted to cores CPUs, drives them for
// cfg.Duration and stops both. run distinguishes the event ids of successive runs.
func runReceiverOnce(ctx context.Context, cfg ReceiverConfig, cpus cpuPlan, pool *eventPool, run, cores int,
	secretFile, dir string) (ReceiverRun, error) {
	out := ReceiverRun{Cores: cores}
	sink, err := startNoopSink()
	if err != nil {
		return out, err
	}
	defer sink.close()
	proc, err := startReceiverProc(ctx, cfg.ReceiverBin, cpus.taskset, cpus.receiverCPUs(cores), cores, secretFile,
		sink.url(), fmt.Sprintf("%s/receiver-%dcore.log", dir, cores))
	if err != nil {
		return out, err
	}
	defer func() { _ = proc.stop() }() // a no-op after the explicit stop below
	// Keep the load generator and the sink off the receiver's CPUs when there are others.
	pin, err := cpus.pinSelfOutside(cores)
	if err != nil {
		return out, err
	}
	pool.stamp(run, time.Now())
	benchCPU := selfCPUTime()
	st := drive(ctx, proc.webhookURL, pool, run, cfg.Concurrency, cfg.Duration)
	out.BenchCoresBusy = (selfCPUTime() - benchCPU).Seconds() / st.elapsed.Seconds()
	pin.restore()
	if err := proc.stop(); err != nil {
		return out, err
	}
	out.Events, out.Errors, out.ErrorSample = len(st.latencies), st.errors, st.firstError
	out.PerSecond = float64(out.Events) / st.elapsed.Seconds()
	out.P50, out.P99 = nearestRank(st.latencies, 50), nearestRank(st.latencies, 99)
	out.SinkCount, out.SinkDuplicates = sink.counts()
	if cpu := proc.cpuTime(); out.Events > 0 {
		out.CPUPerEvent = cpu / time.Duration(out.Events)
		out.CoresBusy = cpu.Seconds() / st.elapsed.Seconds()
	}
	return out, ctx.Err()
}

// method describes how the figures were measured, including what was and was not pinned.
func method(cfg ReceiverConfig, cpus cpuPlan, payloadBytes int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Closed loop: %d sender goroutines in the bench process POST distinct pre-signed "+
		"payment_intent.succeeded events (~%d B, pretty-printed, a new event id each, so none is deduplicated) "+
		"over keep-alive HTTP/1.1 on 127.0.0.1 to the real receiver binary, a fresh process per configuration "+
		"with GOMAXPROCS=cores, which verifies, deduplicates and relays each event to an in-process no-op HTTP sink "+
		"before answering; each configuration runs %s. ", cfg.Concurrency, payloadBytes, cfg.Duration)
	if cpus.taskset == "" {
		b.WriteString("Nothing is pinned (taskset is absent or not permitted, or fewer than 2 CPUs are available): " +
			"the generator and sink compete with the receiver for the CPUs in both runs; ")
	} else {
		fmt.Fprintf(&b, "The receiver is pinned with taskset to CPU %s (1 core) and %s (2 cores); ",
			cpuList(cpus.receiverCPUs(1)), cpuList(cpus.receiverCPUs(2)))
		for _, cores := range []int{1, 2} {
			if rest := cpus.outside(cores); len(rest) > 0 {
				fmt.Fprintf(&b, "during the %d-core run the bench process (generator and sink) is pinned to CPU %s; ", cores, cpuList(rest))
			} else {
				fmt.Fprintf(&b, "during the %d-core run the bench process (generator and sink) shares the receiver's CPUs and competes with it; ", cores)
			}
		}
	}
	b.WriteString("latency is per request at saturation, so it includes queueing (about concurrency / throughput). " +
		"CoresBusy (receiver CPU time over wall time) below the core count means the receiver was preempted by other " +
		"work or waited for the generator; CPUPerEvent is the figure a noisy machine disturbs least. ")
	fmt.Fprintf(&b,
		"Limit: one goroutine doing HMAC-SHA256 of \"t.body\", hex compare and json.Unmarshal into stripe.Event over the same payloads for %s",
		cfg.Duration)
	if cpus.taskset != "" {
		fmt.Fprintf(&b, ", the bench process pinned to CPU %s", cpuList(cpus.receiverCPUs(1)))
	}
	b.WriteString(".")
	return b.String()
}

// ---- Events ----

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

// driveStats is what the senders of one run observed.
type driveStats struct {
	latencies  []time.Duration // of acknowledged (2xx) requests, sorted
	errors     int
	firstError string
	elapsed    time.Duration
}

// drive posts events to url from conc goroutines for dur, each event once, and records every
// acknowledged request's latency.
func drive(ctx context.Context, url string, pool *eventPool, run, conc int, dur time.Duration) driveStats {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, whatever the environment says
		MaxIdleConns:        conc,
		MaxIdleConnsPerHost: conc,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	// Stripe waits up to 30 s for an answer; a request taking longer is an error here too.
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var (
		next       atomic.Int64
		mu         sync.Mutex
		st         driveStats
		wg         sync.WaitGroup
		perSender  = make([][]time.Duration, conc)
		capPerSend = 2*len(pool.bodies)/conc + 16
	)
	start := time.Now()
	deadline := start.Add(dur)
	for i := range conc {
		// Preallocated so that recording a latency does not allocate in the measured loop.
		lat := make([]time.Duration, 0, capPerSend)
		wg.Go(func() {
			defer func() { perSender[i] = lat }()
			for {
				now := time.Now()
				if !now.Before(deadline) || ctx.Err() != nil {
					return
				}
				body, sig := pool.event(run, next.Add(1)-1, now)
				d, err := postEvent(ctx, client, url, body, sig)
				if err != nil {
					mu.Lock()
					if st.errors++; st.firstError == "" {
						st.firstError = err.Error()
					}
					mu.Unlock()
					continue
				}
				lat = append(lat, d)
			}
		})
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	for _, l := range perSender {
		st.latencies = append(st.latencies, l...)
	}
	slices.Sort(st.latencies)
	return st
}

// postEvent delivers one event as Stripe does and returns the request's latency; a non-2xx
// answer is an error.
func postEvent(ctx context.Context, client *http.Client, url string, body []byte, sig string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header["Content-Type"] = []string{"application/json; charset=utf-8"}
	req.Header["User-Agent"] = []string{"Stripe/1.0 (+https://stripe.com/docs/webhooks)"}
	req.Header["Stripe-Signature"] = []string{sig}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	d := time.Since(start)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return d, fmt.Errorf("receiver answered %d: %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	return d, nil
}

// nearestRank returns the p-th percentile of sorted by the nearest-rank method: the smallest
// value with at least p% of the values at or below it; 0 for no values.
func nearestRank(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*p + 99) / 100 // ceil(n·p/100), 1-based
	return sorted[max(rank, 1)-1]
}

// ---- The limit ----

// measureLimit runs, on this goroutine for dur, the work no receiver can avoid on the pool's
// events: HMAC-SHA256 of "t.body" with the signing secret, a constant-time compare with the
// header's hex v1, and decoding the body into stripe.Event as webhook.ConstructEvent does. It
// returns events per second.
func measureLimit(ctx context.Context, pool *eventPool, dur time.Duration) (float64, error) {
	type signed struct {
		tsDot []byte // "<t>."
		v1    []byte // the header's hex signature
	}
	heads := make([]signed, len(pool.sigs))
	for i, sig := range pool.sigs {
		t, v1, ok := strings.Cut(strings.TrimPrefix(sig, "t="), ",v1=")
		if !ok {
			return 0, fmt.Errorf("bench: unexpected signature header %q", sig)
		}
		heads[i] = signed{tsDot: []byte(t + "."), v1: []byte(v1)}
	}
	var sum [sha256.Size]byte
	var hexSum [2 * sha256.Size]byte
	n := 0
	start := time.Now()
	for ; ; n++ {
		if n%64 == 0 && (time.Since(start) >= dur || ctx.Err() != nil) {
			break
		}
		i := n % len(pool.bodies)
		mac := hmac.New(sha256.New, pool.key)
		mac.Write(heads[i].tsDot)
		mac.Write(pool.bodies[i])
		hex.Encode(hexSum[:], mac.Sum(sum[:0]))
		if subtle.ConstantTimeCompare(hexSum[:], heads[i].v1) != 1 {
			return 0, fmt.Errorf("bench: limit: signature of event %d does not verify", i)
		}
		var ev stripe.Event
		if err := json.Unmarshal(pool.bodies[i], &ev); err != nil || ev.ID == "" {
			return 0, fmt.Errorf("bench: limit: decoding event %d: %v", i, err)
		}
	}
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

// ---- No-op sink ----

// noopSink is the relay target: an HTTP server on loopback that reads each request, counts it
// by Idempotency-Key and answers 202.
type noopSink struct {
	srv *http.Server
	ln  net.Listener

	mu         sync.Mutex
	seen       map[string]struct{}
	requests   int
	duplicates int
}

func startNoopSink() (*noopSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: sink: %w", err)
	}
	s := &noopSink{ln: ln, seen: make(map[string]struct{}, defaultReceiverPayloads)}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = s.srv.Serve(ln) }() // returns ErrServerClosed on close
	return s, nil
}

func (s *noopSink) url() string { return "http://" + s.ln.Addr().String() + "/events" }

func (s *noopSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/events" {
		http.Error(w, "POST /events only", http.StatusNotFound)
		return
	}
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		http.Error(w, "missing Idempotency-Key", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests++
	if _, dup := s.seen[key]; dup {
		s.duplicates++
	} else {
		s.seen[key] = struct{}{}
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// counts returns the relayed requests received and how many repeated an Idempotency-Key.
func (s *noopSink) counts() (requests, duplicates int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.duplicates
}

func (s *noopSink) close() { _ = s.srv.Close() }

// ---- Receiver process ----

// receiverProc is a running cmd/receiver child process.
type receiverProc struct {
	cmd        *exec.Cmd
	logPath    string
	webhookURL string
	done       chan struct{}
	err        error // valid once done is closed
	stopped    bool
}

// startReceiverProc starts the receiver binary with the operator's flags, bound to loopback,
// relaying to sinkURL, with GOMAXPROCS=cores and, when cpus is not empty, pinned to cpus with
// taskset. Its output goes to logPath. It returns once /readyz answers 200.
func startReceiverProc(ctx context.Context, bin, taskset string, cpus []int, cores int, secretFile, sinkURL, logPath string) (*receiverProc, error) {
	addrs, err := testenv.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	webhookAddr, opsAddr := addrs[0], addrs[1]
	args := []string{ // as internal/controller's receiverArgs, on loopback
		"--clinic-id=" + benchClinicID,
		"--mode=" + string(receiver.ModeTest),
		"--signing-secret-file=" + secretFile,
		"--webhook-bind-address=" + webhookAddr,
		"--ops-bind-address=" + opsAddr,
		"--http-target-url=" + sinkURL,
	}
	name := bin
	if len(cpus) > 0 {
		// taskset execs the receiver, so the child is the receiver itself.
		name, args = taskset, append([]string{"-c", cpuList(cpus), bin}, args...)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }() // the child has its own descriptor
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(cores)) // the last value wins
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// SIGTERM if this process dies first; SIGTERM, then SIGKILL, if ctx ends first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = receiverStopGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting %s: %w", name, err)
	}
	p := &receiverProc{cmd: cmd, logPath: logPath, done: make(chan struct{}),
		webhookURL: "http://" + webhookAddr + receiver.WebhookPath(receiver.ModeTest, benchClinicID)}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := p.waitReady(ctx, "http://"+opsAddr+"/readyz"); err != nil {
		_ = p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls readyURL until it answers 200, the process exits or receiverStartTimeout passes.
func (p *receiverProc) waitReady(ctx context.Context, readyURL string) error {
	ctx, cancel := context.WithTimeout(ctx, receiverStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyURL, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("bench: receiver exited before %s answered 200 (%v); its last output:\n%s", readyURL, p.err, p.tail())
		case <-ctx.Done():
			return fmt.Errorf("bench: receiver's %s did not answer 200 within %s; its last output:\n%s", readyURL, receiverStartTimeout, p.tail())
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, waits up to receiverStopGrace, then kills; it reports an unclean exit.
// Calling it again is a no-op.
func (p *receiverProc) stop() error {
	if p.stopped {
		return nil
	}
	p.stopped = true
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM) // it may just have exited
		select {
		case <-p.done:
		case <-time.After(receiverStopGrace):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if p.err != nil {
		return fmt.Errorf("bench: receiver did not exit cleanly (%v); its last output:\n%s", p.err, p.tail())
	}
	return nil
}

// cpuTime returns the CPU time the exited receiver used, user and system.
func (p *receiverProc) cpuTime() time.Duration {
	ps := p.cmd.ProcessState
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// selfCPUTime returns the CPU time this process used so far, user and system.
func selfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tail returns the end of the receiver's output, for error messages.
func (p *receiverProc) tail() string {
	const tailBytes = 2 << 10
	f, err := os.Open(p.logPath)
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	defer func() { _ = f.Close() }()
	if fi, err := f.Stat(); err == nil && fi.Size() > tailBytes {
		_, _ = f.Seek(-tailBytes, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// ---- CPU pinning ----

// cpuPlan is how the bench places the receiver and itself on the CPUs this process may use.
type cpuPlan struct {
	taskset  string // empty: nothing is pinned
	allowed  []int  // CPUs this process may use, ascending
	original string // this process's affinity list, to restore
}

// planCPUs reads this process's allowed CPUs; pinning is used only when taskset exists and at
// least two CPUs are allowed.
func planCPUs() cpuPlan {
	var plan cpuPlan
	path, err := exec.LookPath("taskset")
	if err != nil {
		return plan
	}
	original, allowed, err := allowedCPUs()
	if err != nil || len(allowed) < 2 {
		return plan
	}
	plan = cpuPlan{taskset: path, allowed: allowed, original: original}
	// Setting the affinity this process already has tells whether taskset is permitted here
	// (a seccomp profile may refuse sched_setaffinity); if not, nothing is pinned.
	if plan.setSelf(original) != nil {
		return cpuPlan{}
	}
	return plan
}

// receiverCPUs returns the CPUs the receiver is pinned to when it may use cores of them; nil
// when nothing is pinned.
func (c cpuPlan) receiverCPUs(cores int) []int {
	if c.taskset == "" || cores > len(c.allowed) {
		return nil
	}
	return c.allowed[:cores]
}

// outside returns the allowed CPUs the receiver does not use when it has cores of them.
func (c cpuPlan) outside(cores int) []int {
	if c.taskset == "" || cores >= len(c.allowed) {
		return nil
	}
	return c.allowed[cores:]
}

// pinning is a change of this process's CPU affinity; restore undoes it.
type pinning struct {
	plan    cpuPlan
	changed bool
}

func (p pinning) restore() {
	if p.changed {
		_ = p.plan.setSelf(p.plan.original)
	}
}

// pinSelfOutside pins this process (the load generator and sink) to the CPUs the receiver does
// not use; it changes nothing when there are none.
func (c cpuPlan) pinSelfOutside(cores int) (pinning, error) {
	rest := c.outside(cores)
	if len(rest) == 0 {
		return pinning{plan: c}, nil
	}
	return pinning{plan: c, changed: true}, c.setSelf(cpuList(rest))
}

// pinSelf pins this process to the first n allowed CPUs, those a receiver on n cores uses.
func (c cpuPlan) pinSelf(n int) (pinning, error) {
	cpus := c.receiverCPUs(n)
	if len(cpus) == 0 {
		return pinning{plan: c}, nil
	}
	return pinning{plan: c, changed: true}, c.setSelf(cpuList(cpus))
}

// setSelf sets the affinity of every thread of this process (taskset -a); threads started later
// inherit it from the thread that starts them.
func (c cpuPlan) setSelf(list string) error {
	out, err := exec.Command(c.taskset, "-a", "-p", "-c", list, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: taskset -a -p -c %s: %v: %s", list, err, bytes.TrimSpace(out))
	}
	return nil
}

// allowedCPUs parses Cpus_allowed_list (e.g. "0-3,8") from /proc/self/status.
func allowedCPUs() (string, []int, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		list, ok := strings.CutPrefix(sc.Text(), "Cpus_allowed_list:")
		if !ok {
			continue
		}
		list = strings.TrimSpace(list)
		cpus, err := parseCPUList(list)
		return list, cpus, err
	}
	return "", nil, errors.New("no Cpus_allowed_list in /proc/self/status")
}

// parseCPUList parses a Linux CPU list such as "0-3,8,10-11".
func parseCPUList(list string) ([]int, error) {
	var cpus []int
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, errA := strconv.Atoi(lo)
		b, errB := strconv.Atoi(hi)
		if errA != nil || errB != nil || a > b {
			return nil, fmt.Errorf("invalid CPU list %q", list)
		}
		for cpu := a; cpu <= b; cpu++ {
			cpus = append(cpus, cpu)
		}
	}
	return cpus, nil
}

// cpuList renders CPUs as taskset's -c list, e.g. "0,1".
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}
