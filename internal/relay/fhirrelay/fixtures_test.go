package fhirrelay

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

const testClinic = "clinic-northside"

// loadEvent reads testdata/<name>.json, a Stripe event as Stripe sends it, lets patch edit
// the decoded JSON (the event and its data.object) and decodes the result the way the
// receiver's webhook package does, into a stripe.Event.
func loadEvent(t *testing.T, name string, patch func(event, object map[string]any)) relay.Event {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	if patch != nil {
		var event map[string]any
		if err := json.Unmarshal(raw, &event); err != nil {
			t.Fatalf("decode fixture %s: %v", name, err)
		}
		patch(event, event["data"].(map[string]any)["object"].(map[string]any))
		if raw, err = json.Marshal(event); err != nil {
			t.Fatalf("encode fixture %s: %v", name, err)
		}
	}
	var ev stripe.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("decode %s as stripe.Event: %v", name, err)
	}
	return relay.Event{ClinicID: testClinic, Stripe: ev}
}

// setMetadata replaces an object's metadata.
func setMetadata(md map[string]any) func(event, object map[string]any) {
	return func(_, object map[string]any) { object["metadata"] = md }
}

// newTestTarget is a Target for a base URL that mapping tests never call.
func newTestTarget(t *testing.T, cfg Config) *Target {
	t.Helper()
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://127.0.0.1:1/r4"
	}
	target, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return target
}
