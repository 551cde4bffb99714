package controller

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/keys"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// The delivery check behind DeliveriesArriving. Connected says the endpoint exists and the
// receiver is Ready; it does not say that what Stripe posts to the public URL reaches the
// receiver (Ingress, DNS, TLS, NetworkPolicy). So, once an integration is connected, the
// operator checks at its own cadence, not every resync:
//
//  1. it posts a probe to the registered public URL (status.webhookURL) as Stripe posts a
//     delivery: a Stripe-shaped event of a type Stripe never sends, signed in Stripe-Signature
//     with the endpoint's signing secret, plus a probe marker (sigheader.ProbeHeader) in a
//     domain-separated scheme under the same secret. The receiver answers it with the clinic ID
//     and the probe's nonce and relays nothing. No redirects are followed.
//  2. it asks Stripe, in one call, whether events of the endpoint's types created since the
//     last check that found none (the endpoint's creation for the first; at most Stripe's retry
//     window back; the last two minutes left out, see defaultDeliverySettle) are undelivered:
//     GET /v1/events?delivery_success=false, which lists "events which are still pending or have
//     failed all delivery attempts to a webhook endpoint" (https://docs.stripe.com/api/events/list).
//
// Stripe's answer is the truth about Stripe's path; the probe only shows the path from inside the
// cluster, which may differ (split-horizon DNS, an egress proxy, a firewall that admits only
// Stripe's addresses). So a probe that cannot reach the URL while Stripe reports nothing
// undelivered says exactly that (Unknown), rather than guessing.
//
// Stripe budget: a check costs one Stripe call (the events list) per interval, made on a pass that
// runs anyway (no extra wake-up), and that pass lists no endpoints: it takes the Stripe part from
// the last Stripe pass (deliveryCheckStandsIn), so the events call, which proves the key as well,
// stands in for the resync's list. Each resync stays one Stripe call per integration, the
// delivery check included; endpoint drift is then found one resync later on those passes
// (docs/architecture.md).
const (
	// defaultDeliveryCheckInterval is how often a connected integration is checked by default.
	defaultDeliveryCheckInterval = 30 * time.Minute
	// deliveryProbeTimeout bounds one probe: connect, TLS, answer.
	deliveryProbeTimeout = 10 * time.Second
	// defaultDeliverySettle leaves events younger than this out of the undelivered-events read:
	// Stripe lists an event as undelivered from its creation until an endpoint took it, so the
	// first attempt of an event created a moment ago would otherwise read as a failure. The
	// next check's window starts where this one's ended, so nothing falls between.
	defaultDeliverySettle = 2 * time.Minute
	// maxProbeAnswer is how much of an answer the probe reads.
	maxProbeAnswer = 4 << 10
)

// deliveryCheck is one integration's check schedule, in memory only: a restarted manager checks
// each connected integration within one and a half intervals, and the stored condition stands
// until then.
type deliveryCheck struct {
	due time.Time
	// checkedUntil: events created before it were read at the previous check; zero before the
	// first.
	checkedUntil time.Time
	// endpointCreated is when Stripe created the current endpoint, as the last Stripe pass saw it.
	endpointCreated time.Time
}

func (r *StripeIntegrationReconciler) deliveryCheckInterval(si *paymentsv1alpha1.StripeIntegration) time.Duration {
	if r.DeliveryCheckIntervalFor != nil {
		if d := r.DeliveryCheckIntervalFor(si); d != 0 {
			return d
		}
	}
	if r.DeliveryCheckInterval == 0 {
		return defaultDeliveryCheckInterval
	}
	return r.DeliveryCheckInterval
}

func (r *StripeIntegrationReconciler) deliverySettleTime() time.Duration {
	if r.deliverySettle == 0 {
		return defaultDeliverySettle
	}
	return max(r.deliverySettle, 0)
}

// deliveryCheckStandsIn lets the pass in which an integration's delivery check is due take its
// Stripe part from the last Stripe pass's view instead of listing the endpoints: the check's one
// events call stands in for the resync's list (see the budget above). A view stands in once and
// only while it is at most two resync periods old and anything the Stripe pass depends on is
// unchanged (reuseViewOf); the next resync lists the endpoints again. A view built from status
// after a start does not stand in: its own deferred pass comes first.
func (r *StripeIntegrationReconciler) deliveryCheckStandsIn(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, obs *observation) bool {
	if !obs.deliveryDue {
		return false
	}
	v, ok := r.stripeViews.get(si.UID)
	if !ok || v.deferred || v.stoodIn || r.now().Sub(v.at) > 2*r.resyncPeriod() || !r.reuseViewOf(ctx, si, obs, v) {
		return false
	}
	v.stoodIn = true
	r.stripeViews.set(si.UID, v)
	return true
}

// deliveryCheckDue reports whether the integration's delivery check is due at the start of this
// pass. The pass decides once: were the check to fall due between the Stripe phase (which
// lists the endpoints because it was not due yet) and the delivery phase, the pass would make
// both calls; it runs on the next pass instead.
func (r *StripeIntegrationReconciler) deliveryCheckDue(si *paymentsv1alpha1.StripeIntegration) bool {
	if r.deliveryCheckInterval(si) < 0 {
		return false
	}
	sched, known := r.deliveryChecks.get(si.UID)
	return known && !r.now().Before(sched.due)
}

// reconcileDelivery runs the delivery check when it is due and reports DeliveriesArriving in
// obs.Informational; a pass that does not evaluate it leaves the stored condition as it is. An
// integration that is no longer connected (or suspended) gets Unknown NotConnected (Suspended)
// once it had the condition; one that never connected never gets it. With the check turned off
// the condition is removed.
func (r *StripeIntegrationReconciler) reconcileDelivery(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, obs *observation) {
	const ct = paymentsv1alpha1.ConditionDeliveriesArriving
	interval := r.deliveryCheckInterval(si)
	if interval < 0 {
		// Turned off: a condition from before would only grow stale.
		r.deliveryChecks.forget(si.UID)
		if meta.FindStatusCondition(si.Status.Conditions, ct) != nil {
			obs.Cleared = append(obs.Cleared, ct)
		}
		return
	}
	if obs.err != nil {
		return // a failed pass, retried with backoff: nothing new to say
	}
	if !connectedInPass(obs) {
		r.deliveryChecks.forget(si.UID)
		if meta.FindStatusCondition(si.Status.Conditions, ct) == nil {
			return
		}
		c := unknown(ct, paymentsv1alpha1.ReasonNotConnected, "the delivery check runs while the integration is Connected (see Connected)")
		if si.Spec.Suspend {
			c = unknown(ct, paymentsv1alpha1.ReasonSuspended, "spec.suspend is true: deliveries are not checked")
		}
		obs.Informational = append(obs.Informational, c)
		return
	}
	now := r.now()
	sched, known := r.deliveryChecks.get(si.UID)
	if obs.endpointCreated > 0 {
		sched.endpointCreated = time.Unix(obs.endpointCreated, 0)
	}
	if !known {
		// The first check of a newly connected integration, or of each one after a restart,
		// spread over [0.5, 1.5) intervals so that a restart does not check every clinic at once.
		sched.due = now.Add(interval/2 + time.Duration(rand.Float64()*float64(interval)))
	}
	if !obs.deliveryDue {
		// Not due when the pass began (deliveryCheckDue), or first seen connected now.
		r.deliveryChecks.set(si.UID, sched)
		return
	}
	c, until, ok := r.checkDelivery(ctx, si, obs, sched, interval)
	if !ok {
		r.deliveryChecks.set(si.UID, sched) // keys changed under the pass: the next pass checks
		return
	}
	sched.due = now.Add(jittered(interval, rand.Float64()))
	if !until.IsZero() {
		sched.checkedUntil = until
	}
	r.deliveryChecks.set(si.UID, sched)
	obs.Informational = append(obs.Informational, c)
	if r.Metrics != nil {
		r.Metrics.DeliveryChecks.WithLabelValues(string(si.Spec.Mode), c.Reason).Inc()
	}
}

// checkDelivery probes the public URL and reads Stripe's undelivered events. It returns the
// condition, the end of the window Stripe was asked about (zero when the read failed), and false
// when it could not run in this pass.
func (r *StripeIntegrationReconciler) checkDelivery(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, obs *observation,
	sched deliveryCheck, interval time.Duration) (condition, time.Time, bool) {
	const ct = paymentsv1alpha1.ConditionDeliveriesArriving
	log := logf.FromContext(ctx)
	sc := obs.stripe
	if sc == nil {
		// The pass reused its Stripe view: make a client for the keys the view was recorded for,
		// as the probe would. The keys are read again (no Stripe call) and must be the same.
		res, err := r.checkKeys(ctx, si)
		if err != nil || !res.OK() || keys.Fingerprint(res.Publishable.Value, res.Secret.Value) != obs.KeyFingerprint {
			return condition{}, time.Time{}, false
		}
		sc = r.Stripe.For(res.Secret.Value, res.Secret.Mode, si.Status.AccountID)
	}
	publicURL := si.Status.WebhookURL
	if obs.WebhookURL != nil {
		publicURL = *obs.WebhookURL
	}
	stored, err := r.readSigningSecret(ctx, si)
	if err != nil || stored.value == "" {
		return unknown(ct, paymentsv1alpha1.ReasonDeliveryCheckFailed,
			"the signing secret could not be read, so no probe could be signed; retried at the next check"), time.Time{}, true
	}
	probe := r.sendDeliveryProbe(ctx, publicURL, si, stored.value)

	now := r.now()
	from := sched.checkedUntil
	if from.IsZero() {
		from = sched.endpointCreated
	}
	if from.IsZero() {
		from = now.Add(-interval) // not seen yet (a restart): the last interval
	}
	if sched.endpointCreated.After(from) {
		from = sched.endpointCreated // events before the current endpoint are not its deliveries
	}
	if oldest := now.Add(-retryWindow(si)); from.Before(oldest) {
		from = oldest // Stripe has stopped retrying older ones: a replay is their remedy
	}
	until := now.Add(-r.deliverySettleTime()).Truncate(time.Second)
	if until.Before(from) {
		until = from
	}
	types := desiredEndpoint(si, r.WebhookBaseURL, stripeclient.APIVersion).EnabledEvents
	if len(types) > maxEventTypesFilter || slices.Contains(types, "*") {
		types = nil // all types: Stripe filters by at most 20
	}
	// One request: the first page of at most 100 undelivered events in [from, until). More than
	// one is reported as ErrTooManyEvents, which is as good an answer.
	events, err := sc.ListEvents(ctx, stripeclient.EventWindow{From: from, To: until, Types: types, Undelivered: true, Max: 1})
	undelivered := len(events) > 0 || errors.Is(err, stripeclient.ErrTooManyEvents)
	if undelivered {
		err = nil
	}
	if err != nil {
		log.Info("Reading Stripe's undelivered events failed", "reason", stripeclient.Redact(err.Error()))
	}
	if err != nil || undelivered {
		// The window is read again next time: an undelivered event is reported until Stripe
		// delivers it or its retry window has passed, not only at the check that first saw it.
		until = time.Time{}
	}
	c := deliveryCondition(publicURL, probe, undelivered, err)
	log.V(1).Info("Delivery check", "reason", c.Reason, "probe", probe.kind)
	return c, until, true
}

// maxEventTypesFilter is how many types Stripe's types[] filter takes.
const maxEventTypesFilter = 20

// probeKind is what the probe through the public URL found.
type probeKind string

const (
	probeReached     probeKind = "reached"     // this clinic's receiver answered with the nonce
	probeUnreachable probeKind = "unreachable" // DNS, connect, timeout or TLS error
	probeOther       probeKind = "other"       // an answer without the nonce
)

// probeOutcome is the probe's finding; detail is safe for status (an error class or an HTTP
// status, never a body or a secret).
type probeOutcome struct {
	kind   probeKind
	detail string
}

// sendDeliveryProbe posts one signed probe to publicURL and classifies what happened.
func (r *StripeIntegrationReconciler) sendDeliveryProbe(ctx context.Context, publicURL string, si *paymentsv1alpha1.StripeIntegration,
	secret string) probeOutcome {
	nonce := crand.Text()
	body := probeEvent(nonce, si, r.now())
	ctx, cancel := context.WithTimeout(ctx, deliveryProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, publicURL, bytes.NewReader(body))
	if err != nil {
		return probeOutcome{kind: probeUnreachable, detail: "the URL is not valid"}
	}
	// As Stripe posts a delivery (https://docs.stripe.com/webhooks#verify-events): JSON body,
	// Stripe-Signature t=…,v1=HMAC-SHA256("<t>.<body>") with the endpoint's signing secret.
	now := r.now()
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "stripe-operator-delivery-probe/1")
	req.Header.Set("Stripe-Signature", sigheader.Sign([]byte(secret), now, body))
	req.Header.Set(sigheader.ProbeHeader, sigheader.SignProbe(secret, now, body))
	resp, err := r.probeHTTPClient().Do(req)
	if err != nil {
		return probeOutcome{kind: probeUnreachable, detail: dialErrorClass(err, req.URL)}
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxProbeAnswer))
	var answer sigheader.ProbeAnswer
	_ = json.Unmarshal(raw, &answer) // anything but a probe answer is "other"
	switch {
	case resp.StatusCode == http.StatusOK && answer.Status == sigheader.ProbeStatus && answer.Nonce == nonce &&
		answer.ClinicID == si.Spec.ClinicID:
		return probeOutcome{kind: probeReached}
	case answer.Status == sigheader.ProbeStatus && answer.Nonce == nonce:
		return probeOutcome{kind: probeOther, detail: fmt.Sprintf("HTTP %d from another clinic's receiver", resp.StatusCode)}
	case resp.StatusCode/100 == 3:
		return probeOutcome{kind: probeOther, detail: fmt.Sprintf("HTTP %d, a redirect (not followed: a webhook URL must answer itself)", resp.StatusCode)}
	case answer.Status == "rejected":
		return probeOutcome{kind: probeOther, detail: fmt.Sprintf(
			"HTTP %d from a receiver that refused the signature (another clinic's receiver, or one without this endpoint's signing secret)",
			resp.StatusCode)}
	}
	return probeOutcome{kind: probeOther, detail: fmt.Sprintf("HTTP %d", resp.StatusCode)}
}

// probeEvent renders the probe: Stripe's event shape, a type Stripe never sends, the mode's
// livemode and the API version the operator pins endpoints to.
func probeEvent(nonce string, si *paymentsv1alpha1.StripeIntegration, now time.Time) []byte {
	b, _ := json.Marshal(map[string]any{ // plain data: cannot fail
		"id":               sigheader.ProbeEventIDPrefix + nonce,
		"object":           "event",
		"api_version":      stripeclient.APIVersion,
		"created":          now.Unix(),
		"livemode":         si.Spec.Mode == paymentsv1alpha1.ModeLive,
		"type":             sigheader.ProbeEventType,
		"pending_webhooks": 1,
		"request":          map[string]any{"id": nil, "idempotency_key": nil},
		"data": map[string]any{"object": map[string]any{
			"object":    "clinicpay_delivery_probe",
			"id":        "probe_" + nonce,
			"clinic_id": si.Spec.ClinicID,
		}},
	})
	return b
}

// probeHTTPClient is DeliveryProbeHTTPClient or one with the probe's timeout that follows no
// redirect: Stripe posts to the URL itself, and an answer elsewhere proves nothing about it.
func (r *StripeIntegrationReconciler) probeHTTPClient() *http.Client {
	if r.DeliveryProbeHTTPClient != nil {
		return r.DeliveryProbeHTTPClient
	}
	return &http.Client{
		Timeout:       deliveryProbeTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// dialErrorClass names the class of a failed request without addresses, ports or timings, so
// that the same failure gives the same message every time (and status is not rewritten).
func dialErrorClass(err error, u *url.URL) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var recordErr tls.RecordHeaderError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("DNS lookup of %s failed", u.Hostname())
	case errors.As(err, &unknownCA):
		return "TLS: certificate signed by an unknown authority"
	case errors.As(err, &hostErr):
		return fmt.Sprintf("TLS: certificate not valid for %s", u.Hostname())
	case errors.As(err, &invalidCert):
		return "TLS: certificate invalid or expired"
	case errors.As(err, &certErr), errors.As(err, &recordErr):
		return "TLS handshake failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("no answer within %s", deliveryProbeTimeout)
	}
	return "connection failed"
}

// deliveryCondition is pure: DeliveriesArriving from the probe's outcome and Stripe's answer.
// Stripe's report of undelivered events wins; then a probe answered by something else; then a
// URL the cluster cannot reach, which Stripe's silence leaves Unknown, not False.
func deliveryCondition(publicURL string, p probeOutcome, undelivered bool, stripeErr error) condition {
	const ct = paymentsv1alpha1.ConditionDeliveriesArriving
	probeNote := ""
	switch p.kind {
	case probeUnreachable:
		probeNote = fmt.Sprintf("; the operator also cannot reach %s from inside the cluster (%s)", publicURL, p.detail)
	case probeOther:
		probeNote = fmt.Sprintf("; a signed probe to %s was answered %s, not by this clinic's receiver", publicURL, p.detail)
	case probeReached:
		probeNote = "; a signed probe through the public URL did reach this clinic's receiver, so look at the receiver's relays " +
			"(stripe_receiver_events_total{result=\"failed\"}) and the Stripe dashboard's delivery attempts"
	}
	if undelivered {
		return falseCond(ct, paymentsv1alpha1.ReasonStripeDeliveriesFailing,
			"Stripe reports undelivered events of the endpoint's types (GET /v1/events?delivery_success=false, events created since the last "+
				"check that found none, at most Stripe's retry window back; Stripe does not say to which of the account's endpoints)"+probeNote)
	}
	stripeNote, stripeCond := "Stripe reports no undelivered events since the previous check", condition{}
	if stripeErr != nil {
		stripeNote, stripeCond = "Stripe's undelivered events could not be read", eventsErrorCondition(stripeErr)
	}
	switch p.kind {
	case probeOther:
		return falseCond(ct, paymentsv1alpha1.ReasonProbeAnsweredByOther, fmt.Sprintf(
			"a signed probe posted to %s was answered %s without the probe's nonce: from inside the cluster something other than this clinic's "+
				"receiver answers that URL (an Ingress without a rule for the path, another service, a proxy); %s", publicURL, p.detail, stripeNote))
	case probeUnreachable:
		if stripeErr != nil {
			return unknown(ct, paymentsv1alpha1.ReasonPublicURLUnreachable, fmt.Sprintf(
				"the operator cannot reach %s from inside the cluster (%s), and %s (%s)", publicURL, p.detail, stripeNote, stripeCond.Message))
		}
		return unknown(ct, paymentsv1alpha1.ReasonPublicURLUnreachable, fmt.Sprintf(
			"the operator cannot reach %s from inside the cluster (%s); %s, so deliveries may still arrive", publicURL, p.detail, stripeNote))
	}
	if stripeErr != nil {
		return unknown(ct, stripeCond.Reason, "a signed probe through the public URL reached this clinic's receiver, but "+stripeNote+": "+
			stripeCond.Message)
	}
	return trueCond(ct, paymentsv1alpha1.ReasonDeliveriesArriving,
		"a signed probe posted to "+publicURL+" as Stripe posts reached this clinic's receiver, and "+stripeNote)
}

// eventsErrorCondition names why the events list failed; only Reason and Message are used.
func eventsErrorCondition(err error) condition {
	e := stripeclient.Classify(err)
	switch e.Kind {
	case stripeclient.KindPermissionDenied:
		return condition{Reason: paymentsv1alpha1.ReasonEventPermissionMissing,
			Message: "the restricted key may not read events; grant rak_event_read"}
	case stripeclient.KindRateLimited:
		return condition{Reason: paymentsv1alpha1.ReasonRateLimited, Message: "Stripe rate-limited the events list; read again at the next check"}
	case stripeclient.KindUnavailable:
		return condition{Reason: paymentsv1alpha1.ReasonStripeUnavailable, Message: "Stripe is unavailable; read again at the next check"}
	}
	return condition{Reason: paymentsv1alpha1.ReasonDeliveryCheckFailed,
		Message: stripeclient.Redact("Stripe answered the events list with an unexpected error: " + e.Error())}
}
