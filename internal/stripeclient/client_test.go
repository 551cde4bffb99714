package stripeclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// paginatingHandler serves n endpoints, honouring limit and starting_after as Stripe does.
func paginatingHandler(t *testing.T, n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/webhook_endpoints" || r.Method != http.MethodGet {
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		start := 0
		if after := r.URL.Query().Get("starting_after"); after != "" {
			_, _ = fmt.Sscanf(after, "we_%d", &start)
			start++
		}
		var data []map[string]any
		for i := start; i < n && len(data) < limit; i++ {
			data = append(data, endpointJSON(i, false))
		}
		writeJSON(w, http.StatusOK, listJSON(data, start+len(data) < n))
	}
}

func TestListWebhookEndpoints(t *testing.T) {
	tests := map[string]struct {
		endpoints      int
		wantAfter      []string // starting_after per request
		wantFirstOnAll bool
	}{
		"empty account":  {endpoints: 0, wantAfter: []string{""}},
		"one page":       {endpoints: 3, wantAfter: []string{""}},
		"exactly a page": {endpoints: 100, wantAfter: []string{""}},
		"three pages":    {endpoints: 250, wantAfter: []string{"", "we_099", "we_199"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv, rec := newServer(t, paginatingHandler(t, tc.endpoints))
			got, err := testFactory(t, srv.URL).For(skTest, v1alpha1.ModeTest, "").ListWebhookEndpoints(context.Background())
			if err != nil {
				t.Fatalf("ListWebhookEndpoints() error = %v", err)
			}
			if len(got) != tc.endpoints {
				t.Fatalf("got %d endpoints, want %d", len(got), tc.endpoints)
			}
			for i, ep := range got {
				if want := fmt.Sprintf("we_%03d", i); ep.ID != want {
					t.Fatalf("endpoint %d ID = %q, want %q", i, ep.ID, want)
				}
			}
			reqs := rec.all()
			if len(reqs) != len(tc.wantAfter) {
				t.Fatalf("made %d requests, want %d: %+v", len(reqs), len(tc.wantAfter), reqs)
			}
			for i, r := range reqs {
				if r.Limit != "100" || r.StartingAfter != tc.wantAfter[i] {
					t.Errorf("request %d: limit=%q starting_after=%q, want 100 and %q", i, r.Limit, r.StartingAfter, tc.wantAfter[i])
				}
			}
		})
	}
}

func TestListWebhookEndpointsDecodes(t *testing.T) {
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, listJSON([]map[string]any{endpointJSON(7, true)}, false))
	})
	got, err := testFactory(t, srv.URL).For(skLive, v1alpha1.ModeLive, "acct_1").ListWebhookEndpoints(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Endpoint{{
		ID: "we_007", URL: "https://hooks.example.com/stripe/webhook/clinic-7", Description: "clinic 7",
		Status: "enabled", APIVersion: "2023-10-16", Livemode: true,
		EnabledEvents: []string{"payment_intent.succeeded", "charge.refunded"},
		Metadata:      map[string]string{"clinicID": "clinic-7"}, Created: 1700000000,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	r := rec.all()[0]
	if r.Auth != "Bearer "+skLive {
		t.Error("Authorization header does not carry the clinic's key")
	}
	if r.Version != stripe.APIVersion {
		t.Errorf("Stripe-Version = %q, want %q", r.Version, stripe.APIVersion)
	}
}

func TestGetAccount(t *testing.T) {
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/account" {
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": "acct_1Clinic", "object": "account"})
	})
	got, err := testFactory(t, srv.URL).For(rkTest, v1alpha1.ModeTest, "").GetAccount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "acct_1Clinic" {
		t.Errorf("ID = %q", got.ID)
	}
	if r := rec.all()[0]; r.Auth != "Bearer "+rkTest || r.Version != stripe.APIVersion {
		t.Errorf("headers: auth ok=%v version=%q", r.Auth == "Bearer "+rkTest, r.Version)
	}
}

// TestClientsUseTheirOwnKeys runs two factories with two keys each in parallel against a
// server that answers by key, with stripe-go's global key set to a decoy.
func TestClientsUseTheirOwnKeys(t *testing.T) {
	prev := stripe.Key
	stripe.Key = "sk_test_GLOBALdecoyKEYmustNOTbeUSED"
	t.Cleanup(func() { stripe.Key = prev })

	accounts := map[string]string{
		"Bearer " + skTest:                      "acct_test",
		"Bearer " + skLive:                      "acct_live",
		"Bearer " + rkTest:                      "acct_rak",
		"Bearer sk_test_SECONDkeyBODYabcdef123": "acct_second",
	}
	srv, rec := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		id, ok := accounts[r.Header.Get("Authorization")]
		if !ok {
			writeStripeError(w, http.StatusUnauthorized, "invalid_request_error", "", "Invalid API Key provided", "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "account"})
	})
	factories := []*Factory{testFactory(t, srv.URL), testFactory(t, srv.URL)}

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		for auth, wantID := range accounts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := auth[len("Bearer "):]
				got, err := factories[i%2].For(key, v1alpha1.ModeTest, "").GetAccount(context.Background())
				if err != nil || got.ID != wantID {
					errs <- fmt.Errorf("key for %s: got %q, %v", wantID, got.ID, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, r := range rec.all() {
		if _, ok := accounts[r.Auth]; !ok {
			t.Errorf("request with unexpected Authorization (global key?)")
		}
	}
}

func TestHTTPErrorClasses(t *testing.T) {
	tests := map[string]struct {
		status         int
		body           string // raw body; when empty, errType/code/msg/param build Stripe's envelope
		errType, code  string
		msg, param     string
		wantKind       ErrorKind
		wantCode       string
		wantParam      string
		wantPermission string
		wantTransient  bool
	}{
		"401 invalid key": {
			status: 401, errType: "invalid_request_error",
			msg:      "Invalid API Key provided: sk_test_********************" + maskedTail,
			wantKind: KindInvalidKey,
		},
		"401 expired key": {
			status: 401, errType: "invalid_request_error", code: "api_key_expired",
			msg:      "Expired API Key provided: sk_live_*********" + maskedTail,
			wantKind: KindInvalidKey, wantCode: "api_key_expired",
		},
		"403 permission": {
			status: 403, errType: "invalid_request_error",
			msg: "The provided key 'rk_test_*************************" + maskedTail + "' does not have the required permissions for this endpoint on " +
				"account 'acct_1Clinic'. " +
				"Having the 'rak_webhook_read' permission would allow this request to continue.",
			wantKind: KindPermissionDenied, wantPermission: "rak_webhook_read",
		},
		"404 resource missing": {
			status: 404, errType: "invalid_request_error", code: "resource_missing",
			msg: "No such webhook endpoint: 'we_123'", param: "id",
			wantKind: KindNotFound, wantCode: "resource_missing", wantParam: "id",
		},
		"400 invalid request keeps param": {
			status: 400, errType: "invalid_request_error", code: "url_invalid",
			msg: "Invalid URL: URL must be publicly accessible.", param: "url",
			wantKind: KindInvalidRequest, wantCode: "url_invalid", wantParam: "url",
		},
		"400 endpoint limit": {
			status: 400, errType: "invalid_request_error",
			msg:      "You have reached the maximum of 16 test webhook endpoints.",
			wantKind: KindLimitReached,
		},
		"400 idempotency conflict": {
			status: 400, errType: "idempotency_error",
			msg:      "Keys for idempotent requests can only be used with the same parameters they were first used with.",
			wantKind: KindIdempotencyConflict,
		},
		"429 rate limit": {
			status: 429, errType: "invalid_request_error", code: "rate_limit",
			msg:      "Too many requests hit the API too quickly.",
			wantKind: KindRateLimited, wantCode: "rate_limit", wantTransient: true,
		},
		"429 without code": {
			status: 429, errType: "api_error", msg: "slow down",
			wantKind: KindRateLimited, wantTransient: true,
		},
		"500 api error": {
			status: 500, errType: "api_error", msg: "Sorry, something went wrong.",
			wantKind: KindUnavailable, wantTransient: true,
		},
		"503 unavailable": {
			status: 503, errType: "api_error", msg: "Service unavailable",
			wantKind: KindUnavailable, wantTransient: true,
		},
		"502 html from a proxy": {
			status: 502, body: "<html>Bad Gateway " + skTest + "</html>",
			wantKind: KindUnavailable, wantTransient: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.body != "" {
					w.WriteHeader(tc.status)
					_, _ = w.Write([]byte(tc.body))
					return
				}
				writeStripeError(w, tc.status, tc.errType, tc.code, tc.msg, tc.param)
			})
			_, err := testFactory(t, srv.URL).For(skTest, v1alpha1.ModeTest, "").ListWebhookEndpoints(context.Background())
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T) is not a *Error", err, err)
			}
			if se.Kind != tc.wantKind || se.HTTPStatus != tc.status || se.Code != tc.wantCode ||
				se.Param != tc.wantParam || se.Permission != tc.wantPermission || se.Transient() != tc.wantTransient {
				t.Errorf("got %+v (transient %v)", *se, se.Transient())
			}
			if tc.msg != "" && se.Message == "" {
				t.Error("Stripe's message was dropped")
			}
			assertNoKeyMaterial(t, "Error()", err.Error())
			assertNoKeyMaterial(t, "Message", se.Message)
			if cause := errors.Unwrap(se); cause != nil {
				assertNoKeyMaterial(t, "cause", cause.Error())
			}
			var raw *stripe.Error
			if tc.body == "" && !errors.As(err, &raw) {
				t.Error("the cause is not a *stripe.Error")
			}
		})
	}
}

func TestNetworkErrors(t *testing.T) {
	refused := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		return "http://" + addr
	}
	slow := func(t *testing.T) string {
		srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			writeJSON(w, http.StatusOK, listJSON(nil, false))
		})
		return srv.URL
	}
	tests := map[string]struct {
		url func(*testing.T) string
	}{
		"connection refused":          {url: refused},
		"latency beyond call timeout": {url: slow},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := testFactory(t, tc.url(t), func(c *Config) { c.CallTimeout = 100 * time.Millisecond })
			start := time.Now()
			_, err := f.For(skTest, v1alpha1.ModeTest, "").ListWebhookEndpoints(context.Background())
			if elapsed := time.Since(start); elapsed > time.Second {
				t.Errorf("took %v; the call timeout is 100ms", elapsed)
			}
			se := Classify(err)
			if se == nil || se.Kind != KindUnavailable || !se.Transient() {
				t.Fatalf("Classify(%v) = %+v, want transient Unavailable", err, se)
			}
			assertNoKeyMaterial(t, "Error()", err.Error())
		})
	}
}

// TestRetriesArePassedToStripeGo checks MaxNetworkRetries reaches stripe-go: with the
// default of one retry, a 503 followed by a 200 succeeds.
func TestRetriesArePassedToStripeGo(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			writeStripeError(w, http.StatusServiceUnavailable, "api_error", "", "try again", "")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": "acct_retry", "object": "account"})
	})
	f := testFactory(t, srv.URL, func(c *Config) { c.MaxNetworkRetries = 0 }) // 0 means the default, 1
	got, err := f.For(skTest, v1alpha1.ModeTest, "").GetAccount(context.Background())
	if err != nil || got.ID != "acct_retry" {
		t.Fatalf("GetAccount() = %+v, %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("server saw %d calls, want 2", calls)
	}
}
