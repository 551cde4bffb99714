package fhirrelay

import (
	"encoding/json"
	"strings"
	"unicode"
)

// maxOutcomeText bounds the OperationOutcome text quoted in an error, which ends up in logs.
const maxOutcomeText = 300

// operationOutcome is the part of a FHIR OperationOutcome an error message quotes.
type operationOutcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string `json:"severity"`
		Code        string `json:"code"`
		Diagnostics string `json:"diagnostics"`
		Details     struct {
			Text string `json:"text"`
		} `json:"details"`
	} `json:"issue"`
}

// outcomeSummary renders an OperationOutcome body as "severity code: text; …", or "" when
// the body is not one (an HTML error page from a proxy says nothing the status does not).
// secret, when set, is scrubbed from the decoded text before it is cut to length, so neither
// an escaped nor a truncated copy of it survives.
func outcomeSummary(body []byte, secret string) string {
	var oo operationOutcome
	if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return ""
	}
	parts := make([]string, 0, len(oo.Issue))
	for _, is := range oo.Issue {
		text := is.Diagnostics
		if text == "" {
			text = is.Details.Text
		}
		part := strings.TrimSpace(is.Severity + " " + is.Code)
		if text != "" {
			part += ": " + text
		}
		parts = append(parts, part)
	}
	text := strings.Join(parts, "; ")
	if secret != "" {
		text = strings.ReplaceAll(text, secret, "[redacted]")
	}
	return truncate(singleLine(text), maxOutcomeText)
}

// singleLine keeps a server's text from breaking log lines.
func singleLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
