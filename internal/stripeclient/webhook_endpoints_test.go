package stripeclient

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/stripefake"
)

func TestCreateWebhookEndpoint(t *testing.T) {
	tests := map[string]struct {
		key  string
		mode v1alpha1.Mode
	}{
		"test mode": {key: skTest, mode: v1alpha1.ModeTest},
		"live mode": {key: skLive, mode: v1alpha1.ModeLive},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake, url := newFake(t)
			acct := fake.AddKey(tc.key, stripefake.KeyOptions{})
			spec := operatorSpec("clinic-1")
			ep, secret, err := testFactory(t, url).For(tc.key, tc.mode, acct).CreateWebhookEndpoint(context.Background(), spec, idemKey(0))
			if err != nil {
				t.Fatalf("CreateWebhookEndpoint() error = %v", err)
			}
			live := tc.mode == v1alpha1.ModeLive
			stored := fake.Endpoints(acct, live)
			if len(stored) != 1 || secret == "" || secret != stored[0].Secret || !strings.HasPrefix(secret, "whsec_") {
				t.Fatalf("secret does not match the endpoint's (fake holds %d endpoints)", len(stored))
			}
			want := Endpoint{
				ID: stored[0].ID, URL: spec.URL, Description: spec.Description, Status: "enabled", APIVersion: APIVersion,
				EnabledEvents: spec.EnabledEvents, Metadata: spec.Metadata, Livemode: live, Created: stored[0].Created,
			}
			if !reflect.DeepEqual(ep, want) || ep.Created == 0 {
				t.Errorf("got  %+v\nwant %+v", ep, want)
			}
		})
	}
}

// TestCreateIsIdempotent: a replay with the same key and spec is the same endpoint with the
// same secret; the same key with another spec is a conflict and creates nothing.
func TestCreateIsIdempotent(t *testing.T) {
	fake, url := newFake(t)
	acct := fake.AddKey(skTest, stripefake.KeyOptions{})
	c := testFactory(t, url).For(skTest, v1alpha1.ModeTest, acct)
	ctx := context.Background()
	spec := operatorSpec("clinic-1")

	first, secret1, err := c.CreateWebhookEndpoint(ctx, spec, idemKey(0))
	if err != nil {
		t.Fatal(err)
	}
	// A fresh map with the same content must encode identically for the replay to match.
	spec.Metadata = maps.Clone(spec.Metadata)
	again, secret2, err := c.CreateWebhookEndpoint(ctx, spec, idemKey(0))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if again.ID != first.ID || secret2 != secret1 {
		t.Errorf("replay gave endpoint %s (same secret: %v), want %s", again.ID, secret2 == secret1, first.ID)
	}
	if n := len(fake.Endpoints(acct, false)); n != 1 {
		t.Errorf("fake holds %d endpoints after a replay, want 1", n)
	}

	spec.URL = "https://hooks.example.com/stripe/webhook/elsewhere"
	_, secret3, err := c.CreateWebhookEndpoint(ctx, spec, idemKey(0))
	se := gotKind(t, err, KindIdempotencyConflict)
	if se.Transient() || se.HTTPStatus != 400 || secret3 != "" {
		t.Errorf("conflict: %+v, transient %v, secret returned %v", *se, se.Transient(), secret3 != "")
	}
	if n := len(fake.Endpoints(acct, false)); n != 1 {
		t.Errorf("fake holds %d endpoints after a conflict, want 1", n)
	}
}

func TestGetWebhookEndpoint(t *testing.T) {
	fake, url := newFake(t)
	acct := fake.AddKey(skTest, stripefake.KeyOptions{})
	c := testFactory(t, url).For(skTest, v1alpha1.ModeTest, acct)
	created, _, err := c.CreateWebhookEndpoint(context.Background(), operatorSpec("clinic-1"), idemKey(0))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetWebhookEndpoint(context.Background(), created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, created) {
		t.Errorf("got  %+v\nwant %+v", got, created)
	}
	_, err = c.GetWebhookEndpoint(context.Background(), "we_doesNotExist")
	if se := gotKind(t, err, KindNotFound); se.Transient() {
		t.Error("NotFound is transient")
	}
}

func TestUpdateWebhookEndpoint(t *testing.T) {
	ptr := func(s string) *string { return &s }
	yes, no := true, false
	tests := map[string]struct {
		before *EndpointUpdate // applied first, to reach the state the update starts from
		update EndpointUpdate
		want   func(e *Endpoint) // turns the endpoint before the update into the one expected
	}{
		"nothing": {want: func(*Endpoint) {}},
		"url": {
			update: EndpointUpdate{URL: ptr("https://hooks.example.com/moved")},
			want:   func(e *Endpoint) { e.URL = "https://hooks.example.com/moved" },
		},
		"events": {
			update: EndpointUpdate{EnabledEvents: []string{"charge.refunded", "customer.created"}},
			want:   func(e *Endpoint) { e.EnabledEvents = []string{"charge.refunded", "customer.created"} },
		},
		"empty events leave them alone": {update: EndpointUpdate{EnabledEvents: []string{}}, want: func(*Endpoint) {}},
		"description": {
			update: EndpointUpdate{Description: ptr("changed")},
			want:   func(e *Endpoint) { e.Description = "changed" },
		},
		"description cleared": {
			update: EndpointUpdate{Description: ptr("")},
			want:   func(e *Endpoint) { e.Description = "" },
		},
		"disable": {
			update: EndpointUpdate{Disabled: &yes},
			want:   func(e *Endpoint) { e.Status = "disabled" },
		},
		"re-enable": {
			before: &EndpointUpdate{Disabled: &yes},
			update: EndpointUpdate{Disabled: &no},
			want:   func(e *Endpoint) { e.Status = "enabled" },
		},
		"metadata set, changed and unset": {
			before: &EndpointUpdate{Metadata: map[string]string{"foreign": "someone else's"}},
			update: EndpointUpdate{Metadata: map[string]string{"foreign": "", "clinicpay_name": "renamed", "extra": "x"}},
			want: func(e *Endpoint) {
				delete(e.Metadata, "foreign")
				e.Metadata["clinicpay_name"], e.Metadata["extra"] = "renamed", "x"
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, before := endpointToUpdate(t, tc.before)
			want := before
			want.EnabledEvents, want.Metadata = slices.Clone(before.EnabledEvents), maps.Clone(before.Metadata)
			tc.want(&want)
			got, err := c.UpdateWebhookEndpoint(context.Background(), before.ID, tc.update)
			if err != nil {
				t.Fatalf("UpdateWebhookEndpoint() error = %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if reread, err := c.GetWebhookEndpoint(context.Background(), before.ID); err != nil || !reflect.DeepEqual(reread, want) {
				t.Errorf("Get after the update = %+v, %v; want %+v", reread, err, want)
			}
		})
	}
}

// endpointToUpdate creates an endpoint in a fresh fake and applies setup to it, if given.
func endpointToUpdate(t *testing.T, setup *EndpointUpdate) (Client, Endpoint) {
	t.Helper()
	fake, url := newFake(t)
	acct := fake.AddKey(skTest, stripefake.KeyOptions{})
	c := testFactory(t, url).For(skTest, v1alpha1.ModeTest, acct)
	created, _, err := c.CreateWebhookEndpoint(context.Background(), operatorSpec("clinic-1"), idemKey(0))
	if err != nil {
		t.Fatal(err)
	}
	if setup == nil {
		return c, created
	}
	ep, err := c.UpdateWebhookEndpoint(context.Background(), created.ID, *setup)
	if err != nil || reflect.DeepEqual(ep, created) {
		t.Fatalf("setting up: update gave %+v, %v", ep, err)
	}
	return c, ep
}

func TestDeleteWebhookEndpoint(t *testing.T) {
	fake, url := newFake(t)
	acct := fake.AddKey(skTest, stripefake.KeyOptions{})
	c := testFactory(t, url).For(skTest, v1alpha1.ModeTest, acct)
	ctx := context.Background()
	ep, _, err := c.CreateWebhookEndpoint(ctx, operatorSpec("clinic-1"), idemKey(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteWebhookEndpoint(ctx, ep.ID); err != nil {
		t.Fatalf("DeleteWebhookEndpoint() error = %v", err)
	}
	if n := len(fake.Endpoints(acct, false)); n != 0 {
		t.Errorf("fake holds %d endpoints after the delete", n)
	}
	_, err = c.GetWebhookEndpoint(ctx, ep.ID)
	wantKind(t, err, KindNotFound)
	wantKind(t, c.DeleteWebhookEndpoint(ctx, ep.ID), KindNotFound)
}

// TestEndpointLimit: Stripe's 400 for the 17th endpoint is LimitReached, not a bad request.
func TestEndpointLimit(t *testing.T) {
	fake, url := newFake(t)
	acct := fake.AddKey(skTest, stripefake.KeyOptions{})
	c := testFactory(t, url).For(skTest, v1alpha1.ModeTest, acct)
	for i := range stripefake.DefaultEndpointLimit {
		if _, _, err := c.CreateWebhookEndpoint(context.Background(), operatorSpec("clinic-1"), idemKey(i)); err != nil {
			t.Fatalf("create %d: %v", i+1, err)
		}
	}
	_, secret, err := c.CreateWebhookEndpoint(context.Background(), operatorSpec("clinic-1"), idemKey(99))
	se := gotKind(t, err, KindLimitReached)
	if se.Transient() || se.HTTPStatus != 400 || secret != "" || !strings.Contains(se.Message, "maximum of 16") {
		t.Errorf("got %+v (transient %v)", *se, se.Transient())
	}
}

// TestCreateRejectedByStripe covers requests Stripe refuses before creating anything.
func TestCreateRejectedByStripe(t *testing.T) {
	tests := map[string]struct {
		key            string
		perms          []string
		mutate         func(*EndpointSpec)
		wantKind       ErrorKind
		wantParam      string
		wantPermission string
	}{
		"unknown event type": {
			key: skTest, mutate: func(s *EndpointSpec) { s.EnabledEvents = append(s.EnabledEvents, "not.a_real_event") },
			wantKind: KindInvalidRequest, wantParam: "enabled_events[7]",
		},
		"no events": {
			key: skTest, mutate: func(s *EndpointSpec) { s.EnabledEvents = nil },
			wantKind: KindInvalidRequest, wantParam: "enabled_events",
		},
		"relative url": {
			key: skTest, mutate: func(s *EndpointSpec) { s.URL = "/stripe/webhook" },
			wantKind: KindInvalidRequest, wantParam: "url",
		},
		"restricted key that may only read webhooks": {
			key: rkTest, perms: []string{stripefake.PermWebhookRead}, mutate: func(*EndpointSpec) {},
			wantKind: KindPermissionDenied, wantPermission: stripefake.PermWebhookWrite,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake, url := newFake(t)
			acct := fake.AddKey(tc.key, stripefake.KeyOptions{Permissions: tc.perms})
			c := testFactory(t, url).For(tc.key, v1alpha1.ModeTest, acct)
			spec := operatorSpec("clinic-1")
			tc.mutate(&spec)
			_, secret, err := c.CreateWebhookEndpoint(context.Background(), spec, idemKey(0))
			se := gotKind(t, err, tc.wantKind)
			if se.Param != tc.wantParam || se.Permission != tc.wantPermission || se.Transient() || secret != "" {
				t.Errorf("got %+v (transient %v)", *se, se.Transient())
			}
			assertNoKeyMaterial(t, "Error()", err.Error())
			if n := len(fake.Endpoints(acct, false)); n != 0 {
				t.Errorf("fake holds %d endpoints", n)
			}
		})
	}
}

// TestRejectedWithoutCallingStripe: arguments that cannot be right fail before the limiter
// and the network.
func TestRejectedWithoutCallingStripe(t *testing.T) {
	tests := map[string]struct {
		call      func(Client) error
		wantParam string
	}{
		"create without idempotency key": {wantParam: "Idempotency-Key", call: func(c Client) error {
			_, _, err := c.CreateWebhookEndpoint(context.Background(), operatorSpec("c"), "")
			return err
		}},
		"create with blank idempotency key": {wantParam: "Idempotency-Key", call: func(c Client) error {
			_, _, err := c.CreateWebhookEndpoint(context.Background(), operatorSpec("c"), " \t ")
			return err
		}},
		"create with 256-character idempotency key": {wantParam: "Idempotency-Key", call: func(c Client) error {
			_, _, err := c.CreateWebhookEndpoint(context.Background(), operatorSpec("c"), strings.Repeat("k", 256))
			return err
		}},
		"get without id": {wantParam: "id", call: func(c Client) error {
			_, err := c.GetWebhookEndpoint(context.Background(), "")
			return err
		}},
		"update without id": {wantParam: "id", call: func(c Client) error {
			_, err := c.UpdateWebhookEndpoint(context.Background(), "", EndpointUpdate{})
			return err
		}},
		"delete without id": {wantParam: "id", call: func(c Client) error {
			return c.DeleteWebhookEndpoint(context.Background(), " ")
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake, url := newFake(t)
			acct := fake.AddKey(skTest, stripefake.KeyOptions{})
			err := tc.call(testFactory(t, url).For(skTest, v1alpha1.ModeTest, acct))
			if se := gotKind(t, err, KindInvalidRequest); se.Param != tc.wantParam || se.Transient() {
				t.Errorf("got %+v", *se)
			}
			if n := fake.Calls(skTest); n != 0 {
				t.Errorf("Stripe saw %d calls", n)
			}
		})
	}
}

func TestIdempotencyKeyAtTheLimit(t *testing.T) {
	fake, url := newFake(t)
	acct := fake.AddKey(skTest, stripefake.KeyOptions{})
	c := testFactory(t, url).For(skTest, v1alpha1.ModeTest, acct)
	if _, _, err := c.CreateWebhookEndpoint(context.Background(), operatorSpec("c"), strings.Repeat("k", 255)); err != nil {
		t.Fatalf("a 255-character key was refused: %v", err)
	}
	if n := fake.Calls(skTest); n != 1 {
		t.Errorf("Stripe saw %d calls, want 1", n)
	}
}

// TestSigningSecretNeverLeaks drives every endpoint call, failures included, with the logger at
// its highest verbosity, and looks for the secret in all errors and log lines.
func TestSigningSecretNeverLeaks(t *testing.T) {
	fake, url := newFake(t, stripefake.WithEndpointLimit(1))
	acct := fake.AddKey(skTest, stripefake.KeyOptions{})
	log, output := captureLogger()
	c := testFactory(t, url, func(c *Config) { c.Logger = log }).For(skTest, v1alpha1.ModeTest, acct)
	ctx := context.Background()
	spec := operatorSpec("clinic-1")

	ep, secret, err := c.CreateWebhookEndpoint(ctx, spec, idemKey(0))
	if err != nil || secret == "" {
		t.Fatalf("create: %v", err)
	}
	var errs []error
	record := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, _, err = c.CreateWebhookEndpoint(ctx, spec, idemKey(0)) // replay: the secret again
	record(err)
	other := spec
	other.Description = "other"
	_, _, err = c.CreateWebhookEndpoint(ctx, other, idemKey(0)) // conflict
	record(err)
	_, _, err = c.CreateWebhookEndpoint(ctx, spec, idemKey(1)) // limit
	record(err)
	_, err = c.UpdateWebhookEndpoint(ctx, ep.ID, EndpointUpdate{EnabledEvents: []string{"nope"}})
	record(err)
	record(c.DeleteWebhookEndpoint(ctx, ep.ID))
	_, err = c.GetWebhookEndpoint(ctx, ep.ID)
	record(err)

	if len(errs) != 4 {
		t.Errorf("got %d errors, want 4 (conflict, limit, invalid update, not found): %v", len(errs), errs)
	}
	out := output()
	if !strings.Contains(out, `"method"="POST" "path"="/v1/webhook_endpoints"`) || strings.Contains(out, "whsec_") {
		t.Errorf("want the create logged as a call, without its response body:\n%s", out)
	}
	body := strings.TrimPrefix(secret, "whsec_")
	for _, s := range append([]string{out, ep.ID + ep.Description + ep.URL + strings.Join(slices.Collect(maps.Values(ep.Metadata)), "")},
		errorStrings(errs)...) {
		if strings.Contains(s, body) {
			t.Errorf("signing secret leaked into: %s", s)
		}
	}
}

func errorStrings(errs []error) []string {
	var out []string
	for _, err := range errs {
		for e := err; e != nil; e = errors.Unwrap(e) {
			out = append(out, e.Error())
		}
	}
	return out
}
