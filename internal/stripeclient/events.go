package stripeclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
)

// RawEvent is one event from the account's event log, with its JSON exactly as Stripe rendered
// it, so it can be re-delivered byte for byte. Stripe renders a listed event in the API version
// in force on the account when the event was created, not in this client's pinned version (the
// Stripe-Version header does not apply) nor the endpoint's: replays mix versions, and the
// receiver relays every version.
type RawEvent struct {
	ID      string
	Type    string
	Created int64
	JSON    []byte
}

// maxEventTypesFilter is how many types Stripe accepts in one `types[]` filter.
const maxEventTypesFilter = 20

// rawEventPage decodes a list page but keeps each event's JSON untouched.
type rawEventPage struct {
	stripe.APIResource
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
}

// ErrTooManyEvents is returned by ListEvents when the window holds more events than the caller
// wants to hold at once: list a shorter window.
var ErrTooManyEvents = errors.New("the time window holds more events than asked for")

// EventWindow selects events by creation time, [From, To), and type.
type EventWindow struct {
	From, To time.Time
	// Types filters by event type; all types when empty or holding "*".
	Types []string
	// Max is how many events the caller holds at once: a window with more stops listing and
	// returns ErrTooManyEvents. Zero or less means no bound but the page cap.
	Max int
	// Undelivered lists only events Stripe has not delivered to every endpoint
	// (delivery_success=false: "events which are still pending or have failed all delivery
	// attempts to a webhook endpoint", https://docs.stripe.com/api/events/list).
	Undelivered bool
}

// ListEvents returns the events created in the window, oldest first. Stripe lists newest first
// and cannot be asked for the other order, so the whole window is listed (pages of 100 with
// starting_after, created[gte]=From&created[lt]=To) and reversed. Each page waits for the
// account's event-list limiter (Config.EventListRate) as well as its request limiter, so
// listing a long log keeps to a small share of Stripe's per-account rate.
func (c *client) ListEvents(ctx context.Context, w EventWindow) ([]RawEvent, error) {
	params := &stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{
		GreaterThanOrEqual: w.From.Unix(), LesserThan: w.To.Unix()}}
	if len(w.Types) > 0 && !slices.Contains(w.Types, "*") {
		if len(w.Types) > maxEventTypesFilter {
			return nil, &Error{Kind: KindInvalidRequest, Param: "types", Message: fmt.Sprintf("at most %d event types can be listed at once",
				maxEventTypesFilter)}
		}
		params.Types = stripe.StringSlice(w.Types)
	}
	if w.Undelivered {
		params.DeliverySuccess = stripe.Bool(false)
	}
	if !w.To.After(w.From) {
		return nil, nil
	}
	params.Limit = stripe.Int64(listPageSize)
	var out []RawEvent
	for page := 0; ; page++ {
		if page == maxEventPages {
			return nil, &Error{Kind: KindOther, Message: "Stripe kept returning more event pages; giving up"}
		}
		if c.eventLimiter != nil {
			if err := c.eventLimiter.Wait(ctx); err != nil {
				return nil, fmt.Errorf("list events: %w", Classify(ctx.Err()))
			}
		}
		var p rawEventPage
		if err := c.list(ctx, "/v1/events", params, &p); err != nil {
			return nil, fmt.Errorf("list events: %w", err)
		}
		for _, raw := range p.Data {
			var head struct {
				ID      string `json:"id"`
				Type    string `json:"type"`
				Created int64  `json:"created"`
			}
			if err := json.Unmarshal(raw, &head); err != nil || head.ID == "" {
				return nil, &Error{Kind: KindOther, Message: "Stripe returned an event without an id"}
			}
			out = append(out, RawEvent{ID: head.ID, Type: head.Type, Created: head.Created, JSON: slices.Clone([]byte(raw))})
		}
		if w.Max > 0 && len(out) > w.Max {
			return nil, ErrTooManyEvents
		}
		if !p.HasMore || len(p.Data) == 0 {
			break
		}
		params.StartingAfter = stripe.String(out[len(out)-1].ID)
	}
	// Stripe lists newest first; hand them over in the order things happened.
	slices.Reverse(out)
	return out, nil
}

// HasUndeliveredEvents reports whether the account holds an event created at or after since,
// of one of types (all types when empty, holding "*" or more than Stripe's filter takes), that
// Stripe has not delivered to every endpoint: GET /v1/events?delivery_success=false&created[gte]=
// &limit=1, a single request. Stripe returns with delivery_success=false "events which are still
// pending or have failed all delivery attempts to a webhook endpoint"
// (https://docs.stripe.com/api/events/list); the answer does not say which endpoint.
func (c *client) HasUndeliveredEvents(ctx context.Context, since time.Time, types []string) (bool, error) {
	params := &stripe.EventListParams{
		CreatedRange:    &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()},
		DeliverySuccess: stripe.Bool(false),
	}
	params.Limit = stripe.Int64(1)
	if len(types) > 0 && len(types) <= maxEventTypesFilter && !slices.Contains(types, "*") {
		params.Types = stripe.StringSlice(types)
	}
	if c.eventLimiter != nil {
		if err := c.eventLimiter.Wait(ctx); err != nil {
			return false, fmt.Errorf("list undelivered events: %w", Classify(ctx.Err()))
		}
	}
	var p rawEventPage
	if err := c.list(ctx, "/v1/events", params, &p); err != nil {
		return false, fmt.Errorf("list undelivered events: %w", err)
	}
	return len(p.Data) > 0, nil
}

// maxEventPages bounds paging of one window (100 events a page).
const maxEventPages = 200
