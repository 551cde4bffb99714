package keys

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// Distinctive key bodies: no message may ever contain them.
const (
	pubTestBody  = "51PUBtestBODYx7Qw9Er2Ty4Ui6Op8As"
	pubLiveBody  = "51PUBliveBODYz3Lk5Jh7Gf9Ds1Aa2Ss"
	secTestBody  = "51SECtestBODYm4Nb6Vc8Xz0Lk2Jh4Gg"
	secLiveBody  = "51SEClivBODYp9Oi8Uy7Tr6Ee5Ww4Qq3"
	rakTestBody  = "51RAKtestBODYq1Wq2We3Er4Rt5Ty6Yy"
	rakLiveBody  = "51RAKliveBODYa9Sd8Df7Fg6Gh5Hj4Jj"
	whsecBody    = "WHSECbodyR2d2C3poBb8Kx0Yz1Vv9Uu"
	garbageValue = "hunter2-GARBAGEbody-Zz"

	pkTest = "pk_test_" + pubTestBody
	pkLive = "pk_live_" + pubLiveBody
	skTest = "sk_test_" + secTestBody
	skLive = "sk_live_" + secLiveBody
	rkTest = "rk_test_" + rakTestBody
	rkLive = "rk_live_" + rakLiveBody
	whsec  = "whsec_" + whsecBody
)

var allBodies = []string{pubTestBody, pubLiveBody, secTestBody, secLiveBody, rakTestBody, rakLiveBody, whsecBody, garbageValue}

// in builds an Input with both data keys present.
func in(mode v1alpha1.Mode, pub, sec string) Input {
	return Input{
		Mode:              mode,
		PublishableKey:    []byte(pub),
		HasPublishableKey: true,
		SecretKey:         []byte(sec),
		HasSecretKey:      true,
	}
}

func TestCheck(t *testing.T) {
	tests := map[string]struct {
		input        Input
		wantReason   string
		wantMessage  string   // exact, when set
		wantContains []string // substrings the message must hold
		wantSecret   Key      // when OK: Kind and Mode (Value is compared to the trimmed input)
	}{
		"test secret key": {
			input:      in(v1alpha1.ModeTest, pkTest, skTest),
			wantReason: v1alpha1.ReasonKeysValid,
			wantSecret: Key{Kind: KindSecret, Mode: v1alpha1.ModeTest, Value: skTest},
		},
		"live secret key": {
			input:      in(v1alpha1.ModeLive, pkLive, skLive),
			wantReason: v1alpha1.ReasonKeysValid,
			wantSecret: Key{Kind: KindSecret, Mode: v1alpha1.ModeLive, Value: skLive},
		},
		"test restricted key": {
			input:      in(v1alpha1.ModeTest, pkTest, rkTest),
			wantReason: v1alpha1.ReasonKeysValid,
			wantSecret: Key{Kind: KindRestricted, Mode: v1alpha1.ModeTest, Value: rkTest},
		},
		"live restricted key": {
			input:      in(v1alpha1.ModeLive, pkLive, rkLive),
			wantReason: v1alpha1.ReasonKeysValid,
			wantSecret: Key{Kind: KindRestricted, Mode: v1alpha1.ModeLive, Value: rkLive},
		},
		"one trailing newline is trimmed": {
			input:      in(v1alpha1.ModeTest, pkTest+"\n", skTest+"\n"),
			wantReason: v1alpha1.ReasonKeysValid,
			wantSecret: Key{Kind: KindSecret, Mode: v1alpha1.ModeTest, Value: skTest},
		},
		"one trailing CRLF is trimmed": {
			input:      in(v1alpha1.ModeLive, pkLive+"\r\n", rkLive+"\r\n"),
			wantReason: v1alpha1.ReasonKeysValid,
			wantSecret: Key{Kind: KindRestricted, Mode: v1alpha1.ModeLive, Value: rkLive},
		},
		"longest body accepted": {
			input:      in(v1alpha1.ModeTest, pkTest, "sk_test_"+strings.Repeat("a", 247)),
			wantReason: v1alpha1.ReasonKeysValid,
			wantSecret: Key{Kind: KindSecret, Mode: v1alpha1.ModeTest, Value: "sk_test_" + strings.Repeat("a", 247)},
		},
		"publishable data key absent": {
			input:       Input{Mode: v1alpha1.ModeTest, SecretKey: []byte(skTest), HasSecretKey: true},
			wantReason:  v1alpha1.ReasonKeyMissing,
			wantMessage: `Secret has no data key "publishableKey"; add the clinic's publishable key (pk_test_… or pk_live_…) under it`,
		},
		"secret data key absent": {
			input:        Input{Mode: v1alpha1.ModeTest, PublishableKey: []byte(pkTest), HasPublishableKey: true},
			wantReason:   v1alpha1.ReasonKeyMissing,
			wantContains: []string{`Secret has no data key "secretKey"`, "sk_test_…", "rk_live_…"},
		},
		"both absent reports publishable first": {
			input:        Input{Mode: v1alpha1.ModeTest},
			wantReason:   v1alpha1.ReasonKeyMissing,
			wantContains: []string{`"publishableKey"`},
		},
		"absent beats malformed": {
			input:        Input{Mode: v1alpha1.ModeTest, PublishableKey: []byte(garbageValue), HasPublishableKey: true},
			wantReason:   v1alpha1.ReasonKeyMissing,
			wantContains: []string{`"secretKey"`},
		},
		"publishable empty": {
			input:       in(v1alpha1.ModeTest, "", skTest),
			wantReason:  v1alpha1.ReasonKeyEmpty,
			wantMessage: "publishableKey is empty; put the clinic's publishable key (pk_test_… or pk_live_…) there",
		},
		"secret empty": {
			input:        Input{Mode: v1alpha1.ModeTest, PublishableKey: []byte(pkTest), HasPublishableKey: true, HasSecretKey: true},
			wantReason:   v1alpha1.ReasonKeyEmpty,
			wantContains: []string{"secretKey is empty;"},
		},
		"secret only a newline": {
			input:        in(v1alpha1.ModeTest, pkTest, "\n"),
			wantReason:   v1alpha1.ReasonKeyEmpty,
			wantContains: []string{"secretKey is empty;"},
		},
		"leading space": {
			input:        in(v1alpha1.ModeTest, pkTest, " "+skTest),
			wantReason:   v1alpha1.ReasonKeyWhitespace,
			wantContains: []string{"secretKey contains spaces"},
		},
		"trailing space": {
			input:        in(v1alpha1.ModeTest, pkTest+" ", skTest),
			wantReason:   v1alpha1.ReasonKeyWhitespace,
			wantContains: []string{"publishableKey contains spaces"},
		},
		"trailing tab": {
			input:      in(v1alpha1.ModeTest, pkTest, skTest+"\t"),
			wantReason: v1alpha1.ReasonKeyWhitespace,
		},
		"two trailing newlines": {
			input:      in(v1alpha1.ModeTest, pkTest, skTest+"\n\n"),
			wantReason: v1alpha1.ReasonKeyWhitespace,
		},
		"lone trailing carriage return": {
			input:      in(v1alpha1.ModeTest, pkTest, skTest+"\r"),
			wantReason: v1alpha1.ReasonKeyWhitespace,
		},
		"inner whitespace": {
			input:      in(v1alpha1.ModeTest, pkTest, "sk_test_"+secTestBody[:10]+" "+secTestBody[10:]),
			wantReason: v1alpha1.ReasonKeyWhitespace,
		},
		"webhook signing secret in secret slot": {
			input:        in(v1alpha1.ModeTest, pkTest, whsec),
			wantReason:   v1alpha1.ReasonKeyMalformed,
			wantContains: []string{"secretKey holds a webhook signing secret (whsec_…), not an API key"},
		},
		"webhook signing secret in publishable slot": {
			input:        in(v1alpha1.ModeTest, whsec+"\n", skTest),
			wantReason:   v1alpha1.ReasonKeyMalformed,
			wantContains: []string{"publishableKey holds a webhook signing secret", "pk_test_…"},
		},
		"garbage": {
			input:        in(v1alpha1.ModeTest, pkTest, garbageValue),
			wantReason:   v1alpha1.ReasonKeyMalformed,
			wantContains: []string{"secretKey is not a Stripe API key"},
		},
		"body too short": {
			input:        in(v1alpha1.ModeTest, pkTest, "sk_test_abc123"),
			wantReason:   v1alpha1.ReasonKeyMalformed,
			wantContains: []string{"secretKey starts like a Stripe key (sk_test_…)"},
		},
		"body too long": {
			input:      in(v1alpha1.ModeTest, pkTest, "sk_test_"+strings.Repeat("a", 248)),
			wantReason: v1alpha1.ReasonKeyMalformed,
		},
		"body with punctuation": {
			input:      in(v1alpha1.ModeTest, pkTest, "sk_test_"+secTestBody+"-x"),
			wantReason: v1alpha1.ReasonKeyMalformed,
		},
		"upper-case prefix": {
			input:      in(v1alpha1.ModeTest, pkTest, "SK_TEST_"+secTestBody),
			wantReason: v1alpha1.ReasonKeyMalformed,
		},
		"unknown mode in prefix": {
			input:      in(v1alpha1.ModeTest, pkTest, "sk_prod_"+secTestBody),
			wantReason: v1alpha1.ReasonKeyMalformed,
		},
		"publishable key in secret slot": {
			input:       in(v1alpha1.ModeTest, pkTest, pkTest),
			wantReason:  v1alpha1.ReasonWrongKeyType,
			wantMessage: "secretKey holds a publishable key (pk_test_…); put the secret key (sk_…) or restricted key (rk_…) there",
		},
		"secret key in publishable slot": {
			input:       in(v1alpha1.ModeLive, skLive, skLive),
			wantReason:  v1alpha1.ReasonWrongKeyType,
			wantMessage: "publishableKey holds a secret key (sk_live_…); put the publishable key (pk_…) there",
		},
		"restricted key in publishable slot": {
			input:        in(v1alpha1.ModeTest, rkTest, skTest),
			wantReason:   v1alpha1.ReasonWrongKeyType,
			wantContains: []string{"publishableKey holds a restricted key (rk_test_…)"},
		},
		"swapped keys": {
			input:        in(v1alpha1.ModeTest, skTest, pkTest),
			wantReason:   v1alpha1.ReasonWrongKeyType,
			wantContains: []string{"publishableKey holds a secret key (sk_test_…) and secretKey holds a publishable key (pk_test_…); swap"},
		},
		"modes disagree": {
			input:      in(v1alpha1.ModeTest, pkLive, skTest),
			wantReason: v1alpha1.ReasonKeyModesDisagree,
			wantMessage: "publishableKey is a live key (pk_live_…) but secretKey is a test key (sk_test_…); use a publishable and a secret key from the " +
				"same mode",
		},
		"test keys but spec.mode Live": {
			input:       in(v1alpha1.ModeLive, pkTest, skTest),
			wantReason:  v1alpha1.ReasonModeMismatch,
			wantMessage: "secretKey is a test key (sk_test_…) but spec.mode is Live; put live keys in the Secret, or use them in a separate Test integration",
		},
		"live restricted keys but spec.mode Test": {
			input:       in(v1alpha1.ModeTest, pkLive, rkLive),
			wantReason:  v1alpha1.ReasonModeMismatch,
			wantMessage: "secretKey is a live key (rk_live_…) but spec.mode is Test; put test keys in the Secret, or use them in a separate Live integration",
		},
		"spec.mode unset": {
			input:       in("", pkTest, skTest),
			wantReason:  v1alpha1.ReasonModeMismatch,
			wantMessage: `secretKey is a test key (sk_test_…) but spec.mode is ""; set spec.mode to Test`,
		},
		"custom data key names": {
			input: Input{
				Mode: v1alpha1.ModeTest, PublishableKeyName: "stripe-pk", SecretKeyName: "stripe-sk",
				PublishableKey: []byte(pkTest), HasPublishableKey: true,
			},
			wantReason: v1alpha1.ReasonKeyMissing,
			wantMessage: `Secret has no data key "stripe-sk"; add the clinic's secret key (sk_test_… or sk_live_…) ` +
				`or restricted key (rk_test_… or rk_live_…) under it`,
		},
		"custom data key names in whitespace message": {
			input: Input{
				Mode: v1alpha1.ModeTest, PublishableKeyName: "stripe-pk", SecretKeyName: "stripe-sk",
				PublishableKey: []byte(pkTest + "  "), HasPublishableKey: true,
				SecretKey: []byte(skTest), HasSecretKey: true,
			},
			wantReason:  v1alpha1.ReasonKeyWhitespace,
			wantMessage: "stripe-pk contains spaces, tabs or line breaks (only one trailing newline is ignored); store the key without them",
		},
		"custom data key names in mode message": {
			input: Input{
				Mode: v1alpha1.ModeLive, PublishableKeyName: "stripe-pk", SecretKeyName: "stripe-sk",
				PublishableKey: []byte(pkTest), HasPublishableKey: true,
				SecretKey: []byte(rkTest), HasSecretKey: true,
			},
			wantReason:   v1alpha1.ReasonModeMismatch,
			wantContains: []string{"stripe-sk is a test key (rk_test_…) but spec.mode is Live"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Check(tc.input)
			if got.Reason != tc.wantReason {
				t.Fatalf("Reason = %q, want %q (message %q)", got.Reason, tc.wantReason, got.Message)
			}
			if got.OK() != (tc.wantReason == v1alpha1.ReasonKeysValid) {
				t.Errorf("OK() = %v for reason %q", got.OK(), got.Reason)
			}
			if tc.wantMessage != "" && got.Message != tc.wantMessage {
				t.Errorf("Message = %q, want %q", got.Message, tc.wantMessage)
			}
			for _, s := range tc.wantContains {
				if !strings.Contains(got.Message, s) {
					t.Errorf("Message %q does not contain %q", got.Message, s)
				}
			}
			assertNoKeyMaterial(t, got.Message)
			if !got.OK() {
				if got.Secret != (Key{}) || got.Publishable != (Key{}) {
					t.Errorf("keys filled on failure: %v %v", got.Publishable, got.Secret)
				}
				return
			}
			if got.Secret != tc.wantSecret {
				t.Errorf("Secret = %#v, want %#v (values equal: %v)", got.Secret, tc.wantSecret, got.Secret.Value == tc.wantSecret.Value)
			}
			if got.Publishable.Kind != KindPublishable || got.Publishable.Mode != tc.wantSecret.Mode ||
				strings.ContainsAny(got.Publishable.Value, "\r\n") {
				t.Errorf("Publishable = %#v", got.Publishable)
			}
		})
	}
}

func TestCheckMessagesNeverContainKeyBodies(t *testing.T) {
	values := []string{pkTest, pkLive, skTest, skLive, rkTest, rkLive, whsec, garbageValue,
		" " + skTest, skTest + "\n\n", "sk_test_" + secTestBody + "!", "SK_LIVE_" + secLiveBody}
	modes := []v1alpha1.Mode{v1alpha1.ModeTest, v1alpha1.ModeLive, ""}
	for _, pub := range values {
		for _, sec := range values {
			for _, mode := range modes {
				got := Check(in(mode, pub, sec))
				assertNoKeyMaterial(t, got.Message)
				assertNoKeyMaterial(t, fmt.Sprintf("%v %+v %#v", got, got, got))
			}
		}
	}
}

func TestParse(t *testing.T) {
	tests := map[string]struct {
		raw        string
		wantReason string // empty: success
		want       Key
	}{
		"secret":        {raw: skLive + "\n", want: Key{Kind: KindSecret, Mode: v1alpha1.ModeLive, Value: skLive}},
		"restricted":    {raw: rkTest, want: Key{Kind: KindRestricted, Mode: v1alpha1.ModeTest, Value: rkTest}},
		"publishable":   {raw: pkTest + "\r\n", want: Key{Kind: KindPublishable, Mode: v1alpha1.ModeTest, Value: pkTest}},
		"empty":         {raw: "", wantReason: v1alpha1.ReasonKeyEmpty},
		"whitespace":    {raw: "\t" + skTest, wantReason: v1alpha1.ReasonKeyWhitespace},
		"webhook":       {raw: whsec, wantReason: v1alpha1.ReasonKeyMalformed},
		"garbage":       {raw: garbageValue, wantReason: v1alpha1.ReasonKeyMalformed},
		"prefix only":   {raw: "sk_test_", wantReason: v1alpha1.ReasonKeyMalformed},
		"no mode infix": {raw: "sk_" + secTestBody, wantReason: v1alpha1.ReasonKeyMalformed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.raw)
			if tc.wantReason == "" {
				if err != nil {
					t.Fatalf("Parse() error = %v", err)
				}
				if got != tc.want {
					t.Fatalf("Parse() = %#v, want %#v", got, tc.want)
				}
				return
			}
			var kerr *Error
			if !errors.As(err, &kerr) {
				t.Fatalf("Parse() error = %v (%T), want *Error", err, err)
			}
			if kerr.Reason != tc.wantReason {
				t.Errorf("Reason = %q, want %q", kerr.Reason, tc.wantReason)
			}
			if !strings.HasPrefix(kerr.Error(), "value ") {
				t.Errorf("message %q should start with the generic subject", kerr.Error())
			}
			assertNoKeyMaterial(t, kerr.Error())
		})
	}
}

func TestKeyPrintsOnlyPrefix(t *testing.T) {
	k, err := Parse(skTest)
	if err != nil {
		t.Fatal(err)
	}
	if k.Prefix() != "sk_test_" || k.String() != "sk_test_…" {
		t.Errorf("Prefix() = %q, String() = %q", k.Prefix(), k.String())
	}
	r := Check(in(v1alpha1.ModeTest, pkTest, skTest))
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%+v", k), fmt.Sprintf("%#v", k),
		fmt.Sprintf("%v", r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r)} {
		assertNoKeyMaterial(t, s)
	}
}

func assertNoKeyMaterial(t *testing.T, s string) {
	t.Helper()
	for _, body := range allBodies {
		if strings.Contains(s, body) || strings.Contains(s, body[:12]) {
			t.Errorf("%q contains key material %q", s, body[:12])
		}
	}
}
