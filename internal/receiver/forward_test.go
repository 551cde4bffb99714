package receiver

import (
	"errors"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for name, tc := range map[string]struct {
		in      string
		secrets []string
		want    string
	}{
		"plain":        {in: "connection refused", want: "connection refused"},
		"user info":    {in: `Post "https://bob:pw@x.example/a": EOF`, want: `Post "https://[REDACTED]@x.example/a": EOF`},
		"query":        {in: "GET https://x.example/a?token=abc failed", want: "GET https://x.example/a?[REDACTED] failed"},
		"bearer":       {in: "sent Authorization: Bearer abc.def-123", want: "sent Authorization: Bearer [REDACTED]"},
		"known secret": {in: "echo whsec_s3cr3t back", secrets: []string{"whsec_s3cr3t"}, want: "echo [REDACTED] back"},
		"long":         {in: strings.Repeat("é", 400), want: strings.Repeat("é", maxReasonLen/2) + "…"},
	} {
		t.Run(name, func(t *testing.T) {
			if got := redact(errors.New(tc.in), tc.secrets); got != tc.want {
				t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
