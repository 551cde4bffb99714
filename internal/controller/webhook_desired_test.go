package controller

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

func siWith(webhook *v1.WebhookSpec) *v1.StripeIntegration {
	return &v1.StripeIntegration{
		ObjectMeta: metav1.ObjectMeta{Namespace: "clinics", Name: "clinic-a-test", UID: "uid-1"},
		Spec:       v1.StripeIntegrationSpec{ClinicID: "clinic-a", Mode: v1.ModeTest, Webhook: webhook},
	}
}

func TestWebhookURL(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		mode    v1.Mode // Test when empty
		webhook *v1.WebhookSpec
		def     string
		want    string
	}{
		"manager default":    {def: "https://hooks.example", want: "https://hooks.example/stripe/webhook-test/clinic-a"},
		"default with slash": {def: "https://hooks.example/", want: "https://hooks.example/stripe/webhook-test/clinic-a"},
		"spec base wins": {webhook: &v1.WebhookSpec{BaseURL: "https://clinic.example/in"}, def: "https://hooks.example",
			want: "https://clinic.example/in/stripe/webhook-test/clinic-a"},
		"full url used as is": {webhook: &v1.WebhookSpec{URL: "https://gw.example/x/clinic-a"}, def: "https://hooks.example",
			want: "https://gw.example/x/clinic-a"},
		"events only keeps default": {webhook: &v1.WebhookSpec{EnabledEvents: []string{"charge.succeeded"}}, def: "https://h.example",
			want: "https://h.example/stripe/webhook-test/clinic-a"},
		"nothing configured":    {want: ""},
		"Live: manager default": {mode: v1.ModeLive, def: "https://hooks.example", want: "https://hooks.example/stripe/webhook/clinic-a"},
		"Live: spec base wins": {mode: v1.ModeLive, webhook: &v1.WebhookSpec{BaseURL: "https://clinic.example/in/"}, def: "https://hooks.example",
			want: "https://clinic.example/in/stripe/webhook/clinic-a"},
		"Live: full url used as is": {mode: v1.ModeLive, webhook: &v1.WebhookSpec{URL: "https://gw.example/x/clinic-a"},
			want: "https://gw.example/x/clinic-a"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			si := siWith(tc.webhook)
			if tc.mode != "" {
				si.Spec.Mode = tc.mode
			}
			if got := WebhookURL(si, tc.def); got != tc.want {
				t.Errorf("webhookURL = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDesiredEndpoint(t *testing.T) {
	t.Parallel()
	d := desiredEndpoint(siWith(nil), "https://hooks.example", "2023-10-16")
	if !slices.Equal(d.EnabledEvents, sortedUnique(v1.DefaultEnabledEvents)) || len(d.EnabledEvents) != 7 {
		t.Errorf("events = %v", d.EnabledEvents)
	}
	want := map[string]string{tagManagedBy: "stripe-operator", tagNamespace: "clinics", tagName: "clinic-a-test", tagUID: "uid-1",
		tagClinicID: "clinic-a"}
	for k, v := range want {
		if d.Metadata[k] != v {
			t.Errorf("metadata[%s] = %q, want %q", k, d.Metadata[k], v)
		}
	}
	if d.APIVersion != "2023-10-16" || !strings.Contains(d.Description, "clinic-a") {
		t.Errorf("desired = %+v", d)
	}
	custom := desiredEndpoint(siWith(&v1.WebhookSpec{EnabledEvents: []string{"charge.refunded", "charge.succeeded", "charge.refunded"}}), "https://h",
		"v")
	if !slices.Equal(custom.EnabledEvents, []string{"charge.refunded", "charge.succeeded"}) {
		t.Errorf("custom events = %v", custom.EnabledEvents)
	}
}

func TestEndpointDrift(t *testing.T) {
	t.Parallel()
	desired := desiredEndpoint(siWith(nil), "https://hooks.example", "2023-10-16")
	inSync := stripeclient.Endpoint{
		ID: "we_1", URL: desired.URL, Status: "enabled", Description: desired.Description,
		EnabledEvents: slices.Clone(desired.EnabledEvents), Metadata: desired.Metadata, APIVersion: "2023-10-16",
	}
	// Stripe may return events in another order: that is not drift.
	slices.Reverse(inSync.EnabledEvents)
	cases := map[string]struct {
		mutate func(e *stripeclient.Endpoint)
		want   []string
		check  func(t *testing.T, u stripeclient.EndpointUpdate)
	}{
		"in sync": {mutate: func(*stripeclient.Endpoint) {}, want: nil},
		"url changed": {mutate: func(e *stripeclient.Endpoint) { e.URL = "https://evil.example/x" }, want: []string{"url"},
			check: func(t *testing.T, u stripeclient.EndpointUpdate) {
				if u.URL == nil || *u.URL != desired.URL {
					t.Errorf("URL update = %v", u.URL)
				}
			}},
		"event removed": {mutate: func(e *stripeclient.Endpoint) { e.EnabledEvents = e.EnabledEvents[1:] }, want: []string{"enabled_events"}},
		"wildcard":      {mutate: func(e *stripeclient.Endpoint) { e.EnabledEvents = []string{"*"} }, want: []string{"enabled_events"}},
		"disabled": {mutate: func(e *stripeclient.Endpoint) { e.Status = "disabled" }, want: []string{"status"},
			check: func(t *testing.T, u stripeclient.EndpointUpdate) {
				if u.Disabled == nil || *u.Disabled {
					t.Errorf("Disabled = %v, want false", u.Disabled)
				}
			}},
		"description": {mutate: func(e *stripeclient.Endpoint) { e.Description = "mine now" }, want: []string{"description"}},
		"metadata tag changed and extra key": {
			mutate: func(e *stripeclient.Endpoint) {
				e.Metadata = map[string]string{tagManagedBy: "someone", tagNamespace: "clinics", tagName: "clinic-a-test", tagUID: "uid-1",
					tagClinicID: "clinic-a", "note": "x"}
			},
			want: []string{"metadata"},
			check: func(t *testing.T, u stripeclient.EndpointUpdate) {
				if u.Metadata[tagManagedBy] != "stripe-operator" || u.Metadata["note"] != "" || len(u.Metadata) != 2 {
					t.Errorf("metadata update = %v", u.Metadata)
				}
				if _, unset := u.Metadata["note"]; !unset {
					t.Error("extra key not unset")
				}
			}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			actual := inSync
			actual.Metadata = map[string]string{}
			for k, v := range inSync.Metadata {
				actual.Metadata[k] = v
			}
			actual.EnabledEvents = slices.Clone(inSync.EnabledEvents)
			tc.mutate(&actual)
			u, changed := endpointDrift(actual, desired)
			if !slices.Equal(changed, tc.want) {
				t.Fatalf("changed = %v, want %v", changed, tc.want)
			}
			if tc.check != nil {
				tc.check(t, u)
			}
		})
	}
}

func TestPickKeeper(t *testing.T) {
	t.Parallel()
	eps := []stripeclient.Endpoint{
		{ID: "we_old", Created: 100, APIVersion: "2023-10-16"},
		{ID: "we_new_wrong_version", Created: 300, APIVersion: "2020-08-27"},
		{ID: "we_mid", Created: 200, APIVersion: "2023-10-16"},
	}
	cases := map[string]struct {
		secretFor, statusID string
		want                string
	}{
		"secret holder wins":         {secretFor: "we_old", statusID: "we_mid", want: "we_old"},
		"status next":                {statusID: "we_old", want: "we_old"},
		"unknown ids ignored":        {secretFor: "we_gone", statusID: "we_gone2", want: "we_mid"},
		"newest with pinned version": {want: "we_mid"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := eps[pickKeeper(eps, tc.secretFor, tc.statusID, "2023-10-16")].ID; got != tc.want {
				t.Errorf("keeper = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSigningSecretNameFits(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 253)
	if n := signingSecretName(long); len(n) > 253 || !strings.HasSuffix(n, "-stripe-webhook") {
		t.Errorf("name %q (%d chars)", n, len(n))
	}
	if signingSecretName(long) == signingSecretName(strings.Repeat("a", 252)+"b") {
		t.Error("long names collide")
	}
	if got := signingSecretName("clinic-a-test"); got != "clinic-a-test-stripe-webhook" {
		t.Errorf("short name = %q", got)
	}
}

func TestIdempotencyKeyBounded(t *testing.T) {
	t.Parallel()
	k := idempotencyKey("0b1c7f4e-5a2d-4f0e-9d3b-123456789abc", 1<<30)
	if len(k) > 255 {
		t.Errorf("idempotency key %d chars > 255", len(k))
	}
	if idempotencyKey("u", 1) == idempotencyKey("u", 2) || idempotencyKey("u", 1) == idempotencyKey("v", 1) {
		t.Error("keys must differ per UID and attempt")
	}
}
