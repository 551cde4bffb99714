package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// storedSecret is what the owned signing Secret says.
type storedSecret struct {
	name       string
	endpointID string // the endpoint whose secret it holds; "" when absent or empty
	value      string // the whsec_ itself (the first line), for signing replays; never logged
	// retiring is a replaced endpoint kept until Stripe has nothing left to deliver to it; its
	// secret is the Secret's second line, which the receiver accepts as well.
	retiring retiringEndpoint
	// foreign: a Secret this integration does not control has the name; it is never taken over.
	foreign bool
	// absent: no Secret had the name when this pass read it, so the first write creates it
	// without reading it again (a new integration's pass saves a round trip).
	absent bool
}

// errSigningSecretConflict: the signing Secret's name is taken by a Secret the operator did not
// create for this integration. Adopting it would overwrite the user's data and delete their Secret
// with the integration, so the operator stops and says so.
var errSigningSecretConflict = errors.New("signing Secret name taken by a Secret this StripeIntegration does not control")

// readSigningSecret reports which endpoint's signing secret is stored. Transient read errors are
// returned; a missing Secret is simply "nothing stored".
func (r *StripeIntegrationReconciler) readSigningSecret(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) (storedSecret, error) {
	st := storedSecret{name: signingSecretName(si.Name)}
	s := &corev1.Secret{}
	if err := r.getSecret(ctx, types.NamespacedName{Namespace: si.Namespace, Name: st.name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			st.absent = true
			return st, nil
		}
		return st, fmt.Errorf("reading signing Secret: %w", err)
	}
	if !metav1.IsControlledBy(s, si) {
		st.foreign = true
		return st, nil
	}
	if len(s.Data[paymentsv1alpha1.SigningSecretKey]) == 0 {
		return st, nil
	}
	st.endpointID = s.Annotations[paymentsv1alpha1.AnnotationWebhookEndpointID]
	lines := strings.Fields(string(s.Data[paymentsv1alpha1.SigningSecretKey]))
	if len(lines) == 0 {
		return storedSecret{name: st.name}, nil
	}
	st.value = lines[0]
	if id := s.Annotations[paymentsv1alpha1.AnnotationRetiringEndpointID]; id != "" && len(lines) > 1 {
		since, err := time.Parse(time.RFC3339, s.Annotations[paymentsv1alpha1.AnnotationRetiringSince])
		if err != nil {
			since = time.Time{} // unreadable: the retry window counts as passed
		}
		st.retiring = retiringEndpoint{id: id, since: since, secret: lines[1]}
	}
	return st, nil
}

// retiringEndpoint is a replaced endpoint kept alive so Stripe's pending retries still arrive.
type retiringEndpoint struct {
	id     string
	since  time.Time
	secret string // never logged
}

// writeSigningSecret stores the endpoint's whsec_ in a Secret owned by the StripeIntegration, so it
// goes with the object. It runs right after Stripe returns the secret, before anything else.
// A retiring endpoint (id set) is recorded in annotations and its secret kept on the second line,
// which the receiver accepts too (it verifies against every line).
func (r *StripeIntegrationReconciler) writeSigningSecret(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, endpointID, secret string,
	retiring retiringEndpoint) error {
	want := wantSigningSecret(si, endpointID, secret, retiring)
	existing := &corev1.Secret{}
	err := r.SecretReader.Get(ctx, client.ObjectKeyFromObject(want), existing)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.Client.Create(ctx, want); err != nil {
			return fmt.Errorf("creating signing Secret: %w", err)
		}
		r.secretReads.remember(want)
		return nil
	case err != nil:
		return fmt.Errorf("reading signing Secret: %w", err)
	}
	if !metav1.IsControlledBy(existing, si) {
		return fmt.Errorf("secret %s/%s: %w", si.Namespace, want.Name, errSigningSecretConflict)
	}
	existing.Labels, existing.Annotations = want.Labels, want.Annotations
	existing.OwnerReferences, existing.Data = want.OwnerReferences, want.Data
	if err := r.Client.Update(ctx, existing); err != nil {
		return fmt.Errorf("updating signing Secret: %w", err)
	}
	r.secretReads.remember(existing)
	return nil
}

// createSigningSecret is writeSigningSecret for a pass that found no signing Secret: it creates
// it without reading it again. AlreadyExists (another writer came first) falls back to
// writeSigningSecret, which reads it and keeps the ownership check.
func (r *StripeIntegrationReconciler) createSigningSecret(ctx context.Context, si *paymentsv1alpha1.StripeIntegration, endpointID, secret string,
	retiring retiringEndpoint) error {
	want := wantSigningSecret(si, endpointID, secret, retiring)
	err := r.Client.Create(ctx, want)
	switch {
	case err == nil:
		r.secretReads.remember(want)
		return nil
	case apierrors.IsAlreadyExists(err):
		return r.writeSigningSecret(ctx, si, endpointID, secret, retiring)
	default:
		return fmt.Errorf("creating signing Secret: %w", err)
	}
}

// wantSigningSecret is the signing Secret as the operator writes it.
func wantSigningSecret(si *paymentsv1alpha1.StripeIntegration, endpointID, secret string, retiring retiringEndpoint) *corev1.Secret {
	name := signingSecretName(si.Name)
	annotations := map[string]string{paymentsv1alpha1.AnnotationWebhookEndpointID: endpointID}
	data := []byte(secret)
	if retiring.id != "" {
		annotations[paymentsv1alpha1.AnnotationRetiringEndpointID] = retiring.id
		annotations[paymentsv1alpha1.AnnotationRetiringSince] = retiring.since.UTC().Format(time.RFC3339)
		data = []byte(secret + "\n" + retiring.secret + "\n")
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: si.Namespace,
			Name:      name,
			Labels: map[string]string{
				"app.kubernetes.io/managed-by":       managedByValue,
				"payments.clinicpay.dev/integration": labelValue(si.Name), // at most 63 characters
			},
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{ownerRef(si)},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{paymentsv1alpha1.SigningSecretKey: data},
	}
}

func ownerRef(si *paymentsv1alpha1.StripeIntegration) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         paymentsv1alpha1.GroupVersion.String(),
		Kind:               "StripeIntegration",
		Name:               si.Name,
		UID:                si.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}
