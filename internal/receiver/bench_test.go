package receiver

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// countTarget is an in-memory system of record that only counts, so the benchmark measures
// the receiver: read, verify, parse, dedup, relay fan-out and metrics.
type countTarget struct{ n atomic.Int64 }

func (c *countTarget) Name() string { return "memory" }
func (c *countTarget) Deliver(context.Context, relay.Event) error {
	c.n.Add(1)
	return nil
}

// BenchmarkReceiver reports handler throughput (events/s, over the whole loop including the
// test's own signing) and the p99 latency of ServeHTTP alone, serially and in parallel. Every
// event has a new id, so each one is verified and relayed (none is a duplicate).
//
//	go test -run '^$' -bench BenchmarkReceiver -benchtime 3s ./internal/receiver/
func BenchmarkReceiver(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		name := "serial"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			target := &countTarget{}
			dir := b.TempDir()
			writeFile(b, dir+"/secret", secretOld)
			r, err := New(Config{ClinicID: testClinic, Mode: ModeTest, SigningSecretFile: dir + "/secret"},
				[]relay.Target{target}, logr.Discard(), prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			h := r.WebhookHandler()
			parts := benchBody()
			var seq atomic.Int64
			var mu sync.Mutex
			var all []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			run := func(n func() bool) {
				var lat []time.Duration
				for n() {
					lat = append(lat, benchOne(b, h, parts, seq.Add(1)))
				}
				mu.Lock()
				all = append(all, lat...)
				mu.Unlock()
			}
			if parallel {
				b.RunParallel(func(pb *testing.PB) { run(pb.Next) })
			} else {
				i := 0
				run(func() bool { i++; return i <= b.N })
			}
			b.StopTimer()
			if got := target.n.Load(); got != int64(b.N) {
				b.Fatalf("relayed %d of %d events", got, b.N)
			}
			slices.Sort(all)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(all[(len(all)*99)/100].Microseconds()), "p99-µs")
		})
	}
}

// benchBody is an event as Stripe sends it (pretty-printed), split around its id.
func benchBody() [][]byte {
	return bytes.SplitN([]byte(`{
  "id": "EVTID",
  "object": "event",
  "api_version": "`+stripe.APIVersion+`",
  "created": 1700000000,
  "data": {
    "object": {
      "id": "pi_3OabcDEF",
      "object": "payment_intent",
      "amount": 12345,
      "amount_received": 12345,
      "currency": "usd",
      "customer": "cus_PabcDEF",
      "status": "succeeded",
      "metadata": {"patient_id": "p-42", "invoice_id": "inv-7"}
    }
  },
  "livemode": false,
  "pending_webhooks": 1,
  "request": {"id": null, "idempotency_key": null},
  "type": "payment_intent.succeeded"
}`), []byte("EVTID"), 2)
}

func benchOne(b *testing.B, h http.Handler, parts [][]byte, n int64) time.Duration {
	body := slices.Concat(parts[0], []byte("evt_bench_"+strconv.FormatInt(n, 10)), parts[1])
	req := httptest.NewRequest(http.MethodPost, testPath, bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", sign(body, secretOld, time.Now()))
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, req)
	d := time.Since(start)
	if rec.Code != http.StatusOK {
		b.Fatalf("answered %d: %s", rec.Code, rec.Body.String())
	}
	return d
}
