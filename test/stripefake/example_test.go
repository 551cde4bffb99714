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

package stripefake_test

import (
	"fmt"

	stripe "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhookendpoint"

	"github.com/clinicpay/stripe-operator/test/stripefake"
)

// Example shows the usual wiring: a fake, a registered key, and a stripe-go
// client whose backend points at the fake instead of api.stripe.com.
func Example() {
	fake := stripefake.New()
	baseURL, err := fake.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = fake.Close() }()

	key := "sk_test_exampleKey0123456789"
	acct := fake.AddKey(key, stripefake.KeyOptions{})
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(baseURL),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		MaxNetworkRetries: stripe.Int64(0),
	})
	endpoints := webhookendpoint.Client{B: backend, Key: key}

	_, err = endpoints.New(&stripe.WebhookEndpointParams{
		URL:           stripe.String("https://example.com/stripe/webhook"),
		EnabledEvents: stripe.StringSlice([]string{"payment_intent.succeeded"}),
	})
	fmt.Println(err, len(fake.Endpoints(acct, false)), fake.CallsTo(key, "POST", stripefake.PathWebhookEndpoints))
	// Output: <nil> 1 1
}
