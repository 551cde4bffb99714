package controller

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

var (
	t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(10 * time.Minute)
)

func allTrue() []condition {
	return []condition{
		trueCond(v1.ConditionKeysValid, v1.ReasonKeysValid, "ok"),
		trueCond(v1.ConditionAuthenticated, v1.ReasonAuthenticated, "ok"),
		trueCond(v1.ConditionWebhookEndpointReady, "EndpointReady", "ok"),
		trueCond(v1.ConditionReceiverReady, "ReceiverAvailable", "ok"),
	}
}

func webhookUnknown() []condition {
	return []condition{
		trueCond(v1.ConditionKeysValid, v1.ReasonKeysValid, "ok"),
		trueCond(v1.ConditionAuthenticated, v1.ReasonAuthenticated, "ok"),
		unknown(v1.ConditionWebhookEndpointReady, v1.ReasonEndpointFailed, "retrying"),
		unknown(v1.ConditionReceiverReady, v1.ReasonReceiverProgressing, "later"),
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in         []condition
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		"all true": {in: allTrue(), wantStatus: metav1.ConditionTrue, wantReason: v1.ReasonConnected},
		"first failing wins": {in: []condition{falseCond(v1.ConditionKeysValid, v1.ReasonModeMismatch, "m"),
			unknown(v1.ConditionAuthenticated, v1.ReasonKeysNotValid, "")}, wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonModeMismatch},
		"unknown is not true": {in: webhookUnknown(), wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonEndpointFailed},
		"auth failure": {in: []condition{trueCond(v1.ConditionKeysValid, v1.ReasonKeysValid, ""),
			falseCond(v1.ConditionAuthenticated, v1.ReasonInvalidKey, "")}, wantStatus: metav1.ConditionFalse, wantReason: v1.ReasonInvalidKey},
		"secret unreadable": {in: []condition{unknown(v1.ConditionKeysValid, v1.ReasonSecretReadFailed, "")}, wantStatus: metav1.ConditionUnknown,
			wantReason: v1.ReasonSecretReadFailed},
		"receiver last to block": {in: append(allTrue()[:3], falseCond(v1.ConditionReceiverReady, "Unavailable", "")), wantStatus: metav1.ConditionFalse,
			wantReason: "Unavailable"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := summarize(tc.in)
			if got.Type != v1.ConditionConnected || got.Status != tc.wantStatus || got.Reason != tc.wantReason {
				t.Errorf("summarize = %s %s/%s, want %s/%s", got.Type, got.Status, got.Reason, tc.wantStatus, tc.wantReason)
			}
		})
	}
}

func TestComputeStatus(t *testing.T) {
	t.Parallel()
	connectedAt := computeStatus(v1.StripeIntegrationStatus{}, 1, inputOf(webhookUnknown(), statusInput{
		Mode: v1.ModeTest, KeyFingerprint: "sha256:aa", KeysAccepted: true, AccountID: ptr.To("acct_1"), Probed: true, Succeeded: true,
	}), t0)

	cases := map[string]struct {
		prev  v1.StripeIntegrationStatus
		gen   int64
		in    statusInput
		check func(t *testing.T, prev, got v1.StripeIntegrationStatus)
	}{
		"first pass fills everything": {
			prev: v1.StripeIntegrationStatus{}, gen: 1,
			in: inputOf(webhookUnknown(), statusInput{Mode: v1.ModeTest, KeyFingerprint: "sha256:aa", KeysAccepted: true, AccountID: ptr.To("acct_1"),
				Probed: true, Succeeded: true}),
			check: func(t *testing.T, _, got v1.StripeIntegrationStatus) {
				if len(got.Conditions) != 5 || got.ObservedGeneration != 1 || got.AccountID != "acct_1" || got.KeyFingerprint != "sha256:aa" {
					t.Errorf("got %+v", got)
				}
				if got.LastProbeTime == nil || !got.LastProbeTime.Time.Equal(t1) {
					t.Errorf("lastProbeTime = %v, want %v", got.LastProbeTime, t1)
				}
			},
		},
		"unchanged resync is identical": {
			prev: connectedAt, gen: 1,
			in: inputOf(webhookUnknown(), statusInput{Mode: v1.ModeTest, Probed: true, Succeeded: true}),
			check: func(t *testing.T, prev, got v1.StripeIntegrationStatus) {
				if !equality.Semantic.DeepEqual(prev, got) {
					t.Errorf("steady state changed status:\nprev %+v\ngot  %+v", prev, got)
				}
			},
		},
		"probe outcome change moves lastProbeTime and transition time": {
			prev: connectedAt, gen: 1,
			in: inputOf([]condition{trueCond(v1.ConditionKeysValid, v1.ReasonKeysValid, "ok"),
				falseCond(v1.ConditionAuthenticated, v1.ReasonInvalidKey, "revoked")}, statusInput{Probed: true, Succeeded: true}),
			check: func(t *testing.T, _, got v1.StripeIntegrationStatus) {
				if !got.LastProbeTime.Time.Equal(t1) {
					t.Errorf("lastProbeTime = %v, want %v", got.LastProbeTime, t1)
				}
				c := meta.FindStatusCondition(got.Conditions, v1.ConditionAuthenticated)
				if !c.LastTransitionTime.Time.Equal(t1) || c.Reason != v1.ReasonInvalidKey {
					t.Errorf("Authenticated = %+v", c)
				}
				if k := meta.FindStatusCondition(got.Conditions, v1.ConditionKeysValid); !k.LastTransitionTime.Time.Equal(t0) {
					t.Errorf("KeysValid transition time moved without a transition: %v", k.LastTransitionTime)
				}
			},
		},
		"transient failure keeps observedGeneration": {
			prev: connectedAt, gen: 2,
			in: inputOf([]condition{trueCond(v1.ConditionKeysValid, v1.ReasonKeysValid, "ok"),
				falseCond(v1.ConditionAuthenticated, v1.ReasonRateLimited, "429")}, statusInput{Probed: true, Succeeded: false}),
			check: func(t *testing.T, _, got v1.StripeIntegrationStatus) {
				if got.ObservedGeneration != 1 {
					t.Errorf("observedGeneration = %d, want 1", got.ObservedGeneration)
				}
				if c := meta.FindStatusCondition(got.Conditions, v1.ConditionAuthenticated); c.ObservedGeneration != 2 {
					t.Errorf("condition observedGeneration = %d, want 2", c.ObservedGeneration)
				}
			},
		},
		"new keys move lastProbeTime even with the same outcome": {
			prev: connectedAt, gen: 1,
			in: inputOf(webhookUnknown(), statusInput{KeyFingerprint: "sha256:bb", KeysAccepted: true, AccountID: ptr.To("acct_1"), Probed: true,
				Succeeded: true}),
			check: func(t *testing.T, _, got v1.StripeIntegrationStatus) {
				if got.KeyFingerprint != "sha256:bb" || !got.LastProbeTime.Time.Equal(t1) {
					t.Errorf("fingerprint %s lastProbeTime %v", got.KeyFingerprint, got.LastProbeTime)
				}
			},
		},
		"no probe keeps lastProbeTime": {
			prev: connectedAt, gen: 1,
			in: inputOf([]condition{falseCond(v1.ConditionKeysValid, v1.ReasonModeMismatch, "m"),
				unknown(v1.ConditionAuthenticated, v1.ReasonKeysNotValid, "")}, statusInput{Succeeded: true}),
			check: func(t *testing.T, _, got v1.StripeIntegrationStatus) {
				if !got.LastProbeTime.Time.Equal(t0) {
					t.Errorf("lastProbeTime moved without a probe: %v", got.LastProbeTime)
				}
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			prevCopy := tc.prev.DeepCopy()
			got := computeStatus(tc.prev, tc.gen, tc.in, t1)
			if !equality.Semantic.DeepEqual(*prevCopy, tc.prev) {
				t.Fatal("computeStatus mutated its input")
			}
			tc.check(t, tc.prev, got)
		})
	}
}

func TestConditionTransitions(t *testing.T) {
	t.Parallel()
	prev := []metav1.Condition{
		{Type: v1.ConditionKeysValid, Status: metav1.ConditionTrue, Reason: v1.ReasonKeysValid},
		{Type: v1.ConditionAuthenticated, Status: metav1.ConditionTrue, Reason: v1.ReasonAuthenticated},
	}
	next := []metav1.Condition{
		{Type: v1.ConditionKeysValid, Status: metav1.ConditionTrue, Reason: v1.ReasonKeysValid},
		{Type: v1.ConditionAuthenticated, Status: metav1.ConditionFalse, Reason: v1.ReasonInvalidKey, Message: "revoked"},
		{Type: v1.ConditionWebhookEndpointReady, Status: metav1.ConditionUnknown, Reason: v1.ReasonEndpointFailed},
	}
	got := conditionTransitions(prev, next)
	if len(got) != 1 || got[0].eventType != "Warning" || got[0].reason != v1.ReasonInvalidKey {
		t.Fatalf("transitions = %+v, want one Warning/InvalidKey", got)
	}
}

func TestStatusEventFoldsOneWrite(t *testing.T) {
	t.Parallel()
	cond := func(ct string, st metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: ct, Status: st, Reason: reason, Message: reason + " message"}
	}
	progressing := []metav1.Condition{
		cond(v1.ConditionKeysValid, metav1.ConditionTrue, v1.ReasonKeysValid),
		cond(v1.ConditionAuthenticated, metav1.ConditionTrue, v1.ReasonAuthenticated),
		cond(v1.ConditionWebhookEndpointReady, metav1.ConditionTrue, v1.ReasonEndpointReady),
		cond(v1.ConditionReceiverReady, metav1.ConditionFalse, v1.ReasonReceiverProgressing),
		cond(v1.ConditionConnected, metav1.ConditionFalse, v1.ReasonReceiverProgressing),
	}
	connected := slices.Clone(progressing)
	connected[3] = cond(v1.ConditionReceiverReady, metav1.ConditionTrue, v1.ReasonReceiverAvailable)
	connected[4] = cond(v1.ConditionConnected, metav1.ConditionTrue, v1.ReasonConnected)
	revoked := slices.Clone(connected)
	revoked[1] = cond(v1.ConditionAuthenticated, metav1.ConditionFalse, v1.ReasonInvalidKey)
	revoked[4] = cond(v1.ConditionConnected, metav1.ConditionFalse, v1.ReasonInvalidKey)

	for _, tc := range []struct {
		name             string
		prev, next       []metav1.Condition
		wantType, reason string
		parts            int
	}{
		{"first pass: expected progress is Normal", nil, progressing, "Normal", v1.ReasonReceiverProgressing, 5},
		{"connected", progressing, connected, "Normal", v1.ReasonConnected, 2},
		{"key revoked: the failing condition names the Event", connected, revoked, "Warning", v1.ReasonInvalidKey, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := statusEvent(tc.prev, tc.next)
			if ev == nil || ev.eventType != tc.wantType || ev.reason != tc.reason || strings.Count(ev.note, "; ")+1 != tc.parts {
				t.Errorf("statusEvent = %+v, want one %s/%s listing %d changes", ev, tc.wantType, tc.reason, tc.parts)
			}
		})
	}
	if ev := statusEvent(connected, connected); ev != nil {
		t.Errorf("no change gave an Event: %+v", ev)
	}
	long := slices.Clone(revoked)
	long[1].Message = strings.Repeat("é", 2000)
	if ev := statusEvent(connected, long); len(ev.note) > maxEventNote || !utf8.ValidString(ev.note) {
		t.Errorf("note of %d bytes (valid UTF-8: %t), want ≤ %d", len(ev.note), utf8.ValidString(ev.note), maxEventNote)
	}
}

// TestComputeStatusGrace: transient Stripe failures leave True conditions True, without an Event,
// while they are younger than the grace; the message says so once; past the grace, and for
// permanent failures, the failure is reported as before.
func TestComputeStatusGrace(t *testing.T) {
	t.Parallel()
	const grace = 15 * time.Minute
	connected := computeStatus(v1.StripeIntegrationStatus{}, 1, inputOf(allTrue(), statusInput{Probed: true, Succeeded: true}), t0)
	rateLimited := func() []condition {
		c := allTrue()
		c[1] = falseCond(v1.ConditionAuthenticated, v1.ReasonRateLimited, "Stripe rate-limited the probe")
		c[1].Transient = true
		c[2] = unknown(v1.ConditionWebhookEndpointReady, v1.ReasonNotAuthenticated, "not checked")
		c[2].Transient = true
		return c
	}
	unavailable := func() []condition {
		c := rateLimited()
		c[1] = falseCond(v1.ConditionAuthenticated, v1.ReasonStripeUnavailable, "Stripe is unavailable (HTTP 503)")
		c[1].Transient = true
		return c
	}
	since := t1.Add(-time.Minute)
	inGrace := computeStatus(connected, 1, inputOf(rateLimited(), statusInput{Probed: true, FailingSince: since, Grace: grace}), t1)

	cases := map[string]struct {
		prev       v1.StripeIntegrationStatus
		in         statusInput
		now        time.Time
		wantAuth   string // Authenticated status/reason
		wantConn   string // Connected status/reason
		wantEvent  string // "" for none, else the Event type
		wantPrefix string // of the Authenticated message
	}{
		"first failure within the grace stays Connected": {
			prev: connected, in: inputOf(rateLimited(), statusInput{Probed: true, FailingSince: since, Grace: grace}), now: t1,
			wantAuth: "True/Authenticated", wantConn: "True/Connected", wantPrefix: "Stripe calls failing since " + since.Format(
				time.RFC3339) + " (RateLimited: ",
		},
		"endpoint failure alone is graced too": {
			prev: connected, in: inputOf(func() []condition {
				c := allTrue()
				c[2] = falseCond(v1.ConditionWebhookEndpointReady, v1.ReasonStripeUnavailable, "503")
				c[2].Transient = true
				return c
			}(), statusInput{Probed: true, FailingSince: since, Grace: grace}), now: t1,
			wantAuth: "True/Authenticated", wantConn: "True/Connected", wantPrefix: "ok",
		},
		"zero grace reports at once": {
			prev: connected, in: inputOf(rateLimited(), statusInput{Probed: true, FailingSince: since}), now: t1,
			wantAuth: "False/RateLimited", wantConn: "False/RateLimited", wantEvent: "Warning", wantPrefix: "Stripe rate-limited",
		},
		"past the grace reports": {
			prev: inGrace, in: inputOf(unavailable(), statusInput{Probed: true, FailingSince: t1.Add(-grace), Grace: grace}), now: t1,
			wantAuth: "False/StripeUnavailable", wantConn: "False/StripeUnavailable", wantEvent: "Warning", wantPrefix: "Stripe is unavailable",
		},
		"permanent failure is never graced": {
			prev: connected, in: inputOf(func() []condition {
				c := rateLimited()
				c[1] = falseCond(v1.ConditionAuthenticated, v1.ReasonInvalidKey, "revoked")
				c[2].Transient = false
				return c
			}(), statusInput{Probed: true, FailingSince: since, Grace: grace}), now: t1,
			wantAuth: "False/InvalidKey", wantConn: "False/InvalidKey", wantEvent: "Warning", wantPrefix: "revoked",
		},
		"never True before: nothing to keep": {
			prev: v1.StripeIntegrationStatus{}, in: inputOf(rateLimited(), statusInput{Probed: true, FailingSince: since, Grace: grace}), now: t1,
			wantAuth: "False/RateLimited", wantConn: "False/RateLimited", wantEvent: "Warning", wantPrefix: "Stripe rate-limited",
		},
		"recovery restores the messages without an Event": {
			prev: inGrace, in: inputOf(allTrue(), statusInput{Probed: true, Succeeded: true, Grace: grace}), now: t1.Add(time.Minute),
			wantAuth: "True/Authenticated", wantConn: "True/Connected", wantPrefix: "ok",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := computeStatus(tc.prev, 1, tc.in, tc.now)
			auth := meta.FindStatusCondition(got.Conditions, v1.ConditionAuthenticated)
			conn := meta.FindStatusCondition(got.Conditions, v1.ConditionConnected)
			if s := string(auth.Status) + "/" + auth.Reason; s != tc.wantAuth {
				t.Errorf("Authenticated = %s, want %s", s, tc.wantAuth)
			}
			if s := string(conn.Status) + "/" + conn.Reason; s != tc.wantConn {
				t.Errorf("Connected = %s, want %s", s, tc.wantConn)
			}
			if !strings.HasPrefix(auth.Message, tc.wantPrefix) {
				t.Errorf("Authenticated message %q, want prefix %q", auth.Message, tc.wantPrefix)
			}
			ev := statusEvent(tc.prev.Conditions, got.Conditions)
			switch {
			case tc.wantEvent == "" && ev != nil:
				t.Errorf("Event %+v, want none", ev)
			case tc.wantEvent != "" && (ev == nil || ev.eventType != tc.wantEvent):
				t.Errorf("Event %+v, want a %s", ev, tc.wantEvent)
			}
			if tc.wantEvent == "" && auth.Status == metav1.ConditionTrue && !auth.LastTransitionTime.Equal(&metav1.Time{Time: t0}) {
				t.Errorf("Authenticated lastTransitionTime moved to %v", auth.LastTransitionTime)
			}
		})
	}

	// The message is written once: later passes of the same run, whatever they see, change nothing.
	if !strings.Contains(meta.FindStatusCondition(inGrace.Conditions, v1.ConditionConnected).Message, "Stripe calls failing since") {
		t.Errorf("Connected message does not show the failing calls: %+v", inGrace.Conditions)
	}
	for _, in := range [][]condition{rateLimited(), unavailable()} {
		next := computeStatus(inGrace, 1, inputOf(in, statusInput{Probed: true, FailingSince: since, Grace: grace}), t1.Add(10*time.Minute))
		if !equality.Semantic.DeepEqual(inGrace, next) {
			t.Errorf("a later pass within the grace changed status:\nprev %+v\ngot  %+v", inGrace, next)
		}
	}
}

// inputOf returns in with the conditions cs set by their type.
func inputOf(cs []condition, in statusInput) statusInput {
	for _, c := range cs {
		switch c.Type {
		case v1.ConditionKeysValid:
			in.KeysValid = c
		case v1.ConditionAuthenticated:
			in.Authenticated = c
		case v1.ConditionWebhookEndpointReady:
			in.Webhook = c
		case v1.ConditionReceiverReady:
			in.Receiver = c
		default:
			panic("inputOf: unknown condition type " + c.Type)
		}
	}
	return in
}
