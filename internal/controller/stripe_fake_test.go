package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// fakeStripe is an Fn-field fake of stripeclient.Client, after cert-manager's
// pkg/acme/client/fake.go: each method calls its XxxFn, and a method whose Fn is nil fails the
// test (t.Errorf, safe from any goroutine) and returns an error naming the unexpected call. Every
// call is recorded, so a test asserts the exact sequence of Stripe calls a branch makes. It keeps
// no state of its own: the stateful fake (test/stripefake) and envtest prove the same behaviour
// end to end; this one makes each branch a table row that runs in microseconds.
type fakeStripe struct {
	t *testing.T

	ListWebhookEndpointsFn   func(ctx context.Context) ([]stripeclient.Endpoint, error)
	GetAccountFn             func(ctx context.Context) (stripeclient.Account, error)
	GetWebhookEndpointFn     func(ctx context.Context, id string) (stripeclient.Endpoint, error)
	CreateWebhookEndpointFn  func(ctx context.Context, spec stripeclient.EndpointSpec, idempotencyKey string) (stripeclient.Endpoint, string, error)
	UpdateWebhookEndpointFn  func(ctx context.Context, id string, u stripeclient.EndpointUpdate) (stripeclient.Endpoint, error)
	DeleteWebhookEndpointFn  func(ctx context.Context, id string) error
	ListEventsFn             func(ctx context.Context, w stripeclient.EventWindow) ([]stripeclient.RawEvent, error)
	HasUndeliveredEventsFn   func(ctx context.Context, since time.Time, types []string) (bool, error)
	ListPaidPayoutsFn        func(ctx context.Context, since time.Time) ([]stripeclient.Payout, error)
	ListPayoutTransactionsFn func(ctx context.Context, payoutID string) ([]stripeclient.BalanceTransaction, error)

	mu    sync.Mutex
	calls []stripeCall
}

var _ stripeclient.Client = (*fakeStripe)(nil)

// stripeCall is one recorded call: the method and its arguments (the context left out).
type stripeCall struct {
	Method string
	Args   []any
}

// String renders a call compactly for sequence assertions: the arguments that identify what the
// call did (the idempotency key of a create, the id of an update or delete, the fields an update
// sets), never a secret.
func (c stripeCall) String() string {
	switch c.Method {
	case "CreateWebhookEndpoint":
		return fmt.Sprintf("Create(%s)", c.Args[1])
	case "UpdateWebhookEndpoint":
		return fmt.Sprintf("Update(%s %s)", c.Args[0], strings.Join(updateFields(c.Args[1].(stripeclient.EndpointUpdate)), ","))
	case "DeleteWebhookEndpoint":
		return fmt.Sprintf("Delete(%s)", c.Args[0])
	case "GetWebhookEndpoint":
		return fmt.Sprintf("Get(%s)", c.Args[0])
	case "HasUndeliveredEvents":
		return fmt.Sprintf("HasUndelivered(%s)", c.Args[0].(time.Time).UTC().Format(time.RFC3339))
	case "ListEvents":
		w := c.Args[0].(stripeclient.EventWindow)
		return fmt.Sprintf("ListEvents(%s..%s undelivered=%t)", w.From.UTC().Format(time.RFC3339), w.To.UTC().Format(time.RFC3339), w.Undelivered)
	case "ListWebhookEndpoints":
		return "List()"
	case "GetAccount":
		return "GetAccount()"
	}
	return c.Method + fmt.Sprint(c.Args)
}

// updateFields names the fields an update sets, in EndpointUpdate's order.
func updateFields(u stripeclient.EndpointUpdate) []string {
	var f []string
	if u.URL != nil {
		f = append(f, "url")
	}
	if u.EnabledEvents != nil {
		f = append(f, "enabled_events")
	}
	if u.Description != nil {
		f = append(f, "description")
	}
	if u.Disabled != nil {
		f = append(f, "disabled")
	}
	if u.Metadata != nil {
		f = append(f, "metadata")
	}
	return f
}

func (f *fakeStripe) record(method string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, stripeCall{Method: method, Args: args})
}

// Calls returns the calls made so far, in order.
func (f *fakeStripe) Calls() []stripeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// CallStrings returns the calls made so far as stripeCall.String renders them.
func (f *fakeStripe) CallStrings() []string {
	calls := f.Calls()
	out := make([]string, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.String())
	}
	return out
}

// unexpected reports a call the test did not provide for.
func (f *fakeStripe) unexpected(method string, args ...any) error {
	err := fmt.Errorf("fakeStripe: unexpected call %s%v (no %sFn set)", method, args, method)
	if f.t != nil {
		f.t.Helper()
		f.t.Error(err)
	}
	return err
}

func (f *fakeStripe) ListWebhookEndpoints(ctx context.Context) ([]stripeclient.Endpoint, error) {
	f.record("ListWebhookEndpoints")
	if f.ListWebhookEndpointsFn == nil {
		return nil, f.unexpected("ListWebhookEndpoints")
	}
	return f.ListWebhookEndpointsFn(ctx)
}

func (f *fakeStripe) GetAccount(ctx context.Context) (stripeclient.Account, error) {
	f.record("GetAccount")
	if f.GetAccountFn == nil {
		return stripeclient.Account{}, f.unexpected("GetAccount")
	}
	return f.GetAccountFn(ctx)
}

func (f *fakeStripe) GetWebhookEndpoint(ctx context.Context, id string) (stripeclient.Endpoint, error) {
	f.record("GetWebhookEndpoint", id)
	if f.GetWebhookEndpointFn == nil {
		return stripeclient.Endpoint{}, f.unexpected("GetWebhookEndpoint", id)
	}
	return f.GetWebhookEndpointFn(ctx, id)
}

func (f *fakeStripe) CreateWebhookEndpoint(ctx context.Context, spec stripeclient.EndpointSpec,
	idempotencyKey string) (stripeclient.Endpoint, string, error) {
	f.record("CreateWebhookEndpoint", spec, idempotencyKey)
	if f.CreateWebhookEndpointFn == nil {
		return stripeclient.Endpoint{}, "", f.unexpected("CreateWebhookEndpoint", idempotencyKey)
	}
	return f.CreateWebhookEndpointFn(ctx, spec, idempotencyKey)
}

func (f *fakeStripe) UpdateWebhookEndpoint(ctx context.Context, id string, u stripeclient.EndpointUpdate) (stripeclient.Endpoint, error) {
	f.record("UpdateWebhookEndpoint", id, u)
	if f.UpdateWebhookEndpointFn == nil {
		return stripeclient.Endpoint{}, f.unexpected("UpdateWebhookEndpoint", id)
	}
	return f.UpdateWebhookEndpointFn(ctx, id, u)
}

func (f *fakeStripe) DeleteWebhookEndpoint(ctx context.Context, id string) error {
	f.record("DeleteWebhookEndpoint", id)
	if f.DeleteWebhookEndpointFn == nil {
		return f.unexpected("DeleteWebhookEndpoint", id)
	}
	return f.DeleteWebhookEndpointFn(ctx, id)
}

func (f *fakeStripe) ListEvents(ctx context.Context, w stripeclient.EventWindow) ([]stripeclient.RawEvent, error) {
	f.record("ListEvents", w)
	if f.ListEventsFn == nil {
		return nil, f.unexpected("ListEvents", w)
	}
	return f.ListEventsFn(ctx, w)
}

func (f *fakeStripe) HasUndeliveredEvents(ctx context.Context, since time.Time, types []string) (bool, error) {
	f.record("HasUndeliveredEvents", since, types)
	if f.HasUndeliveredEventsFn == nil {
		return false, f.unexpected("HasUndeliveredEvents", since)
	}
	return f.HasUndeliveredEventsFn(ctx, since, types)
}

func (f *fakeStripe) ListPaidPayouts(ctx context.Context, since time.Time) ([]stripeclient.Payout, error) {
	f.record("ListPaidPayouts", since)
	if f.ListPaidPayoutsFn == nil {
		return nil, f.unexpected("ListPaidPayouts", since)
	}
	return f.ListPaidPayoutsFn(ctx, since)
}

func (f *fakeStripe) ListPayoutTransactions(ctx context.Context, payoutID string) ([]stripeclient.BalanceTransaction, error) {
	f.record("ListPayoutTransactions", payoutID)
	if f.ListPayoutTransactionsFn == nil {
		return nil, f.unexpected("ListPayoutTransactions", payoutID)
	}
	return f.ListPayoutTransactionsFn(ctx, payoutID)
}

// fakeStripeClients is a StripeClients that hands out one fakeStripe and records what it was
// asked for (the key never appears in a failure message).
type fakeStripeClients struct {
	client *fakeStripe
	// ForFn, when set, chooses the client instead.
	ForFn func(secretKey string, mode paymentsv1alpha1.Mode, limiterKey string) stripeclient.Client

	mu       sync.Mutex
	requests []fakeStripeClientRequest
}

type fakeStripeClientRequest struct {
	SecretKey  string
	Mode       paymentsv1alpha1.Mode
	LimiterKey string
}

var _ StripeClients = (*fakeStripeClients)(nil)

func (c *fakeStripeClients) For(secretKey string, mode paymentsv1alpha1.Mode, limiterKey string) stripeclient.Client {
	c.mu.Lock()
	c.requests = append(c.requests, fakeStripeClientRequest{SecretKey: secretKey, Mode: mode, LimiterKey: limiterKey})
	c.mu.Unlock()
	if c.ForFn != nil {
		return c.ForFn(secretKey, mode, limiterKey)
	}
	return c.client
}

// Requests returns what For was asked for, in order.
func (c *fakeStripeClients) Requests() []fakeStripeClientRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requests)
}
