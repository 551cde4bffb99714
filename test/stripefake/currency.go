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

// Stripe's amounts are integers in the currency's smallest unit: cents for
// USD, whole yen for JPY (zero-decimal), fils for BHD (three-decimal). The
// lists are those of https://docs.stripe.com/currencies#zero-decimal and
// https://docs.stripe.com/currencies#three-decimal.
var (
	zeroDecimalCurrencies = map[string]bool{
		"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true, "kmf": true, "krw": true, "mga": true,
		"pyg": true, "rwf": true, "ugx": true, "vnd": true, "vuv": true, "xaf": true, "xof": true, "xpf": true,
	}
	threeDecimalCurrencies = map[string]bool{"bhd": true, "jod": true, "kwd": true, "omr": true, "tnd": true}
)

// MinorUnitDigits returns how many decimal digits a Stripe amount in currency
// carries: 0 for zero-decimal currencies (JPY, KRW, ...), 3 for BHD, JOD,
// KWD, OMR and TND, 2 otherwise. Tests use it to turn amounts into major units
// the way a consumer of the API must.
func MinorUnitDigits(currency string) int {
	switch {
	case zeroDecimalCurrencies[currency]:
		return 0
	case threeDecimalCurrencies[currency]:
		return 3
	default:
		return 2
	}
}

// checkCurrency accepts a lowercase three-letter ISO code, as Stripe requires
// ("You must use all lowercase letters", https://docs.stripe.com/currencies).
func checkCurrency(c string) error {
	if len(c) != 3 {
		return fmt.Errorf("stripefake: currency %q is not a three-letter ISO code", c)
	}
	for _, r := range c {
		if r < 'a' || r > 'z' {
			return fmt.Errorf("stripefake: currency %q must be a lowercase ISO code", c)
		}
	}
	return nil
}

// checkChargeAmount applies the three-decimal rule: Stripe's payment partners
// settle BHD, JOD, KWD, OMR and TND in two decimals, so a charged amount must
// end in 0 (https://docs.stripe.com/currencies#three-decimal). Fees and
// adjustments Stripe computes itself are not bound by it.
func checkChargeAmount(currency string, amount int64) error {
	if threeDecimalCurrencies[currency] && amount%10 != 0 {
		return fmt.Errorf("stripefake: %s is a three-decimal currency: a charged amount must be divisible by 10, got %d",
			currency, amount)
	}
	return nil
}
