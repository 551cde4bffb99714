package fhirrelay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// R4 rules FHIR.js does not enforce, checked in Go on everything the mapping emits (see
// docs/fhir-mapping.md, "What the validator checks"):
//   - JSON representation: no null, "", {} or [] anywhere (FHIR JSON forbids empty values);
//   - dateTime and date formats, anchored (FHIR.js's regexes are unanchored, so it passes
//     "2024-01-15T09:52:25", a time without the zone R4 requires);
//   - Money: decimal syntax on the raw JSON number and an ISO 4217-shaped currency (FHIR.js
//     ships no currencies value set, so it accepts "usd" and "ZZZ");
//   - literal references carry a valid id, and contained resources are referenced from the
//     container and every "#id" resolves (dom-3; FHIR.js evaluates no invariants).
var (
	fhirDateTime = regexp.MustCompile(
		`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])` +
			`(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`)
	fhirDate    = regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$`)
	fhirDecimal = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
	isoCurrency = regexp.MustCompile(`^[A-Z]{3}$`)
	literalRef  = regexp.MustCompile(`^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$`)
)

// dateTimeKeys and dateKeys are the elements of the emitted resources with those types.
var (
	dateTimeKeys = map[string]bool{"created": true, "start": true}
	dateKeys     = map[string]bool{"paymentDate": true, "date": true}
)

// fhirRules returns the violations of the rules above in one resource.
func fhirRules(raw json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return []string{fmt.Sprintf("not a JSON object: %v", err)}
	}
	c := &ruleChecker{localRefs: map[string]bool{}}
	c.walk(fmt.Sprint(doc["resourceType"]), "", doc)
	c.checkContained(doc)
	return c.problems
}

type ruleChecker struct {
	problems  []string
	localRefs map[string]bool
}

func (c *ruleChecker) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *ruleChecker) walk(path, key string, v any) {
	switch v := v.(type) {
	case nil:
		c.addf("%s: null", path)
	case string:
		c.checkString(path, key, v)
	case []any:
		if len(v) == 0 {
			c.addf("%s: empty array", path)
		}
		for i, item := range v {
			c.walk(fmt.Sprintf("%s[%d]", path, i), key, item)
		}
	case map[string]any:
		if len(v) == 0 {
			c.addf("%s: empty object", path)
		}
		if _, isMoney := v["currency"]; isMoney {
			c.checkMoney(path, v)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c.walk(path+"."+k, k, v[k])
		}
	}
}

func (c *ruleChecker) checkString(path, key, s string) {
	switch {
	case s == "" || strings.TrimSpace(s) != s:
		c.addf("%s: empty or padded string %q", path, s)
	case dateTimeKeys[key] && !fhirDateTime.MatchString(s):
		c.addf("%s: %q is not a FHIR dateTime", path, s)
	case dateKeys[key] && !fhirDate.MatchString(s):
		c.addf("%s: %q is not a FHIR date", path, s)
	case key == "reference" && strings.HasPrefix(s, "#"):
		c.localRefs[s[1:]] = true
	case key == "reference" && !literalRef.MatchString(s):
		c.addf("%s: %q is not a literal reference <Type>/<id>", path, s)
	}
}

func (c *ruleChecker) checkMoney(path string, m map[string]any) {
	currency, _ := m["currency"].(string)
	if !isoCurrency.MatchString(currency) {
		c.addf("%s.currency: %q is not an ISO 4217 code", path, currency)
	}
	value, ok := m["value"].(json.Number)
	if !ok || !fhirDecimal.MatchString(value.String()) {
		c.addf("%s.value: %v is not a FHIR decimal", path, m["value"])
	}
}

// checkContained enforces dom-3: each contained resource has an id that the container
// references, and each local reference names a contained resource.
func (c *ruleChecker) checkContained(doc map[string]any) {
	contained, _ := doc["contained"].([]any)
	ids := map[string]bool{}
	for i, r := range contained {
		res, _ := r.(map[string]any)
		id, _ := res["id"].(string)
		if id == "" {
			c.addf("contained[%d]: no id", i)
			continue
		}
		ids[id] = true
		if !c.localRefs[id] {
			c.addf("contained[%d]: #%s is not referenced (dom-3)", i, id)
		}
	}
	for ref := range c.localRefs {
		if !ids[ref] {
			c.addf("reference #%s names no contained resource", ref)
		}
	}
}

// The Go-side rules must bite too.
func TestFHIRRulesRejectInvalid(t *testing.T) {
	cases := map[string]string{
		"null":                  `{"resourceType":"Account","status":null}`,
		"empty string":          `{"resourceType":"Account","status":"active","name":""}`,
		"empty array":           `{"resourceType":"Account","status":"active","subject":[]}`,
		"empty object":          `{"resourceType":"Account","status":"active","owner":{}}`,
		"dateTime without zone": `{"resourceType":"PaymentReconciliation","created":"2024-01-15T09:52:25"}`,
		"date with time":        `{"resourceType":"PaymentReconciliation","paymentDate":"2024-01-15T09:52:25Z"}`,
		"lowercase currency":    `{"resourceType":"PaymentNotice","amount":{"value":1.00,"currency":"usd"}}`,
		"string decimal":        `{"resourceType":"PaymentNotice","amount":{"value":"1.00","currency":"USD"}}`,
		"bad literal reference": `{"resourceType":"PaymentNotice","request":{"reference":"Claim/claim 2002"}}`,
		"unreferenced contained": `{"resourceType":"PaymentNotice","payment":{"reference":"#other"},` +
			`"contained":[{"resourceType":"PaymentReconciliation","id":"payment"}]}`,
	}
	for name, doc := range cases {
		if problems := fhirRules(json.RawMessage(doc)); len(problems) == 0 {
			t.Errorf("%s: no problem found in %s", name, doc)
		}
	}
}
