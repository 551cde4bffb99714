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
	"errors"
	"net/http"
)

// adminPayoutRequest is the body of POST /_fake/payouts: what Stripe's payout
// schedule would do with the given payments, refunds and fees.
type adminPayoutRequest struct {
	Key          string     `json:"key"`
	Account      string     `json:"account"`
	Livemode     bool       `json:"livemode"`
	Transactions []adminTxn `json:"transactions"`
	Pay          bool       `json:"pay"`
}

type adminTxn struct {
	Type        string     `json:"type"`
	Amount      int64      `json:"amount"`
	Currency    string     `json:"currency"`
	Fees        []adminFee `json:"fees"`
	Source      string     `json:"source"`
	Description string     `json:"description"`
}

type adminFee struct {
	Amount      int64  `json:"amount"`
	Type        string `json:"type"`
	Description string `json:"description"`
}

type adminPayoutResponse struct {
	ID           string   `json:"id"`
	Transactions []string `json:"transactions"`
}

// adminPayout records the transactions and settles them in an automatic
// payout, paid when asked; a transaction refused midway leaves the earlier
// ones in the balance, as a demo can see with the API.
func (s *Server) adminPayout(r *http.Request) (any, error) {
	var req adminPayoutRequest
	if err := decodeAdmin(r, &req); err != nil {
		return nil, err
	}
	account, live, err := s.adminScope(req.Key, req.Account, req.Livemode)
	if err != nil {
		return nil, err
	}
	if len(req.Transactions) == 0 {
		return nil, badf(http.StatusBadRequest, `"transactions" is required: the payments, refunds and fees the payout settles`)
	}
	ids := make([]string, 0, len(req.Transactions))
	for i, t := range req.Transactions {
		seed := BalanceTransactionSeed{Type: t.Type, Amount: t.Amount, Currency: t.Currency, Source: t.Source, Description: t.Description}
		for _, f := range t.Fees {
			seed.Fees = append(seed.Fees, FeeDetail(f))
		}
		id, err := s.AddBalanceTransaction(account, live, seed)
		if err != nil {
			return nil, adminSeedError(err, "transactions[%d]: %v", i)
		}
		ids = append(ids, id)
	}
	po, err := s.CreatePayout(account, live, PayoutSeed{Automatic: true, TransactionIDs: ids})
	if err != nil && po == "" {
		return nil, adminSeedError(err, "payout: %v")
	}
	if err == nil && req.Pay {
		err = s.PayPayout(account, live, po)
	}
	if err != nil {
		return nil, err
	}
	return adminPayoutResponse{ID: po, Transactions: ids}, nil
}

// adminSeedError maps a refused seed to 404 (unknown account) or 400.
func adminSeedError(err error, format string, args ...any) error {
	status := http.StatusBadRequest
	if errors.Is(err, ErrNotFound) {
		status = http.StatusNotFound
	}
	return badf(status, format, append(args, err)...)
}
