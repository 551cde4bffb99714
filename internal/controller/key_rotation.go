package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/keys"
	"github.com/clinicpay/stripe-operator/internal/stripeclient"
)

// rememberedKey is the last key Stripe accepted for an integration. It lives only in memory, so
// that after a rotation to another account the operator can still remove the old account's
// endpoint; after a restart it is gone and the endpoint is reported for manual removal instead.
type rememberedKey struct {
	fingerprint string
	key         keys.Key
}

// uidMemory is a concurrency-safe, in-memory map per StripeIntegration UID.
type uidMemory[T any] struct {
	mu sync.Mutex
	m  map[types.UID]T
}

func (m *uidMemory[T]) get(uid types.UID) (T, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[uid]
	return v, ok
}

func (m *uidMemory[T]) set(uid types.UID, v T) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[types.UID]T{}
	}
	m.m[uid] = v
}

// getOrSet returns the value remembered for uid, remembering v first when there is none.
func (m *uidMemory[T]) getOrSet(uid types.UID, v T) T {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.m[uid]; ok {
		return old
	}
	if m.m == nil {
		m.m = map[types.UID]T{}
	}
	m.m[uid] = v
	return v
}

func (m *uidMemory[T]) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, uid)
}

func (r *StripeIntegrationReconciler) rememberKey(uid types.UID, fingerprint string, k keys.Key) {
	r.previousKeys.set(uid, rememberedKey{fingerprint: fingerprint, key: k})
}

// cleanupPreviousAccount runs after a key change once the endpoint is ready. When the recorded
// endpoint is not visible with the new key, the key belongs to another account: the endpoint there
// is removed with the previous key if it still works, else reported for manual removal. It never
// blocks the integration.
// A retiring endpoint that the new key did not list (obs.retiringUnlisted) is handled the same way.
func (r *StripeIntegrationReconciler) cleanupPreviousAccount(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, pr probeResult,
	obs *observation) {
	r.cleanupPreviousEndpoint(ctx, si, pr, obs, si.Status.WebhookEndpointID)
	if obs.retiringUnlisted != "" && obs.retiringUnlisted != si.Status.WebhookEndpointID {
		r.cleanupPreviousEndpoint(ctx, si, pr, obs, obs.retiringUnlisted)
	}
}

func (r *StripeIntegrationReconciler) cleanupPreviousEndpoint(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, pr probeResult,
	obs *observation, oldID string) {
	oldAccount := si.Status.AccountID
	if oldID == "" || slices.ContainsFunc(pr.endpoints, func(e stripeclient.Endpoint) bool { return e.ID == oldID }) {
		return
	}
	if oldAccount != "" && oldAccount == pr.newAccount {
		return // same account: the endpoint was deleted in the dashboard and has been re-created
	}
	where := oldID
	if oldAccount != "" {
		where = fmt.Sprintf("%s (account %s)", oldID, oldAccount)
	}
	prev, ok := r.previousKeys.get(si.UID)
	if !ok || prev.fingerprint != si.Status.KeyFingerprint {
		r.reportManualCleanup(si, obs, where, "the previous key is not available to this operator instance")
		return
	}
	old := r.Stripe.For(prev.key.Value, prev.key.Mode, oldAccount)
	ep, err := old.GetWebhookEndpoint(ctx, oldID)
	var se *stripeclient.Error
	switch {
	case errors.As(err, &se) && se.Kind == stripeclient.KindNotFound:
		return // already gone
	case err != nil:
		r.reportManualCleanup(si, obs, where, "the previous key no longer works: "+stripeclient.Redact(err.Error()))
		return
	case !ownedBy(ep, string(si.UID)):
		return // never delete what this object did not create
	}
	if err := r.deleteOwned(ctx, old, oldID); err != nil {
		r.reportManualCleanup(si, obs, where, "deleting it with the previous key failed: "+stripeclient.Redact(err.Error()))
		return
	}
	r.event(si, corev1.EventTypeNormal, paymentsv1alpha1.EventOldEndpointRemoved,
		"keys now belong to another Stripe account; removed the previous account's endpoint %s with the previous key", where)
}

func (r *StripeIntegrationReconciler) reportManualCleanup(si *paymentsv1alpha1.StripeIntegration, obs *observation, where, why string) {
	obs.ManualCleanup = append(obs.ManualCleanup, where)
	r.event(si, corev1.EventTypeWarning, paymentsv1alpha1.EventManualRemovalRequired,
		"keys now belong to another Stripe account; remove the previous account's endpoint %s in the Stripe dashboard (%s)", where, why)
}
