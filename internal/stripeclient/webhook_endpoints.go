package stripeclient

import (
	"context"
	"errors"
	"fmt"
	"maps"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhookendpoint"
)

// ErrNoSigningSecret is the cause of the *Error (KindOther) CreateWebhookEndpoint returns when
// Stripe created the endpoint but its answer held no signing secret. Real Stripe always sends
// it on create; stripe-mock's fixtures do not. Failing beats handing back "" as a secret,
// which would make every webhook fail verification without a word.
var ErrNoSigningSecret = errors.New("no signing secret in the answer to the create")

// GetWebhookEndpoint reads /v1/webhook_endpoints/{id}.
func (c *client) GetWebhookEndpoint(ctx context.Context, id string) (Endpoint, error) {
	if err := checkEndpointID(id); err != nil {
		return Endpoint{}, fmt.Errorf("get webhook endpoint: %w", err)
	}
	var we *stripe.WebhookEndpoint
	err := c.do(ctx, func(p stripe.Params) (err error) {
		we, err = c.endpoints().Get(id, &stripe.WebhookEndpointParams{Params: p})
		return err
	})
	if err != nil {
		return Endpoint{}, fmt.Errorf("get webhook endpoint %s: %w", id, err)
	}
	return toEndpoint(we), nil
}

// CreateWebhookEndpoint posts /v1/webhook_endpoints under idempotencyKey. stripe-go's own
// retries reuse the key, so a retried create cannot make a second endpoint either.
func (c *client) CreateWebhookEndpoint(ctx context.Context, spec EndpointSpec, idempotencyKey string) (Endpoint, string, error) {
	if err := checkIdempotencyKey(idempotencyKey); err != nil {
		return Endpoint{}, "", fmt.Errorf("create webhook endpoint: %w", err)
	}
	params := spec.createParams()
	var we *stripe.WebhookEndpoint
	err := c.do(ctx, func(p stripe.Params) (err error) {
		params.Params = p
		params.SetIdempotencyKey(idempotencyKey)
		we, err = c.endpoints().New(params)
		return err
	})
	if err != nil {
		return Endpoint{}, "", fmt.Errorf("create webhook endpoint: %w", err)
	}
	ep := toEndpoint(we)
	if we.Secret == "" {
		return ep, "", fmt.Errorf("create webhook endpoint: %w", &Error{Kind: KindOther,
			Message: fmt.Sprintf("Stripe created webhook endpoint %s but sent no signing secret", ep.ID),
			Err:     ErrNoSigningSecret})
	}
	return ep, we.Secret, nil
}

// UpdateWebhookEndpoint posts the changed fields to /v1/webhook_endpoints/{id}.
func (c *client) UpdateWebhookEndpoint(ctx context.Context, id string, u EndpointUpdate) (Endpoint, error) {
	if err := checkEndpointID(id); err != nil {
		return Endpoint{}, fmt.Errorf("update webhook endpoint: %w", err)
	}
	params := u.updateParams()
	var we *stripe.WebhookEndpoint
	err := c.do(ctx, func(p stripe.Params) (err error) {
		params.Params = p
		we, err = c.endpoints().Update(id, params)
		return err
	})
	if err != nil {
		return Endpoint{}, fmt.Errorf("update webhook endpoint %s: %w", id, err)
	}
	return toEndpoint(we), nil
}

// DeleteWebhookEndpoint deletes /v1/webhook_endpoints/{id}.
func (c *client) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	if err := checkEndpointID(id); err != nil {
		return fmt.Errorf("delete webhook endpoint: %w", err)
	}
	err := c.do(ctx, func(p stripe.Params) error {
		_, err := c.endpoints().Del(id, &stripe.WebhookEndpointParams{Params: p})
		return err
	})
	if err != nil {
		return fmt.Errorf("delete webhook endpoint %s: %w", id, err)
	}
	return nil
}

// do makes one rate-limited, time-bounded request: call gets Params carrying the request's
// context, and its error comes back classified.
func (c *client) do(ctx context.Context, call func(stripe.Params) error) error {
	callCtx, cancel, err := c.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	if err := call(stripe.Params{Context: callCtx}); err != nil {
		return Classify(err)
	}
	return nil
}

func (c *client) endpoints() webhookendpoint.Client {
	return webhookendpoint.Client{B: c.backend, Key: c.key}
}

// toEndpoint copies what the controller may see; the secret (and the raw response in
// LastResponse, which holds it after a create) stays behind.
func toEndpoint(we *stripe.WebhookEndpoint) Endpoint {
	return Endpoint{
		ID:            we.ID,
		URL:           we.URL,
		Description:   we.Description,
		Status:        we.Status,
		APIVersion:    we.APIVersion,
		EnabledEvents: append([]string(nil), we.EnabledEvents...),
		Metadata:      maps.Clone(we.Metadata),
		Livemode:      we.Livemode,
		Created:       we.Created,
	}
}
