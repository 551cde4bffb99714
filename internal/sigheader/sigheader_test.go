package sigheader

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

func TestVerify(t *testing.T) {
	key := []byte("k3y")
	body := []byte(`{"id":"evt_1"}`)
	now := time.Unix(1_700_000_000, 0)
	good := Sign(key, now, body)
	for name, tc := range map[string]struct {
		header string
		body   []byte
		keys   [][]byte
		now    time.Time
		want   error
	}{
		"round trip":                  {header: good},
		"second of two keys":          {header: good, keys: [][]byte{[]byte("old"), key}},
		"within tolerance, late":      {header: good, now: now.Add(4 * time.Minute)},
		"within tolerance, early":     {header: good, now: now.Add(-4 * time.Minute)},
		"two v1 values, second valid": {header: strings.Replace(good, ",v1=", ",v1="+strings.Repeat("00", 32)+",v1=", 1)},
		"v0 ignored":                  {header: good + ",v0=whatever"},
		"spaces after commas":         {header: strings.ReplaceAll(good, ",", ", ")},
		"tampered body":               {header: good, body: []byte(`{"id":"evt_2"}`), want: ErrMismatch},
		"wrong key":                   {header: good, keys: [][]byte{[]byte("other")}, want: ErrMismatch},
		"no key":                      {header: good, keys: [][]byte{}, want: ErrMismatch},
		"tampered timestamp":          {header: strings.Replace(good, "t=1700000000", "t=1700000001", 1), want: ErrMismatch},
		"stale and wrong key":         {header: good, keys: [][]byte{[]byte("other")}, now: now.Add(time.Hour), want: ErrMismatch},
		"replayed too late":           {header: good, now: now.Add(6 * time.Minute), want: ErrOutOfTolerance},
		"from the future":             {header: good, now: now.Add(-6 * time.Minute), want: ErrOutOfTolerance},
		"empty":                       {header: "", want: ErrNoHeader},
		"no v1":                       {header: "t=1700000000", want: ErrInvalidHeader},
		"no t":                        {header: good[strings.Index(good, "v1="):], want: ErrInvalidHeader},
		"two t":                       {header: "t=1," + good, want: ErrInvalidHeader},
		"t not a number":              {header: "t=x,v1=" + strings.Repeat("00", 32), want: ErrInvalidHeader},
		"bad hex":                     {header: "t=1700000000,v1=zz", want: ErrInvalidHeader},
		"short v1":                    {header: "t=1700000000,v1=abcd", want: ErrInvalidHeader},
		"garbage":                     {header: "hello", want: ErrInvalidHeader},
	} {
		t.Run(name, func(t *testing.T) {
			b, keys, n := body, [][]byte{key}, now
			if tc.body != nil {
				b = tc.body
			}
			if tc.keys != nil {
				keys = tc.keys
			}
			if !tc.now.IsZero() {
				n = tc.now
			}
			err := Verify(tc.header, b, 0, n, keys...)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyTolerance(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	h := Sign([]byte("k"), now, nil)
	if err := Verify(h, nil, time.Second, now.Add(2*time.Second), []byte("k")); !errors.Is(err, ErrOutOfTolerance) {
		t.Errorf("2 s late with a 1 s tolerance: %v", err)
	}
	if err := Verify(h, nil, time.Hour, now.Add(30*time.Minute), []byte("k")); err != nil {
		t.Errorf("30 min late with a 1 h tolerance: %v", err)
	}
}

// The wire format is Stripe's: byte for byte what stripe-go computes and accepts.
func TestSignIsStripes(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"evt_1","object":"event"}`)
	got := Sign([]byte("whsec_test"), now, body)
	if want := "t=1700000000,v1=" + hex.EncodeToString(webhook.ComputeSignature(now, body, "whsec_test")); got != want {
		t.Errorf("Sign = %q, stripe-go computes %q", got, want)
	}
	if err := webhook.ValidatePayloadWithTolerance(body, got, "whsec_test", time.Duration(1<<62)); err != nil {
		t.Errorf("stripe-go refuses Sign's header: %v", err)
	}
	// HMAC-SHA256("k3y", "1700000000.{}") computed independently (openssl dgst -sha256 -hmac k3y).
	if got, want := Sign([]byte("k3y"), now, []byte("{}")),
		"t=1700000000,v1=e2974d0d973957aed8182a7f1ef5690a188566c2c4620fc16bd97d7febcf5ef3"; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestReplay(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte("{}")
	marker := SignReplay("whsec_test", now, body)
	// HMAC-SHA256("whsec_test", "clinicpay-replay.1700000000.{}") computed independently.
	if want := "t=1700000000,v1=989748b62c056ae6b15921a657cb28bd8b8b582d8e63934cf93c566b7b3cb4a6"; marker != want {
		t.Errorf("SignReplay = %q, want %q", marker, want)
	}
	tol := 300 * time.Second
	for name, tc := range map[string]struct {
		header  string
		secrets []string
		now     time.Time
		want    bool
	}{
		"valid":                     {marker, []string{"whsec_test"}, now, true},
		"second secret":             {marker, []string{"whsec_old", "whsec_test"}, now, true},
		"other secret":              {marker, []string{"whsec_old"}, now, false},
		"no secret":                 {marker, nil, now, false},
		"stale":                     {marker, []string{"whsec_test"}, now.Add(tol + time.Second), false},
		"a copied Stripe-Signature": {Sign([]byte("whsec_test"), now, body), []string{"whsec_test"}, now, false},
		"empty":                     {"", []string{"whsec_test"}, now, false},
		"garbage":                   {"t=x,v1=zz", []string{"whsec_test"}, now, false},
	} {
		if got := VerifyReplay(tc.header, body, tc.secrets, tol, tc.now); got != tc.want {
			t.Errorf("%s: VerifyReplay = %t, want %t", name, got, tc.want)
		}
	}
	if Verify(marker, body, tol, now, []byte("whsec_test")) == nil {
		t.Error("a replay marker passed for a Stripe signature")
	}
}
