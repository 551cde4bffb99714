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

import "fmt"

// PayPayoutUnreconciled marks a pending or in-transit automatic payout paid
// and sends payout.paid, but leaves its reconciliation in_progress, as Stripe
// does for a while after the bank confirms a deposit: until
// CompletePayoutReconciliation, GET /v1/balance_transactions?payout= lists the
// payout's own debit alone
// (https://docs.stripe.com/api/payouts/object#payout_object-reconciliation_status).
// PayPayout does both steps at once.
func (s *Server) PayPayoutUnreconciled(account string, livemode bool, id string) error {
	obj, err := s.movePayout(account, livemode, id, func(p *payoutRec) error {
		switch {
		case !p.automatic:
			return fmt.Errorf("stripefake: payout %s is manual: it has no reconciliation to hold (use PayPayout)", id)
		case p.status != PayoutPending && p.status != PayoutInTransit:
			return fmt.Errorf("stripefake: payout %s is %s, not pending or in transit", id, p.status)
		}
		p.status = PayoutPaid
		return nil
	})
	if err != nil {
		return err
	}
	_, err = s.TriggerEvent(account, livemode, "payout.paid", obj)
	return err
}

// CompletePayoutReconciliation completes the reconciliation of a paid
// automatic payout that PayPayoutUnreconciled left in progress and sends
// payout.reconciliation_completed: from then on the payout lists every balance
// transaction it settled.
func (s *Server) CompletePayoutReconciliation(account string, livemode bool, id string) error {
	obj, err := s.movePayout(account, livemode, id, func(p *payoutRec) error {
		if p.status != PayoutPaid || p.reconciliation != ReconciliationInProgress {
			return fmt.Errorf("stripefake: payout %s is %s with reconciliation %s, not paid and in progress", id, p.status, p.reconciliation)
		}
		p.reconciliation = ReconciliationCompleted
		return nil
	})
	if err != nil {
		return err
	}
	_, err = s.TriggerEvent(account, livemode, "payout.reconciliation_completed", obj)
	return err
}
