package stripeclient

import (
	"context"
	"fmt"
	"net/http"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"golang.org/x/time/rate"
)

const (
	// listPageSize is Stripe's maximum page size.
	listPageSize = 100
	// maxListPages stops a misbehaving server from paging forever; Stripe allows far fewer
	// webhook endpoints per account than this many pages hold.
	maxListPages = 50
)

// Endpoint is a Stripe webhook endpoint. It never carries the signing secret, so that it can
// be logged, compared and stored freely; CreateWebhookEndpoint returns the secret separately.
type Endpoint struct {
	ID, URL, Description, Status, APIVersion string
	EnabledEvents                            []string
	Metadata                                 map[string]string
	Livemode                                 bool
	// Created is the creation time in Unix seconds.
	Created int64
}

// Account is the Stripe account a key belongs to.
type Account struct {
	ID string
}

// Client is what the controller may do with one clinic's key.
type Client interface {
	// ListWebhookEndpoints lists all of the account's endpoints (all pages). It doubles as the
	// authentication probe: restricted keys usually may read webhooks but not /v1/account.
	ListWebhookEndpoints(ctx context.Context) ([]Endpoint, error)
	// GetAccount returns the account the key belongs to.
	GetAccount(ctx context.Context) (Account, error)
	// GetWebhookEndpoint reads one endpoint; an unknown id is a KindNotFound *Error.
	GetWebhookEndpoint(ctx context.Context, id string) (Endpoint, error)
	// CreateWebhookEndpoint creates an endpoint with the given Idempotency-Key (required, at
	// most 255 characters: an empty or longer key is a KindInvalidRequest *Error, returned
	// without calling Stripe) and returns it with its signing secret, which Stripe returns only
	// here (and on an idempotent replay of this request). Reusing the key with another spec is
	// a KindIdempotencyConflict; one endpoint over Stripe's cap is KindLimitReached. If Stripe
	// answers without a secret, the endpoint comes back with an *Error wrapping
	// ErrNoSigningSecret.
	CreateWebhookEndpoint(ctx context.Context, spec EndpointSpec, idempotencyKey string) (Endpoint, string, error)
	// UpdateWebhookEndpoint changes the fields u sets and returns the endpoint as Stripe now
	// holds it.
	UpdateWebhookEndpoint(ctx context.Context, id string, u EndpointUpdate) (Endpoint, error)
	// DeleteWebhookEndpoint deletes an endpoint; an unknown (or already deleted) id is a
	// KindNotFound *Error, which callers cleaning up may treat as success.
	DeleteWebhookEndpoint(ctx context.Context, id string) error
	// ListEvents returns the account's events of one time window, oldest first, each with its
	// JSON as Stripe rendered it; a window with more than w.Max events is ErrTooManyEvents.
	// Restricted keys need rak_event_read. Its pages are paced by Config.EventListRate.
	ListEvents(ctx context.Context, w EventWindow) ([]RawEvent, error)
	// HasUndeliveredEvents reports, in one request, whether any event of the given types created
	// since then is still pending or failed delivery to some endpoint (delivery_success=false).
	HasUndeliveredEvents(ctx context.Context, since time.Time, types []string) (bool, error)
	// ListPaidPayouts lists the paid payouts that arrived at or after since (all pages).
	// Restricted keys need rak_payout_read.
	ListPaidPayouts(ctx context.Context, since time.Time) ([]Payout, error)
	// ListPayoutTransactions lists what an automatic payout settles (all pages), each item with
	// the payment it belongs to. Restricted keys need rak_balance_read.
	ListPayoutTransactions(ctx context.Context, payoutID string) ([]BalanceTransaction, error)
}

// client implements Client over a stripe-go backend of its own.
type client struct {
	backend stripe.Backend
	key     string
	limiter *rate.Limiter
	// eventLimiter paces event-list pages (replays) per account and mode, within limiter.
	eventLimiter *rate.Limiter
	timeout      time.Duration
}

var _ Client = (*client)(nil)

// ListWebhookEndpoints pages through /v1/webhook_endpoints, one rate-limited request per page.
func (c *client) ListWebhookEndpoints(ctx context.Context) ([]Endpoint, error) {
	var all []Endpoint
	after := ""
	for range maxListPages {
		page, more, err := c.listPage(ctx, after)
		if err != nil {
			return nil, fmt.Errorf("list webhook endpoints: %w", err)
		}
		all = append(all, page...)
		if !more || len(page) == 0 {
			return all, nil
		}
		after = page[len(page)-1].ID
	}
	return nil, fmt.Errorf("list webhook endpoints: %w", &Error{Kind: KindOther,
		Message: fmt.Sprintf("Stripe kept reporting more endpoints after %d pages", maxListPages)})
}

// listPage fetches one page; Single stops stripe-go's iterator from paging on its own, so
// that every request goes through the limiter and gets its own timeout.
func (c *client) listPage(ctx context.Context, after string) ([]Endpoint, bool, error) {
	callCtx, cancel, err := c.begin(ctx)
	if err != nil {
		return nil, false, err
	}
	defer cancel()
	params := &stripe.WebhookEndpointListParams{ListParams: stripe.ListParams{
		Context: callCtx,
		Limit:   stripe.Int64(listPageSize),
		Single:  true,
	}}
	if after != "" {
		params.StartingAfter = stripe.String(after)
	}
	it := c.endpoints().List(params)
	var page []Endpoint
	for it.Next() {
		page = append(page, toEndpoint(it.WebhookEndpoint()))
	}
	if err := it.Err(); err != nil {
		return nil, false, Classify(err)
	}
	return page, it.WebhookEndpointList().HasMore, nil
}

// GetAccount reads /v1/account. It calls the backend directly because account.Client.Get
// takes no params and so could not carry the call's context.
func (c *client) GetAccount(ctx context.Context) (Account, error) {
	callCtx, cancel, err := c.begin(ctx)
	if err != nil {
		return Account{}, fmt.Errorf("get account: %w", err)
	}
	defer cancel()
	acct := &stripe.Account{}
	if err := c.backend.Call(http.MethodGet, "/v1/account", c.key, &stripe.Params{Context: callCtx}, acct); err != nil {
		return Account{}, fmt.Errorf("get account: %w", Classify(err))
	}
	return Account{ID: acct.ID}, nil
}

// begin waits for the account's limiter with the caller's context, then bounds the request.
func (c *client) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := c.limiter.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, nil, Classify(ctx.Err())
		}
		// The wait would outlast ctx's deadline: the account is busy, not Stripe unreachable.
		return nil, nil, &Error{Kind: KindRateLimited,
			Message: "the operator's rate limit for this Stripe account leaves no room before the deadline", Err: err}
	}
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	return callCtx, cancel, nil
}
