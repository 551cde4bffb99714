package controller

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// The webhook endpoint phase's branches, one table row each: reconcileEndpoint runs against an
// Fn-field Stripe fake (stripe_fake_test.go) and controller-runtime's fake client, so the whole
// table runs in milliseconds without a control plane. Each row asserts the condition, the exact
// Stripe calls in order, the signing Secret and the StripeIntegration's annotations as written,
// and the Events. The envtest tests (webhook_test.go, replacement_test.go) prove the same
// behaviour against a real apiserver and the stateful Stripe fake.

const (
	bUID     = "uid-1"
	bNS      = "clinics"
	bName    = "clinic-a"
	bBaseURL = "https://hooks.clinicpay.test"
	bOldAPI  = "2020-08-27"
)

var (
	// bNow has a fraction of a second: times written to annotations are truncated to the second.
	bNow        = time.Date(2026, 12, 6, 12, 0, 0, 700_000_000, time.UTC)
	bNowS       = "2026-12-06T12:00:00Z"
	bWindowAgo  = "2026-12-05T12:00:00Z" // bNow minus test mode's retry window (24 h)
	bHourAgoS   = "2026-12-06T11:00:00Z"
	bErrTimeout = &stripeclient.Error{Kind: stripeclient.KindUnavailable, Message: "context deadline exceeded"}
	bErr500     = &stripeclient.Error{Kind: stripeclient.KindUnavailable, HTTPStatus: 500, Answered: true,
		Message: "An unknown error occurred"}
	bErr502Proxy = &stripeclient.Error{Kind: stripeclient.KindUnavailable, HTTPStatus: 502, Message: "bad gateway (not JSON)"}
	bErrLimit    = &stripeclient.Error{Kind: stripeclient.KindLimitReached, HTTPStatus: 400, Answered: true,
		Message: "You have reached the maximum of 16 test webhook endpoints."}
	bErrIdemClash = &stripeclient.Error{Kind: stripeclient.KindIdempotencyConflict, HTTPStatus: 400, Answered: true,
		Message: "Keys for idempotent requests can only be used with the same parameters they were first used with."}
	bErrPerm = &stripeclient.Error{Kind: stripeclient.KindPermissionDenied, HTTPStatus: 403, Answered: true, Permission: "rak_webhook_write",
		Message: "The provided key does not have the required permissions for this endpoint. " +
			"Having the 'rak_webhook_write' permission would allow this request to continue."}
	bErrPermUnnamed = &stripeclient.Error{Kind: stripeclient.KindPermissionDenied, HTTPStatus: 403, Answered: true,
		Message: "The provided key does not have the required permissions."}
	bErrGone = &stripeclient.Error{Kind: stripeclient.KindNotFound, HTTPStatus: 404, Answered: true, Message: "No such webhook endpoint"}
)

func createCall(attempt string) string {
	return "Create(stripe-operator/" + bUID + "/webhook-endpoint/" + attempt + ")"
}

// branchSI is the integration every row starts from (rows add annotations and status).
func branchSI() *v1.StripeIntegration {
	return &v1.StripeIntegration{
		ObjectMeta: metav1.ObjectMeta{Namespace: bNS, Name: bName, UID: bUID, Generation: 1,
			CreationTimestamp: metav1.NewTime(bNow.Add(-48 * time.Hour))},
		Spec: v1.StripeIntegrationSpec{ClinicID: bName, Mode: v1.ModeTest,
			CredentialsSecretRef: v1.CredentialsSecretRef{Name: "keys"}},
	}
}

func branchDesired() stripeclient.EndpointSpec {
	return desiredEndpoint(branchSI(), bBaseURL, stripeclient.APIVersion)
}

// ourEP is an endpoint of this integration exactly as the spec wants it; edits change it.
func ourEP(id string, created int64, edits ...func(*stripeclient.Endpoint)) stripeclient.Endpoint {
	d := branchDesired()
	ep := stripeclient.Endpoint{ID: id, URL: d.URL, Description: d.Description, Status: "enabled", APIVersion: d.APIVersion,
		EnabledEvents: slices.Clone(d.EnabledEvents), Metadata: maps.Clone(d.Metadata), Created: created}
	for _, e := range edits {
		e(&ep)
	}
	return ep
}

// onOldAPI puts the endpoint on an API version other than the operator's pinned one.
func onOldAPI(e *stripeclient.Endpoint) { e.APIVersion = bOldAPI }

// foreignEP is another integration's (or the user's) endpoint on the same URL.
func foreignEP(id string) stripeclient.Endpoint {
	return ourEP(id, 50, func(e *stripeclient.Endpoint) {
		e.Metadata = map[string]string{tagManagedBy: managedByValue, tagUID: "someone-else"}
	})
}

// epFromSpec is what Stripe returns for a create of spec.
func epFromSpec(id string, spec stripeclient.EndpointSpec) stripeclient.Endpoint {
	return stripeclient.Endpoint{ID: id, URL: spec.URL, Description: spec.Description, Status: "enabled", APIVersion: spec.APIVersion,
		EnabledEvents: slices.Clone(spec.EnabledEvents), Metadata: maps.Clone(spec.Metadata), Created: bNow.Unix()}
}

// createResult is one answer to a create: an endpoint made from the request's spec, or an error.
type createResult struct {
	id, secret string
	err        error
}

// createsSeq answers successive creates in order; one more create than listed fails the test.
func createsSeq(t *testing.T,
	results ...createResult) func(context.Context, stripeclient.EndpointSpec, string) (stripeclient.Endpoint, string, error) {
	n := 0
	return func(_ context.Context, spec stripeclient.EndpointSpec, _ string) (stripeclient.Endpoint, string, error) {
		if n >= len(results) {
			t.Errorf("create #%d: only %d expected", n+1, len(results))
			return stripeclient.Endpoint{}, "", errors.New("unexpected create")
		}
		r := results[n]
		n++
		if r.err != nil {
			return stripeclient.Endpoint{}, "", r.err
		}
		return epFromSpec(r.id, spec), r.secret, nil
	}
}

func deletesOK(context.Context, string) error { return nil }

// updatesToSpec answers an update with the endpoint as the spec wants it.
func updatesToSpec(_ context.Context, id string, _ stripeclient.EndpointUpdate) (stripeclient.Endpoint, error) {
	return ourEP(id, 100), nil
}

// storedSigning is the signing Secret a row starts with.
type storedSigning struct {
	endpointID, data string
	retiringID       string
	retiringSince    string
	foreign          bool // not controlled by the integration
}

// wantSigning is the signing Secret a row expects afterwards; data holds the whole content.
type wantSigning struct {
	endpointID, data string
	retiringID       string
	retiringSince    string
}

type branchCase struct {
	name string
	// The starting state.
	annotations map[string]string
	statusID    string
	noBaseURL   bool // the manager has no --webhook-base-url (and the spec gives none)
	// olderSibling: an older integration in the namespace has the same clinic, hence the same URL.
	olderSibling bool
	secret       *storedSigning
	listed       []stripeclient.Endpoint
	stripe       func(t *testing.T, f *fakeStripe)
	// stale: someone else wrote the StripeIntegration after the pass read it.
	stale bool
	// failSecretWrite: the apiserver refuses to create or update the signing Secret.
	failSecretWrite bool

	// What the pass must do.
	status     metav1.ConditionStatus
	reason     string
	msg        []string // substrings of the condition message
	transient  bool     // obs.err set: the pass is retried with backoff
	followUp   bool
	calls      []string
	wantSecret *wantSigning // nil: no signing Secret (or the foreign one untouched)
	wantAnn    map[string]string
	events     []string // reasons, in order
	check      func(t *testing.T, f *fakeStripe, obs *observation)
}

func TestEndpointBranches(t *testing.T) {
	t.Parallel()
	attempt1 := func(lost string) map[string]string {
		return map[string]string{v1.AnnotationCreateAttempt: "1", v1.AnnotationReplacedEndpoint: lost}
	}
	withAnn := func(base map[string]string, kv ...string) map[string]string {
		out := maps.Clone(base)
		if out == nil {
			out = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	cases := []branchCase{
		// ---- first creation and lost endpoints ----
		{
			name:   "first creation: one create under attempt 0, secret stored",
			listed: []stripeclient.Endpoint{foreignEP("we_foreign")},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_new", secret: "whsec_new"})
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady, msg: []string{"endpoint we_new delivers"},
			calls:      []string{createCall("0")},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new"},
			// No Event of its own: the status write's Event names the endpoint (one write fewer).
			events: nil,
			check: func(t *testing.T, f *fakeStripe, obs *observation) {
				spec := f.Calls()[0].Args[0].(stripeclient.EndpointSpec)
				if d := branchDesired(); !equalSpec(spec, d) {
					t.Errorf("created %+v, want the desired spec %+v", spec, d)
				}
				if spec.APIVersion != stripeclient.APIVersion || spec.Metadata[tagUID] != bUID {
					t.Errorf("create must pin the API version and tag the UID: %+v", spec)
				}
				if obs.EndpointID == nil || *obs.EndpointID != "we_new" || *obs.SigningSecretName != signingSecretName(bName) {
					t.Errorf("observation does not describe the new endpoint: %v %v", obs.EndpointID, obs.SigningSecretName)
				}
			},
		},
		{
			name:     "lost endpoint re-created under the next attempt, recorded with the lost id",
			statusID: "we_old",
			secret:   &storedSigning{endpointID: "we_old", data: "whsec_old"},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_new", secret: "whsec_new"})
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls:      []string{createCall("1")},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new"},
			wantAnn:    attempt1("we_old"),
			events:     []string{v1.EventEndpointRecreated},
		},
		{
			name:        "lost endpoint already recorded: the same attempt again (a pass that crashed after the bump)",
			annotations: attempt1("we_old"),
			statusID:    "we_old",
			secret:      &storedSigning{endpointID: "we_old", data: "whsec_old"},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_new", secret: "whsec_new"})
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls:      []string{createCall("1")},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new"},
			wantAnn:    attempt1("we_old"),
			events:     []string{v1.EventEndpointRecreated},
		},

		{
			name:     "current endpoint gone while one retires: re-created, the retiring one keeps its place in the Secret",
			statusID: "we_cur",
			secret: &storedSigning{endpointID: "we_cur", data: "whsec_cur\nwhsec_old\n",
				retiringID: "we_old", retiringSince: bHourAgoS},
			listed: []stripeclient.Endpoint{ourEP("we_old", 100, onOldAPI)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_new", secret: "whsec_new"})
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls: []string{createCall("1")},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new\nwhsec_old\n",
				retiringID: "we_old", retiringSince: bHourAgoS},
			wantAnn: attempt1("we_cur"),
			events:  []string{v1.EventEndpointRecreated},
		},
		{
			name:     "current and retiring endpoints both gone (another account's key?): re-created, the retiring one reported unlisted",
			statusID: "we_cur",
			secret: &storedSigning{endpointID: "we_cur", data: "whsec_cur\nwhsec_old\n",
				retiringID: "we_old", retiringSince: bHourAgoS},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_new", secret: "whsec_new"})
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls:      []string{createCall("1")},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new"},
			wantAnn:    attempt1("we_cur"),
			events:     []string{v1.EventEndpointRecreated},
			check: func(t *testing.T, _ *fakeStripe, obs *observation) {
				if obs.retiringUnlisted != "we_old" {
					t.Errorf("retiringUnlisted = %q, want we_old", obs.retiringUnlisted)
				}
			},
		},

		// ---- API version drift: make-before-break ----
		{
			name:     "API version drift: successor created, old endpoint retiring (not deleted), Secret holds new then old",
			statusID: "we_old",
			secret:   &storedSigning{endpointID: "we_old", data: "whsec_old"},
			listed:   []stripeclient.Endpoint{ourEP("we_old", 100, onOldAPI), foreignEP("we_foreign")},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_new", secret: "whsec_new"})
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			msg:        []string{"endpoint we_new delivers", "replaced endpoint we_old is kept until Stripe has no pending deliveries"},
			followUp:   true,
			calls:      []string{createCall("1")},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new\nwhsec_old\n", retiringID: "we_old", retiringSince: bNowS},
			wantAnn:    attempt1("we_old"),
			events:     []string{v1.EventEndpointRetiring, v1.EventEndpointRecreated},
		},
		{
			name:     "API version drift of an endpoint whose secret is not stored: successor, old deleted at once, gap re-delivered",
			statusID: "we_old",
			listed:   []stripeclient.Endpoint{ourEP("we_old", 100, onOldAPI)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_new", secret: "whsec_new"})
				f.DeleteWebhookEndpointFn = deletesOK
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			msg:        []string{"re-delivering through the replay path"},
			calls:      []string{createCall("1"), "Delete(we_old)"},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new"},
			wantAnn:    withAnn(attempt1("we_old"), v1.AnnotationRedeliverUndeliveredSince, bWindowAgo),
			events:     []string{v1.EventEndpointRecreated},
		},
		{
			name:     "replaced again while the predecessor retires: the older one deleted first, never three live endpoints",
			statusID: "we_mid",
			secret: &storedSigning{endpointID: "we_mid", data: "whsec_mid\nwhsec_old\n",
				retiringID: "we_old", retiringSince: bHourAgoS},
			listed: []stripeclient.Endpoint{ourEP("we_mid", 200, onOldAPI), ourEP("we_old", 100, onOldAPI)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_new", secret: "whsec_new"})
				f.DeleteWebhookEndpointFn = deletesOK
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			msg:        []string{"replaced endpoint we_mid is kept"},
			followUp:   true,
			calls:      []string{"Delete(we_old)", createCall("1")},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new\nwhsec_mid\n", retiringID: "we_mid", retiringSince: bNowS},
			// what we_old still had pending: from its replacement minus the retry window
			wantAnn: withAnn(attempt1("we_mid"), v1.AnnotationRedeliverUndeliveredSince, "2026-12-05T11:00:00Z"),
			events:  []string{v1.EventRetiredEndpointDeleted, v1.EventEndpointRetiring, v1.EventEndpointRecreated},
		},

		// ---- retiring endpoint ----
		{
			name:     "retiring endpoint with pending deliveries is kept; one check, no delete",
			statusID: "we_new",
			secret: &storedSigning{endpointID: "we_new", data: "whsec_new\nwhsec_old\n",
				retiringID: "we_old", retiringSince: bHourAgoS},
			listed: []stripeclient.Endpoint{ourEP("we_new", 200), ourEP("we_old", 100, onOldAPI)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.HasUndeliveredEventsFn = func(_ context.Context, since time.Time, types []string) (bool, error) {
					if !slices.Equal(types, branchDesired().EnabledEvents) {
						t.Errorf("pending check for types %v, want the endpoint's", types)
					}
					return true, nil
				}
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady, msg: []string{"replaced endpoint we_old is kept"},
			followUp: true,
			calls:    []string{"HasUndelivered(2026-12-05T11:00:00Z)"},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new\nwhsec_old\n",
				retiringID: "we_old", retiringSince: bHourAgoS},
		},
		{
			name:     "retiring endpoint whose pending check fails is kept (the window bounds the wait)",
			statusID: "we_new",
			secret: &storedSigning{endpointID: "we_new", data: "whsec_new\nwhsec_old\n",
				retiringID: "we_old", retiringSince: bHourAgoS},
			listed: []stripeclient.Endpoint{ourEP("we_new", 200), ourEP("we_old", 100, onOldAPI)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.HasUndeliveredEventsFn = func(context.Context, time.Time, []string) (bool, error) { return false, bErrTimeout }
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady, msg: []string{"replaced endpoint we_old is kept"},
			followUp: true,
			calls:    []string{"HasUndelivered(2026-12-05T11:00:00Z)"},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new\nwhsec_old\n",
				retiringID: "we_old", retiringSince: bHourAgoS},
		},
		{
			name:     "retiring endpoint with nothing pending is deleted and its secret dropped",
			statusID: "we_new",
			secret: &storedSigning{endpointID: "we_new", data: "whsec_new\nwhsec_old\n",
				retiringID: "we_old", retiringSince: bHourAgoS},
			listed: []stripeclient.Endpoint{ourEP("we_new", 200), ourEP("we_old", 100, onOldAPI)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.HasUndeliveredEventsFn = func(context.Context, time.Time, []string) (bool, error) { return false, nil }
				f.DeleteWebhookEndpointFn = deletesOK
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls:      []string{"HasUndelivered(2026-12-05T11:00:00Z)", "Delete(we_old)"},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new"},
			events:     []string{v1.EventRetiredEndpointDeleted},
		},
		{
			name:     "retiring endpoint past Stripe's retry window is deleted without a check",
			statusID: "we_new",
			secret: &storedSigning{endpointID: "we_new", data: "whsec_new\nwhsec_old\n",
				retiringID: "we_old", retiringSince: "2026-12-05T11:00:00Z"},
			listed: []stripeclient.Endpoint{ourEP("we_new", 200), ourEP("we_old", 100, onOldAPI)},
			stripe: func(t *testing.T, f *fakeStripe) { f.DeleteWebhookEndpointFn = deletesOK },
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls:      []string{"Delete(we_old)"},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new"},
			events:     []string{v1.EventRetiredEndpointDeleted},
		},
		{
			name:     "retiring endpoint gone from the account: nothing deleted, secret dropped, reported as unlisted",
			statusID: "we_new",
			secret: &storedSigning{endpointID: "we_new", data: "whsec_new\nwhsec_old\n",
				retiringID: "we_old", retiringSince: bHourAgoS},
			listed: []stripeclient.Endpoint{ourEP("we_new", 200)},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new"},
			events:     []string{v1.EventRetiredEndpointDeleted},
			check: func(t *testing.T, _ *fakeStripe, obs *observation) {
				if obs.retiringUnlisted != "we_old" {
					t.Errorf("retiringUnlisted = %q, want we_old", obs.retiringUnlisted)
				}
			},
		},

		// ---- a stored secret for another endpoint: recoverSecret ----
		{
			name:     "secret stored for another endpoint; replaying the create returns the same endpoint: secret recovered",
			statusID: "we_1",
			secret:   &storedSigning{endpointID: "we_other", data: "whsec_other"},
			listed:   []stripeclient.Endpoint{ourEP("we_1", 100)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_1", secret: "whsec_1"})
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls:      []string{createCall("0")},
			wantSecret: &wantSigning{endpointID: "we_1", data: "whsec_1"},
			events:     []string{v1.EventSigningSecretRecovered},
		},
		{
			name:     "no secret stored; the replay returns a new endpoint (key forgotten): keep it, old deleted, gap re-delivered",
			statusID: "we_1",
			listed:   []stripeclient.Endpoint{ourEP("we_1", 100)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_2", secret: "whsec_2"})
				f.DeleteWebhookEndpointFn = deletesOK
			},
			status: metav1.ConditionTrue, reason: v1.ReasonSigningSecretRotated, msg: []string{"endpoint we_2 re-created with a new signing secret"},
			calls:      []string{createCall("0"), "Delete(we_1)"},
			wantSecret: &wantSigning{endpointID: "we_2", data: "whsec_2"},
			wantAnn:    map[string]string{v1.AnnotationRedeliverUndeliveredSince: bWindowAgo},
			events:     []string{v1.ReasonSigningSecretRotated},
		},
		{
			name:     "no secret stored; the replay is an idempotency conflict: new attempt, old deleted",
			statusID: "we_1",
			listed:   []stripeclient.Endpoint{ourEP("we_1", 100)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErrIdemClash}, createResult{id: "we_2", secret: "whsec_2"})
				f.DeleteWebhookEndpointFn = deletesOK
			},
			status: metav1.ConditionTrue, reason: v1.ReasonSigningSecretRotated,
			calls:      []string{createCall("0"), createCall("1"), "Delete(we_1)"},
			wantSecret: &wantSigning{endpointID: "we_2", data: "whsec_2"},
			wantAnn:    withAnn(attempt1("we_1"), v1.AnnotationRedeliverUndeliveredSince, bWindowAgo),
			events:     []string{v1.ReasonSigningSecretRotated},
		},
		{
			name:     "no secret stored; idempotency conflict, then the cap: break-before-make under the next attempt",
			statusID: "we_1",
			listed:   []stripeclient.Endpoint{ourEP("we_1", 100)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErrIdemClash}, createResult{err: bErrLimit},
					createResult{id: "we_2", secret: "whsec_2"})
				f.DeleteWebhookEndpointFn = deletesOK
			},
			status: metav1.ConditionTrue, reason: v1.ReasonSigningSecretRotated, msg: []string{"16-endpoint cap"},
			calls:      []string{createCall("0"), createCall("1"), "Delete(we_1)", createCall("2")},
			wantSecret: &wantSigning{endpointID: "we_2", data: "whsec_2"},
			wantAnn: withAnn(attempt1("we_1"), v1.AnnotationCreateAttempt, "2",
				v1.AnnotationRedeliverUndeliveredSince, bWindowAgo, v1.AnnotationRedeliverAllSince, bNowS),
			events: []string{v1.EventEndpointReplacedAtLimit},
		},
		{
			name:   "several of ours, nothing stored: the newest on the pinned version is kept (its secret recovered), the rest deleted",
			listed: []stripeclient.Endpoint{ourEP("we_a", 100), ourEP("we_b", 300), ourEP("we_c", 400, onOldAPI), foreignEP("we_x")},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_b", secret: "whsec_b"})
				f.DeleteWebhookEndpointFn = deletesOK
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls:      []string{createCall("0"), "Delete(we_a)", "Delete(we_c)"},
			wantSecret: &wantSigning{endpointID: "we_b", data: "whsec_b"},
			events:     []string{v1.EventSigningSecretRecovered, v1.EventDuplicateEndpointDelete, v1.EventDuplicateEndpointDelete},
		},

		// ---- 5xx answered by Stripe vs a lost answer ----
		{
			name: "first create answered 500 by Stripe: the attempt moves on (Stripe keeps the 500 for its key)",
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErr500})
			},
			status: metav1.ConditionFalse, reason: v1.ReasonStripeUnavailable, transient: true,
			calls:   []string{createCall("0")},
			wantAnn: map[string]string{v1.AnnotationCreateAttempt: "1"},
		},
		{
			name: "first create timed out: the attempt stays, its replay may return the endpoint",
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErrTimeout})
			},
			status: metav1.ConditionFalse, reason: v1.ReasonStripeUnavailable, transient: true,
			calls: []string{createCall("0")},
		},
		{
			name: "first create answered 502 by a proxy (not Stripe): the attempt stays",
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErr502Proxy})
			},
			status: metav1.ConditionFalse, reason: v1.ReasonStripeUnavailable, transient: true,
			calls: []string{createCall("0")},
		},
		{
			name:        "re-creation under attempt 1 answered 500: moves to attempt 2, the lost id kept",
			annotations: attempt1("we_old"),
			statusID:    "we_old",
			secret:      &storedSigning{endpointID: "we_old", data: "whsec_old"},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErr500})
			},
			status: metav1.ConditionFalse, reason: v1.ReasonStripeUnavailable, transient: true,
			calls:      []string{createCall("1")},
			wantSecret: &wantSigning{endpointID: "we_old", data: "whsec_old"},
			wantAnn:    map[string]string{v1.AnnotationCreateAttempt: "2", v1.AnnotationReplacedEndpoint: "we_old"},
		},
		{
			name:     "secret recovery replay answered 500: the attempt moves on, nothing deleted",
			statusID: "we_1",
			listed:   []stripeclient.Endpoint{ourEP("we_1", 100)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErr500})
			},
			status: metav1.ConditionFalse, reason: v1.ReasonStripeUnavailable, transient: true,
			calls:   []string{createCall("0")},
			wantAnn: map[string]string{v1.AnnotationCreateAttempt: "1"},
		},
		{
			name:     "secret recovery replay timed out: the attempt stays, nothing deleted",
			statusID: "we_1",
			listed:   []stripeclient.Endpoint{ourEP("we_1", 100)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErrTimeout})
			},
			status: metav1.ConditionFalse, reason: v1.ReasonStripeUnavailable, transient: true,
			calls: []string{createCall("0")},
		},

		{
			name:  "500 whose attempt move loses the optimistic-lock race: the attempt stays for the next pass",
			stale: true,
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErr500})
			},
			status: metav1.ConditionFalse, reason: v1.ReasonStripeUnavailable, transient: true,
			calls: []string{createCall("0")},
		},
		{
			name:     "attempt bump for a lost endpoint loses the optimistic-lock race: no create under an unrecorded key",
			statusID: "we_old",
			secret:   &storedSigning{endpointID: "we_old", data: "whsec_old"},
			stale:    true,
			status:   metav1.ConditionUnknown, reason: v1.ReasonEndpointFailed, msg: []string{"recording create attempt 1"},
			transient:  true,
			wantSecret: &wantSigning{endpointID: "we_old", data: "whsec_old"},
		},
		{
			name:            "signing Secret write fails after the create: error retried, the next pass replays the same key",
			failSecretWrite: true,
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{id: "we_new", secret: "whsec_new"})
			},
			status: metav1.ConditionUnknown, reason: v1.ReasonEndpointFailed, msg: []string{"creating signing Secret"},
			transient: true,
			calls:     []string{createCall("0")},
		},

		// ---- drift ----
		{
			name:     "steady state: no Stripe call beyond the probe, nothing written",
			statusID: "we_1",
			secret:   &storedSigning{endpointID: "we_1", data: "whsec_1"},
			listed:   []stripeclient.Endpoint{ourEP("we_1", 100), foreignEP("we_foreign")},
			status:   metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			wantSecret: &wantSigning{endpointID: "we_1", data: "whsec_1"},
		},
		{
			name:     "drift in URL, events and description: one update with only those fields",
			statusID: "we_1",
			secret:   &storedSigning{endpointID: "we_1", data: "whsec_1"},
			listed: []stripeclient.Endpoint{ourEP("we_1", 100, func(e *stripeclient.Endpoint) {
				e.URL, e.Description, e.EnabledEvents = "https://elsewhere.example/hook", "edited in the dashboard", []string{"charge.succeeded"}
			})},
			stripe: func(t *testing.T, f *fakeStripe) { f.UpdateWebhookEndpointFn = updatesToSpec },
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls:      []string{"Update(we_1 url,enabled_events,description)"},
			wantSecret: &wantSigning{endpointID: "we_1", data: "whsec_1"},
			events:     []string{v1.EventEndpointRepaired},
			check: func(t *testing.T, f *fakeStripe, _ *observation) {
				u := f.Calls()[0].Args[1].(stripeclient.EndpointUpdate)
				d := branchDesired()
				if *u.URL != d.URL || *u.Description != d.Description || !slices.Equal(u.EnabledEvents, d.EnabledEvents) {
					t.Errorf("update %+v does not restore the spec", u)
				}
			},
		},
		{
			name:     "disabled endpoint: one update re-enabling it",
			statusID: "we_1",
			secret:   &storedSigning{endpointID: "we_1", data: "whsec_1"},
			listed:   []stripeclient.Endpoint{ourEP("we_1", 100, func(e *stripeclient.Endpoint) { e.Status = "disabled" })},
			stripe:   func(t *testing.T, f *fakeStripe) { f.UpdateWebhookEndpointFn = updatesToSpec },
			status:   metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls:      []string{"Update(we_1 disabled)"},
			wantSecret: &wantSigning{endpointID: "we_1", data: "whsec_1"},
			events:     []string{v1.EventEndpointRepaired},
			check: func(t *testing.T, f *fakeStripe, _ *observation) {
				if u := f.Calls()[0].Args[1].(stripeclient.EndpointUpdate); *u.Disabled {
					t.Errorf("update disables the endpoint")
				}
			},
		},
		{
			name:     "metadata drift: changed tags set, unknown keys unset, nothing else",
			statusID: "we_1",
			secret:   &storedSigning{endpointID: "we_1", data: "whsec_1"},
			listed: []stripeclient.Endpoint{ourEP("we_1", 100, func(e *stripeclient.Endpoint) {
				e.Metadata[tagClinicID], e.Metadata["note"] = "edited", "x"
			})},
			stripe: func(t *testing.T, f *fakeStripe) { f.UpdateWebhookEndpointFn = updatesToSpec },
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls:      []string{"Update(we_1 metadata)"},
			wantSecret: &wantSigning{endpointID: "we_1", data: "whsec_1"},
			events:     []string{v1.EventEndpointRepaired},
			check: func(t *testing.T, f *fakeStripe, _ *observation) {
				u := f.Calls()[0].Args[1].(stripeclient.EndpointUpdate)
				if want := map[string]string{tagClinicID: bName, "note": ""}; !maps.Equal(u.Metadata, want) {
					t.Errorf("metadata update %v, want %v", u.Metadata, want)
				}
			},
		},
		{
			name:     "update refused for lack of a permission: PermissionDenied naming it",
			statusID: "we_1",
			secret:   &storedSigning{endpointID: "we_1", data: "whsec_1"},
			listed:   []stripeclient.Endpoint{ourEP("we_1", 100, func(e *stripeclient.Endpoint) { e.URL = "https://elsewhere.example/hook" })},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.UpdateWebhookEndpointFn = func(context.Context, string, stripeclient.EndpointUpdate) (stripeclient.Endpoint, error) {
					return stripeclient.Endpoint{}, bErrPerm
				}
			},
			status: metav1.ConditionFalse, reason: v1.ReasonPermissionDenied, msg: []string{"lacks rak_webhook_write"},
			calls:      []string{"Update(we_1 url)"},
			wantSecret: &wantSigning{endpointID: "we_1", data: "whsec_1"},
		},

		// ---- duplicates ----
		{
			name:     "duplicates of ours deleted (even a newer one), foreign endpoints untouched",
			statusID: "we_1",
			secret:   &storedSigning{endpointID: "we_1", data: "whsec_1"},
			listed: []stripeclient.Endpoint{foreignEP("we_x"), ourEP("we_1", 100), ourEP("we_dup", 900),
				ourEP("we_untagged", 100, func(e *stripeclient.Endpoint) { e.Metadata = nil })},
			stripe: func(t *testing.T, f *fakeStripe) { f.DeleteWebhookEndpointFn = deletesOK },
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady, msg: []string{"endpoint we_1 delivers"},
			calls:      []string{"Delete(we_dup)"},
			wantSecret: &wantSigning{endpointID: "we_1", data: "whsec_1"},
			events:     []string{v1.EventDuplicateEndpointDelete},
		},
		{
			name:     "a duplicate already gone counts as deleted",
			statusID: "we_1",
			secret:   &storedSigning{endpointID: "we_1", data: "whsec_1"},
			listed:   []stripeclient.Endpoint{ourEP("we_1", 100), ourEP("we_dup", 900)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.DeleteWebhookEndpointFn = func(context.Context, string) error { return bErrGone }
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			calls:      []string{"Delete(we_dup)"},
			wantSecret: &wantSigning{endpointID: "we_1", data: "whsec_1"},
			events:     []string{v1.EventDuplicateEndpointDelete},
		},

		// ---- Stripe's 16-endpoint cap ----
		{
			name:     "cap reached on a replacement: break-before-make (re-delivery recorded, old deleted, successor created)",
			statusID: "we_old",
			secret:   &storedSigning{endpointID: "we_old", data: "whsec_old"},
			listed:   []stripeclient.Endpoint{ourEP("we_old", 100, onOldAPI)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErrLimit}, createResult{id: "we_new", secret: "whsec_new"})
				f.DeleteWebhookEndpointFn = deletesOK
			},
			status: metav1.ConditionTrue, reason: v1.ReasonEndpointReady,
			msg: []string{"16-endpoint cap, so we_old was deleted before we_new could be created"},
			// Whether Stripe saves a cap refusal under its key is not documented: the successor gets
			// a fresh attempt, moved before the old endpoint is deleted.
			calls:      []string{createCall("1"), "Delete(we_old)", createCall("2")},
			wantSecret: &wantSigning{endpointID: "we_new", data: "whsec_new"},
			wantAnn: withAnn(attempt1("we_old"), v1.AnnotationCreateAttempt, "2",
				v1.AnnotationRedeliverUndeliveredSince, bWindowAgo, v1.AnnotationRedeliverAllSince, bNowS),
			events: []string{v1.EventEndpointReplacedAtLimit, v1.EventEndpointRecreated},
		},
		{
			name:     "cap reached on a replacement whose successor then fails: old already deleted, re-delivery recorded, error reported",
			statusID: "we_old",
			secret:   &storedSigning{endpointID: "we_old", data: "whsec_old"},
			listed:   []stripeclient.Endpoint{ourEP("we_old", 100, onOldAPI)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErrLimit}, createResult{err: bErrTimeout})
				f.DeleteWebhookEndpointFn = deletesOK
			},
			status: metav1.ConditionFalse, reason: v1.ReasonStripeUnavailable, transient: true,
			calls:      []string{createCall("1"), "Delete(we_old)", createCall("2")},
			wantSecret: &wantSigning{endpointID: "we_old", data: "whsec_old"},
			wantAnn: withAnn(attempt1("we_old"), v1.AnnotationCreateAttempt, "2",
				v1.AnnotationRedeliverUndeliveredSince, bWindowAgo, v1.AnnotationRedeliverAllSince, bNowS),
		},
		{
			name:     "cap reached on the secret recovery replay: break-before-make under the next attempt",
			statusID: "we_1",
			listed:   []stripeclient.Endpoint{ourEP("we_1", 100)},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErrLimit}, createResult{id: "we_2", secret: "whsec_2"})
				f.DeleteWebhookEndpointFn = deletesOK
			},
			status: metav1.ConditionTrue, reason: v1.ReasonSigningSecretRotated, msg: []string{"16-endpoint cap"},
			calls:      []string{createCall("0"), "Delete(we_1)", createCall("1")},
			wantSecret: &wantSigning{endpointID: "we_2", data: "whsec_2"},
			wantAnn: withAnn(attempt1("we_1"),
				v1.AnnotationRedeliverUndeliveredSince, bWindowAgo, v1.AnnotationRedeliverAllSince, bNowS),
			events: []string{v1.EventEndpointReplacedAtLimit},
		},
		{
			name:   "cap reached on first creation: EndpointLimitReached, nothing deleted (foreign endpoints are not ours to remove)",
			listed: []stripeclient.Endpoint{foreignEP("we_x")},
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErrLimit})
			},
			status: metav1.ConditionFalse, reason: v1.ReasonEndpointLimitReached, msg: []string{"maximum number of webhook endpoints (16)"},
			calls: []string{createCall("0")},
		},

		// ---- permissions, configuration ----
		{
			name: "create refused for lack of a permission: PermissionDenied naming it, not retried as transient",
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErrPerm})
			},
			status: metav1.ConditionFalse, reason: v1.ReasonPermissionDenied, msg: []string{"the restricted key lacks rak_webhook_write"},
			calls: []string{createCall("0")},
		},
		{
			name: "create refused without naming the permission: PermissionDenied names rak_webhook_write",
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = createsSeq(t, createResult{err: bErrPermUnnamed})
			},
			status: metav1.ConditionFalse, reason: v1.ReasonPermissionDenied, msg: []string{"lacks rak_webhook_write"},
			calls: []string{createCall("0")},
		},
		{
			name:      "no webhook URL configured: no Stripe call",
			noBaseURL: true,
			status:    metav1.ConditionFalse, reason: v1.ReasonNoWebhookURL,
		},
		{
			name:         "an older integration registers the same URL: no Stripe call, WebhookURLConflict naming it",
			olderSibling: true,
			status:       metav1.ConditionFalse, reason: v1.ReasonWebhookURLConflict,
			msg: []string{`the older StripeIntegration "clinic-0" in this namespace`},
		},
		{
			name:   "signing Secret name taken by a foreign Secret: no Stripe call, the Secret untouched",
			secret: &storedSigning{endpointID: "we_theirs", data: "theirs", foreign: true},
			status: metav1.ConditionFalse, reason: v1.ReasonSigningSecretNameConflict,
		},
		{
			name: "endpoint in the other mode than the key: EndpointModeMismatch",
			stripe: func(t *testing.T, f *fakeStripe) {
				f.CreateWebhookEndpointFn = func(_ context.Context, spec stripeclient.EndpointSpec, _ string) (stripeclient.Endpoint, string, error) {
					ep := epFromSpec("we_live", spec)
					ep.Livemode = true
					return ep, "whsec_live", nil
				}
			},
			status: metav1.ConditionFalse, reason: v1.ReasonEndpointModeMismatch,
			calls:      []string{createCall("0")},
			wantSecret: &wantSigning{endpointID: "we_live", data: "whsec_live"},
			events:     nil, // the status Event's WebhookEndpointReady False names we_live
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runBranch(t, tc) })
	}
}

// runBranch sets a row's state up in a fake apiserver, runs one webhook phase and checks it.
func runBranch(t *testing.T, tc branchCase) {
	t.Helper()
	ctx := context.Background()
	scheme := branchScheme(t)
	rec := events.NewFakeRecorder(100)
	r := &StripeIntegrationReconciler{Recorder: rec, Clock: clocktesting.NewFakePassiveClock(bNow), WebhookBaseURL: bBaseURL}
	if tc.noBaseURL {
		r.WebhookBaseURL = ""
	}

	si := branchSI()
	si.Annotations = maps.Clone(tc.annotations)
	si.Status.WebhookEndpointID = tc.statusID
	objs := []client.Object{si}
	if tc.olderSibling {
		older := branchSI()
		older.Name, older.UID = "clinic-0", "uid-0"
		older.CreationTimestamp = metav1.NewTime(bNow.Add(-72 * time.Hour))
		objs = append(objs, older)
	}
	if s := tc.secret; s != nil {
		objs = append(objs, signingSecretObject(si, s))
	}
	b := crfake.NewClientBuilder()
	if tc.failSecretWrite {
		refuse := func(obj client.Object) error {
			if _, ok := obj.(*corev1.Secret); ok {
				return apierrors.NewServiceUnavailable("apiserver unavailable")
			}
			return nil
		}
		b = b.WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				if err := refuse(obj); err != nil {
					return err
				}
				return c.Create(ctx, obj, opts...)
			},
			Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
				if err := refuse(obj); err != nil {
					return err
				}
				return c.Update(ctx, obj, opts...)
			},
		})
	}
	c := b.WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&v1.StripeIntegration{}).
		WithIndex(&v1.StripeIntegration{}, webhookURLIndex, func(o client.Object) []string {
			if k := r.webhookURLKey(o.(*v1.StripeIntegration)); k != "" {
				return []string{k}
			}
			return nil
		}).Build()
	r.Client, r.SecretReader = c, c

	si = &v1.StripeIntegration{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: bNS, Name: bName}, si); err != nil {
		t.Fatal(err)
	}
	if tc.stale {
		other := si.DeepCopy()
		other.Labels = map[string]string{"edited-by": "someone-else"}
		if err := c.Update(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	f := &fakeStripe{t: t}
	if tc.stripe != nil {
		tc.stripe(t, f)
	}
	var obs observation
	r.reconcileEndpoint(ctx, si, f, tc.listed, &obs)

	// The condition.
	if obs.Webhook.Type != v1.ConditionWebhookEndpointReady || obs.Webhook.Status != tc.status || obs.Webhook.Reason != tc.reason {
		t.Errorf("condition %s=%s/%s (%s), want %s/%s", obs.Webhook.Type, obs.Webhook.Status, obs.Webhook.Reason, obs.Webhook.Message, tc.status, tc.reason)
	}
	for _, m := range tc.msg {
		if !strings.Contains(obs.Webhook.Message, m) {
			t.Errorf("condition message %q does not say %q", obs.Webhook.Message, m)
		}
	}
	if strings.Contains(obs.Webhook.Message, "whsec_") {
		t.Errorf("condition message carries a signing secret: %q", obs.Webhook.Message)
	}
	if (obs.err != nil) != tc.transient {
		t.Errorf("pass error %v, want one: %t", obs.err, tc.transient)
	}
	if obs.followUp != tc.followUp {
		t.Errorf("followUp %t, want %t", obs.followUp, tc.followUp)
	}

	// The Stripe calls, in order.
	if got := f.CallStrings(); !slices.Equal(got, tc.calls) {
		t.Errorf("Stripe calls\n got %q\nwant %q", got, tc.calls)
	}

	// The signing Secret.
	s := &corev1.Secret{}
	err := c.Get(ctx, types.NamespacedName{Namespace: bNS, Name: signingSecretName(bName)}, s)
	switch w := tc.wantSecret; {
	case tc.secret != nil && tc.secret.foreign:
		if err != nil || string(s.Data[v1.SigningSecretKey]) != tc.secret.data || metav1.GetControllerOf(s) != nil {
			t.Errorf("the foreign Secret was changed: %v %+v", err, s)
		}
	case w == nil:
		if !apierrors.IsNotFound(err) {
			t.Errorf("signing Secret exists (%v): %q %v", err, s.Data[v1.SigningSecretKey], s.Annotations)
		}
	case err != nil:
		t.Errorf("signing Secret: %v", err)
	default:
		if got := string(s.Data[v1.SigningSecretKey]); got != w.data {
			t.Errorf("signing Secret holds %q, want %q", got, w.data)
		}
		want := map[string]string{v1.AnnotationWebhookEndpointID: w.endpointID}
		if w.retiringID != "" {
			want[v1.AnnotationRetiringEndpointID], want[v1.AnnotationRetiringSince] = w.retiringID, w.retiringSince
		}
		if !maps.Equal(s.Annotations, want) {
			t.Errorf("signing Secret annotations %v, want %v", s.Annotations, want)
		}
		if !metav1.IsControlledBy(s, si) {
			t.Errorf("signing Secret is not controlled by the integration: %v", s.OwnerReferences)
		}
	}

	// The StripeIntegration's annotations, as written and as the pass holds them.
	stored := &v1.StripeIntegration{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: bNS, Name: bName}, stored); err != nil {
		t.Fatal(err)
	}
	want := tc.wantAnn
	if want == nil {
		want = tc.annotations
	}
	wantAnn := operatorAnnotations(&v1.StripeIntegration{ObjectMeta: metav1.ObjectMeta{Annotations: want}})
	if got := operatorAnnotations(stored); !maps.Equal(got, wantAnn) {
		t.Errorf("StripeIntegration annotations %v, want %v", got, want)
	}
	if !maps.Equal(operatorAnnotations(si), operatorAnnotations(stored)) {
		t.Errorf("the pass holds annotations %v, the apiserver %v", si.Annotations, stored.Annotations)
	}

	// The Events, by reason.
	var reasons []string
	for len(rec.Events) > 0 {
		ev := <-rec.Events
		if strings.Contains(ev, "whsec_") {
			t.Errorf("event carries a signing secret: %q", ev)
		}
		reasons = append(reasons, strings.Fields(ev)[1])
	}
	if !slices.Equal(reasons, tc.events) {
		t.Errorf("events %q, want %q", reasons, tc.events)
	}

	if tc.check != nil {
		tc.check(t, f, &obs)
	}
}

var branchSchemeOnce = sync.OnceValues(func() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, v1.AddToScheme(s)
})

// branchScheme registers client-go's types and the API's, once for all rows.
func branchScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s, err := branchSchemeOnce()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signingSecretObject is the signing Secret a row starts with, as writeSigningSecret writes it
// (or, foreign, a user's Secret of that name).
func signingSecretObject(si *v1.StripeIntegration, s *storedSigning) *corev1.Secret {
	obj := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: si.Namespace, Name: signingSecretName(si.Name),
			Annotations: map[string]string{v1.AnnotationWebhookEndpointID: s.endpointID}},
		Data: map[string][]byte{v1.SigningSecretKey: []byte(s.data)},
	}
	if s.retiringID != "" {
		obj.Annotations[v1.AnnotationRetiringEndpointID] = s.retiringID
		obj.Annotations[v1.AnnotationRetiringSince] = s.retiringSince
	}
	if !s.foreign {
		obj.OwnerReferences = []metav1.OwnerReference{ownerRef(si)}
	}
	return obj
}

// operatorAnnotations are the annotations in the operator's domain.
func operatorAnnotations(si *v1.StripeIntegration) map[string]string {
	out := map[string]string{}
	for k, v := range si.Annotations {
		if strings.HasPrefix(k, "payments.clinicpay.dev/") {
			out[k] = v
		}
	}
	return out
}

func equalSpec(a, b stripeclient.EndpointSpec) bool {
	return a.URL == b.URL && a.Description == b.Description && a.APIVersion == b.APIVersion &&
		slices.Equal(a.EnabledEvents, b.EnabledEvents) && maps.Equal(a.Metadata, b.Metadata)
}

// The fake itself: a method without its Fn fails the test and names the call.
func TestFakeStripeUnexpectedCall(t *testing.T) {
	t.Parallel()
	f := &fakeStripe{} // no *testing.T: only the error
	_, err := f.GetWebhookEndpoint(context.Background(), "we_1")
	if err == nil || !strings.Contains(err.Error(), "GetWebhookEndpoint") || !strings.Contains(err.Error(), "we_1") {
		t.Fatalf("unexpected call answered %v", err)
	}
	if got := f.CallStrings(); !slices.Equal(got, []string{"Get(we_1)"}) {
		t.Fatalf("calls %q", got)
	}
	c := &fakeStripeClients{client: f}
	if c.For("sk_test_x", v1.ModeTest, "acct_1") != f || c.Requests()[0].LimiterKey != "acct_1" {
		t.Fatalf("factory did not hand out the fake: %+v", c.Requests())
	}
}
