// Package keys holds the operator's policy for the Stripe keys in a clinic's credentials
// Secret, as pure functions: no client, no clock, no I/O.
//
// Check applies the rules in this fixed order and reports the first that fails, so an
// admin fixes one thing at a time and the condition does not flap between reasons:
//
//  1. the publishable key's data key is present (ReasonKeyMissing);
//  2. the secret key's data key is present (ReasonKeyMissing);
//  3. the publishable value, then the secret value, passes Parse: not empty
//     (ReasonKeyEmpty), no whitespace apart from one trailing "\n" or "\r\n"
//     (ReasonKeyWhitespace), a Stripe API key and not, say, a webhook signing secret
//     (ReasonKeyMalformed);
//  4. the publishable slot holds a pk_ key, then the secret slot holds an sk_ or rk_ key
//     (ReasonWrongKeyType; two swapped values are reported as such);
//  5. both keys are of the same mode (ReasonKeyModesDisagree);
//  6. that mode is spec.mode (ReasonModeMismatch).
//
// Messages name the data key as configured in the StripeIntegration and never contain key
// material beyond the prefix (for example "sk_test_…").
package keys
