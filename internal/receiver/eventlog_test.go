package receiver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// TestRelayedEventLoggedOnlyAtVerbosity1: a relayed event writes no log line at verbosity 0
// (it cost about 7% of the receiver's CPU at saturation), and one at verbosity 1; a failed relay
// is logged at 0.
func TestRelayedEventLoggedOnlyAtVerbosity1(t *testing.T) {
	for verbosity, want := range map[int]bool{0: false, 1: true} {
		var mu sync.Mutex
		var lines bytes.Buffer
		log := funcr.NewJSON(func(obj string) {
			mu.Lock()
			defer mu.Unlock()
			lines.WriteString(obj + "\n")
		}, funcr.Options{Verbosity: verbosity})
		dir := t.TempDir()
		writeFile(t, dir+"/secret", secretOld)
		target := &fakeTarget{name: "http", fail: func(call int) error {
			if call == 1 {
				return errDown
			}
			return nil
		}}
		r, err := New(Config{ClinicID: testClinic, Mode: ModeTest, SigningSecretFile: dir + "/secret"},
			[]relay.Target{target}, log, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"evt_logged_ok", "evt_logged_fail"} {
			body := goodBody(t, id)
			post(t, r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now()))
		}
		mu.Lock()
		out := lines.String()
		mu.Unlock()
		if got := strings.Contains(out, `"Event relayed"`) && strings.Contains(out, "evt_logged_ok"); got != want {
			t.Errorf("verbosity %d: relayed event logged = %t, want %t; logs:\n%s", verbosity, got, want, out)
		}
		if !strings.Contains(out, "Relay to system of record failed") || !strings.Contains(out, "evt_logged_fail") {
			t.Errorf("verbosity %d: the failed relay is not logged; logs:\n%s", verbosity, out)
		}
	}
}

// TestAnswerEncoding: the pre-encoded answer reads as json.Encoder wrote every answer before,
// and serving answers leaves the shared header values as they were.
func TestAnswerEncoding(t *testing.T) {
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(response{Status: resultRelayed, Message: msgRelayed}); err != nil {
		t.Fatal(err)
	}
	if string(answerRelayed) != want.String() {
		t.Errorf("answerRelayed = %q, want %q", answerRelayed, want.String())
	}
	if got := encodeAnswer("a<b", "x&y"); string(got) != `{"status":"a\u003cb","message":"x\u0026y"}`+"\n" {
		t.Errorf("encodeAnswer escapes differently from json.Encoder: %q", got)
	}
	f := newFixture(t, secretOld+"\n", []relay.Target{&fakeTarget{name: "http"}})
	for i := range 3 {
		body := goodBody(t, fmt.Sprintf("evt_answer_%d", i))
		rec, resp := post(t, f.r.WebhookHandler(), testPath, body, sign(body, secretOld, time.Now()))
		if resp.Status != resultRelayed || rec.Body.String() != want.String() {
			t.Errorf("answer %d: %q", i, rec.Body.String())
		}
	}
	if headerJSON[0] != "application/json" || headerNoStore[0] != "no-store" || headerNosniff[0] != "nosniff" {
		t.Errorf("shared header values changed: %q %q %q", headerJSON, headerNoStore, headerNosniff)
	}
}
