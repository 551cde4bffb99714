package keys

import (
	"regexp"
	"strings"
	"testing"
)

func TestFingerprint(t *testing.T) {
	shape := regexp.MustCompile(`^sha256:[0-9a-f]{16}$`)
	base := Fingerprint(pkTest, skTest)

	tests := map[string]struct {
		pub, sec string
		wantSame bool
	}{
		"stable":                       {pub: pkTest, sec: skTest, wantSame: true},
		"publishable rotated":          {pub: pkLive, sec: skTest},
		"secret rotated":               {pub: pkTest, sec: rkTest},
		"separator prevents ambiguity": {pub: pkTest + "s", sec: skTest[1:]},
		"keys swapped":                 {pub: skTest, sec: pkTest},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Fingerprint(tc.pub, tc.sec)
			if !shape.MatchString(got) {
				t.Fatalf("Fingerprint() = %q, want sha256:<16 hex>", got)
			}
			if (got == base) != tc.wantSame {
				t.Errorf("Fingerprint() = %q, base %q, wantSame %v", got, base, tc.wantSame)
			}
			for _, k := range []string{tc.pub, tc.sec} {
				if strings.Contains(got, k[8:16]) {
					t.Errorf("Fingerprint() %q contains key material", got)
				}
			}
			assertNoKeyMaterial(t, got)
		})
	}
}
