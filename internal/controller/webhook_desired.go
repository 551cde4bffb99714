package controller

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// Metadata tags on every endpoint the operator creates. The UID tag is what makes an endpoint
// ours: nothing without it is ever updated or deleted.
const (
	tagManagedBy = "clinicpay_managed_by"
	tagNamespace = "clinicpay_namespace"
	tagName      = "clinicpay_name"
	tagUID       = "clinicpay_uid"
	tagClinicID  = "clinicpay_clinic_id"

	managedByValue = "stripe-operator"
)

// endpointEnabled is Stripe's status of a webhook endpoint that receives events.
const endpointEnabled = "enabled"

// Webhook paths, one per mode, so that a clinic's Test and Live endpoints (and Ingress rules) never
// share a URL. cmd/receiver serves the same paths (internal/receiver.WebhookPath).
const (
	liveWebhookPath = "/stripe/webhook/"
	testWebhookPath = "/stripe/webhook-test/"
)

// webhookPath is the path Stripe posts to for this integration's mode and clinic.
func webhookPath(si *paymentsv1alpha1.StripeIntegration) string {
	if si.Spec.Mode == paymentsv1alpha1.ModeLive {
		return liveWebhookPath + si.Spec.ClinicID
	}
	return testWebhookPath + si.Spec.ClinicID
}

// desiredEndpoint is the pure translation of the spec into the endpoint Stripe should hold.
// defaultBaseURL is the manager's --webhook-base-url. An empty URL means none is configured.
func desiredEndpoint(si *paymentsv1alpha1.StripeIntegration, defaultBaseURL, apiVersion string) stripeclient.EndpointSpec {
	spec := stripeclient.EndpointSpec{
		URL:           WebhookURL(si, defaultBaseURL),
		EnabledEvents: paymentsv1alpha1.DefaultEnabledEvents,
		Description:   fmt.Sprintf("stripe-operator: clinic %s (StripeIntegration %s/%s)", si.Spec.ClinicID, si.Namespace, si.Name),
		Metadata: map[string]string{
			tagManagedBy: managedByValue,
			tagNamespace: si.Namespace,
			tagName:      si.Name,
			tagUID:       string(si.UID),
			tagClinicID:  si.Spec.ClinicID,
		},
		APIVersion: apiVersion,
	}
	if w := si.Spec.Webhook; w != nil && len(w.EnabledEvents) > 0 {
		spec.EnabledEvents = w.EnabledEvents
	}
	spec.EnabledEvents = sortedUnique(spec.EnabledEvents)
	return spec
}

// WebhookURL is the public URL the operator registers at Stripe for si: spec.webhook.url, or
// the base URL (spec.webhook.baseURL, else defaultBaseURL, the manager's --webhook-base-url) plus
// the mode's path and the clinic ID; empty when neither gives one. A platform routes it (load
// balancer, Ingress) to the integration's receiver Service from the spec alone, before any
// status is written; the demo's network stand-in does the same.
func WebhookURL(si *paymentsv1alpha1.StripeIntegration, defaultBaseURL string) string {
	base := defaultBaseURL
	if w := si.Spec.Webhook; w != nil {
		if w.URL != "" {
			return w.URL
		}
		if w.BaseURL != "" {
			base = w.BaseURL
		}
	}
	if base == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + webhookPath(si)
}

// ownedBy reports whether the endpoint carries this object's UID tag.
func ownedBy(ep stripeclient.Endpoint, uid string) bool {
	return uid != "" && ep.Metadata[tagUID] == uid
}

// endpointDrift returns the update that brings actual back to desired, and whether one is needed.
// Metadata keys the operator does not set are unset: the endpoint is wholly the operator's.
func endpointDrift(actual stripeclient.Endpoint, desired stripeclient.EndpointSpec) (stripeclient.EndpointUpdate, []string) {
	var u stripeclient.EndpointUpdate
	var changed []string
	if actual.URL != desired.URL {
		u.URL = &desired.URL
		changed = append(changed, "url")
	}
	if !slices.Equal(sortedUnique(actual.EnabledEvents), desired.EnabledEvents) {
		u.EnabledEvents = desired.EnabledEvents
		changed = append(changed, "enabled_events")
	}
	if actual.Status != endpointEnabled {
		f := false
		u.Disabled = &f
		changed = append(changed, "status")
	}
	if actual.Description != desired.Description {
		u.Description = &desired.Description
		changed = append(changed, "description")
	}
	md := map[string]string{}
	for k, v := range desired.Metadata {
		if actual.Metadata[k] != v {
			md[k] = v
		}
	}
	for k := range actual.Metadata {
		if _, ok := desired.Metadata[k]; !ok {
			md[k] = ""
		}
	}
	if len(md) > 0 {
		u.Metadata = md
		changed = append(changed, "metadata")
	}
	return u, changed
}

// pickKeeper chooses which of several owned endpoints to keep: the one whose signing secret we
// hold, else the one in status, else the newest with the pinned API version, else the newest.
func pickKeeper(owned []stripeclient.Endpoint, secretFor, statusID, apiVersion string) int {
	for _, id := range []string{secretFor, statusID} {
		if id == "" {
			continue
		}
		if i := slices.IndexFunc(owned, func(e stripeclient.Endpoint) bool { return e.ID == id }); i >= 0 {
			return i
		}
	}
	best := 0
	for i, e := range owned {
		b := owned[best]
		if (e.APIVersion == apiVersion) != (b.APIVersion == apiVersion) {
			if e.APIVersion == apiVersion {
				best = i
			}
			continue
		}
		if e.Created > b.Created || (e.Created == b.Created && e.ID > b.ID) {
			best = i
		}
	}
	return best
}

// idempotencyKey ties a create to this object and attempt: a retry of the same attempt replays
// Stripe's stored response (same endpoint, same secret) instead of creating another endpoint.
func idempotencyKey(uid string, attempt int) string {
	return fmt.Sprintf("stripe-operator/%s/webhook-endpoint/%d", uid, attempt)
}

// createAttempt reads the attempt counter annotation (0 when absent or garbled).
func createAttempt(si *paymentsv1alpha1.StripeIntegration) int {
	return intAnnotation(si, paymentsv1alpha1.AnnotationCreateAttempt)
}

// intAnnotation reads one of the operator's counter annotations; absent or garbled counts as 0.
func intAnnotation(si *paymentsv1alpha1.StripeIntegration, key string) int {
	n, err := strconv.Atoi(si.Annotations[key])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// signingSecretName derives the owned Secret's name, hashing when the object's name is too long.
// The cut part never ends in a dot, which would leave an empty DNS label.
func signingSecretName(siName string) string {
	const suffix = "-stripe-webhook"
	if len(siName)+len(suffix) <= 253 {
		return siName + suffix
	}
	head := strings.TrimRight(siName[:253-len(suffix)-9], ".")
	return head + "-" + shortHash(siName) + suffix
}

func sortedUnique(in []string) []string {
	out := slices.Clone(in)
	sort.Strings(out)
	return slices.Compact(out)
}
