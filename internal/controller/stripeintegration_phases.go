package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/keys"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// observation is what one reconcile pass learned: the statusInput that computeStatus turns into
// status, and what the rest of the pass needs besides.
type observation struct {
	statusInput

	replayRunning    bool                // a replay goes on: the next pass starts soon
	followUp         bool                // an endpoint retires or a gap waits: next pass within followUpInterval
	endpointCreated  int64               // when Stripe created the current endpoint (Unix), 0 unknown
	retiringUnlisted string              // a retiring endpoint the key's account did not list (another account's?)
	stripe           stripeclient.Client // set when Stripe accepted the key in this pass
	reusedView       bool                // the Stripe part came from a fresh stripeView, without calls
	stripeDue        time.Time           // a view built after a start: the deferred Stripe pass is due then
	// stripeFor builds a client for the key a reused view was recorded for, without a Stripe call,
	// for a finance check due in a pass that made none (stripe nil); nil otherwise.
	stripeFor func() stripeclient.Client
	// financeDue is when the next finance check is due (zero: none scheduled); the pass is
	// requeued by then.
	financeDue time.Time
	// deliveryDue: the delivery check was due when the Stripe phase began (deliveryCheckDue);
	// the pass runs it then, and only then.
	deliveryDue bool
	// receiverCreated is when the receiver Deployment was created, as the cache shows it (zero:
	// not in the cache yet, just applied).
	receiverCreated time.Time
	// err is a transient failure: status is still written, then the pass is retried with backoff.
	err error
}

// reconcilePhases runs the phases in order and returns what they found. They act, not only look:
// the webhook phase creates, repairs and deletes Stripe endpoints, the receiver phase applies the
// receiver objects, replay re-sends events. A phase that cannot run leaves the later ones an honest
// reason.
func (r *StripeIntegrationReconciler) reconcilePhases(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) observation {
	obs := r.reconcileStripe(ctx, si)
	// The receiver needs no Stripe call: it is kept running whatever Stripe or the keys say, as
	// long as a signing secret exists.
	r.reconcileReceiver(ctx, si, &obs)
	if obs.stripe != nil && obs.Webhook.Status == metav1.ConditionTrue && obs.Receiver.Status == metav1.ConditionTrue {
		r.reconcileReplay(ctx, si, obs.stripe, &obs)
		r.reconcileGapRedelivery(ctx, si, obs.stripe, &obs)
	} else if gapPending(si) {
		obs.followUp = true
	}
	r.reconcilePayouts(ctx, si, &obs)
	r.reconcileDelivery(ctx, si, &obs)
	r.reconcileAnomalies(ctx, si, &obs)
	switch {
	case obs.stripe != nil:
		r.recordView(si, &obs) // this pass asked Stripe
	case obs.err != nil || !obs.reusedView:
		r.stripeViews.forget(si.UID)
	}
	return obs
}

// connectedInPass reports whether this pass found the four conditions behind Connected True: what
// the checks that run beside the resync need (the delivery check, the finance checks: Stripe
// accepts the key, the endpoint whose signing secret signs their messages and the receiver are
// ready).
func connectedInPass(obs *observation) bool {
	for _, c := range []condition{obs.KeysValid, obs.Authenticated, obs.Webhook, obs.Receiver} {
		if c.Status != metav1.ConditionTrue {
			return false
		}
	}
	return true
}

// reconcileStripe runs the key, probe and webhook endpoint phases.
func (r *StripeIntegrationReconciler) reconcileStripe(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) observation {
	var obs observation
	res, err := r.checkKeys(ctx, si)
	if err != nil {
		obs.KeysValid = unknown(paymentsv1alpha1.ConditionKeysValid, paymentsv1alpha1.ReasonSecretReadFailed,
			"reading the credentials Secret failed; retrying with backoff")
		obs.Authenticated = unknown(paymentsv1alpha1.ConditionAuthenticated, paymentsv1alpha1.ReasonKeysNotValid,
			"not probed: the keys could not be read")
		obs.Webhook = unknown(paymentsv1alpha1.ConditionWebhookEndpointReady, paymentsv1alpha1.ReasonKeysNotValid,
			"not checked: the keys could not be read")
		obs.err = err
		return obs
	}
	obs.KeysValid = keysCondition(res)
	if !res.OK() {
		obs.Authenticated = unknown(paymentsv1alpha1.ConditionAuthenticated, paymentsv1alpha1.ReasonKeysNotValid,
			"not probed: fix the keys first (see KeysValid)")
		obs.Webhook = unknown(paymentsv1alpha1.ConditionWebhookEndpointReady, paymentsv1alpha1.ReasonKeysNotValid,
			"not checked: fix the keys first (see KeysValid)")
		return obs
	}
	// Before any Stripe call, an endpoint must never exist that its keys could not remove; and only a
	// Secret whose keys passed the policy is protected, so naming another Secret changes nothing of it.
	if err := r.protectCredentials(ctx, si); err != nil {
		return credentialsUnprotected(obs, err)
	}
	obs.Mode = res.Secret.Mode
	obs.KeyFingerprint = keys.Fingerprint(res.Publishable.Value, res.Secret.Value)
	if si.Spec.Suspend {
		const msg = "spec.suspend is true: no Stripe calls are made and the endpoint is left as it is"
		obs.Authenticated = unknown(paymentsv1alpha1.ConditionAuthenticated, paymentsv1alpha1.ReasonSuspended, msg)
		obs.Webhook = unknown(paymentsv1alpha1.ConditionWebhookEndpointReady, paymentsv1alpha1.ReasonSuspended, msg)
		return obs
	}
	obs.deliveryDue = r.deliveryCheckDue(si)
	if r.reuseView(ctx, si, &obs) || r.deferAfterStart(ctx, si, &obs) || r.deliveryCheckStandsIn(ctx, si, &obs) {
		obs.reusedView = true
		obs.stripeFor = r.viewClient(si, res.Secret, obs.KeyFingerprint)
		return obs
	}
	pr := r.probe(ctx, si, res, &obs)
	if !pr.ok {
		obs.Webhook = unknown(paymentsv1alpha1.ConditionWebhookEndpointReady, paymentsv1alpha1.ReasonNotAuthenticated,
			"not checked: Stripe did not accept the key (see Authenticated)")
		if obs.Authenticated.Transient {
			obs.Webhook.Message = "not checked: the Stripe probe failed (see Authenticated)"
			obs.Webhook.Transient = true
		}
		return obs
	}
	obs.stripe = pr.client
	r.reconcileEndpoint(ctx, si, pr.client, pr.endpoints, &obs)
	if obs.Webhook.Status != metav1.ConditionTrue && stripeTransient(obs.err) {
		obs.Webhook.Transient = true
	}
	if pr.keysChanged && obs.Webhook.Status == metav1.ConditionTrue {
		r.cleanupPreviousAccount(ctx, si, pr, &obs)
	}
	if obs.err == nil {
		r.rememberKey(si.UID, pr.fingerprint, res.Secret)
	}
	return obs
}

// credentialsUnprotected reports a pass that stops because the credentials Secret could not be
// protected: it is being deleted (until it is gone; its deletion brings the object back), or the
// patch failed (retried with backoff).
func credentialsUnprotected(obs observation, err error) observation {
	const notProbed = "not probed: the credentials Secret is not protected against deletion yet"
	obs.Authenticated = unknown(paymentsv1alpha1.ConditionAuthenticated, paymentsv1alpha1.ReasonKeysNotValid, notProbed)
	obs.Webhook = unknown(paymentsv1alpha1.ConditionWebhookEndpointReady, paymentsv1alpha1.ReasonKeysNotValid, notProbed)
	if errors.Is(err, errCredentialsTerminating) {
		obs.KeysValid = falseCond(paymentsv1alpha1.ConditionKeysValid, paymentsv1alpha1.ReasonSecretTerminating,
			"the credentials Secret is being deleted; no Stripe call is made with keys that could not remove the endpoint later")
		return obs
	}
	obs.err = err
	return obs
}

// checkKeys reads the credentials Secret and applies the key policy. Only transient read errors are
// returned; a missing Secret is a policy result, and the Secret watch brings the object back here.
func (r *StripeIntegrationReconciler) checkKeys(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) (keys.Result, error) {
	ref := si.Spec.CredentialsSecretRef
	pubName, secName := orDefault(ref.PublishableKeyKey, paymentsv1alpha1.DefaultPublishableKeyKey),
		orDefault(ref.SecretKeyKey, paymentsv1alpha1.DefaultSecretKeyKey)
	secret := &corev1.Secret{}
	if err := r.getSecret(ctx, types.NamespacedName{Namespace: si.Namespace, Name: ref.Name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return keys.Result{
				Reason: paymentsv1alpha1.ReasonSecretNotFound,
				Message: fmt.Sprintf("Secret %q not found in namespace %q; create it with the data keys %q and %q",
					ref.Name, si.Namespace, pubName, secName),
			}, nil
		}
		return keys.Result{}, fmt.Errorf("reading Secret %s/%s: %w", si.Namespace, ref.Name, err)
	}
	pub, hasPub := secret.Data[pubName]
	sec, hasSec := secret.Data[secName]
	return keys.Check(keys.Input{
		Mode:               si.Spec.Mode,
		PublishableKeyName: pubName,
		SecretKeyName:      secName,
		PublishableKey:     pub,
		HasPublishableKey:  hasPub,
		SecretKey:          sec,
		HasSecretKey:       hasSec,
	}), nil
}

// probeResult is what the probe hands to the webhook phase.
type probeResult struct {
	ok          bool
	client      stripeclient.Client
	endpoints   []stripeclient.Endpoint
	fingerprint string
	keysChanged bool // other keys than the ones Stripe last accepted
	newAccount  string
}

// probe proves the key against Stripe by listing webhook endpoints, which restricted keys can
// usually do (and which the webhook phase needs anyway), and looks up the account id when the keys
// changed.
func (r *StripeIntegrationReconciler) probe(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, res keys.Result,
	obs *observation) probeResult {
	log := logf.FromContext(ctx)
	pr := probeResult{fingerprint: obs.KeyFingerprint}
	pr.keysChanged = si.Status.KeyFingerprint != "" && pr.fingerprint != si.Status.KeyFingerprint
	limiterKey := si.Status.AccountID
	if pr.fingerprint != si.Status.KeyFingerprint {
		limiterKey = ""
	}
	pr.client = r.Stripe.For(res.Secret.Value, res.Secret.Mode, limiterKey)

	endpoints, err := pr.client.ListWebhookEndpoints(ctx)
	obs.Probed = true
	obs.Authenticated = authCondition(err)
	reason := obs.Authenticated.Reason
	r.recordProbe(si, res.Secret.Mode, reason)
	if err != nil {
		if isTransient(err) {
			obs.err = fmt.Errorf("probing Stripe: %w", err)
			obs.Authenticated.Transient = stripeTransient(err)
		}
		log.Info("Stripe probe failed", "reason", reason)
		return pr
	}
	pr.ok, pr.endpoints = true, endpoints
	if pr.fingerprint == si.Status.KeyFingerprint {
		return pr
	}
	acct, err := pr.client.GetAccount(ctx)
	switch {
	case err == nil:
		obs.AccountID, pr.newAccount = &acct.ID, acct.ID
	case isTransient(err):
		// Keep the stored fingerprint so the next pass looks the account up again.
		obs.err = fmt.Errorf("reading Stripe account: %w", err)
		return pr
	default:
		// Restricted keys often may not read /v1/account; the account id then stays unknown.
		empty := ""
		obs.AccountID = &empty
	}
	obs.KeysAccepted = true
	return pr
}

func (r *StripeIntegrationReconciler) recordProbe(si *paymentsv1alpha1.StripeIntegration, mode paymentsv1alpha1.Mode, reason string) {
	if r.Metrics == nil {
		return
	}
	r.Metrics.ProbeTotal.WithLabelValues(string(mode), reason).Inc()
	r.Metrics.LastProbe.WithLabelValues(si.Namespace, si.Name).Set(float64(r.now().Unix()))
}

func isTransient(err error) bool {
	var se *stripeclient.Error
	if errors.As(err, &se) {
		return se.Transient()
	}
	return true
}

// stripeTransient reports whether err is a Stripe failure that retrying may clear (429, 5xx,
// 409, timeout). Unlike isTransient it is false for apiserver errors: only Stripe's are graced.
func stripeTransient(err error) bool {
	var se *stripeclient.Error
	return errors.As(err, &se) && se.Transient()
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
