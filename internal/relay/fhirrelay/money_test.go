package fhirrelay

import (
	"math"
	"testing"
)

// conversionCases are Stripe amounts and what FHIR Money must say, across zero-, two- and
// three-decimal currencies and Stripe's special cases. They are also sent, as PaymentNotices,
// through the FHIR.js validator.
var conversionCases = []struct {
	amount   int64
	currency string
	value    string
	code     string
}{
	// Two-decimal.
	{1999, "usd", "19.99", "USD"},
	{1000, "usd", "10.00", "USD"},
	{5, "eur", "0.05", "EUR"},
	{0, "gbp", "0.00", "GBP"},
	{99999999, "chf", "999999.99", "CHF"},
	{123456789012, "inr", "1234567890.12", "INR"},
	{1, "mxn", "0.01", "MXN"},
	// Stripe's special cases stay two-decimal in its API: 500 ISK minor units are 5 króna.
	{500, "isk", "5.00", "ISK"},
	{250000, "huf", "2500.00", "HUF"},
	{1050, "twd", "10.50", "TWD"},
	// Zero-decimal.
	{1, "jpy", "1", "JPY"},
	{1000, "jpy", "1000", "JPY"},
	{100000000, "vnd", "100000000", "VND"},
	{0, "krw", "0", "KRW"},
	{25000, "clp", "25000", "CLP"},
	{7500, "ugx", "7500", "UGX"},
	{1200, "xof", "1200", "XOF"},
	{350, "xpf", "350", "XPF"},
	// Three-decimal.
	{1234, "kwd", "1.234", "KWD"},
	{5, "bhd", "0.005", "BHD"},
	{1000, "jod", "1.000", "JOD"},
	{999999990, "omr", "999999.990", "OMR"},
	{20, "tnd", "0.020", "TND"},
	// Upper case from Stripe is accepted as well.
	{4250, "USD", "42.50", "USD"},
}

func TestStripeMoney(t *testing.T) {
	for _, tc := range conversionCases {
		got, err := stripeMoney(tc.amount, tc.currency)
		if err != nil {
			t.Errorf("stripeMoney(%d, %q): %v", tc.amount, tc.currency, err)
			continue
		}
		if string(got.Value) != tc.value || got.Currency != tc.code {
			t.Errorf("stripeMoney(%d, %q) = %s %s, want %s %s", tc.amount, tc.currency, got.Value, got.Currency, tc.value, tc.code)
		}
	}
}

func TestMinorToDecimalEdges(t *testing.T) {
	cases := []struct {
		amount   int64
		exponent int
		want     string
	}{
		{-1999, 2, "-19.99"},
		{-5, 2, "-0.05"},
		{-1234, 3, "-1.234"},
		{-7, 0, "-7"},
		{math.MaxInt64, 2, "92233720368547758.07"},
		{math.MinInt64, 2, "-92233720368547758.08"},
		{math.MaxInt64, 0, "9223372036854775807"},
		{1, 3, "0.001"},
	}
	for _, tc := range cases {
		if got := minorToDecimal(tc.amount, tc.exponent); got != tc.want {
			t.Errorf("minorToDecimal(%d, %d) = %s, want %s", tc.amount, tc.exponent, got, tc.want)
		}
	}
}

func TestStripeMoneyRejectsNonCodes(t *testing.T) {
	for _, currency := range []string{"", "us", "usdx", "u$d", "€€€"} {
		if m, err := stripeMoney(100, currency); err == nil {
			t.Errorf("stripeMoney(100, %q) = %+v, want an error", currency, m)
		}
	}
}
