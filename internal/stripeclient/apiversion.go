package stripeclient

import "github.com/stripe/stripe-go/v76"

// APIVersion is the Stripe API version stripe-go is pinned to. Endpoints are created with it so
// that event payloads decode with the same library; an endpoint's version can only change by
// re-creating it.
const APIVersion = stripe.APIVersion
