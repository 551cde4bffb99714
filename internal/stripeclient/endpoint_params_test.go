package stripeclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// wireRequest is a write request as Stripe received it.
type wireRequest struct {
	method, path, idempotencyKey string
	form                         url.Values
}

// wireServer answers every request with an endpoint (with a secret when withSecret) and
// records method, path, Idempotency-Key and the decoded form body.
func wireServer(t *testing.T, withSecret bool) (string, func() []wireRequest) {
	t.Helper()
	var mu sync.Mutex
	var reqs []wireRequest
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Errorf("body %q is not a form: %v", body, err)
		}
		mu.Lock()
		reqs = append(reqs, wireRequest{r.Method, r.URL.Path, r.Header.Get("Idempotency-Key"), form})
		mu.Unlock()
		ep := endpointJSON(1, false)
		if withSecret {
			ep["secret"] = "whsec_" + whsecBody
		}
		writeJSON(w, http.StatusOK, ep)
	})
	return srv.URL, func() []wireRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]wireRequest(nil), reqs...)
	}
}

// TestWireEncoding pins the form stripe-go sends for the operator's requests; in particular an
// empty metadata value is sent as "metadata[k]=", which is how Stripe unsets a key.
func TestWireEncoding(t *testing.T) {
	ptr := func(s string) *string { return &s }
	no := false
	tests := map[string]struct {
		call     func(Client) error
		wantPath string
		wantKey  string // Idempotency-Key; "random" means stripe-go's own
		wantForm url.Values
	}{
		"create": {
			call: func(c Client) error {
				_, _, err := c.CreateWebhookEndpoint(context.Background(), EndpointSpec{
					URL: "https://h.example/x", EnabledEvents: []string{"charge.refunded", "customer.created"},
					Description: "d", Metadata: map[string]string{"b": "2", "a": "1"}, APIVersion: "2023-10-16",
				}, "stripe-operator/uid/webhook-endpoint/0")
				return err
			},
			wantPath: "/v1/webhook_endpoints", wantKey: "stripe-operator/uid/webhook-endpoint/0",
			wantForm: url.Values{
				"url": {"https://h.example/x"}, "enabled_events[0]": {"charge.refunded"}, "enabled_events[1]": {"customer.created"},
				"description": {"d"}, "metadata[a]": {"1"}, "metadata[b]": {"2"}, "api_version": {"2023-10-16"},
			},
		},
		"create leaves empty fields out": {
			call: func(c Client) error {
				_, _, err := c.CreateWebhookEndpoint(context.Background(), EndpointSpec{URL: "https://h.example/x"}, "k")
				return err
			},
			wantPath: "/v1/webhook_endpoints", wantKey: "k",
			wantForm: url.Values{"url": {"https://h.example/x"}},
		},
		"update every field, unsetting a metadata key": {
			call: func(c Client) error {
				_, err := c.UpdateWebhookEndpoint(context.Background(), "we_1", EndpointUpdate{
					URL: ptr("https://h.example/y"), EnabledEvents: []string{"charge.succeeded"}, Description: ptr(""),
					Disabled: &no, Metadata: map[string]string{"keep": "v", "drop": ""},
				})
				return err
			},
			wantPath: "/v1/webhook_endpoints/we_1", wantKey: "random",
			wantForm: url.Values{
				"url": {"https://h.example/y"}, "enabled_events[0]": {"charge.succeeded"}, "description": {""},
				"disabled": {"false"}, "metadata[keep]": {"v"}, "metadata[drop]": {""},
			},
		},
		"empty update sends nothing": {
			call: func(c Client) error {
				_, err := c.UpdateWebhookEndpoint(context.Background(), "we_1", EndpointUpdate{EnabledEvents: []string{}, Metadata: map[string]string{}})
				return err
			},
			wantPath: "/v1/webhook_endpoints/we_1", wantKey: "random", wantForm: url.Values{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url, reqs := wireServer(t, true)
			if err := tc.call(testFactory(t, url).For(skTest, v1alpha1.ModeTest, "")); err != nil {
				t.Fatal(err)
			}
			r := reqs()[0]
			if r.method != http.MethodPost || r.path != tc.wantPath || !reflect.DeepEqual(r.form, tc.wantForm) {
				t.Errorf("sent %s %s %v\nwant POST %s %v", r.method, r.path, r.form, tc.wantPath, tc.wantForm)
			}
			if tc.wantKey == "random" && r.idempotencyKey == "" || tc.wantKey != "random" && r.idempotencyKey != tc.wantKey {
				t.Errorf("Idempotency-Key = %q, want %s", r.idempotencyKey, tc.wantKey)
			}
		})
	}
}

// TestCreateWithoutSecret: a create answered without a secret fails rather than hand back "".
func TestCreateWithoutSecret(t *testing.T) {
	base, _ := wireServer(t, false)
	ep, secret, err := testFactory(t, base).For(skTest, v1alpha1.ModeTest, "").
		CreateWebhookEndpoint(context.Background(), operatorSpec("c"), "k")
	se := gotKind(t, err, KindOther)
	if !errors.Is(err, ErrNoSigningSecret) || se.Transient() || secret != "" || ep.ID != "we_001" {
		t.Errorf("got %v, %q, %+v; want ErrNoSigningSecret with the endpoint", err, secret, ep)
	}
}

// TestEndpointCallsWaitForTheLimiter: with the account's limiter drained, every endpoint call
// gives up before its deadline as RateLimited, without a request.
func TestEndpointCallsWaitForTheLimiter(t *testing.T) {
	calls := map[string]func(context.Context, Client) error{
		"get": func(ctx context.Context, c Client) error { _, err := c.GetWebhookEndpoint(ctx, "we_1"); return err },
		"create": func(ctx context.Context, c Client) error {
			_, _, err := c.CreateWebhookEndpoint(ctx, operatorSpec("c"), "k")
			return err
		},
		"update": func(ctx context.Context, c Client) error {
			_, err := c.UpdateWebhookEndpoint(ctx, "we_1", EndpointUpdate{})
			return err
		},
		"delete": func(ctx context.Context, c Client) error { return c.DeleteWebhookEndpoint(ctx, "we_1") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			url, reqs := wireServer(t, true)
			c := testFactory(t, url, func(c *Config) { c.TestRate, c.Burst = 0.1, 1 }).For(skTest, v1alpha1.ModeTest, "acct_1")
			if err := call(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if se := gotKind(t, call(ctx, c), KindRateLimited); !se.Transient() {
				t.Error("RateLimited is not transient")
			}
			if n := len(reqs()); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
}
