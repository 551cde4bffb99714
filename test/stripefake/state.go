/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package stripefake

import (
	"fmt"
	"maps"
	"slices"

	stripe "github.com/stripe/stripe-go/v76"
)

// Endpoints returns copies of an account's webhook endpoints in one mode,
// newest first like the list API. Unlike the API, Secret is filled in so
// tests can verify signatures the way a receiver configured by hand would.
func (s *Server) Endpoints(account string, livemode bool) []stripe.WebhookEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.scopes[scope{account: account, live: livemode}]
	if ms == nil {
		return nil
	}
	out := make([]stripe.WebhookEndpoint, 0, len(ms.endpoints))
	for i := len(ms.endpoints) - 1; i >= 0; i-- {
		out = append(out, ms.endpoints[i].toStripe())
	}
	return out
}

func (e *endpoint) toStripe() stripe.WebhookEndpoint {
	we := stripe.WebhookEndpoint{
		APIVersion:    e.apiVersion,
		Created:       e.created,
		EnabledEvents: slices.Clone(e.events),
		ID:            e.id,
		Livemode:      e.sc.live,
		Metadata:      maps.Clone(e.metadata),
		Object:        "webhook_endpoint",
		Secret:        e.secret,
		Status:        e.status,
		URL:           e.url,
	}
	if e.description != nil {
		we.Description = *e.description
	}
	return we
}

// DisableEndpoint sets an endpoint's status to disabled, as the dashboard's
// "Disable" button (or Stripe after weeks of failures) does.
func (s *Server) DisableEndpoint(id string) error {
	return s.UpdateEndpoint(id, func(we *stripe.WebhookEndpoint) { we.Status = statusDisabled })
}

// DeleteEndpoint removes an endpoint as if deleted in the dashboard.
func (s *Server) DeleteEndpoint(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.endpoints[id]
	if e == nil {
		return fmt.Errorf("webhook endpoint %q: %w", id, ErrNotFound)
	}
	s.removeEndpoint(e)
	return nil
}

// UpdateEndpoint edits an endpoint in place, bypassing API validation, to
// simulate out-of-band changes (dashboard edits, rolled secrets). URL,
// Description, EnabledEvents, Metadata, Status, APIVersion and Secret are
// copied back; other fields are ignored.
func (s *Server) UpdateEndpoint(id string, fn func(*stripe.WebhookEndpoint)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.endpoints[id]
	if e == nil {
		return fmt.Errorf("webhook endpoint %q: %w", id, ErrNotFound)
	}
	we := e.toStripe()
	fn(&we)
	e.url = we.URL
	e.description = nil
	if we.Description != "" {
		d := we.Description
		e.description = &d
	}
	e.events = slices.Clone(we.EnabledEvents)
	e.metadata = maps.Clone(we.Metadata)
	if e.metadata == nil {
		e.metadata = map[string]string{}
	}
	e.status = we.Status
	e.apiVersion = we.APIVersion
	e.secret = we.Secret
	return nil
}
