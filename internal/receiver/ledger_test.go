package receiver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/relay/fhirrelay"
	"github.com/clinicpay/stripe-operator/internal/relay/httprelay"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
)

const ledgerPath = ledger.PathPrefix + testClinic

// fhirStore is a FHIR R4 server on loopback with conditional create as R4 specifies it
// (https://hl7.org/fhir/R4/http.html#ccreate): If-None-Exist: identifier=<system>|<value> matching
// no stored resource of the type creates one (201), one match answers 200 with the stored
// resource. Its first failFirst[type] POSTs of a type answer 503.
type fhirStore struct {
	mu        sync.Mutex
	stored    map[string][]map[string]any
	failFirst map[string]int
	posts     int
	srv       *httptest.Server
}

func newFHIRStore(t *testing.T) *fhirStore {
	s := &fhirStore{stored: map[string][]map[string]any{}, failFirst: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *fhirStore) serve(w http.ResponseWriter, r *http.Request) {
	typ := strings.TrimPrefix(r.URL.Path, "/r4/")
	body, _ := io.ReadAll(r.Body)
	var res map[string]any
	q, err := url.ParseQuery(r.Header.Get("If-None-Exist"))
	system, value, ok := strings.Cut(q.Get("identifier"), "|")
	if err != nil || !ok || json.Unmarshal(body, &res) != nil || res["resourceType"] != typ {
		http.Error(w, "bad conditional create", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts++
	if s.failFirst[typ] > 0 {
		s.failFirst[typ]--
		http.Error(w, "database restarting", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	for _, stored := range s.stored[typ] {
		if hasID(stored, system, value) {
			w.WriteHeader(http.StatusOK)
			_ = json.NewEncoder(w).Encode(stored)
			return
		}
	}
	res["id"] = fmt.Sprint(len(s.stored[typ]) + 1)
	s.stored[typ] = append(s.stored[typ], res)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(res)
}

func hasID(res map[string]any, system, value string) bool {
	ids, _ := res["identifier"].([]any)
	for _, id := range ids {
		m, _ := id.(map[string]any)
		if m["system"] == system && m["value"] == value {
			return true
		}
	}
	return false
}

func (s *fhirStore) count(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.stored[typ])
}

func (s *fhirStore) find(typ, system, value string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, res := range s.stored[typ] {
		if hasID(res, system, value) {
			return res
		}
	}
	return nil
}

func (s *fhirStore) failNext(typ string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failFirst[typ] = n
}

// ledgerSink is the clinic's HTTP system of record: it verifies the Standard Webhooks signature
// with the reference library, and keeps each envelope it accepted under its Idempotency-Key,
// once, as a clinic deduplicating on it does. Its first failFirst requests answer 503.
type ledgerSink struct {
	t         *testing.T
	mu        sync.Mutex
	failFirst int
	posts     map[string]int
	accepted  map[string]httprelay.Envelope
	srv       *httptest.Server
}

func newLedgerSink(t *testing.T) *ledgerSink {
	s := &ledgerSink{t: t, posts: map[string]int{}, accepted: map[string]httprelay.Envelope{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *ledgerSink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := sinkWebhook.Verify(body, r.Header); err != nil {
		s.t.Errorf("ledger sink: bad Standard Webhooks signature: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var env httprelay.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		s.t.Errorf("ledger sink: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts[key]++
	if s.failFirst > 0 {
		s.failFirst--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if _, seen := s.accepted[key]; !seen {
		s.accepted[key] = env
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *ledgerSink) envelope(key string) (httprelay.Envelope, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok := s.accepted[key]
	return env, s.posts[key], ok
}

// ledgerEnv is a receiver in Test mode whose signing secret file holds the current secret and
// the retiring one, with a FHIR server and an HTTP endpoint as systems of record, served over
// loopback HTTP.
type ledgerEnv struct {
	f    *fixture
	fhir *fhirStore
	sink *ledgerSink
	url  string
}

func newLedgerEnv(t *testing.T, mutate ...func(*Config)) *ledgerEnv {
	t.Helper()
	e := &ledgerEnv{fhir: newFHIRStore(t), sink: newLedgerSink(t)}
	keyFile := filepath.Join(t.TempDir(), "hmacKey")
	writeFile(t, keyFile, sinkKey+"\n")
	ht, err := httprelay.New(httprelay.Config{URL: e.sink.srv.URL + "/books", SigningKeyFile: keyFile, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ft, err := fhirrelay.New(fhirrelay.Config{BaseURL: e.fhir.srv.URL + "/r4", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.f = newFixture(t, secretNew+"\n"+secretOld+"\n", []relay.Target{ht, ft}, mutate...)
	srv := httptest.NewServer(e.f.r.WebhookHandler())
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

// answer is a decoded receiver answer to a ledger message.
type answer struct {
	code int
	ledger.Result
}

// postLedger sends body to path with header set to sig (no header when empty).
func (e *ledgerEnv) postLedger(t *testing.T, method, path string, body []byte, header, sig string) answer {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if sig != "" {
		req.Header.Set(header, sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	a := answer{code: resp.StatusCode}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &a.Result); err != nil {
		t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	return a
}

// send signs msg as the operator's sendLedger does and posts it.
func (e *ledgerEnv) send(t *testing.T, msg ledger.Message) answer {
	t.Helper()
	body := mustMarshal(t, msg)
	return e.postLedger(t, http.MethodPost, ledgerPath, body, sigheader.LedgerHeader,
		sigheader.Ledger.Sign([]byte(secretNew), time.Now(), body))
}

// relayEvent delivers a Stripe-signed event of type typ with object to the webhook path.
func (e *ledgerEnv) relayEvent(t *testing.T, id, typ string, object map[string]any) {
	t.Helper()
	body := mustMarshal(t, map[string]any{"id": id, "object": "event", "api_version": stripe.APIVersion, "created": 1_705_300_000,
		"livemode": false, "type": typ, "data": map[string]any{"object": object}})
	a := e.postLedger(t, http.MethodPost, testPath, body, "Stripe-Signature", sign(body, secretNew, time.Now()))
	if a.code != http.StatusOK {
		t.Fatalf("event %s: HTTP %d %+v", id, a.code, a.Result)
	}
}

// relayPaymentIntent and relayCharge deliver the events that write a payment's PaymentNotice.
func (e *ledgerEnv) relayPaymentIntent(t *testing.T, pi, ch string, amount int64, currency string) {
	e.relayEvent(t, "evt_"+pi, "payment_intent.succeeded", map[string]any{"id": pi, "object": "payment_intent", "amount": amount,
		"amount_received": amount, "currency": currency, "status": "succeeded", "latest_charge": ch})
}

func (e *ledgerEnv) relayCharge(t *testing.T, ch string, amount int64, currency string) {
	e.relayEvent(t, "evt_"+ch, "charge.succeeded", map[string]any{"id": ch, "object": "charge", "amount": amount,
		"amount_captured": amount, "captured": true, "paid": true, "currency": currency, "status": "succeeded"})
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dayPayout is a day's payout in currency, amounts in minor units times scale: a card payment
// with a PaymentIntent (pi_1/ch_1), a bare charge (ch_2), a partial refund of pi_1, a dispute of
// ch_2 with its fee, a Stripe fee booked on its own, and a positive adjustment.
func dayPayout(currency string, scale int64) ledger.Message {
	items := []ledger.Item{
		{ID: "txn_ch1", Type: "charge", ReportingCategory: "charge", Amount: 6000, Fee: 204, SourceID: "ch_1", ChargeID: "ch_1", PaymentIntentID: "pi_1"},
		{ID: "txn_ch2", Type: "charge", ReportingCategory: "charge", Amount: 1500, Fee: 74, SourceID: "ch_2", ChargeID: "ch_2"},
		{ID: "txn_re1", Type: "refund", ReportingCategory: "refund", Amount: -500, SourceID: "re_1", ChargeID: "ch_1", PaymentIntentID: "pi_1"},
		{ID: "txn_dp1", Type: "adjustment", ReportingCategory: "dispute", Amount: -1500, Fee: 1500, SourceID: "dp_1", ChargeID: "ch_2"},
		{ID: "txn_fee1", Type: "stripe_fee", ReportingCategory: "fee", Amount: -200},
		{ID: "txn_adj1", Type: "adjustment", ReportingCategory: "other_adjustment", Amount: 300, SourceID: "adj_1"},
	}
	var sum int64
	for i := range items {
		items[i].Amount *= scale
		items[i].Fee *= scale
		items[i].Net = items[i].Amount - items[i].Fee
		items[i].Currency, items[i].Created = currency, 1_705_300_000+int64(i)
		sum += items[i].Net
	}
	p := ledger.Payout{ID: "po_" + currency, ClinicID: testClinic, Amount: sum, Currency: currency, ArrivalDate: 1_705_536_000,
		Created: 1_705_363_200, Items: items}
	return ledger.Message{ID: p.ID, Kind: ledger.KindPayout, ClinicID: testClinic, Payout: &p}
}

// TestLedgerPayoutEveryPaymentRelayedBefore: both payments' events reached the FHIR server
// through the receiver; the payout is written to both systems of record and fills nothing in.
func TestLedgerPayoutEveryPaymentRelayedBefore(t *testing.T) {
	e := newLedgerEnv(t)
	e.relayPaymentIntent(t, "pi_1", "ch_1", 600000, "usd")
	e.relayCharge(t, "ch_2", 150000, "usd")
	msg := dayPayout("usd", 100)
	a := e.send(t, msg)
	if a.code != http.StatusOK || a.Status != ledger.StatusWritten || len(a.Filled) != 0 {
		t.Fatalf("answer %d %+v, want 200 written with nothing filled", a.code, a.Result)
	}
	if n, r := e.fhir.count("PaymentNotice"), e.fhir.count("PaymentReconciliation"); n != 2 || r != 1 {
		t.Errorf("FHIR holds %d PaymentNotices and %d PaymentReconciliations, want 2 and 1", n, r)
	}
	recon := e.fhir.find("PaymentReconciliation", fhirrelay.SystemStripePayout, "po_usd")
	if recon == nil || len(recon["detail"].([]any)) != 9 {
		t.Fatalf("reconciliation = %v, want 6 items and 3 fees as details", recon)
	}
	env, posts, ok := e.sink.envelope("po_usd")
	if !ok || posts != 1 || env.Type != "payout.reconciled" || env.ID != "po_usd" || env.Payout == nil || len(env.Payout.Items) != 6 {
		t.Fatalf("HTTP sink: %+v (%d posts)", env, posts)
	}
	if env.Object.AmountDecimal != "3822.00" || env.Payout.Items[3].FeeDecimal != "1500.00" {
		t.Errorf("deposit %s, dispute fee %s; want 3822.00 and 1500.00", env.Object.AmountDecimal, env.Payout.Items[3].FeeDecimal)
	}
	if got := counter(t, e.f.r.metrics.ledger.WithLabelValues(ledger.KindPayout, ledgerWritten)); got != 1 {
		t.Errorf("written payouts metric = %v", got)
	}
	// Ledger messages are no Stripe events: the event dedup and counters do not see them.
	if got := counter(t, e.f.r.metrics.duplicates); got != 0 {
		t.Errorf("duplicates metric = %v", got)
	}
}

// TestLedgerPayoutFillsInWhatFHIRNeverSaw: only ch_2's event reached the FHIR server; pi_1's
// PaymentNotice is written from the payout and reported, in zero-, two- and three-decimal
// currencies. The refund and the dispute, though they name the payments, fill nothing in.
func TestLedgerPayoutFillsInWhatFHIRNeverSaw(t *testing.T) {
	for _, c := range []struct {
		currency string
		gross    float64
		scale    int64
	}{{"usd", 6000, 100}, {"jpy", 6000, 1}, {"kwd", 6, 1}} {
		t.Run(c.currency, func(t *testing.T) {
			e := newLedgerEnv(t)
			e.relayCharge(t, "ch_2", 1500*c.scale, c.currency)
			a := e.send(t, dayPayout(c.currency, c.scale))
			if a.code != http.StatusOK || a.Status != ledger.StatusWritten || !slices.Equal(a.Filled, []string{"pi_1"}) {
				t.Fatalf("answer %d %+v, want 200 written, filled [pi_1]", a.code, a.Result)
			}
			notice := e.fhir.find("PaymentNotice", fhirrelay.SystemStripeCharge, "ch_1")
			if notice == nil {
				t.Fatal("no PaymentNotice found by the payment's charge")
			}
			// The store decodes FHIR decimals as JSON numbers: 6000.00 USD is 6000.
			if amount := notice["amount"].(map[string]any); amount["value"] != c.gross || amount["currency"] != strings.ToUpper(c.currency) {
				t.Errorf("filled notice amount %v, want %v %s", amount, c.gross, strings.ToUpper(c.currency))
			}
			if n := e.fhir.count("PaymentNotice"); n != 2 {
				t.Errorf("%d PaymentNotices, want 2", n)
			}
			// pi_1's event arrives at last: it finds the filled-in notice.
			e.relayPaymentIntent(t, "pi_1", "ch_1", 6000*c.scale, c.currency)
			if n := e.fhir.count("PaymentNotice"); n != 2 {
				t.Errorf("%d PaymentNotices after the late event, want 2", n)
			}
		})
	}
}

// flagMsg is a dispute flag raised by a charge.dispute.created event.
func flagMsg(t *testing.T, livemode bool) ledger.Message {
	event := mustMarshal(t, map[string]any{"id": "evt_dp1", "object": "event", "type": "charge.dispute.created", "created": 1_705_400_000,
		"livemode": livemode, "api_version": stripe.APIVersion, "data": map[string]any{"object": map[string]any{"id": "dp_1",
			"object": "dispute", "amount": 1500, "currency": "usd", "charge": "ch_2", "status": "needs_response"}}})
	f := ledger.Flag{ID: ledger.FlagID("Dispute", "evt_dp1"), Rule: "Dispute", Reason: "a customer disputed 15.00 USD of charge ch_2",
		Value: 1, Threshold: 1, EventID: "evt_dp1", EventType: "charge.dispute.created", Created: 1_705_400_000, ChargeID: "ch_2",
		DisputeID: "dp_1", Amount: 1500, Currency: "usd", Event: event}
	return ledger.Message{ID: f.ID, Kind: ledger.KindFlag, ClinicID: testClinic, Livemode: livemode, Flag: &f}
}

// TestLedgerFlagReachesBothSystemsOfRecord: the FHIR server gets a Flag, the HTTP endpoint the
// flagged event's envelope with the flag in "flags", signed with Standard Webhooks.
func TestLedgerFlagReachesBothSystemsOfRecord(t *testing.T) {
	e := newLedgerEnv(t)
	a := e.send(t, flagMsg(t, false))
	if a.code != http.StatusOK || a.Status != ledger.StatusWritten || len(a.Filled) != 0 {
		t.Fatalf("answer %d %+v", a.code, a.Result)
	}
	flag := e.fhir.find("Flag", fhirrelay.SystemAnomalyFlag, "Dispute/evt_dp1")
	if flag == nil || flag["status"] != "active" || flag["code"].(map[string]any)["text"] != "a customer disputed 15.00 USD of charge ch_2" {
		t.Fatalf("Flag = %v", flag)
	}
	env, posts, ok := e.sink.envelope("Dispute/evt_dp1")
	if !ok || posts != 1 || env.ID != "evt_dp1" || env.Type != "charge.dispute.created" || env.Object.ID != "dp_1" ||
		len(env.Flags) != 1 || env.Flags[0].Rule != "Dispute" || env.Flags[0].DisputeID != "dp_1" || env.Flags[0].AmountDecimal != "15.00" {
		t.Fatalf("HTTP sink: %+v (%d posts)", env, posts)
	}
	if got := counter(t, e.f.r.metrics.ledger.WithLabelValues(ledger.KindFlag, ledgerWritten)); got != 1 {
		t.Errorf("written flags metric = %v", got)
	}
}

// TestLedgerRefusals: each way a message is not for this receiver gets its own status, and
// nothing reaches a system of record. Signatures the same secret makes for other uses (Stripe's
// scheme, the replay marker) do not pass for a ledger signature; the retiring secret does.
func TestLedgerRefusals(t *testing.T) {
	e := newLedgerEnv(t)
	good := mustMarshal(t, dayPayout("usd", 100))
	now := time.Now()
	ledgerSig := func(body []byte, secret string, at time.Time) string {
		return sigheader.Ledger.Sign([]byte(secret), at, body)
	}
	signed := func(v any) []byte { return mustMarshal(t, v) }
	liveMsg := dayPayout("usd", 100)
	liveMsg.Livemode, liveMsg.Payout.Livemode = true, true
	otherClinic := dayPayout("usd", 100)
	otherClinic.ClinicID, otherClinic.Payout.ClinicID = "clinic-b", "clinic-b"
	partial := dayPayout("usd", 100)
	partial.Payout.Items = partial.Payout.Items[:2]
	payoutLive := dayPayout("usd", 100)
	payoutLive.Payout.Livemode = true
	otherEvent := flagMsg(t, false)
	otherEvent.Flag.Event = json.RawMessage(`{"id":"evt_other","object":"event","livemode":false}`)
	for _, tc := range []struct {
		name, method, path, header, status string
		body                               []byte
		sig                                func(body []byte) string
		code                               int
		message                            string
	}{
		{name: "GET", method: http.MethodGet, path: ledgerPath, code: 405, status: "method_not_allowed"},
		{name: "another clinic's path", path: ledger.PathPrefix + "clinic-b", body: good, code: 404, status: "not_found"},
		{name: "a path below the clinic", path: ledgerPath + "/x", body: good, code: 404, status: "not_found"},
		{name: "oversize", body: bytes.Repeat([]byte(" "), int(LedgerMaxBodyBytes)+1), code: 413, status: "too_large"},
		{name: "no signature", body: good, sig: func([]byte) string { return "" }, code: 401, status: "unauthorized",
			message: "missing Clinicpay-Ledger-Signature"},
		{name: "an unknown secret", body: good, sig: func(b []byte) string { return ledgerSig(b, secretUnknown, now) }, code: 401,
			status: "unauthorized", message: "no valid"},
		{name: "Stripe's scheme with the same secret", body: good, sig: func(b []byte) string { return sigheader.Sign([]byte(secretNew), now, b) },
			code: 401, status: "unauthorized"},
		{name: "the replay marker with the same secret", body: good, sig: func(b []byte) string { return sigheader.SignReplay(secretNew, now, b) },
			code: 401, status: "unauthorized"},
		{name: "a Stripe-Signature header only", body: good, header: "Stripe-Signature", sig: func(b []byte) string { return sign(b, secretNew, now) },
			code: 401, status: "unauthorized", message: "missing"},
		{name: "stale", body: good, sig: func(b []byte) string { return ledgerSig(b, secretNew, now.Add(-6*time.Minute)) }, code: 401,
			status: "unauthorized", message: "5m0s"},
		{name: "future", body: good, sig: func(b []byte) string { return ledgerSig(b, secretNew, now.Add(6*time.Minute)) }, code: 401,
			status: "unauthorized", message: "5m0s"},
		{name: "garbled header", body: good, sig: func([]byte) string { return "t=x,v1=zz" }, code: 401, status: "unauthorized", message: "invalid"},
		{name: "not JSON", body: []byte(`{"id":`), code: 400, status: "rejected", message: "not JSON"},
		{name: "a payout that does not add up", body: signed(partial), code: 400, status: "rejected", message: "add up"},
		{name: "unknown kind", body: []byte(`{"id":"x","kind":"payout.created","clinicID":"clinic-a"}`), code: 400, status: "rejected",
			message: "unknown kind"},
		{name: "a live message in Test mode", body: signed(liveMsg), code: 400, status: "rejected", message: "livemode"},
		{name: "a live payout in a test message", body: signed(payoutLive), code: 400, status: "rejected", message: "livemode"},
		{name: "a live event flagged in a test message", body: signed(flagMsg(t, true)), code: 400, status: "rejected", message: "livemode"},
		{name: "another clinic's message", body: signed(otherClinic), code: 400, status: "rejected", message: "clinic-b"},
		{name: "a flag carrying another event", body: signed(otherEvent), code: 400, status: "rejected", message: "evt_other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method, path, header := cmpOr(tc.method, http.MethodPost), cmpOr(tc.path, ledgerPath), cmpOr(tc.header, sigheader.LedgerHeader)
			sig := ledgerSig(tc.body, secretNew, now)
			if tc.sig != nil {
				sig = tc.sig(tc.body)
			}
			a := e.postLedger(t, method, path, tc.body, header, sig)
			if a.code != tc.code || a.Status != tc.status || !strings.Contains(a.Message, tc.message) {
				t.Errorf("answer %d %+v, want %d %s containing %q", a.code, a.Result, tc.code, tc.status, tc.message)
			}
		})
	}
	e.fhir.mu.Lock()
	e.sink.mu.Lock()
	posts, sinkPosts := e.fhir.posts, len(e.sink.posts)
	e.sink.mu.Unlock()
	e.fhir.mu.Unlock()
	if posts != 0 || sinkPosts != 0 {
		t.Errorf("refused messages reached the systems of record: %d FHIR posts, %d HTTP posts", posts, sinkPosts)
	}
	if got := counter(t, e.f.r.metrics.ledger.WithLabelValues(kindUnknown, ledgerUnauthorized)); got != 8 {
		t.Errorf("unauthorized metric = %v, want 8", got)
	}
	// The retiring secret is still good while the file holds it.
	if a := e.postLedger(t, http.MethodPost, ledgerPath, good, sigheader.LedgerHeader, ledgerSig(good, secretOld, now)); a.code != http.StatusOK {
		t.Errorf("signed with the retiring secret: %d %+v", a.code, a.Result)
	}
	assertNoSecrets(t, "logs", e.f.logs.String(), secretNew, secretOld, sinkKey)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestLedgerFailingTargetThenRetry: the HTTP endpoint fails the first attempt, so the receiver
// answers 503 naming it, while the FHIR server recorded everything; the operator's retry is
// answered written, and still reports the payment the first attempt filled in.
func TestLedgerFailingTargetThenRetry(t *testing.T) {
	e := newLedgerEnv(t)
	e.sink.failFirst = 1
	msg := dayPayout("jpy", 1)
	a := e.send(t, msg)
	if a.code != http.StatusServiceUnavailable || a.Status != ledgerFailed || a.Message != "not written to http; send again later" {
		t.Fatalf("first attempt: %d %+v", a.code, a.Result)
	}
	a = e.send(t, msg)
	if a.code != http.StatusOK || a.Status != ledger.StatusWritten || !slices.Equal(a.Filled, []string{"ch_2", "pi_1"}) {
		t.Fatalf("retry: %d %+v, want written with [ch_2 pi_1] filled", a.code, a.Result)
	}
	if got := counter(t, e.f.r.metrics.ledger.WithLabelValues(ledger.KindPayout, ledgerFailed)); got != 1 {
		t.Errorf("failed payouts metric = %v, want 1", got)
	}
	assertNoSecrets(t, "logs", e.f.logs.String(), secretNew, secretOld, sinkKey)

	// Another clinic's receiver, whose FHIR server fails the payout's reconciliation once, after
	// the missing notices were written: the retry finds them (200) and still reports them.
	e = newLedgerEnv(t)
	e.fhir.failNext("PaymentReconciliation", 1)
	other := dayPayout("kwd", 1)
	if a := e.send(t, other); a.code != http.StatusServiceUnavailable || a.Message != "not written to fhir; send again later" {
		t.Fatalf("FHIR failing: %d %+v", a.code, a.Result)
	}
	if a := e.send(t, other); a.code != http.StatusOK || !slices.Equal(a.Filled, []string{"ch_2", "pi_1"}) {
		t.Fatalf("FHIR retry: %d %+v", a.code, a.Result)
	}
	if n, r := e.fhir.count("PaymentNotice"), e.fhir.count("PaymentReconciliation"); n != 2 || r != 1 {
		t.Errorf("FHIR holds %d notices and %d reconciliations, want 2 and 1", n, r)
	}
}

// TestLedgerSameMessageTwiceWritesOnce: the operator sends a message again (it lost the answer);
// the receiver writes it again, and each system of record keeps one copy: the FHIR server by
// conditional create, the clinic's endpoint by the same Idempotency-Key.
func TestLedgerSameMessageTwiceWritesOnce(t *testing.T) {
	e := newLedgerEnv(t)
	for _, msg := range []ledger.Message{dayPayout("usd", 100), flagMsg(t, false)} {
		for range 2 {
			if a := e.send(t, msg); a.code != http.StatusOK {
				t.Fatalf("%s: %d %+v", msg.ID, a.code, a.Result)
			}
		}
	}
	if n, r, f := e.fhir.count("PaymentNotice"), e.fhir.count("PaymentReconciliation"), e.fhir.count("Flag"); n != 2 || r != 1 || f != 1 {
		t.Errorf("FHIR holds %d notices, %d reconciliations, %d flags; want 2, 1, 1", n, r, f)
	}
	if len(e.sink.accepted) != 2 || e.sink.posts["po_usd"] != 2 || e.sink.posts["Dispute/evt_dp1"] != 2 {
		t.Errorf("HTTP sink: %d kept, posts %v; want 2 kept, each posted twice under one key", len(e.sink.accepted), e.sink.posts)
	}
}

// TestLedgerLargePayout: a payout of 10,000 balance transactions (2,000 of them payments the FHIR
// server never saw) fits the body limit and is written. The answer lists the first
// ledger.MaxFilledIDs payments and counts them all, small enough for the operator, which reads 64
// KiB of it. The forward timeout is raised because the race detector slows the 2,001 FHIR writes
// to 15-30 s (2 s without it); see docs/finance.md for what large payouts cost.
func TestLedgerLargePayout(t *testing.T) {
	e := newLedgerEnv(t, func(c *Config) { c.ForwardTimeout = 2 * time.Minute })
	items := make([]ledger.Item, 0, 10_000)
	var sum int64
	for i := range 10_000 {
		it := ledger.Item{ID: fmt.Sprintf("txn_%05d", i), Type: "stripe_fee", ReportingCategory: "fee", Amount: -3, Currency: "usd",
			Created: 1_705_300_000 + int64(i)}
		if i%5 == 0 {
			it = ledger.Item{ID: it.ID, Type: "charge", ReportingCategory: "charge", Amount: 12_345, Fee: 388, Currency: "usd",
				Created: it.Created, SourceID: fmt.Sprintf("ch_3OjK2pLq8sTuVwXy1O%05d", i), ChargeID: fmt.Sprintf("ch_3OjK2pLq8sTuVwXy1O%05d", i),
				PaymentIntentID: fmt.Sprintf("pi_3OjK2pLq8sTuVwXy1H%05d", i)}
		}
		it.Net = it.Amount - it.Fee
		sum += it.Net
		items = append(items, it)
	}
	p := ledger.Payout{ID: "po_big", ClinicID: testClinic, Amount: sum, Currency: "usd", ArrivalDate: 1_705_536_000, Created: 1_705_363_200,
		Items: items}
	msg := ledger.Message{ID: p.ID, Kind: ledger.KindPayout, ClinicID: testClinic, Payout: &p}
	if n := len(mustMarshal(t, msg)); n > int(LedgerMaxBodyBytes)/2 {
		t.Errorf("a 10,000-item payout is %d bytes, too close to the %d limit", n, LedgerMaxBodyBytes)
	}
	a := e.send(t, msg)
	if a.code != http.StatusOK || a.FilledCount != 2000 || len(a.Filled) != ledger.MaxFilledIDs || a.Filled[0] != "pi_3OjK2pLq8sTuVwXy1H00000" {
		t.Fatalf("answer %d, status %s, %d filled of %d, message %q", a.code, a.Status, len(a.Filled), a.FilledCount, a.Message)
	}
	if size := len(mustMarshal(t, a.Result)); size > 48<<10 {
		t.Errorf("the answer is %d bytes; the operator reads 64 KiB", size)
	}
	if n := e.fhir.count("PaymentNotice"); n != 2000 {
		t.Errorf("%d PaymentNotices, want 2000", n)
	}
}

// TestLedgerConcurrentSendsWriteOnce: two sends of one payout at once (the operator's retry
// while the first is still being written) both end written, with one copy of everything on the
// FHIR server and the same payments reported filled.
func TestLedgerConcurrentSendsWriteOnce(t *testing.T) {
	e := newLedgerEnv(t)
	msg := dayPayout("usd", 100)
	answers := make(chan answer, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { answers <- e.send(t, msg) })
	}
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.code != http.StatusOK || !slices.Equal(a.Filled, []string{"ch_2", "pi_1"}) {
			t.Errorf("answer %d %+v, want written with [ch_2 pi_1]", a.code, a.Result)
		}
	}
	if n, r := e.fhir.count("PaymentNotice"), e.fhir.count("PaymentReconciliation"); n != 2 || r != 1 {
		t.Errorf("FHIR holds %d notices and %d reconciliations, want 2 and 1", n, r)
	}
}

// TestLedgerTargetWithoutLedgerWriter: a system of record that cannot record ledger messages
// makes the answer 503 naming it: "written" would tell the operator the books are complete.
func TestLedgerTargetWithoutLedgerWriter(t *testing.T) {
	events := &fakeTarget{name: "events-only"}
	f := newFixture(t, secretNew+"\n", []relay.Target{events})
	srv := httptest.NewServer(f.r.WebhookHandler())
	t.Cleanup(srv.Close)
	e := &ledgerEnv{f: f, url: srv.URL}
	a := e.send(t, dayPayout("usd", 100))
	if a.code != http.StatusServiceUnavailable || a.Status != ledgerFailed || a.Message != "not written to events-only; send again later" {
		t.Errorf("answer %d %+v", a.code, a.Result)
	}
	if len(events.calls()) != 0 {
		t.Errorf("the ledger message was relayed as an event")
	}
}
