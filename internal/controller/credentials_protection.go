package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// In-use protection of credentials Secrets, as kubernetes.io/pvc-protection does for PVCs: while a
// StripeIntegration may still need its keys to remove its Stripe endpoint, its credentials Secret
// carries CredentialsInUseFinalizer, so deleting the Secret first (kubectl delete -f, a namespace
// deletion) leaves it readable until the integration is gone. The StripeIntegration reconciler
// adds the finalizer; CredentialsProtectionReconciler removes it.

// errCredentialsTerminating stops a pass whose credentials Secret is being deleted without the
// protection: an endpoint created with it now could not be removed later.
var errCredentialsTerminating = errors.New("credentials Secret is being deleted and is not protected")

// secretMetadata is an empty Secret metadata object, read through the manager's metadata-only cache.
func secretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// protectCredentials puts CredentialsInUseFinalizer on the integration's credentials Secret before
// any Stripe call. It writes only when the finalizer is missing (a metadata patch under optimistic
// lock). It runs after the key check read the keys from the Secret, so a Secret missing now went
// during the pass: that is errCredentialsTerminating too, and the next pass reports SecretNotFound.
func (r *StripeIntegrationReconciler) protectCredentials(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) error {
	secret, err := r.credentialsMetadata(ctx, si)
	if err != nil || (secret != nil && controllerutil.ContainsFinalizer(secret, paymentsv1alpha1.CredentialsInUseFinalizer)) {
		return err
	}
	if secret == nil {
		// The key phase has just read the keys from it: it went since, so nothing protects an
		// endpoint those keys would create. Its deletion brings the object back (SecretNotFound).
		return fmt.Errorf("%w: %s/%s is gone", errCredentialsTerminating, si.Namespace, si.Spec.CredentialsSecretRef.Name)
	}
	if secret.DeletionTimestamp != nil {
		// The apiserver refuses new finalizers on a terminating object: wait until it is gone.
		return fmt.Errorf("%w: %s/%s", errCredentialsTerminating, secret.Namespace, secret.Name)
	}
	logf.FromContext(ctx).Info("Protecting credentials Secret while in use", "secret", secret.Name)
	orig := secret.DeepCopy()
	controllerutil.AddFinalizer(secret, paymentsv1alpha1.CredentialsInUseFinalizer)
	if err := r.Client.Patch(ctx, secret, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("%w: %s/%s is gone", errCredentialsTerminating, secret.Namespace, secret.Name)
		}
		return fmt.Errorf("protecting credentials Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	// The lock made the patch apply to exactly the version read: the data stayed as it was.
	r.secretReads.advance(client.ObjectKeyFromObject(secret), secret.UID, orig.ResourceVersion, secret.ResourceVersion)
	return nil
}

// credentialsMetadata reads the credentials Secret's metadata from the cache, confirming a miss
// with the apiserver (the cache may not have seen a Secret created just before). Nil: no Secret.
func (r *StripeIntegrationReconciler) credentialsMetadata(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) (
	*metav1.PartialObjectMetadata, error) {
	key := types.NamespacedName{Namespace: si.Namespace, Name: si.Spec.CredentialsSecretRef.Name}
	if key.Name == "" {
		return nil, nil
	}
	secret := secretMetadata()
	err := r.Client.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) {
		err = r.SecretReader.Get(ctx, key, secret)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading Secret %s/%s metadata: %w", key.Namespace, key.Name, err)
	}
	return secret, nil
}

// CredentialsProtectionReconciler removes CredentialsInUseFinalizer from a Secret once no
// StripeIntegration uses it any more. It never touches a Secret without that finalizer. It needs
// the field index that StripeIntegrationReconciler.SetupWithManager registers.
type CredentialsProtectionReconciler struct {
	// Client reads Secret metadata and StripeIntegrations through the manager's cache.
	Client client.Client
	// APIReader confirms with the apiserver that a Secret is unused before it is released.
	APIReader client.Reader
}

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=payments.clinicpay.dev,resources=stripeintegrations,verbs=get;list;watch

// Reconcile releases one protected Secret when no integration uses it.
func (r *CredentialsProtectionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	secret := secretMetadata()
	if err := r.Client.Get(ctx, req.NamespacedName, secret); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !controllerutil.ContainsFinalizer(secret, paymentsv1alpha1.CredentialsInUseFinalizer) {
		return ctrl.Result{}, nil
	}
	var cached paymentsv1alpha1.StripeIntegrationList
	if err := r.Client.List(ctx, &cached, client.InNamespace(secret.Namespace),
		client.MatchingFields{secretRefIndex: secret.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing StripeIntegrations: %w", err)
	}
	if usesSecret(cached.Items, secret.Name) {
		return ctrl.Result{}, nil
	}
	// The cache may not have seen an integration created a moment ago: ask the apiserver.
	var live paymentsv1alpha1.StripeIntegrationList
	if err := r.APIReader.List(ctx, &live, client.InNamespace(secret.Namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing StripeIntegrations: %w", err)
	}
	if usesSecret(live.Items, secret.Name) {
		return ctrl.Result{}, nil
	}
	logf.FromContext(ctx).Info("Releasing credentials Secret: no StripeIntegration uses it", "secret", secret.Name)
	orig := secret.DeepCopy()
	controllerutil.RemoveFinalizer(secret, paymentsv1alpha1.CredentialsInUseFinalizer)
	if err := r.Client.Patch(ctx, secret, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("releasing credentials Secret: %w", err))
	}
	return ctrl.Result{}, nil
}

// usesSecret: an integration uses its credentials Secret until it has released its own finalizer,
// that is until its endpoints are removed; one not yet finalized is about to take it.
func usesSecret(items []paymentsv1alpha1.StripeIntegration, name string) bool {
	return slices.ContainsFunc(items, func(si paymentsv1alpha1.StripeIntegration) bool {
		return si.Spec.CredentialsSecretRef.Name == name &&
			(si.DeletionTimestamp.IsZero() || controllerutil.ContainsFinalizer(&si, Finalizer))
	})
}

// SetupWithManager watches the metadata of protected Secrets and the integrations that use them.
func (r *CredentialsProtectionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Secret{}, builder.OnlyMetadata, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return controllerutil.ContainsFinalizer(o, paymentsv1alpha1.CredentialsInUseFinalizer)
		}))).
		// On an update the map runs on the old and the new object, so a moved
		// spec.credentialsSecretRef brings both the old and the new Secret here.
		Watches(&paymentsv1alpha1.StripeIntegration{}, handler.EnqueueRequestsFromMapFunc(credentialsSecretOf),
			builder.WithPredicates(credentialsUseChanged())).
		Named("credentialsprotection").
		Complete(r)
}

func credentialsSecretOf(_ context.Context, o client.Object) []reconcile.Request {
	si, ok := o.(*paymentsv1alpha1.StripeIntegration)
	if !ok || si.Spec.CredentialsSecretRef.Name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: si.Namespace, Name: si.Spec.CredentialsSecretRef.Name}}}
}

// credentialsUseChanged passes the integration events that can end a Secret's use: deletion, a
// released finalizer, a moved reference. Status writes and creations cannot.
func credentialsUseChanged() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, okO := e.ObjectOld.(*paymentsv1alpha1.StripeIntegration)
			n, okN := e.ObjectNew.(*paymentsv1alpha1.StripeIntegration)
			if !okO || !okN {
				return true
			}
			return o.Spec.CredentialsSecretRef.Name != n.Spec.CredentialsSecretRef.Name ||
				!o.DeletionTimestamp.Equal(n.DeletionTimestamp) ||
				!slices.Equal(o.Finalizers, n.Finalizers)
		},
	}
}
