package httprelay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// deliverOne sends one event through a Target whose key file holds content, signing at the
// real clock (the library checks the timestamp against it), and returns what the clinic got.
func deliverOne(t *testing.T, content string) ([]byte, http.Header) {
	t.Helper()
	c := newClinic(t, http.StatusOK)
	target, err := New(Config{URL: c.srv.URL, SigningKeyFile: keyFileWith(t, content)})
	if err != nil {
		t.Fatal(err)
	}
	ev := stripeEvent(t, "payment_intent.succeeded", `{"id":"pi_1","object":"payment_intent","amount":1234,"currency":"usd"}`)
	if err := target.Deliver(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return c.last(t)
}

// TestStandardWebhooksVerifyWithTheOffTheShelfLibrary: what the clinic receives verifies with the
// Standard Webhooks reference library for Go, given the secret in either form a clinic may hold.
func TestStandardWebhooksVerifyWithTheOffTheShelfLibrary(t *testing.T) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	whsec := "whsec_" + base64.StdEncoding.EncodeToString(raw)
	for name, tc := range map[string]struct {
		file string // the key file's content
		// secret is what the clinic configures in its library (NewWebhook); rawKey, through
		// NewWebhookRaw.
		secret string
		rawKey []byte
		// stripeStyleKey verifies Clinicpay-Signature.
		stripeStyleKey []byte
	}{
		"a Standard Webhooks secret in the key file": {file: whsec + "\n", secret: whsec, rawKey: raw, stripeStyleKey: []byte(whsec)},
		"a plain key (before the migration)": {file: "s3cret\n", secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("s3cret")),
			rawKey: []byte("s3cret"), stripeStyleKey: []byte("s3cret")},
	} {
		t.Run(name, func(t *testing.T) {
			body, h := deliverOne(t, tc.file)
			if h.Get(HeaderWebhookID) != "evt_1" || h.Get(HeaderWebhookID) != h.Get("Idempotency-Key") {
				t.Errorf("webhook-id = %q, Idempotency-Key = %q: want both the event id", h.Get(HeaderWebhookID), h.Get("Idempotency-Key"))
			}
			wh, err := standardwebhooks.NewWebhook(tc.secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(body, h); err != nil {
				t.Errorf("library with secret %s…: %v", tc.secret[:8], err)
			}
			whRaw, err := standardwebhooks.NewWebhookRaw(tc.rawKey)
			if err != nil {
				t.Fatal(err)
			}
			if err := whRaw.Verify(body, h); err != nil {
				t.Errorf("library with the raw key: %v", err)
			}
			// The header it replaces still verifies during the migration release.
			if err := VerifySignature(h.Get(SignatureHeader), body, tc.stripeStyleKey, 0, time.Now()); err != nil {
				t.Errorf("Clinicpay-Signature: %v", err)
			}

			tampered := bytes.Replace(body, []byte(`"amount":1234`), []byte(`"amount":9234`), 1)
			if err := wh.Verify(tampered, h); err == nil {
				t.Error("the library accepted a tampered body")
			}
			other, err := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("another clinic's key")))
			if err != nil {
				t.Fatal(err)
			}
			if err := other.Verify(body, h); err == nil {
				t.Error("the library accepted another key")
			}
			stale := h.Clone()
			stale.Set(HeaderWebhookTimestamp, strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10))
			if err := wh.Verify(body, stale); err == nil {
				t.Error("the library accepted a timestamp an hour old (the signature covers it)")
			}
		})
	}
}

// TestSignStandardMatchesTheLibrary: the same id, time, body and secret give the library's own
// signature, byte for byte.
func TestSignStandardMatchesTheLibrary(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"evt_1"}`)
	for _, content := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "s3cret", "whsec_not base64!"} {
		wh, err := standardwebhooks.NewWebhookRaw(StandardKey([]byte(content)))
		if err != nil {
			t.Fatal(err)
		}
		want, err := wh.Sign("evt_1", at, body)
		if err != nil {
			t.Fatal(err)
		}
		if got := SignStandard([]byte(content), "evt_1", at, body); got != want {
			t.Errorf("%q: SignStandard = %s, library = %s", content, got, want)
		}
	}
	// A whsec_ prefix that is not followed by base64 is an ordinary key, signed with as it is.
	if got := string(StandardKey([]byte("whsec_not base64!"))); got != "whsec_not base64!" {
		t.Errorf("StandardKey of an invalid secret = %q", got)
	}
}

func TestNoStandardWebhooksHeadersWithoutKeyFile(t *testing.T) {
	c := newClinic(t, http.StatusOK)
	target, err := New(Config{URL: c.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := target.Deliver(context.Background(), stripeEvent(t, "customer.created", `{"id":"cus_1"}`)); err != nil {
		t.Fatal(err)
	}
	_, h := c.last(t)
	for _, name := range []string{HeaderWebhookID, HeaderWebhookTimestamp, HeaderWebhookSignature} {
		if v := h.Get(name); v != "" {
			t.Errorf("%s sent without a key: %q", name, v)
		}
	}
}
