package controller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/receiver"
	"github.com/clinicpay/stripe-operator/internal/relay/fhirrelay"
	"github.com/clinicpay/stripe-operator/internal/relay/httprelay"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// rawSink is a system of record that deduplicates nothing: it counts every write it accepts
// per key (the HTTP envelope's event id, or the FHIR conditional-create identifier) and keeps
// the Stripe API version the write carried. wipe forgets everything (the clinic lost its data).
type rawSink struct {
	mu       sync.Mutex
	count    map[string]int
	version  map[string]string
	bad      []string // requests it could not read
	keyOf    func(r *http.Request, body []byte) (key, version string, err error)
	accepted int
}

func newRawSink(keyOf func(r *http.Request, body []byte) (string, string, error)) *rawSink {
	return &rawSink{count: map[string]int{}, version: map[string]string{}, keyOf: keyOf}
}

func (s *rawSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key, version, err := s.keyOf(r, body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.bad = append(s.bad, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.count[key]++
	s.version[key] = version
	s.accepted++
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(http.StatusCreated) // a raw sink never says "already there"
	_, _ = w.Write(body)
}

func (s *rawSink) wipe() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count, s.version, s.accepted = map[string]int{}, map[string]string{}, 0
}

func (s *rawSink) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// check asserts that the sink holds exactly the keys of want, each written once, in the API
// version want names.
func (s *rawSink) check(t *testing.T, name string, want map[string]string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bad) > 0 {
		t.Errorf("%s sink could not read %d requests, e.g. %s", name, len(s.bad), s.bad[0])
	}
	missing, twice, wrongVersion := 0, 0, 0
	for key, version := range want {
		switch n := s.count[key]; {
		case n == 0:
			missing++
		case n > 1:
			if twice++; twice <= 3 {
				t.Errorf("%s sink: %s written %d times, want once", name, key, n)
			}
		}
		if got := s.version[key]; s.count[key] > 0 && got != version {
			if wrongVersion++; wrongVersion <= 3 {
				t.Errorf("%s sink: %s came in API version %q, want %q (the version it was created in)", name, key, got, version)
			}
		}
	}
	unknown := 0
	for key := range s.count {
		if _, ok := want[key]; !ok {
			if unknown++; unknown <= 3 {
				t.Errorf("%s sink: unexpected write %s", name, key)
			}
		}
	}
	if missing+twice+wrongVersion+unknown > 0 || s.accepted != len(want) {
		t.Errorf("%s sink: %d writes of %d keys (%d missing, %d more than once, %d in the wrong version, %d unknown), want %d keys once each",
			name, s.accepted, len(s.count), missing, twice, wrongVersion, unknown, len(want))
	}
}

// envelopeKey reads the HTTP relay's envelope: the event id (which must match the
// Idempotency-Key) and apiVersion.
func envelopeKey(r *http.Request, body []byte) (string, string, error) {
	var env struct{ ID, APIVersion string }
	if err := json.Unmarshal(body, &env); err != nil || env.ID == "" {
		return "", "", fmt.Errorf("not an envelope: %q", body)
	}
	if k := r.Header.Get("Idempotency-Key"); k != env.ID {
		return "", "", fmt.Errorf("Idempotency-Key %q for event %s", k, env.ID)
	}
	return env.ID, env.APIVersion, nil
}

// fhirKey reads a FHIR conditional create: the resource type and its If-None-Exist identifier,
// and the Stripe API version extension.
func fhirKey(r *http.Request, body []byte) (string, string, error) {
	var res struct {
		ResourceType string
		Extension    []struct{ URL, ValueString string }
	}
	cond := r.Header.Get("If-None-Exist")
	if r.Method != http.MethodPost || json.Unmarshal(body, &res) != nil || res.ResourceType == "" || cond == "" {
		return "", "", fmt.Errorf("not a conditional create: %s %q", r.Method, body)
	}
	version := ""
	for _, e := range res.Extension {
		if e.URL == fhirrelay.ExtensionStripeAPIVersion {
			version = e.ValueString
		}
	}
	return res.ResourceType + " " + strings.TrimPrefix(cond, "identifier="), version, nil
}

// paymentNoticeKey is the fhirKey of the PaymentNotice that payment_intent.succeeded of pi writes.
func paymentNoticeKey(pi string) string {
	return "PaymentNotice " + fhirrelay.SystemStripePaymentIntent + "|" + pi
}

// lineLog collects log lines, for asserting what the receiver logged.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

func (l *lineLog) containing(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
next:
	for _, line := range l.lines {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				continue next
			}
		}
		n++
	}
	return n
}

// TestReplayEndToEndBringsBackEverything is issue 13's end-to-end replay: the operator, the
// Stripe fake, the real receiver and an HTTP and a FHIR system of record that deduplicate
// nothing. 10,000 events sit in Stripe's log, delivered long ago; the oldest 50 of them went
// through this receiver, which remembers them as relayed; 50 more are delivered live by the
// fake in the endpoint's API version. Then the clinic loses
// everything, and a replay-since of all 10,050, rendered in the API versions they were
// created in (2022-11-15, 2023-10-16, 2024-06-20), writes each exactly once at each sink, in
// its creation version, and ends Succeeded with 10,050 delivered. A second replay of events in
// 2025-03-31.basil, which the FHIR mapping refuses, reaches the HTTP sink, leaves the FHIR
// sink untouched with the refusal named in the receiver's log, and ends Failed with the counts.
func TestReplayEndToEndBringsBackEverything(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	hs, fs := newRawSink(envelopeKey), newRawSink(fhirKey)
	hsrv, fsrv := httptest.NewServer(hs), httptest.NewServer(fs)
	t.Cleanup(hsrv.Close)
	t.Cleanup(fsrv.Close)
	webhookLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)

	const name = "clinic-re2e"
	clinic := uniqueClinic(name, ns)
	k := newTestKeys(t, "test")
	fake.AddKey(k.secret, stripefake.KeyOptions{})
	si := integration(ns, name, clinic, v1.ModeTest, "keys")
	path := receiver.WebhookPath(receiver.ModeTest, clinic)
	si.Spec.Webhook = &v1.WebhookSpec{URL: "http://" + webhookLn.Addr().String() + path}
	si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{
		HTTP: &v1.HTTPTarget{URL: hsrv.URL + "/stripe-events"},
		FHIR: &v1.FHIRTarget{BaseURL: fsrv.URL + "/r4"},
	}}
	mustCreate(t, credentialsSecret(ns, "keys", k), si)
	si = waitCondition(t, ns, name, v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady, waitShort)

	secretFile := filepath.Join(t.TempDir(), v1.SigningSecretKey)
	must(t, os.WriteFile(secretFile, signingSecret(t, si).Data[v1.SigningSecretKey], 0o600))
	rlog := &lineLog{}
	startReceiverLogging(t, si, secretFile, hsrv.URL+"/stripe-events", fsrv.URL+"/r4", webhookLn, opsLn,
		funcr.New(rlog.add, funcr.Options{}))
	replayTargets.Store(clinic, "http://"+webhookLn.Addr().String()+path)
	t.Cleanup(func() { replayTargets.Delete(clinic) })
	markAvailable(t, ns, receiverName(si))
	waitCondition(t, ns, name, v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected, waitShort)

	acct := fake.AccountForKey(k.secret)
	versions := []string{"2022-11-15", "2023-10-16", "2024-06-20"}
	httpWant, fhirWant := map[string]string{}, map[string]string{} // key → creation version
	n := 0
	add := func(id, version string) {
		httpWant[id] = version
		fhirWant[paymentNoticeKey(fmt.Sprintf("pi_re2e%05d", n))] = version
		n++
	}

	// 10,000 events Stripe delivered long ago: four created in each second, every 20 s over
	// the last 14 hours (the replay lists about 700 an hour-long window).
	start := time.Now().Add(-14 * time.Hour).Truncate(time.Second)
	pastIDs := make([]string, 0, 10000)
	for i := range 10000 {
		v := versions[i%3]
		id, err := fake.RecordPastEvent(acct, false, "payment_intent.succeeded", v,
			start.Add(time.Duration(i/4)*20*time.Second), paymentIntentN(n, "pi_re2e"))
		must(t, err)
		add(id, v)
		pastIDs = append(pastIDs, id)
	}
	// Stripe delivered the oldest 50 back then, to this receiver, which relayed them: they are
	// the first the replay sends, while the receiver's dedup memory still holds them.
	signing := string(signingSecret(t, si).Data[v1.SigningSecretKey])
	webhookURL := "http://" + webhookLn.Addr().String() + path
	for i := range 50 {
		id := pastIDs[i]
		if status := stripeDelivers(t, webhookURL, signing, stripeEvent(t, k.secret, id)); status != "relayed" {
			t.Fatalf("Stripe's delivery of %s answered %q, want relayed", id, status)
		}
	}
	// 50 more delivered live now and relayed to both sinks (in the endpoint's API version).
	for i := range 50 {
		v := versions[i%3]
		id, err := fake.TriggerEventVersion(acct, false, "payment_intent.succeeded", v, paymentIntentN(n, "pi_re2e"))
		must(t, err)
		add(id, v)
	}
	eventually(t, waitShort, "the 100 delivered events at both sinks", func() (bool, string) {
		return hs.total() == 100 && fs.total() == 100, fmt.Sprintf("http %d, fhir %d", hs.total(), fs.total())
	})
	// The receiver remembers them: Stripe's next delivery of one is not relayed again.
	for _, id := range []string{pastIDs[0], pastIDs[49]} {
		if status := stripeDelivers(t, webhookURL, signing, stripeEvent(t, k.secret, id)); status != "duplicate" {
			t.Fatalf("Stripe's second delivery of %s answered %q, want duplicate", id, status)
		}
	}

	// The clinic loses everything.
	hs.wipe()
	fs.wipe()

	since := start.Add(-time.Minute).UTC().Format(time.RFC3339)
	began := time.Now()
	annotate(t, si, since)
	var got *v1.ReplayStatus
	eventually(t, 4*time.Minute, "replay finished", func() (bool, string) {
		got = getSI(t, ns, name).Status.Replay
		return got != nil && got.Since == since && got.Phase != v1.ReplayRunning, fmt.Sprintf("%+v", got)
	})
	took := time.Since(began)
	t.Logf("10,050 events replayed through the receiver to both sinks in %s", took.Round(time.Millisecond))
	if got.Phase != v1.ReplaySucceeded || got.Delivered != 10050 || got.Failed != 0 || got.OldestFailed != nil ||
		got.ResumeAfter != nil || got.CompletionTime == nil {
		t.Fatalf("replay = %+v, want Succeeded with 10050 delivered, none failed", got)
	}
	hs.check(t, "HTTP", httpWant)
	fs.check(t, "FHIR", fhirWant)

	// Events created in 2025-03-31.basil: the HTTP sink takes them, the FHIR mapping refuses
	// payments in that version by name, and the replay reports them failed.
	for time.Now().Add(-time.Second).Before(got.Until.Time) {
		time.Sleep(100 * time.Millisecond)
	}
	hs.wipe()
	fs.wipe()
	httpWant, fhirWant = map[string]string{}, map[string]string{}
	var basil []string
	created := time.Now().Add(-time.Second).Truncate(time.Second)
	for i := range 10 {
		v := []string{"2025-03-31.basil", "2024-06-20"}[i%2]
		id, err := fake.RecordPastEvent(acct, false, "payment_intent.succeeded", v, created, paymentIntentN(n, "pi_re2e"))
		must(t, err)
		if i%2 == 0 {
			basil = append(basil, id)
			httpWant[id] = v
			n++
			continue
		}
		add(id, v)
	}
	since2 := got.Until.UTC().Format(time.RFC3339)
	annotate(t, si, since2)
	got = waitReplayDone(t, ns, name, since2)
	if got.Phase != v1.ReplayFailed || got.Delivered != 5 || got.Failed != 5 || got.OldestFailed == nil ||
		!got.OldestFailed.Time.Equal(created) || !strings.Contains(got.Message, "5 not accepted by the receiver") {
		t.Fatalf("basil replay = %+v, want Failed with 5 delivered, 5 failed, the oldest created %s", got, created.UTC().Format(time.RFC3339))
	}
	hs.check(t, "HTTP", httpWant)
	fs.check(t, "FHIR", fhirWant)
	for _, id := range basil {
		if rlog.containing("Relay to system of record failed", id, "2025-03-31.basil", "lack the invoice links") != 1 {
			t.Errorf("the receiver did not log the FHIR mapping's refusal of %s once", id)
		}
	}
}

// stripeEvent reads an event from the Stripe fake's API (in the version it was created in).
func stripeEvent(t *testing.T, key, id string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fake.URL()+"/v1/events/"+id, nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET event %s: %d %s", id, resp.StatusCode, body)
	}
	return body
}

// stripeDelivers posts body to the receiver as Stripe does (signed, no replay marker) and
// returns the status the receiver answered.
func stripeDelivers(t *testing.T, url, secret string, body []byte) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Stripe-Signature", httprelay.Sign([]byte(secret), time.Now(), body))
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer func() { _ = resp.Body.Close() }()
	var answer struct{ Status string }
	must(t, json.NewDecoder(resp.Body).Decode(&answer))
	return answer.Status
}

// paymentIntentN is paymentIntent(i) with its own PaymentIntent id, prefix followed by i.
func paymentIntentN(i int, prefix string) map[string]any {
	pi := paymentIntent(i)
	pi["id"] = fmt.Sprintf("%s%05d", prefix, i)
	return pi
}
