package stripeclient

import (
	"regexp"
)

var (
	// apiKeyPattern matches API keys and the masked form Stripe echoes in errors
	// ("sk_test_********abcd"), whose last four characters must go too.
	apiKeyPattern = regexp.MustCompile(`(sk|rk|pk)_(test|live)_[A-Za-z0-9*]+`)
	// legacyKeyPattern catches keys without a mode infix, as issued years ago.
	legacyKeyPattern = regexp.MustCompile(`(sk|rk)_[A-Za-z0-9*]{16,}`)
	// webhookSecretPattern matches webhook signing secrets, which are base64-ish.
	webhookSecretPattern = regexp.MustCompile(`whsec_[A-Za-z0-9*+/=]+`)
	// bearerPattern matches an Authorization header value of any kind.
	bearerPattern = regexp.MustCompile(`(?i)\b(bearer)\s+([^\s"',;]+)`)
	// redactedKeyPattern is what apiKeyPattern leaves behind; a Bearer token of this shape is
	// already safe and more useful with its prefix kept.
	redactedKeyPattern = regexp.MustCompile(`^(sk|rk|pk)_(test|live)_…$`)
)

// Redact replaces anything in s that looks like Stripe key material with its prefix and an
// ellipsis: "sk_test_…", "rk_live_…", "pk_test_…", "whsec_…", "Bearer …". It is idempotent,
// and applied to every error message and log line this package produces.
func Redact(s string) string {
	s = apiKeyPattern.ReplaceAllString(s, "${1}_${2}_…")
	s = legacyKeyPattern.ReplaceAllString(s, "${1}_…")
	s = webhookSecretPattern.ReplaceAllString(s, "whsec_…")
	return bearerPattern.ReplaceAllStringFunc(s, func(m string) string {
		sub := bearerPattern.FindStringSubmatch(m)
		if redactedKeyPattern.MatchString(sub[2]) {
			return m
		}
		return sub[1] + " …"
	})
}
