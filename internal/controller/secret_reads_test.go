package controller

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// countingReader counts the reads that reach the apiserver.
type countingReader struct {
	client.Reader
	gets atomic.Int64
}

func (c *countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.gets.Add(1)
	return c.Reader.Get(ctx, key, obj, opts...)
}

// TestSecretReadsReuseTheVersionRead: a Secret read past the cache is read again only when the
// metadata cache shows another version of it; a change of its data is seen at once, a deleted
// Secret is never answered from memory, and what was remembered goes with it.
func TestSecretReadsReuseTheVersionRead(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := context.Background()
	live := &countingReader{Reader: k8sClient}
	// The suite manager's client: Secret metadata from its cache. Its secretReads is this
	// reconciler's own, and the suite's informer forgets deletions into the suite reconciler's.
	r := &StripeIntegrationReconciler{Client: testReconciler.Client, SecretReader: live}
	key := types.NamespacedName{Namespace: ns, Name: "keys"}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: key.Name}, Data: map[string][]byte{"secretKey": []byte("v1")}}
	if err := k8sClient.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	cachedAt := func(rv string) {
		t.Helper()
		eventually(t, waitShort, "the metadata cache at "+rv, func() (bool, string) {
			m := secretMetadata()
			err := r.Client.Get(ctx, key, m)
			return err == nil && m.ResourceVersion == rv, fmt.Sprintf("%s, %v", m.ResourceVersion, err)
		})
	}
	read := func(wantGets int64, want string) {
		t.Helper()
		before := live.gets.Load()
		var got corev1.Secret
		if err := r.getSecret(ctx, key, &got); err != nil {
			t.Fatal(err)
		}
		if g := live.gets.Load() - before; g != wantGets || string(got.Data["secretKey"]) != want {
			t.Errorf("read %q with %d apiserver GETs, want %q with %d", got.Data["secretKey"], g, want, wantGets)
		}
	}
	cachedAt(sec.ResourceVersion)
	read(1, "v1")
	read(0, "v1")
	read(0, "v1")

	sec.Data["secretKey"] = []byte("v2")
	if err := k8sClient.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	cachedAt(sec.ResourceVersion)
	read(1, "v2")
	read(0, "v2")

	// A metadata-only write under an optimistic lock on the version read keeps what was read.
	m := secretMetadata()
	if err := r.Client.Get(ctx, key, m); err != nil {
		t.Fatal(err)
	}
	orig := m.DeepCopy()
	m.Finalizers = append(m.Finalizers, "test.clinicpay.dev/hold")
	if err := k8sClient.Patch(ctx, m, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		t.Fatal(err)
	}
	r.secretReads.advance(key, m.UID, orig.ResourceVersion, m.ResourceVersion)
	cachedAt(m.ResourceVersion)
	read(0, "v2")
	orig = m.DeepCopy()
	m.Finalizers = nil
	if err := k8sClient.Patch(ctx, m, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}

	// The suite's manager, whose informer this is, forgets a Secret its cache drops.
	var last corev1.Secret
	if err := k8sClient.Get(ctx, key, &last); err != nil {
		t.Fatal(err)
	}
	testReconciler.secretReads.remember(&last)
	if err := k8sClient.Delete(ctx, sec); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "the metadata cache to drop the Secret, and the suite reconciler what it read", func() (bool, string) {
		err := r.Client.Get(ctx, key, secretMetadata())
		_, remembered := testReconciler.secretReads.lookup(key, last.UID, last.ResourceVersion)
		return apierrors.IsNotFound(err) && !remembered, fmt.Sprintf("%v, remembered %v", err, remembered)
	})
	before := live.gets.Load()
	if err := r.getSecret(ctx, key, &corev1.Secret{}); !apierrors.IsNotFound(err) || live.gets.Load()-before != 1 {
		t.Errorf("deleted Secret: %v after %d apiserver GETs, want NotFound from the apiserver", err, live.gets.Load()-before)
	}
	if n := r.secretReads.len(); n != 0 {
		t.Errorf("%d Secrets remembered after the only one was deleted", n)
	}
}
