package fhirrelay

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// currencyExponent is the number of decimal places in the minor unit Stripe's API counts
// amounts in, for an uppercase ISO 4217 code: amount 1999 with exponent 2 is 19.99.
//
// It follows Stripe's API, not ISO 4217, where the two differ: ISK is zero-decimal in ISO
// 4217 but stays two-decimal in Stripe's API (100 = 1 króna; Stripe only requires multiples
// of 100), and HUF and TWD are two-decimal for charges even though Stripe pays them out as
// zero-decimal. Using ISO's exponent there would make 5 ISK look like 500.
func currencyExponent(code string) int {
	switch code {
	// Stripe's zero-decimal currencies.
	case "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND",
		"VUV", "XAF", "XOF", "XPF":
		return 0
	// Stripe's three-decimal currencies.
	case "BHD", "JOD", "KWD", "OMR", "TND":
		return 3
	default:
		// Every other currency, ISK, HUF and TWD included, is two-decimal in Stripe's API.
		return 2
	}
}

// stripeMoney converts a Stripe amount in minor units and a Stripe currency ("usd") to FHIR
// Money in major units with an uppercase ISO 4217 code.
func stripeMoney(amount int64, currency string) (Money, error) {
	code, err := currencyCode(currency)
	if err != nil {
		return Money{}, err
	}
	return moneyIn(amount, code), nil
}

// currencyCode turns Stripe's lowercase currency into the uppercase ISO 4217 code FHIR's
// Money.currency requires.
func currencyCode(currency string) (string, error) {
	code := strings.ToUpper(strings.TrimSpace(currency))
	if !isCurrencyCode(code) {
		return "", fmt.Errorf("currency %q is not a three-letter ISO 4217 code", currency)
	}
	return code, nil
}

// moneyIn is amount minor units of the currency code as FHIR Money. The decimal is built from
// the integer's digits, so it is exact; it keeps the currency's precision (1000 USD cents is
// 10.00), which FHIR decimals treat as significant.
func moneyIn(amount int64, code string) Money {
	return Money{Value: json.Number(minorToDecimal(amount, currencyExponent(code))), Currency: code}
}

// isCurrencyCode reports whether code has the shape of an ISO 4217 alphabetic code.
func isCurrencyCode(code string) bool {
	if len(code) != 3 {
		return false
	}
	for _, r := range code {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// minorToDecimal writes amount/10^exponent as a decimal string without floating point:
// (1999, 2) is "19.99", (5, 2) is "0.05", (-1234, 3) is "-1.234", (1000, 0) is "1000".
func minorToDecimal(amount int64, exponent int) string {
	negative := amount < 0
	// Negate in uint64 so math.MinInt64 does not overflow.
	magnitude := uint64(amount)
	if negative {
		magnitude = -magnitude
	}
	digits := strconv.FormatUint(magnitude, 10)
	if exponent > 0 {
		if len(digits) <= exponent {
			digits = strings.Repeat("0", exponent-len(digits)+1) + digits
		}
		cut := len(digits) - exponent
		digits = digits[:cut] + "." + digits[cut:]
	}
	if negative {
		return "-" + digits
	}
	return digits
}
