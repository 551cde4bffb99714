package receiver

import (
	"regexp"
	"testing"
)

// FuzzStripeShaped holds stripeShaped to the regular expression it replaced.
func FuzzStripeShaped(f *testing.F) {
	pattern := regexp.MustCompile(`^[a-z_]+(\.[a-z_]+)+$`)
	for _, s := range []string{"charge.refunded", "customer.subscription.updated", "a.b", "_._", "", ".", "a.", ".a", "a..b",
		"a", "A.b", "a.b\n", "a.b.", "payment_intent.succeeded", "a-b.c", "a.b9", "é.a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := stripeShaped(s), pattern.MatchString(s); got != want {
			t.Fatalf("stripeShaped(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}
