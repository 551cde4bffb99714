package stripeclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/form"
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

// ListEvents returns the events created at or after since whose type is in types (all types when
// types is empty or holds "*"), oldest first, at most limit of them. Stripe keeps 30 days.
func (c *client) ListEvents(ctx context.Context, since time.Time, types []string, limit int) ([]RawEvent, error) {
	params := &stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: since.Unix()}}
	if len(types) > 0 && !slices.Contains(types, "*") {
		if len(types) > maxEventTypesFilter {
			return nil, &Error{Kind: KindInvalidRequest, Param: "types", Message: fmt.Sprintf("at most %d event types can be listed at once", maxEventTypesFilter)}
		}
		params.Types = stripe.StringSlice(types)
	}
	params.Limit = stripe.Int64(listPageSize)
	var out []RawEvent
	for page := 0; len(out) < limit; page++ {
		if page == maxEventPages {
			return nil, &Error{Kind: KindOther, Message: "Stripe kept returning more event pages; giving up"}
		}
		var p rawEventPage
		err := c.do(ctx, func(base stripe.Params) error {
			// List params go out as a query string through CallRaw, as stripe-go's iterators do.
			query := &form.Values{}
			form.AppendTo(query, params)
			return c.backend.CallRaw(http.MethodGet, "/v1/events", c.key, query, &base, &p)
		})
		if err != nil {
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
		if !p.HasMore || len(p.Data) == 0 {
			break
		}
		params.StartingAfter = stripe.String(out[len(out)-1].ID)
	}
	if len(out) > limit {
		out = out[:limit]
	}
	// Stripe lists newest first; re-deliver in the order things happened.
	slices.Reverse(out)
	return out, nil
}

// maxEventPages bounds paging (100 events a page).
const maxEventPages = 200
