package stripeclient

import (
	"fmt"
	"maps"
	"strings"

	stripe "github.com/stripe/stripe-go/v76"
)

// maxIdempotencyKeyLen is Stripe's limit; stripe-go refuses longer keys too, but only after the
// limiter wait and with an unclassified error.
const maxIdempotencyKeyLen = 255

// EndpointSpec is the endpoint the operator wants; used for create.
type EndpointSpec struct {
	URL           string
	EnabledEvents []string
	Description   string
	Metadata      map[string]string
	// APIVersion is sent as api_version on create (the controller passes stripe.APIVersion), so
	// that events reach the endpoint in the shape stripe-go decodes. Empty means the account's
	// default version.
	APIVersion string
}

// EndpointUpdate changes an endpoint; nil/empty fields are left alone.
type EndpointUpdate struct {
	URL *string
	// EnabledEvents replaces the endpoint's events; nil (or empty) leaves them unchanged.
	EnabledEvents []string
	// Description replaces the description; a pointer to "" clears it.
	Description *string
	// Disabled disables (true) or re-enables (false) the endpoint.
	Disabled *bool
	// Metadata sets the given keys and leaves the others alone; a "" value unsets that key
	// (Stripe semantics). Clearing all metadata at once is not offered: unset keys one by one.
	Metadata map[string]string
}

// createParams renders the spec as stripe-go params. Field order and the form encoder's sorted
// metadata keys make the encoding deterministic, which an idempotent replay relies on: Stripe
// compares the replayed parameters with the first request's.
func (s EndpointSpec) createParams() *stripe.WebhookEndpointParams {
	p := &stripe.WebhookEndpointParams{URL: stripe.String(s.URL)}
	// A nil slice must stay nil: stripe-go encodes an empty non-nil one as "enabled_events=",
	// which Stripe reports less clearly than the missing parameter.
	if len(s.EnabledEvents) > 0 {
		p.EnabledEvents = stripe.StringSlice(s.EnabledEvents)
	}
	if s.Description != "" {
		p.Description = stripe.String(s.Description)
	}
	if len(s.Metadata) > 0 {
		p.Metadata = maps.Clone(s.Metadata)
	}
	if s.APIVersion != "" {
		p.APIVersion = stripe.String(s.APIVersion)
	}
	return p
}

// updateParams renders the update as stripe-go params. stripe-go's form encoder sends a pointer
// field whenever it is non-nil, even to "" or false, and every entry of a map, even with a ""
// value ("metadata[k]="), which is how Stripe is told to unset a key. Params.Metadata (the
// deprecated copy in the embedded Params) stays nil so that no key is sent twice.
func (u EndpointUpdate) updateParams() *stripe.WebhookEndpointParams {
	p := &stripe.WebhookEndpointParams{URL: u.URL, Description: u.Description, Disabled: u.Disabled}
	if len(u.EnabledEvents) > 0 {
		p.EnabledEvents = stripe.StringSlice(u.EnabledEvents)
	}
	if len(u.Metadata) > 0 {
		p.Metadata = maps.Clone(u.Metadata)
	}
	return p
}

// checkIdempotencyKey rejects keys Stripe would not honour. stripe-go trims the key before
// sending it, so a blank key would silently become none and the create would not be idempotent.
func checkIdempotencyKey(key string) error {
	trimmed := strings.TrimSpace(key)
	switch {
	case trimmed == "":
		return &Error{Kind: KindInvalidRequest, Param: "Idempotency-Key",
			Message: "an Idempotency-Key is required to create a webhook endpoint"}
	case len(trimmed) > maxIdempotencyKeyLen:
		return &Error{Kind: KindInvalidRequest, Param: "Idempotency-Key", Message: fmt.Sprintf(
			"the Idempotency-Key is %d characters long; Stripe allows at most %d", len(trimmed), maxIdempotencyKeyLen)}
	}
	return nil
}

// checkEndpointID rejects an empty id, which stripe-go would turn into a request to the
// collection (/v1/webhook_endpoints/) instead of to one endpoint.
func checkEndpointID(id string) error {
	if strings.TrimSpace(id) == "" {
		return &Error{Kind: KindInvalidRequest, Param: "id", Message: "a webhook endpoint id is required"}
	}
	return nil
}
