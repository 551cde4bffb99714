package keys

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// Kind is the type of a Stripe API key, as told by its prefix.
type Kind string

const (
	// KindPublishable is a pk_ key, safe to ship to browsers.
	KindPublishable Kind = "publishable"
	// KindSecret is an sk_ key with full access to the account.
	KindSecret Kind = "secret"
	// KindRestricted is an rk_ key limited to the permissions granted in the dashboard.
	KindRestricted Kind = "restricted"
)

// keyPattern matches a Stripe API key. The body is 10 to 247 ASCII letters and digits:
// 247 keeps the whole key (8-character prefix included) within Stripe's 255-character limit,
// and 10 rejects placeholders and truncated pastes while staying well below the 24 or more
// characters of any key Stripe issues.
var keyPattern = regexp.MustCompile(`^(pk|sk|rk)_(test|live)_[A-Za-z0-9]{10,247}$`)

// prefixPattern recognises a key's prefix even when its body is malformed, so messages can
// say what the value looks like without showing any of the body.
var prefixPattern = regexp.MustCompile(`^(pk|sk|rk)_(test|live)_`)

// webhookSecretPrefix starts a webhook signing secret, a frequent mix-up with API keys.
const webhookSecretPrefix = "whsec_"

// Key is a parsed Stripe API key.
type Key struct {
	// Kind is publishable, secret or restricted.
	Kind Kind
	// Mode is Test or Live.
	Mode v1alpha1.Mode
	// Value is the key itself, trimmed of one trailing newline. Never log it.
	Value string
}

// Prefix returns the key's non-secret prefix, for example "sk_test_".
func (k Key) Prefix() string {
	return prefixOf(k.Value)
}

// String returns the prefix and an ellipsis ("sk_test_…") so that printing a Key, or a struct
// holding one, never shows the key.
func (k Key) String() string {
	return k.Prefix() + "…"
}

// GoString keeps %#v as safe as %v.
func (k Key) GoString() string {
	return fmt.Sprintf("keys.Key{Kind:%q, Mode:%q, Value:%q}", k.Kind, k.Mode, k.String())
}

// Error is a key that breaks the policy. Reason is a v1alpha1 KeysValid reason constant.
type Error struct {
	Reason  string
	Message string
}

// Error returns the message, which holds no key material.
func (e *Error) Error() string {
	return e.Message
}

// Parse validates a single value as read from the Secret and returns the key it holds.
// Failures are *Error with reason ReasonKeyEmpty, ReasonKeyWhitespace or ReasonKeyMalformed;
// messages refer to the value generically because Parse does not know the data key's name.
func Parse(raw string) (Key, error) {
	k, err := parse(slot{name: "value", want: "the API key from the Stripe dashboard"}, raw)
	if err != nil {
		return Key{}, err
	}
	return k, nil
}

// slot names a value for messages: name is the data key, want describes what belongs there.
type slot struct {
	name string
	want string
}

// parse is Parse with the slot for messages. It returns *Error rather than error so that
// callers cannot end up with a non-nil interface holding a nil pointer.
func parse(s slot, raw string) (Key, *Error) {
	name := s.name
	if strings.TrimSpace(raw) == "" {
		return Key{}, &Error{Reason: v1alpha1.ReasonKeyEmpty, Message: fmt.Sprintf(
			"%s is empty; put %s there", name, s.want)}
	}
	v := trimOneNewline(raw)
	if strings.IndexFunc(v, unicode.IsSpace) >= 0 {
		return Key{}, &Error{Reason: v1alpha1.ReasonKeyWhitespace, Message: fmt.Sprintf(
			"%s contains spaces, tabs or line breaks (only one trailing newline is ignored); store the key without them",
			name)}
	}
	if strings.HasPrefix(v, webhookSecretPrefix) {
		return Key{}, &Error{Reason: v1alpha1.ReasonKeyMalformed, Message: fmt.Sprintf(
			"%s holds a webhook signing secret (whsec_…), not an API key; put %s there", name, s.want)}
	}
	m := keyPattern.FindStringSubmatch(v)
	if m == nil {
		return Key{}, malformed(s, v)
	}
	return Key{Kind: kindOf(m[1]), Mode: modeOf(m[2]), Value: v}, nil
}

// trimOneNewline drops exactly one trailing "\n" or "\r\n", as left by
// kubectl create secret --from-file and most editors.
func trimOneNewline(s string) string {
	if t, ok := strings.CutSuffix(s, "\r\n"); ok {
		return t
	}
	return strings.TrimSuffix(s, "\n")
}

// malformed explains a value that is not a key, showing at most a recognised prefix.
func malformed(s slot, v string) *Error {
	if p := prefixOf(v); p != "" {
		return &Error{Reason: v1alpha1.ReasonKeyMalformed, Message: fmt.Sprintf(
			"%s starts like a Stripe key (%s…) but the rest is not 10 to 247 letters and digits; copy the whole key again from the Stripe dashboard",
			s.name, p)}
	}
	return &Error{Reason: v1alpha1.ReasonKeyMalformed, Message: fmt.Sprintf(
		"%s is not a Stripe API key (pk_, sk_ or rk_, then test_ or live_, then letters and digits); put %s there",
		s.name, s.want)}
}

func prefixOf(v string) string {
	return prefixPattern.FindString(v)
}

func kindOf(p string) Kind {
	switch p {
	case "pk":
		return KindPublishable
	case "sk":
		return KindSecret
	default:
		return KindRestricted
	}
}

func modeOf(m string) v1alpha1.Mode {
	if m == "live" {
		return v1alpha1.ModeLive
	}
	return v1alpha1.ModeTest
}
