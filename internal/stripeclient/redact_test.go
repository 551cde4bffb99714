package stripeclient

import "testing"

func TestRedact(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"secret test key":         {in: "key " + skTest + " failed", want: "key sk_test_… failed"},
		"secret live key":         {in: skLive, want: "sk_live_…"},
		"restricted key":          {in: "using " + rkTest, want: "using rk_test_…"},
		"publishable key":         {in: "pk_live_" + liveKeyBody + ".", want: "pk_live_…."},
		"masked key in 401":       {in: "Invalid API Key provided: sk_test_********" + maskedTail, want: "Invalid API Key provided: sk_test_…"},
		"masked restricted 403":   {in: "The provided key 'rk_live_****" + maskedTail + "' does not", want: "The provided key 'rk_live_…' does not"},
		"webhook secret in json":  {in: `{"secret": "whsec_` + whsecBody + `+/=="}`, want: `{"secret": "whsec_…"}`},
		"bearer opaque token":     {in: "Authorization: Bearer abc.def-ghi", want: "Authorization: Bearer …"},
		"bearer key keeps prefix": {in: "Authorization: Bearer " + skTest, want: "Authorization: Bearer sk_test_…"},
		"lower-case bearer":       {in: "bearer tok3n", want: "bearer …"},
		"key glued to a word":     {in: "apikey_sk_test_" + testKeyBody, want: "apikey_sk_test_…"},
		"legacy key without mode": {in: "sk_" + testKeyBody, want: "sk_…"},
		"several keys":            {in: skTest + "," + rkTest, want: "sk_test_…,rk_test_…"},
		"already redacted":        {in: "sk_test_… and whsec_… and Bearer …", want: "sk_test_… and whsec_… and Bearer …"},
		"ids and permissions untouched": {
			in:   "acct_1Clinic we_123 req_abc rak_webhook_write pi_123",
			want: "acct_1Clinic we_123 req_abc rak_webhook_write pi_123",
		},
		"empty": {in: "", want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := Redact(Redact(tc.in)); got != tc.want {
				t.Errorf("Redact is not idempotent: %q", got)
			}
		})
	}
}
