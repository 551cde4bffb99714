package contract

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// operatorEndpoint is an endpoint in the shape the controller creates: the default events,
// its description, the five ownership tags and the pinned API version.
func operatorEndpoint() stripeclient.EndpointSpec {
	return stripeclient.EndpointSpec{
		URL: "https://hooks.clinicpay.example/stripe/webhook-test/clinic-42",
		EnabledEvents: []string{
			"payment_intent.succeeded", "payment_intent.payment_failed", "charge.succeeded", "charge.refunded",
			"invoice.payment_succeeded", "customer.created", "customer.updated",
		},
		Description: "stripe-operator: clinic clinic-42 (StripeIntegration clinics/clinic-42)",
		Metadata: map[string]string{
			"clinicpay_managed_by": "stripe-operator",
			"clinicpay_namespace":  "clinics",
			"clinicpay_name":       "clinic-42",
			"clinicpay_uid":        "5b0f9d3e-2c4a-4f5e-9b7d-1e2f3a4b5c6d",
			"clinicpay_clinic_id":  "clinic-42",
		},
		APIVersion: stripe.APIVersion,
	}
}

// operatorIdempotencyKey has the controller's format and length.
const operatorIdempotencyKey = "stripe-operator/5b0f9d3e-2c4a-4f5e-9b7d-1e2f3a4b5c6d/webhook-endpoint/1"

// newMockClient starts stripe-mock and returns the operator's real client for it.
func newMockClient(t *testing.T) stripeclient.Client {
	t.Helper()
	baseURL := startStripeMock(t)
	factory := stripeclient.NewFactory(stripeclient.Config{
		BaseURL:     baseURL,
		CallTimeout: 5 * time.Second,
		// A retry could hide a first answer that was an error.
		MaxNetworkRetries: -1,
	})
	return factory.For(mockKey, v1alpha1.ModeTest, "")
}

// TestClientCallsMatchStripeAPI makes every call of stripeclient.Client the way the operator
// makes it. stripe-mock answers 400 invalid_request_error to anything its OpenAPI spec does
// not allow, so any error fails the test.
func TestClientCallsMatchStripeAPI(t *testing.T) {
	c := newMockClient(t)
	ctx := context.Background()

	endpoints, err := c.ListWebhookEndpoints(ctx)
	mustAccept(t, "ListWebhookEndpoints", err)
	if len(endpoints) == 0 || endpoints[0].ID == "" {
		t.Errorf("ListWebhookEndpoints decoded %+v", endpoints)
	}

	acct, err := c.GetAccount(ctx)
	mustAccept(t, "GetAccount", err)
	if acct.ID == "" {
		t.Error("GetAccount decoded no account id")
	}

	// A replay's window: created[gte] and created[lt], the endpoint's types, pages of 100.
	_, err = c.ListEvents(ctx, stripeclient.EventWindow{From: time.Now().Add(-time.Hour), To: time.Now(),
		Types: operatorEndpoint().EnabledEvents, Max: 1000})
	mustAccept(t, "ListEvents", err)
	// The delivery check (DeliveriesArriving): the endpoint's undelivered events in a window, one
	// page (more than one is as good an answer as one).
	_, err = c.ListEvents(ctx, stripeclient.EventWindow{From: time.Now().Add(-time.Hour), To: time.Now().Add(-2 * time.Minute),
		Types: operatorEndpoint().EnabledEvents, Undelivered: true, Max: 1})
	if !errors.Is(err, stripeclient.ErrTooManyEvents) {
		mustAccept(t, "ListEvents (undelivered)", err)
	}

	// Payout reconciliation: paid payouts by arrival date, then one payout's balance transactions
	// with their sources expanded.
	payouts, err := c.ListPaidPayouts(ctx, time.Now().Add(-30*24*time.Hour))
	mustAccept(t, "ListPaidPayouts", err)
	if len(payouts) == 0 || payouts[0].ID == "" {
		t.Errorf("ListPaidPayouts decoded %+v", payouts)
	}
	txns, err := c.ListPayoutTransactions(ctx, "po_1MtKf2LkdIwHu7ix4vN7k0NZ")
	mustAccept(t, "ListPayoutTransactions", err)
	if len(txns) == 0 || txns[0].ID == "" {
		t.Errorf("ListPayoutTransactions decoded %+v", txns)
	}

	created, _, err := c.CreateWebhookEndpoint(ctx, operatorEndpoint(), operatorIdempotencyKey)
	// stripe-mock's fixture for a webhook endpoint has no secret, so the client reports
	// ErrNoSigningSecret after Stripe accepted the request; that is the only error allowed.
	if !errors.Is(err, stripeclient.ErrNoSigningSecret) {
		mustAccept(t, "CreateWebhookEndpoint", err)
	}
	if created.ID == "" || created.URL != operatorEndpoint().URL || created.APIVersion != stripe.APIVersion {
		t.Errorf("CreateWebhookEndpoint decoded %+v", created)
	}

	got, err := c.GetWebhookEndpoint(ctx, created.ID)
	mustAccept(t, "GetWebhookEndpoint", err)
	if got.ID == "" {
		t.Error("GetWebhookEndpoint decoded no id")
	}

	url, description, disabled := "https://hooks.clinicpay.example/stripe/webhook-test/clinic-43", "moved", true
	updated, err := c.UpdateWebhookEndpoint(ctx, created.ID, stripeclient.EndpointUpdate{
		URL:           &url,
		EnabledEvents: []string{"charge.refunded", "customer.updated"},
		Description:   &description,
		Disabled:      &disabled,
		Metadata:      map[string]string{"clinicpay_name": "clinic-43", "stale_tag": ""},
	})
	mustAccept(t, "UpdateWebhookEndpoint", err)
	if updated.ID == "" {
		t.Error("UpdateWebhookEndpoint decoded no id")
	}

	mustAccept(t, "DeleteWebhookEndpoint", c.DeleteWebhookEndpoint(ctx, created.ID))
}

// TestStripeMockRejectsInvalidRequests proves the contract test can fail: requests the real API
// refuses must come back from stripe-mock as 400 InvalidRequest.
func TestStripeMockRejectsInvalidRequests(t *testing.T) {
	c := newMockClient(t)
	ctx := context.Background()
	tests := map[string]func() error{
		"create with an unknown event type": func() error {
			spec := operatorEndpoint()
			spec.EnabledEvents = append(spec.EnabledEvents, "not.a_real_event")
			_, _, err := c.CreateWebhookEndpoint(ctx, spec, operatorIdempotencyKey)
			return err
		},
		"create with an unknown API version": func() error {
			spec := operatorEndpoint()
			spec.APIVersion = "1999-01-01"
			_, _, err := c.CreateWebhookEndpoint(ctx, spec, operatorIdempotencyKey)
			return err
		},
		"update with an unknown event type": func() error {
			_, err := c.UpdateWebhookEndpoint(ctx, "we_123", stripeclient.EndpointUpdate{EnabledEvents: []string{"not.a_real_event"}})
			return err
		},
	}
	for name, call := range tests {
		t.Run(name, func(t *testing.T) {
			err := call()
			se := stripeclient.Classify(err)
			if se == nil || se.Kind != stripeclient.KindInvalidRequest || se.HTTPStatus != http.StatusBadRequest {
				t.Fatalf("error = %v, want a 400 InvalidRequest from stripe-mock's request validation", err)
			}
		})
	}
}

// mustAccept fails the test if stripe-mock refused a call, with the (redacted) reason.
func mustAccept(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: stripe-mock refused the operator's request, so the real Stripe API would too: %s",
			call, stripeclient.Redact(err.Error()))
	}
}
