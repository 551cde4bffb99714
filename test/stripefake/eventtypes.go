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
	"slices"
	"strings"
)

// KnownEventTypes returns the event types the fake accepts in enabled_events
// and TriggerEvent ("*" is only valid in enabled_events).
// It is a subset of Stripe's catalogue; a function rather than a package
// variable so callers can never mutate the shared list.
func KnownEventTypes() []string {
	return []string{
		"account.updated",
		"charge.captured",
		"charge.dispute.created",
		"charge.expired",
		"charge.failed",
		"charge.pending",
		"charge.refunded",
		"charge.succeeded",
		"charge.updated",
		"checkout.session.async_payment_failed",
		"checkout.session.async_payment_succeeded",
		"checkout.session.completed",
		"checkout.session.expired",
		"customer.created",
		"customer.deleted",
		"customer.subscription.created",
		"customer.subscription.deleted",
		"customer.subscription.updated",
		"customer.updated",
		"invoice.created",
		"invoice.finalized",
		"invoice.paid",
		"invoice.payment_failed",
		"invoice.payment_succeeded",
		"invoice.upcoming",
		"payment_intent.amount_capturable_updated",
		"payment_intent.canceled",
		"payment_intent.created",
		"payment_intent.payment_failed",
		"payment_intent.processing",
		"payment_intent.requires_action",
		"payment_intent.succeeded",
		"payment_method.attached",
		"payment_method.detached",
		"payout.canceled",
		"payout.created",
		"payout.failed",
		"payout.paid",
		"payout.reconciliation_completed",
		"payout.updated",
		"refund.created",
		"refund.updated",
		"setup_intent.succeeded",
	}
}

// eventTypeSet builds the lookup set used by validation, including extras.
func eventTypeSet(extra []string) map[string]bool {
	known := KnownEventTypes()
	set := make(map[string]bool, len(known)+len(extra))
	for _, t := range known {
		set[t] = true
	}
	for _, t := range extra {
		if t != "" && t != "*" {
			set[t] = true
		}
	}
	return set
}

// eventTypeList renders the accepted values for Stripe's "must be one of"
// validation message.
func eventTypeList(set map[string]bool) string {
	types := make([]string, 0, len(set)+1)
	for t := range set {
		types = append(types, t)
	}
	slices.Sort(types)
	return strings.Join(append([]string{"*"}, types...), ", ")
}

// typeMatches reports whether an event type matches a list filter, which may
// use a trailing ".*" wildcard as Stripe's `type` parameter does.
func typeMatches(filter, typ string) bool {
	if filter == "*" || filter == typ {
		return true
	}
	if prefix, ok := strings.CutSuffix(filter, "*"); ok {
		return strings.HasPrefix(typ, prefix)
	}
	return false
}
