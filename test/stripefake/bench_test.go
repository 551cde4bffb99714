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
	"testing"

	stripe "github.com/stripe/stripe-go/v76"
)

// BenchmarkCreateGetDelete measures a full endpoint lifecycle through
// stripe-go over loopback HTTP.
func BenchmarkCreateGetDelete(b *testing.B) {
	s, baseURL := startFake(b)
	key, _ := addKey(s, "sk_test_", KeyOptions{})
	c := clientsFor(baseURL, key)
	p := endpointParams("https://example.com/h", "*")
	b.ReportAllocs()
	for b.Loop() {
		we, err := c.we.New(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.we.Get(we.ID, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := c.we.Del(we.ID, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListParallel measures contention on the state lock with many
// clients listing a full page of endpoints at once.
func BenchmarkListParallel(b *testing.B) {
	s, baseURL := startFake(b)
	key, _ := addKey(s, "sk_test_", KeyOptions{})
	c := clientsFor(baseURL, key)
	for range DefaultEndpointLimit {
		if _, err := c.we.New(endpointParams("https://example.com/h")); err != nil {
			b.Fatal(err)
		}
	}
	lp := &stripe.WebhookEndpointListParams{ListParams: stripe.ListParams{Limit: stripe.Int64(100), Single: true}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			it := c.we.List(lp)
			for it.Next() {
			}
			if err := it.Err(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
