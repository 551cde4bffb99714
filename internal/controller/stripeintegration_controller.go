// Package controller reconciles StripeIntegrations: it checks the clinic's keys, proves them
// against Stripe and reports the result in status.
package controller

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/metrics"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

const (
	// Finalizer holds a StripeIntegration until what the operator created for it is removed.
	Finalizer = "payments.clinicpay.dev/finalizer"

	// secretRefIndex indexes StripeIntegrations by the Secret they reference for their Stripe keys.
	secretRefIndex = ".spec.credentialsSecretRef.name"
	// forwardSecretIndex indexes StripeIntegrations by the Secrets they name as forward credentials.
	forwardSecretIndex = ".spec.receiver.forward.secretRefs"
	// signingSecretIndex indexes StripeIntegrations by the name their signing Secret must have, so a
	// foreign Secret that blocks it brings the integration back when it goes.
	signingSecretIndex = ".signingSecretName"

	defaultResyncPeriod = 10 * time.Minute
	// resyncJitter spreads periodic probes of many clinics over time (±10 %).
	resyncJitter = 0.1
	// conflictRetryDelay is how soon a pass whose status write lost an optimistic-lock race runs again.
	conflictRetryDelay = 200 * time.Millisecond
)

// StripeClients hands out a Stripe client for one clinic's key. *stripeclient.Factory implements it.
type StripeClients interface {
	For(secretKey string, mode paymentsv1alpha1.Mode, limiterKey string) stripeclient.Client
}

// StripeIntegrationReconciler reconciles a StripeIntegration object.
type StripeIntegrationReconciler struct {
	// Client reads and writes StripeIntegrations through the manager's cache.
	Client client.Client
	// SecretReader reads credentials Secrets straight from the apiserver, so the manager never
	// caches the data of every Secret in the cluster.
	SecretReader client.Reader
	Recorder     events.EventRecorder
	Stripe       StripeClients
	Clock        clock.PassiveClock
	Metrics      *metrics.Metrics
	// ResyncPeriod is the base period between probes when nothing changes (jittered ±10 %).
	ResyncPeriod time.Duration
	// MaxConcurrentReconciles bounds parallel reconciles (and so parallel Stripe calls).
	MaxConcurrentReconciles int
	// RetryBaseDelay and RetryMaxDelay bound the exponential backoff after transient errors.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// ReceiverImage is the container image of the per-clinic receivers (it holds /receiver).
	ReceiverImage string
	// WebhookBaseURL is the public base URL of the receivers, used when spec.webhook gives none.
	WebhookBaseURL string
	// IngressAnnotationAllowlist is what spec.webhook.ingress.annotations may hold: keys, or
	// prefixes ending in "*". DefaultIngressAnnotationAllowlist when nil.
	IngressAnnotationAllowlist []string

	// ReceiverURL gives the URL replays are delivered to; DefaultReceiverURL (the receiver
	// Service) when nil. Tests and the demo point it at a local receiver.
	ReceiverURL func(*paymentsv1alpha1.StripeIntegration) string
	// ReplayHTTPClient delivers replays; a client with a 15 s timeout when nil.
	ReplayHTTPClient *http.Client

	// previousKeys remembers, in memory only, the last key Stripe accepted per integration.
	previousKeys uidMemory[rememberedKey]
	// stripeViews remembers, in memory only, what the last successful Stripe pass saw.
	stripeViews uidMemory[stripeView]
	// startConsidered marks the integrations whose first pass since the start was considered for
	// deferring its Stripe pass (deferAfterStart): only that pass may.
	startConsidered uidMemory[struct{}]
	// started is when this process reconciled for the first time (as leader): the Stripe passes
	// that status lets it defer are spread over the resync period from then (deferAfterStart).
	started   time.Time
	startOnce sync.Once

	// PayoutCheckInterval is the base period between payout checks of an integration with
	// spec.finance.payouts.enabled (jittered ±10 %); DefaultPayoutCheckInterval when 0.
	PayoutCheckInterval time.Duration
	// payoutChecks remembers, in memory only, when each integration's next payout check is due.
	payoutChecks uidMemory[payoutSchedule]

	// ReceiverTraffic says which peers the receivers' NetworkPolicy admits (manager flags
	// --receiver-*-from-*); the zero value is the documented default.
	ReceiverTraffic ReceiverTraffic
	// TransientFailureGrace is how long a run of transient Stripe failures (429, 5xx, timeouts)
	// leaves True conditions True; 0 reports the first failure at once.
	TransientFailureGrace time.Duration
	// failingSince remembers, in memory only, when each integration's current run of transient
	// Stripe failures began: a restarted manager starts the grace again.
	failingSince uidMemory[time.Time]
	// replayWindows remembers, in memory only, the window length each integration's running
	// replay last listed, so the next pass starts with a window of the right size.
	replayWindows uidMemory[time.Duration]
	// AnomalyCheckInterval is how often a clinic with anomaly flags on has its events checked
	// (jittered ±10 %); 5 minutes when zero.
	AnomalyCheckInterval time.Duration
	// anomalies holds, in memory only, each integration's anomaly detector and check progress;
	// anomaliesMu makes finding or replacing one atomic.
	anomalies   uidMemory[*anomalyState]
	anomaliesMu sync.Mutex
	// statusWrites remembers, in memory only, the resourceVersion each integration's last status
	// write replaced, to recognise a cached copy that has not seen that write yet.
	statusWrites uidMemory[statusWrite]

	// DeliveryCheckInterval is the base period of the delivery check behind DeliveriesArriving
	// (jittered ±10 %): a signed probe through the public URL and one Stripe call
	// (delivery_probe.go). 0 means 30 min; negative turns the check off.
	DeliveryCheckInterval time.Duration
	// DeliveryCheckIntervalFor, when set, gives an integration its own interval (0 keeps
	// DeliveryCheckInterval): tests check their clinics often without changing the Stripe
	// budget of every other clinic.
	DeliveryCheckIntervalFor func(*paymentsv1alpha1.StripeIntegration) time.Duration
	// DeliveryProbeHTTPClient posts delivery probes; when nil, a client with a 10 s timeout that
	// follows no redirect.
	DeliveryProbeHTTPClient *http.Client
	// deliveryChecks remembers, in memory only, each connected integration's check schedule.
	deliveryChecks uidMemory[deliveryCheck]
	// FirstStatusHold is how long a new integration's first status write may wait for its
	// receiver to become available, when nothing else is amiss (firstStatusHold); 0 writes it at
	// once.
	FirstStatusHold time.Duration
	// FirstStatusHoldFor, when set, gives an integration its own hold (0 keeps FirstStatusHold):
	// tests hold the clinics that test the hold and no other.
	FirstStatusHoldFor func(*paymentsv1alpha1.StripeIntegration) time.Duration
	// secretReads remembers the Secrets read past the cache, by resourceVersion (secret_reads.go).
	secretReads secretReads
	// ownCreates remembers the receiver objects a pass created until the cache shows them
	// (own_creates.go).
	ownCreates uidMemory[ownCreated]
	// holdStarts remembers when a held first status began to wait, for a receiver Deployment the
	// cache did not show yet.
	holdStarts uidMemory[time.Time]
	// deliverySettle is how young an event may be and still not count as undelivered
	// (defaultDeliverySettle when 0; tests shorten it).
	deliverySettle time.Duration
}

// RBAC: reads are get/list/watch (list already discloses what get would); writes are exactly the
// verbs the code issues. Server-side apply needs create and patch; owned objects go with their
// owner through garbage collection, so nothing is deleted but a stale Ingress or
// PodDisruptionBudget, a receiver Deployment under its pre-upgrade dotted name, and a receiver
// Service an older version created with a ClusterIP (replaced by a headless one). The
// finalizers subresource lets owned objects carry blockOwnerDeletion.
// +kubebuilder:rbac:groups=payments.clinicpay.dev,resources=stripeintegrations,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=payments.clinicpay.dev,resources=stripeintegrations/status,verbs=patch
// +kubebuilder:rbac:groups=payments.clinicpay.dev,resources=stripeintegrations/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete

// Reconcile moves one StripeIntegration towards Connected: finalizer, then the phases, then one
// status write when (and only when) the observed state changed.
func (r *StripeIntegrationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	r.startOnce.Do(func() { r.started = r.now() })
	si := &paymentsv1alpha1.StripeIntegration{}
	if err := r.Client.Get(ctx, req.NamespacedName, si); err != nil {
		if apierrors.IsNotFound(err) && r.Metrics != nil {
			r.Metrics.FailingSince.DeleteLabelValues(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.cacheBehindOwnStatus(si) {
		// A pass from this copy would compute status over a stale one and lose the optimistic
		// lock: a 409 that costs a write and another pass. The cache catches up in moments.
		return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
	}
	if !si.DeletionTimestamp.IsZero() {
		r.trackTransient(si, nil)
		r.forgetAnomalies(si)
		return r.reconcileDelete(ctx, si)
	}
	if r.cacheBehindOwnCreates(ctx, si) {
		// The receiver objects the last pass created are on their way into the cache; a pass
		// now would apply them again.
		return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
	}
	if !controllerutil.ContainsFinalizer(si, Finalizer) {
		orig := si.DeepCopy()
		controllerutil.AddFinalizer(si, Finalizer)
		if err := r.Client.Patch(ctx, si, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer: %w", err)
		}
	}
	obs := r.reconcilePhases(ctx, si)
	in := obs.statusInput
	in.Succeeded = obs.err == nil
	in.FailingSince, in.Grace = r.trackTransient(si, obs.err), r.TransientFailureGrace
	newStatus := computeStatus(si.Status, si.Generation, in, r.now())
	if hold := r.firstStatusHold(si, &obs, r.now()); hold > 0 {
		return ctrl.Result{RequeueAfter: hold}, nil
	}
	if err := r.writeStatus(ctx, si, newStatus); err != nil {
		if apierrors.IsConflict(err) {
			// This pass started from an object that has changed since (the cache lagged behind
			// a write): its status is stale, so try again from the current one.
			return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
		}
		return ctrl.Result{}, err
	}
	if obs.err != nil {
		// Returning the error hands the retry to the workqueue's exponential backoff.
		return ctrl.Result{}, obs.err
	}
	if obs.replayRunning {
		return ctrl.Result{RequeueAfter: replayPassInterval}, nil
	}
	next := jittered(r.resyncPeriod(), rand.Float64())
	if obs.followUp {
		next = min(next, followUpInterval)
	}
	next = untilDue(next, obs.financeDue, r.now())
	if !obs.stripeDue.IsZero() {
		// The Stripe pass this start deferred runs when due, not a whole period later, and at
		// normal priority: the first passes of a start come from the informers' initial lists at
		// controller-runtime's low priority, and a due pass queued behind all of them would make
		// the passes due meanwhile fire together once they are done.
		// Its offset is within one period, but may be past this pass's jittered period, which
		// must not pull it earlier; a follow-up still comes first.
		after := max(obs.stripeDue.Sub(r.now()), time.Millisecond)
		if obs.followUp {
			after = min(after, followUpInterval)
		}
		after = untilDue(after, obs.financeDue, r.now())
		return ctrl.Result{RequeueAfter: after, Priority: ptr.To(0)}, nil
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// jittered spreads d by ±resyncJitter: u in [0, 1) maps linearly onto [d-10 %, d+10 %). A
// symmetric spread keeps the mean period at d (wait.Jitter only adds, +0–10 %).
func jittered(d time.Duration, u float64) time.Duration {
	return d + time.Duration((2*u-1)*resyncJitter*float64(d))
}

// writeStatus patches status when it differs from what is stored and announces condition changes.
func (r *StripeIntegrationReconciler) writeStatus(ctx context.Context, si *paymentsv1alpha1.StripeIntegration,
	newStatus paymentsv1alpha1.StripeIntegrationStatus) error {
	if equality.Semantic.DeepEqual(si.Status, newStatus) {
		return nil
	}
	orig := si.DeepCopy()
	si.Status = newStatus
	// Optimistic lock: a pass that started from a stale copy must not overwrite a newer status.
	if err := r.Client.Status().Patch(ctx, si, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	r.statusWrites.set(si.UID, statusWrite{replaced: orig.ResourceVersion, at: r.now()})
	if r.Metrics != nil {
		r.Metrics.StatusWrites.Inc()
	}
	if t := statusEvent(orig.Status.Conditions, newStatus.Conditions); t != nil {
		r.Recorder.Eventf(si, nil, t.eventType, t.reason, "Reconcile", "%s", t.note)
	}
	return nil
}

// statusWrite is the resourceVersion a status write replaced, and when.
type statusWrite struct {
	replaced string
	at       time.Time
}

// staleCacheWait bounds how long a pass waits for the cache to show its last status write; past
// it the pass runs from what the cache holds, as it did before (at worst a 409 and a retry).
const staleCacheWait = 10 * time.Second

// cacheBehindOwnStatus reports whether si is the very copy this manager's last status write for it
// replaced: a follow-up pass queued by the first pass's own writes often starts before the watch
// has delivered the status write. resourceVersions are compared for equality only.
func (r *StripeIntegrationReconciler) cacheBehindOwnStatus(si *paymentsv1alpha1.StripeIntegration) bool {
	w, ok := r.statusWrites.get(si.UID)
	if !ok {
		return false
	}
	if si.ResourceVersion == w.replaced && r.now().Sub(w.at) < staleCacheWait {
		return true
	}
	r.statusWrites.forget(si.UID)
	return false
}

// trackTransient returns when the integration's current run of transient Stripe failures began,
// or zero when this pass ended one. A pass that failed for another reason (the apiserver) says
// nothing about Stripe and leaves the run as it was.
func (r *StripeIntegrationReconciler) trackTransient(si *paymentsv1alpha1.StripeIntegration, passErr error) time.Time {
	since, failing := r.failingSince.get(si.UID)
	switch {
	case stripeTransient(passErr) && !failing:
		since = r.now()
		r.failingSince.set(si.UID, since)
	case passErr == nil && failing:
		r.failingSince.forget(si.UID)
		since = time.Time{}
	}
	if r.Metrics != nil {
		if since.IsZero() {
			r.Metrics.FailingSince.DeleteLabelValues(si.Namespace, si.Name)
		} else {
			r.Metrics.FailingSince.WithLabelValues(si.Namespace, si.Name).Set(float64(since.Unix()))
		}
	}
	return since
}

func (r *StripeIntegrationReconciler) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock.Now()
}

func (r *StripeIntegrationReconciler) resyncPeriod() time.Duration {
	if r.ResyncPeriod <= 0 {
		return defaultResyncPeriod
	}
	return r.ResyncPeriod
}

// SetupWithManager sets up the controller with the Manager.
func (r *StripeIntegrationReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &paymentsv1alpha1.StripeIntegration{}, secretRefIndex,
		func(o client.Object) []string {
			return []string{o.(*paymentsv1alpha1.StripeIntegration).Spec.CredentialsSecretRef.Name}
		}); err != nil {
		return fmt.Errorf("indexing %s: %w", secretRefIndex, err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &paymentsv1alpha1.StripeIntegration{}, forwardSecretIndex,
		func(o client.Object) []string {
			var names []string
			for _, fc := range forwardCredentials(o.(*paymentsv1alpha1.StripeIntegration)) {
				names = append(names, fc.ref.Name)
			}
			return names
		}); err != nil {
		return fmt.Errorf("indexing %s: %w", forwardSecretIndex, err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &paymentsv1alpha1.StripeIntegration{}, signingSecretIndex,
		func(o client.Object) []string { return []string{signingSecretName(o.GetName())} }); err != nil {
		return fmt.Errorf("indexing %s: %w", signingSecretIndex, err)
	}
	if err := forgetDeletedOwned(ctx, mgr.GetCache()); err != nil {
		return err
	}
	if err := r.forgetDeletedSecrets(ctx, mgr.GetCache()); err != nil {
		return err
	}
	if err := r.indexWebhookURLs(ctx, mgr); err != nil {
		return err
	}
	base, maxDelay := r.RetryBaseDelay, r.RetryMaxDelay
	if base <= 0 {
		base = time.Second
	}
	if maxDelay <= 0 {
		maxDelay = 5 * time.Minute
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&paymentsv1alpha1.StripeIntegration{}, builder.WithPredicates(specOrMetadataChanged())).
		// Metadata only: a Secret change (resourceVersion) is enough to re-read it directly.
		// Metadata only, for both the credentials Secrets and the owned signing Secrets: no Secret
		// data is cached; the reconcile reads what it needs directly.
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.integrationsForSecret)).
		// Integrations sharing a webhook URL: the later ones wait for the older one to go or move.
		Watches(&paymentsv1alpha1.StripeIntegration{}, handler.EnqueueRequestsFromMapFunc(r.integrationsSharingURL),
			builder.WithPredicates(r.webhookURLMoved())).
		// Owned receiver objects: a hand edit or a Deployment status change brings the owner back.
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&networkingv1.Ingress{}).
		// The disruption controller rewrites a budget's status whenever a pod's readiness changes,
		// which the Deployment's own events already report: only spec changes and deletions count.
		Owns(&policyv1.PodDisruptionBudget{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{
			MaxConcurrentReconciles: max(1, r.MaxConcurrentReconciles),
			RateLimiter:             workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](base, maxDelay),
		}).
		Named("stripeintegration").
		Complete(r)
}

// integrationsForSecret maps a Secret to the StripeIntegrations in its namespace that reference it
// (credentials, forward credentials), own it (signing secret) or need its name (signing secret).
func (r *StripeIntegrationReconciler) integrationsForSecret(ctx context.Context, secret client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, o := range secret.GetOwnerReferences() {
		if isIntegrationRef(o) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: secret.GetNamespace(), Name: o.Name}})
		}
	}
	for _, index := range []string{secretRefIndex, forwardSecretIndex, signingSecretIndex} {
		var list paymentsv1alpha1.StripeIntegrationList
		if err := r.Client.List(ctx, &list, client.InNamespace(secret.GetNamespace()),
			client.MatchingFields{index: secret.GetName()}); err != nil {
			logf.FromContext(ctx).Error(err, "Listing StripeIntegrations for Secret", "secret", secret.GetName(), "index", index)
			continue
		}
		for i := range list.Items {
			req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
			if !slices.Contains(reqs, req) {
				reqs = append(reqs, req)
			}
		}
	}
	return reqs
}

// CacheOptions are the manager's cache options: CacheByObject, and for every other cached object
// (StripeIntegrations, Secret metadata) no managedFields and no kubectl last-applied annotation.
func CacheOptions() cache.Options {
	return cache.Options{ByObject: CacheByObject(), DefaultTransform: trimForCache}
}

// lastAppliedAnnotation is where `kubectl apply` keeps the applied manifest. On a Secret applied
// with kubectl it holds the Secret's data in clear text, which a metadata-only watch would
// otherwise bring into the cache.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// trimForCache drops what the operator never reads before an object is cached.
func trimForCache(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
	}
	return dropLastApplied(obj)
}

// dropLastApplied removes kubectl's last-applied-configuration annotation from a cached object.
func dropLastApplied(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return obj, nil // not an object (e.g. a deletion tombstone): cache it as it is
	}
	if ann := m.GetAnnotations(); ann[lastAppliedAnnotation] != "" {
		trimmed := maps.Clone(ann)
		delete(trimmed, lastAppliedAnnotation)
		m.SetAnnotations(trimmed)
	}
	return obj, nil
}
