package sigheader

import (
	"testing"
	"time"
)

// The probe marker is domain-separated from Stripe's scheme and the replay and ledger markers:
// none made with the same secret over the same body passes for another.
func TestProbeMarkerIsDomainSeparated(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"evt_clinicpay_probe_x"}`)
	const secret = "whsec_test"
	marker := SignProbe(secret, now, body)
	if !VerifyProbe(marker, body, []string{"whsec_old", secret}, 0, now) {
		t.Fatal("a probe marker did not verify")
	}
	for name, h := range map[string]string{
		"Stripe-Signature": Sign([]byte(secret), now, body),
		"replay marker":    SignReplay(secret, now, body),
		"ledger marker":    Ledger.Sign([]byte(secret), now, body),
		"other secret":     SignProbe("whsec_other", now, body),
		"other body":       SignProbe(secret, now, []byte(`{}`)),
	} {
		if VerifyProbe(h, body, []string{secret}, 0, now) {
			t.Errorf("%s passed for a probe marker", name)
		}
	}
	if VerifyProbe(marker, body, []string{secret}, time.Minute, now.Add(2*time.Minute)) {
		t.Error("a stale probe marker verified")
	}
	if err := Verify(marker, body, 0, now, []byte(secret)); err == nil {
		t.Error("a probe marker passed for a Stripe-Signature")
	}
	if n, ok := ProbeNonce(ProbeEventIDPrefix + "abc"); !ok || n != "abc" {
		t.Errorf("ProbeNonce = %q %t", n, ok)
	}
	for _, id := range []string{"evt_123", ProbeEventIDPrefix} {
		if _, ok := ProbeNonce(id); ok {
			t.Errorf("ProbeNonce(%q) ok", id)
		}
	}
}
