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
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// createAnswer is one raw answer to POST /v1/webhook_endpoints.
type createAnswer struct {
	status   int
	replayed bool
	id       string
	secret   string
	errType  string
}

// postCreate creates an endpoint for hookURL under idem with plain HTTP, so the test sees the
// status and the Idempotent-Replayed header of error answers too.
func postCreate(t *testing.T, c *http.Client, base, key, idem, hookURL string) createAnswer {
	t.Helper()
	form := url.Values{"url": {hookURL}, "enabled_events[0]": {"payment_intent.succeeded"}}
	req, err := http.NewRequest(http.MethodPost, base+PathWebhookEndpoints, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Idempotency-Key", idem)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("create under %s: %v", idem, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
		Error  struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("decode %q: %v", raw, err)
	}
	return createAnswer{status: resp.StatusCode, replayed: resp.Header.Get("Idempotent-Replayed") == "true",
		id: body.ID, secret: body.Secret, errType: body.Error.Type}
}

// A 500 from an execution that created nothing is saved and replayed for 24 h; the same key with
// other parameters is an idempotency_error, and another key executes.
func TestSavedServerErrorIsReplayed(t *testing.T) {
	clock := newFakeClock(time.Now())
	s, base := startFake(t, WithClock(clock.Now))
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	s.InjectFault(Fault{Key: key, Method: http.MethodPost, PathPrefix: PathWebhookEndpoints, Status: http.StatusInternalServerError, Times: 1})
	c := http.DefaultClient

	if got := postCreate(t, c, base, key, "k1", "https://example.com/a"); got.status != 500 || got.replayed || got.errType != "api_error" {
		t.Fatalf("first create = %+v, want a fresh 500 api_error", got)
	}
	if got := postCreate(t, c, base, key, "k1", "https://example.com/a"); got.status != 500 || !got.replayed {
		t.Fatalf("retry under the same key = %+v, want the saved 500, replayed", got)
	}
	if got := postCreate(t, c, base, key, "k1", "https://example.com/other"); got.status != 400 || got.errType != "idempotency_error" {
		t.Errorf("same key, other parameters = %+v, want 400 idempotency_error", got)
	}
	if n := len(s.Endpoints(acct, false)); n != 0 {
		t.Fatalf("%d endpoints after a failed execution, want 0", n)
	}
	if got := postCreate(t, c, base, key, "k2", "https://example.com/a"); got.status != 200 || got.secret == "" {
		t.Errorf("create under a fresh key = %+v, want 200 with a secret", got)
	}
	clock.Advance(23 * time.Hour)
	if got := postCreate(t, c, base, key, "k1", "https://example.com/a"); got.status != 500 || !got.replayed {
		t.Errorf("after 23 h = %+v, want the saved 500 still", got)
	}
	clock.Advance(time.Hour)
	if got := postCreate(t, c, base, key, "k1", "https://example.com/a"); got.status != 200 || got.replayed {
		t.Errorf("after 24 h = %+v, want a fresh execution (the key was pruned)", got)
	}
}

// A 500 after the execution committed is what Stripe saved: the endpoint exists, and no replay
// ever hands out its secret.
func TestServerErrorAfterExecuteIsSavedWithItsEffect(t *testing.T) {
	s, base := startFake(t)
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	s.InjectFault(Fault{Key: key, Method: http.MethodPost, PathPrefix: PathWebhookEndpoints, Status: http.StatusInternalServerError, AfterExecute: true,
		Times: 1})

	first := postCreate(t, http.DefaultClient, base, key, "k1", "https://example.com/a")
	again := postCreate(t, http.DefaultClient, base, key, "k1", "https://example.com/a")
	if first.status != 500 || again.status != 500 || !again.replayed || again.secret != "" {
		t.Fatalf("create = %+v, replay = %+v: want 500 then the saved 500 without a secret", first, again)
	}
	if n := len(s.Endpoints(acct, false)); n != 1 {
		t.Errorf("%d endpoints, want 1 (the execution took effect)", n)
	}
}

// An answer lost after execution (the client gave up) was a success, and that is what the key
// replays: the same endpoint with its secret.
func TestLostAnswerIsReplayed(t *testing.T) {
	s, base := startFake(t)
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	s.InjectFault(Fault{Key: key, Method: http.MethodPost, PathPrefix: PathWebhookEndpoints, Latency: 5 * time.Second, AfterExecute: true, Times: 1})
	impatient := &http.Client{Timeout: 100 * time.Millisecond}
	form := url.Values{"url": {"https://example.com/a"}, "enabled_events[0]": {"payment_intent.succeeded"}}
	req, err := http.NewRequest(http.MethodPost, base+PathWebhookEndpoints, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Idempotency-Key", "k1")
	if resp, err := impatient.Do(req); err == nil {
		_ = resp.Body.Close()
		t.Fatal("the held answer arrived; want a client timeout")
	}
	eps := s.Endpoints(acct, false)
	if len(eps) != 1 {
		t.Fatalf("%d endpoints after the lost answer, want 1", len(eps))
	}
	got := postCreate(t, http.DefaultClient, base, key, "k1", "https://example.com/a")
	if got.status != 200 || !got.replayed || got.id != eps[0].ID || got.secret != eps[0].Secret {
		t.Errorf("replay = %+v, want the saved success for %s with its secret", got, eps[0].ID)
	}
}

// Answers given before execution began are saved nowhere: a retry under the same key executes.
func TestUnsavedAnswers(t *testing.T) {
	for name, f := range map[string]Fault{
		"rate limited":      {Status: http.StatusTooManyRequests},
		"lock timeout":      {Status: http.StatusConflict},
		"invalid key":       {Status: http.StatusUnauthorized},
		"validation failed": {Status: http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			s, base := startFake(t)
			key, acct := addKey(s, "sk_test_", KeyOptions{})
			f.Key, f.Method, f.Times = key, http.MethodPost, 1
			s.InjectFault(f)
			if got := postCreate(t, http.DefaultClient, base, key, "k1", "https://example.com/a"); got.status != f.Status {
				t.Fatalf("first create = %+v, want %d", got, f.Status)
			}
			got := postCreate(t, http.DefaultClient, base, key, "k1", "https://example.com/a")
			if got.status != 200 || got.replayed || len(s.Endpoints(acct, false)) != 1 {
				t.Errorf("retry = %+v, want a fresh execution creating the endpoint", got)
			}
		})
	}
	t.Run("handler validation", func(t *testing.T) {
		s, base := startFake(t)
		key, _ := addKey(s, "sk_test_", KeyOptions{})
		if got := postCreate(t, http.DefaultClient, base, key, "k1", "ftp://bad"); got.status != 400 {
			t.Fatalf("invalid create = %+v, want 400", got)
		}
		if got := postCreate(t, http.DefaultClient, base, key, "k1", "https://example.com/fixed"); got.status != 200 {
			t.Errorf("corrected retry = %+v, want 200", got)
		}
	})
}

// Expiring keys (Go method and admin API) makes a saved answer execute again, one key or all.
func TestExpireIdempotencyKeys(t *testing.T) {
	s, base := startFake(t, WithAdminAPI())
	key, acct := addKey(s, "sk_test_", KeyOptions{})
	s.InjectFault(Fault{Key: key, Method: http.MethodPost, Status: http.StatusInternalServerError, Times: 3})
	for _, k := range []string{"k1", "k2", "k3"} {
		postCreate(t, http.DefaultClient, base, key, k, "https://example.com/"+k)
	}
	replays := func(k string) bool {
		return postCreate(t, http.DefaultClient, base, key, k, "https://example.com/"+k).replayed
	}

	if n := s.ExpireIdempotencyKey("k1"); n != 1 {
		t.Errorf("ExpireIdempotencyKey = %d, want 1", n)
	}
	if replays("k1") || !replays("k2") {
		t.Error("after expiring k1: want k1 executed again and k2 still replayed")
	}
	var out map[string]int
	if code := adminCall(t, base, http.MethodPost, "/_fake/idempotency-keys/expire", `{"idempotencyKey":"k2"}`, &out); code != 200 ||
		out["expired"] != 1 {
		t.Errorf("admin expire k2 = %d %v, want 200 expired 1", code, out)
	}
	if replays("k2") {
		t.Error("k2 replayed after the admin API expired it")
	}
	// k1 and k2 now hold successes, k3 its 500: all three go at once.
	if code := adminCall(t, base, http.MethodPost, "/_fake/idempotency-keys/expire", `{"all":true}`, &out); code != 200 || out["expired"] != 3 {
		t.Errorf("admin expire all = %d %v, want 200 expired 3", code, out)
	}
	if replays("k3") {
		t.Error("k3 replayed after all keys expired")
	}
	if n := len(s.Endpoints(acct, false)); n != 3 {
		t.Errorf("%d endpoints, want 3 (one per key, each created after its saved 500 expired)", n)
	}
	for _, body := range []string{`{}`, `{"all":true,"idempotencyKey":"k1"}`, `{"all":false}`} {
		var e adminError
		if code := adminCall(t, base, http.MethodPost, "/_fake/idempotency-keys/expire", body, &e); code != 400 ||
			!strings.Contains(e.Error, "idempotencyKey") {
			t.Errorf("expire %s = %d %q, want 400 naming the fields", body, code, e.Error)
		}
	}
}
