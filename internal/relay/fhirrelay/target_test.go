package fhirrelay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewDefaults(t *testing.T) {
	target := newTestTarget(t, Config{BaseURL: "https://fhir.clinic.example/r4/"})
	eq(t, "Name", target.Name(), "fhir")
	eq(t, "base", target.base, "https://fhir.clinic.example/r4")
	eq(t, "timeout", target.timeout, 10*time.Second)
	eq(t, "keys", target.keys, metadataKeys{patient: "patient_id", claim: "claim_id", invoice: "invoice_id"})
	if target.client.CheckRedirect == nil {
		t.Error("redirects are followed")
	}
}

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		cfg  Config
		want string
	}{
		"no base URL":        {Config{}, "base URL is empty"},
		"relative base URL":  {Config{BaseURL: "fhir/r4"}, "not an absolute"},
		"other scheme":       {Config{BaseURL: "ftp://fhir.example/r4"}, "not an absolute"},
		"query in base URL":  {Config{BaseURL: "https://fhir.example/r4?x=1"}, "query"},
		"negative timeout":   {Config{BaseURL: "https://fhir.example/r4", Timeout: -time.Second}, "negative"},
		"missing token file": {Config{BaseURL: "https://fhir.example/r4", TokenFile: filepath.Join(dir, "nope")}, "token file"},
		"empty token file":   {Config{BaseURL: "https://fhir.example/r4", TokenFile: empty}, "is empty"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// Credentials in the URL are refused without being repeated in the error.
func TestNewRejectsUserInfoWithoutEchoingIt(t *testing.T) {
	_, err := New(Config{BaseURL: "https://svc:hunter2-secret@fhir.example/r4"})
	if err == nil {
		t.Fatal("New accepted credentials in the base URL")
	}
	if strings.Contains(err.Error(), "hunter2-secret") {
		t.Errorf("error repeats the password: %q", err)
	}
}

func TestIfNoneExistEscapesOddValues(t *testing.T) {
	eq(t, "plain", ifNoneExist(Identifier{System: SystemStripeEvent, Value: "evt_1"}), "identifier=https://stripe.com/events|evt_1")
	eq(t, "odd", ifNoneExist(Identifier{System: SystemStripeEvent, Value: "a&b#c"}), "identifier=https://stripe.com/events|a%26b%23c")
}
