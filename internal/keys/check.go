package keys

import (
	"fmt"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// What belongs in each slot, for messages.
const (
	wantPublishable = "the clinic's publishable key (pk_test_… or pk_live_…)"
	wantSecret      = "the clinic's secret key (sk_test_… or sk_live_…) or restricted key (rk_test_… or rk_live_…)"
)

// Input is what the controller read from the credentials Secret.
type Input struct {
	// Mode is spec.mode.
	Mode v1alpha1.Mode
	// PublishableKeyName and SecretKeyName are the data keys, for messages; empty means the
	// v1alpha1 defaults.
	PublishableKeyName string
	SecretKeyName      string
	// PublishableKey is the value; HasPublishableKey is false when the data key is absent.
	PublishableKey    []byte
	HasPublishableKey bool
	// SecretKey is the value; HasSecretKey is false when the data key is absent.
	SecretKey    []byte
	HasSecretKey bool
}

// Result is the outcome of Check, ready for the KeysValid condition.
type Result struct {
	// Reason is a v1alpha1 KeysValid reason; ReasonKeysValid when the keys are usable.
	Reason string
	// Message tells the admin what to do; it never contains key material beyond the prefix.
	Message string
	// Publishable and Secret are filled when OK.
	Publishable Key
	Secret      Key
}

// OK reports whether the keys passed every rule.
func (r Result) OK() bool {
	return r.Reason == v1alpha1.ReasonKeysValid
}

// Check applies the key policy to what the controller read from the Secret, in the order
// documented on the package, and returns the first failure or the parsed keys.
func Check(in Input) Result {
	pub := slot{name: orDefault(in.PublishableKeyName, v1alpha1.DefaultPublishableKeyKey), want: wantPublishable}
	sec := slot{name: orDefault(in.SecretKeyName, v1alpha1.DefaultSecretKeyKey), want: wantSecret}

	if !in.HasPublishableKey {
		return fail(missing(pub))
	}
	if !in.HasSecretKey {
		return fail(missing(sec))
	}
	p, err := parse(pub, string(in.PublishableKey))
	if err != nil {
		return fail(err)
	}
	s, err := parse(sec, string(in.SecretKey))
	if err != nil {
		return fail(err)
	}
	if err := checkKinds(pub, p, sec, s); err != nil {
		return fail(err)
	}
	if err := checkModes(in.Mode, pub, p, sec, s); err != nil {
		return fail(err)
	}
	return Result{
		Reason: v1alpha1.ReasonKeysValid,
		Message: fmt.Sprintf("%s (%s) and %s (%s) are well-formed %s keys",
			pub.name, p, sec.name, s, p.Mode),
		Publishable: p,
		Secret:      s,
	}
}

func fail(err *Error) Result {
	return Result{Reason: err.Reason, Message: err.Message}
}

func missing(s slot) *Error {
	return &Error{Reason: v1alpha1.ReasonKeyMissing, Message: fmt.Sprintf(
		"Secret has no data key %q; add %s under it", s.name, s.want)}
}

// checkKinds catches keys pasted into the wrong slot; the publishable slot is checked first
// because a secret key there is the more dangerous mistake.
func checkKinds(pub slot, p Key, sec slot, s Key) *Error {
	if p.Kind != KindPublishable && s.Kind == KindPublishable {
		return &Error{Reason: v1alpha1.ReasonWrongKeyType, Message: fmt.Sprintf(
			"%s holds %s (%s) and %s holds a publishable key (%s); swap the two values",
			pub.name, article(p.Kind), p, sec.name, s)}
	}
	if p.Kind != KindPublishable {
		return &Error{Reason: v1alpha1.ReasonWrongKeyType, Message: fmt.Sprintf(
			"%s holds %s (%s); put the publishable key (pk_…) there", pub.name, article(p.Kind), p)}
	}
	if s.Kind == KindPublishable {
		return &Error{Reason: v1alpha1.ReasonWrongKeyType, Message: fmt.Sprintf(
			"%s holds %s (%s); put the secret key (sk_…) or restricted key (rk_…) there", sec.name, article(s.Kind), s)}
	}
	return nil
}

// checkModes requires both keys to be of one mode, and that mode to be spec.mode.
func checkModes(want v1alpha1.Mode, pub slot, p Key, sec slot, s Key) *Error {
	if p.Mode != s.Mode {
		return &Error{Reason: v1alpha1.ReasonKeyModesDisagree, Message: fmt.Sprintf(
			"%s is %s (%s) but %s is %s (%s); use a publishable and a secret key from the same mode",
			pub.name, modeArticle(p.Mode), p, sec.name, modeArticle(s.Mode), s)}
	}
	if s.Mode != want {
		// spec.mode is immutable: the other way out is a separate integration of the keys' mode.
		fix := fmt.Sprintf("put %s keys in the Secret, or use them in a separate %s integration", modeWord(want), s.Mode)
		if want != v1alpha1.ModeTest && want != v1alpha1.ModeLive {
			fix = fmt.Sprintf("set spec.mode to %s", s.Mode)
		}
		return &Error{Reason: v1alpha1.ReasonModeMismatch, Message: fmt.Sprintf(
			"%s is %s (%s) but spec.mode is %s; %s", sec.name, modeArticle(s.Mode), s, modeName(want), fix)}
	}
	return nil
}

func article(k Kind) string {
	if k == KindPublishable {
		return "a publishable key"
	}
	return "a " + string(k) + " key"
}

// modeArticle renders "a test key" or "a live key".
func modeArticle(m v1alpha1.Mode) string {
	return "a " + modeWord(m) + " key"
}

// modeWord renders a key mode in lower case, as in the key prefix.
func modeWord(m v1alpha1.Mode) string {
	if m == v1alpha1.ModeLive {
		return "live"
	}
	return "test"
}

// modeName shows an unset spec.mode visibly rather than as nothing.
func modeName(m v1alpha1.Mode) string {
	if m == "" {
		return `""`
	}
	return string(m)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
