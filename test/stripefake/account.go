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

// accountRec is an account known to the fake; its objects live in scopes.
type accountRec struct {
	id      string
	created int64
}

// accountJSON is the subset of Stripe's account object the fake returns.
type accountJSON struct {
	ID               string              `json:"id"`
	Object           string              `json:"object"`
	BusinessProfile  businessProfileJSON `json:"business_profile"`
	BusinessType     *string             `json:"business_type"`
	ChargesEnabled   bool                `json:"charges_enabled"`
	Country          string              `json:"country"`
	Created          int64               `json:"created"`
	DefaultCurrency  string              `json:"default_currency"`
	DetailsSubmitted bool                `json:"details_submitted"`
	Email            *string             `json:"email"`
	Metadata         map[string]string   `json:"metadata"`
	PayoutsEnabled   bool                `json:"payouts_enabled"`
	Type             string              `json:"type"`
}

type businessProfileJSON struct {
	Name *string `json:"name"`
	URL  *string `json:"url"`
}

// ensureAccount records an account the first time a key names it. Callers
// hold s.mu.
func (s *Server) ensureAccount(id string) *accountRec {
	a := s.accounts[id]
	if a == nil {
		a = &accountRec{id: id, created: s.cfg.now().Unix()}
		s.accounts[id] = a
	}
	return a
}

// getAccount serves GET /v1/account for the key's own account.
func (s *Server) getAccount(rq *request) (any, *apiError) {
	if err := checkParams(rq.params, "expand"); err != nil {
		return nil, err
	}
	a := s.ensureAccount(rq.scope.account)
	return accountJSON{
		ID:               a.id,
		Object:           "account",
		ChargesEnabled:   true,
		Country:          "US",
		Created:          a.created,
		DefaultCurrency:  "usd",
		DetailsSubmitted: true,
		Metadata:         map[string]string{},
		PayoutsEnabled:   true,
		Type:             "standard",
	}, nil
}
