package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// webhookURLIndex indexes StripeIntegrations, cluster-wide, by a digest of their effective webhook
// URL: a digest, because field index values are matched as selector terms and URLs hold '=' and ','.
const webhookURLIndex = "stripeintegration.webhookURL"

// webhookURLKey is the index value of si's effective URL; "" when it has none.
func (r *StripeIntegrationReconciler) webhookURLKey(si *paymentsv1alpha1.StripeIntegration) string {
	u := WebhookURL(si, r.WebhookBaseURL)
	if u == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(normalizeURL(u)))
	return hex.EncodeToString(sum[:16])
}

// normalizeURL makes URLs that Stripe would deliver to the same place equal: scheme and host are
// case-insensitive and a default port is the same as none. The path is kept as it is.
func normalizeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	o := urlOrigin(u)
	u.Scheme, u.Host = o.scheme, o.hostPort()
	return u.String()
}

// indexWebhookURLs registers the index and the watch that re-reconciles the integrations sharing a
// URL whenever one of them appears, goes away or moves to another URL.
func (r *StripeIntegrationReconciler) indexWebhookURLs(ctx context.Context, mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(ctx, &paymentsv1alpha1.StripeIntegration{}, webhookURLIndex,
		func(o client.Object) []string {
			if k := r.webhookURLKey(o.(*paymentsv1alpha1.StripeIntegration)); k != "" {
				return []string{k}
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("indexing %s: %w", webhookURLIndex, err)
	}
	return nil
}

// webhookURLMoved passes creations, deletions and updates that change the effective URL.
func (r *StripeIntegrationReconciler) webhookURLMoved() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, okOld := e.ObjectOld.(*paymentsv1alpha1.StripeIntegration)
			n, okNew := e.ObjectNew.(*paymentsv1alpha1.StripeIntegration)
			return !okOld || !okNew || r.webhookURLKey(o) != r.webhookURLKey(n)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// integrationsSharingURL maps an integration (old and new state alike) to the others with its
// URL. Their remembered Stripe views are dropped: who owns the URL may have changed.
func (r *StripeIntegrationReconciler) integrationsSharingURL(ctx context.Context, obj client.Object) []reconcile.Request {
	si, ok := obj.(*paymentsv1alpha1.StripeIntegration)
	if !ok {
		return nil
	}
	key := r.webhookURLKey(si)
	if key == "" {
		return nil
	}
	var list paymentsv1alpha1.StripeIntegrationList
	if err := r.Client.List(ctx, &list, client.MatchingFields{webhookURLIndex: key}); err != nil {
		logf.FromContext(ctx).Error(err, "Listing StripeIntegrations sharing a webhook URL")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		other := &list.Items[i]
		if other.UID == si.UID {
			continue
		}
		r.stripeViews.forget(other.UID)
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(other)})
	}
	return reqs
}

// urlConflict reports, in obs, an older integration that registers the same URL, and whether
// there is one; this one then creates and changes no endpoint. The oldest (creationTimestamp,
// then namespace/name) owns a URL; one in another namespace is never named.
func (r *StripeIntegrationReconciler) urlConflict(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, want string, obs *observation) bool {
	const ct = paymentsv1alpha1.ConditionWebhookEndpointReady
	var list paymentsv1alpha1.StripeIntegrationList
	if err := r.Client.List(ctx, &list, client.MatchingFields{webhookURLIndex: r.webhookURLKey(si)}); err != nil {
		obs.Webhook = unknown(ct, paymentsv1alpha1.ReasonEndpointFailed, "checking the webhook URL against other StripeIntegrations failed; retrying")
		obs.err = fmt.Errorf("listing StripeIntegrations sharing the webhook URL: %w", err)
		return true
	}
	var owner *paymentsv1alpha1.StripeIntegration
	for i := range list.Items {
		if o := &list.Items[i]; o.UID != si.UID && registersFirst(o, si) && (owner == nil || registersFirst(o, owner)) {
			owner = o
		}
	}
	if owner == nil {
		return false
	}
	who := "an older StripeIntegration in another namespace"
	if owner.Namespace == si.Namespace {
		who = fmt.Sprintf("the older StripeIntegration %q in this namespace", owner.Name)
	}
	obs.Webhook = falseCond(ct, paymentsv1alpha1.ReasonWebhookURLConflict, fmt.Sprintf(
		"%s already registers the webhook URL %s; nothing is registered for this one until it has a URL of its own (spec.webhook.url or "+
			"spec.webhook.baseURL)",
		who, want))
	return true
}

// registersFirst orders integrations that share a URL: older first, then by namespace and name.
func registersFirst(a, b *paymentsv1alpha1.StripeIntegration) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}
