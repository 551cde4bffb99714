package httprelay

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerifySignature(t *testing.T) {
	key := []byte("k3y")
	body := []byte(`{"id":"evt_1"}`)
	now := time.Unix(1_700_000_000, 0)
	good := Sign(key, now, body)
	for name, tc := range map[string]struct {
		header string
		body   []byte
		key    []byte
		now    time.Time
		want   error
	}{
		"round trip":                  {header: good},
		"within tolerance, late":      {header: good, now: now.Add(4 * time.Minute)},
		"within tolerance, early":     {header: good, now: now.Add(-4 * time.Minute)},
		"two v1 values, second valid": {header: strings.Replace(good, ",v1=", ",v1="+strings.Repeat("00", 32)+",v1=", 1)},
		"spaces after commas":         {header: strings.ReplaceAll(good, ",", ", ")},
		"tampered body":               {header: good, body: []byte(`{"id":"evt_2"}`), want: ErrSignatureMismatch},
		"wrong key":                   {header: good, key: []byte("other"), want: ErrSignatureMismatch},
		"tampered timestamp":          {header: strings.Replace(good, "t=1700000000", "t=1700000001", 1), want: ErrSignatureMismatch},
		"replayed too late":           {header: good, now: now.Add(6 * time.Minute), want: ErrTimestampOutOfTolerance},
		"from the future":             {header: good, now: now.Add(-6 * time.Minute), want: ErrTimestampOutOfTolerance},
		"empty":                       {header: "", want: ErrNoSignature},
		"no v1":                       {header: "t=1700000000", want: ErrInvalidSignatureHeader},
		"no t":                        {header: good[strings.Index(good, "v1="):], want: ErrInvalidSignatureHeader},
		"two t":                       {header: "t=1," + good, want: ErrInvalidSignatureHeader},
		"bad hex":                     {header: "t=1700000000,v1=zz", want: ErrInvalidSignatureHeader},
		"short v1":                    {header: "t=1700000000,v1=abcd", want: ErrInvalidSignatureHeader},
		"garbage":                     {header: "hello", want: ErrInvalidSignatureHeader},
	} {
		t.Run(name, func(t *testing.T) {
			b, k, n := body, key, now
			if tc.body != nil {
				b = tc.body
			}
			if tc.key != nil {
				k = tc.key
			}
			if !tc.now.IsZero() {
				n = tc.now
			}
			err := VerifySignature(tc.header, b, k, 0, n)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("VerifySignature = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignMatchesDocumentedScheme(t *testing.T) {
	// HMAC-SHA256("k3y", "1700000000.{}") computed independently (openssl dgst -sha256 -hmac k3y).
	got := Sign([]byte("k3y"), time.Unix(1_700_000_000, 0), []byte("{}"))
	if want := "t=1700000000,v1=e2974d0d973957aed8182a7f1ef5690a188566c2c4620fc16bd97d7febcf5ef3"; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if err := VerifySignature(got, []byte("{}"), []byte("k3y"), time.Second, time.Unix(1_700_000_000, 0)); err != nil {
		t.Error(err)
	}
}
