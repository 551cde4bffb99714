package controller

import (
	"slices"
	"testing"
)

func TestForwardTargetAllowed(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		annotation, target string
		want               bool
	}{
		"exact":                      {"https://fhir.clinic.example/r4", "https://fhir.clinic.example/r4", true},
		"below the prefix":           {"https://fhir.clinic.example/r4", "https://fhir.clinic.example/r4/sub", true},
		"trailing slash on prefix":   {"https://fhir.clinic.example/r4/", "https://fhir.clinic.example/r4", true},
		"host only allows any path":  {"https://fhir.clinic.example", "https://fhir.clinic.example/anything", true},
		"explicit default port":      {"https://fhir.clinic.example:443/r4", "https://fhir.clinic.example/r4", true},
		"host case":                  {"https://FHIR.clinic.example/r4", "https://fhir.clinic.example/r4", true},
		"second of several":          {"https://a.example/x, https://fhir.clinic.example/r4", "https://fhir.clinic.example/r4", true},
		"newline separated":          {"https://a.example/x\nhttps://fhir.clinic.example/r4", "https://fhir.clinic.example/r4", true},
		"no annotation":              {"", "https://fhir.clinic.example/r4", false},
		"other host":                 {"https://fhir.clinic.example/r4", "https://attacker.example/r4", false},
		"host suffix trick":          {"https://fhir.clinic.example", "https://fhir.clinic.example.attacker.example/r4", false},
		"userinfo trick":             {"https://fhir.clinic.example", "https://fhir.clinic.example@attacker.example/r4", false},
		"scheme downgrade":           {"https://fhir.clinic.example/r4", "http://fhir.clinic.example/r4", false},
		"other port":                 {"https://fhir.clinic.example/r4", "https://fhir.clinic.example:8443/r4", false},
		"sibling path":               {"https://fhir.clinic.example/r4", "https://fhir.clinic.example/r4-evil", false},
		"dot-dot escape":             {"https://fhir.clinic.example/r4", "https://fhir.clinic.example/r4/../admin", false},
		"encoded slash":              {"https://fhir.clinic.example/r4", "https://fhir.clinic.example/r4%2F..%2Fadmin", false},
		"query on target":            {"https://fhir.clinic.example/r4", "https://fhir.clinic.example/r4?x=1", false},
		"malformed prefix":           {"fhir.clinic.example/r4", "https://fhir.clinic.example/r4", false},
		"wildcard is not a wildcard": {"*", "https://fhir.clinic.example/r4", false},
		"non-http scheme":            {"file:///etc", "file:///etc/passwd", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := forwardTargetAllowed(tc.annotation, tc.target); got != tc.want {
				t.Errorf("forwardTargetAllowed(%q, %q) = %t, want %t", tc.annotation, tc.target, got, tc.want)
			}
		})
	}
}

func TestDisallowedAnnotations(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		annotations map[string]string
		allowlist   []string
		want        []string
	}{
		"none":            {nil, DefaultIngressAnnotationAllowlist, nil},
		"default allowed": {map[string]string{"cert-manager.io/cluster-issuer": "le"}, DefaultIngressAnnotationAllowlist, nil},
		"snippet refused": {map[string]string{"nginx.ingress.kubernetes.io/server-snippet": "x", "cert-manager.io/issuer": "y"},
			DefaultIngressAnnotationAllowlist, []string{"nginx.ingress.kubernetes.io/server-snippet"}},
		"auth refused": {map[string]string{"nginx.ingress.kubernetes.io/auth-url": "x", "nginx.ingress.kubernetes.io/configuration-snippet": "y"},
			DefaultIngressAnnotationAllowlist, []string{"nginx.ingress.kubernetes.io/auth-url", "nginx.ingress.kubernetes.io/configuration-snippet"}},
		"prefix allowlist": {map[string]string{"cert-manager.io/duration": "1h"}, []string{"cert-manager.io/*"}, nil},
		"prefix is exact":  {map[string]string{"cert-manager.io.evil/x": "1"}, []string{"cert-manager.io/*"}, []string{"cert-manager.io.evil/x"}},
		"empty allowlist":  {map[string]string{"cert-manager.io/issuer": "y"}, []string{}, []string{"cert-manager.io/issuer"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := disallowedAnnotations(tc.annotations, tc.allowlist); !slices.Equal(got, tc.want) {
				t.Errorf("disallowedAnnotations = %v, want %v", got, tc.want)
			}
		})
	}
}
