package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// The manager caches no Secret data (only metadata), so a pass reads the credentials Secret, and
// the signing Secret when it reuses a Stripe view, from the apiserver: two GETs on every pass,
// three passes per new integration and one per resync. Most of them return what the pass before
// read. secretReads remembers each such Secret as read, by namespace and name, and a pass whose
// metadata cache shows the same UID and resourceVersion takes it from there: a resourceVersion
// names one version of an object, so the data is the data stored at that version, and a change
// moves the cached resourceVersion (and brings the pass that reads it anew). A Secret the
// metadata cache does not show is read from the apiserver, as before: a missing Secret is never
// concluded from the cache, which may not have seen one created a moment ago.
//
// What is remembered is what the pass already holds in memory (the keys it checks, the signing
// secret it compares); it is dropped when the metadata cache drops the Secret, when the apiserver
// says it is gone, and when a later version is read.
type secretReads struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*corev1.Secret
}

func (s *secretReads) lookup(key types.NamespacedName, uid types.UID, resourceVersion string) (*corev1.Secret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.m[key]
	if !ok || sec.UID != uid || sec.ResourceVersion != resourceVersion {
		return nil, false
	}
	return sec, true
}

// remember keeps what a pass reads of sec: its identity, data, owners and annotations (the
// operator's own bookkeeping; never kubectl's last-applied copy, which may hold the data again).
func (s *secretReads) remember(sec *corev1.Secret) {
	if sec.UID == "" || sec.ResourceVersion == "" {
		return
	}
	c := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: sec.Namespace, Name: sec.Name, UID: sec.UID,
		ResourceVersion: sec.ResourceVersion}, Type: sec.Type}
	c.OwnerReferences = slices.Clone(sec.OwnerReferences)
	for k, v := range sec.Annotations {
		if k == lastAppliedAnnotation {
			continue
		}
		if c.Annotations == nil {
			c.Annotations = make(map[string]string, len(sec.Annotations))
		}
		c.Annotations[k] = v
	}
	c.Data = make(map[string][]byte, len(sec.Data))
	for k, v := range sec.Data {
		c.Data[k] = slices.Clone(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[types.NamespacedName]*corev1.Secret{}
	}
	s.m[types.NamespacedName{Namespace: c.Namespace, Name: c.Name}] = c
}

// advance records that the version read (from) became version to by a write that changed only
// metadata this operator does not read from the copy (a finalizer, under an optimistic lock on
// from): the data at to is the data at from.
func (s *secretReads) advance(key types.NamespacedName, uid types.UID, from, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec, ok := s.m[key]; ok && sec.UID == uid && sec.ResourceVersion == from {
		// A new entry: a pass may be copying the old one outside the lock. Entries are never
		// changed once stored, so the two may share their maps.
		moved := *sec
		moved.ResourceVersion = to
		s.m[key] = &moved
	}
}

func (s *secretReads) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

func (s *secretReads) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// getSecret reads a Secret's data: from secretReads when the metadata cache shows the version
// remembered, from the apiserver otherwise.
func (r *StripeIntegrationReconciler) getSecret(ctx context.Context, key types.NamespacedName, out *corev1.Secret) error {
	meta := secretMetadata()
	if err := r.Client.Get(ctx, key, meta); err == nil {
		if sec, ok := r.secretReads.lookup(key, meta.UID, meta.ResourceVersion); ok {
			sec.DeepCopyInto(out)
			return nil
		}
	}
	if err := r.SecretReader.Get(ctx, key, out); err != nil {
		if apierrors.IsNotFound(err) {
			r.secretReads.forget(key)
		}
		return err
	}
	r.secretReads.remember(out)
	return nil
}

// forgetDeletedSecrets drops what secretReads holds of a Secret when the metadata cache drops it.
func (r *StripeIntegrationReconciler) forgetDeletedSecrets(ctx context.Context, c cache.Cache) error {
	inf, err := c.GetInformer(ctx, secretMetadata())
	if err != nil {
		return fmt.Errorf("metadata informer for Secrets: %w", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = t.Obj
		}
		if o, ok := obj.(metav1.Object); ok {
			r.secretReads.forget(types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()})
		}
	}}); err != nil {
		return fmt.Errorf("deletion handler for Secrets: %w", err)
	}
	return nil
}
