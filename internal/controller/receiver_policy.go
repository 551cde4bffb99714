package controller

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// A StripeIntegration editor is not an admin. Whatever the editor writes in the spec, the receiver
// only gets a Secret that an admin bound to the exact target it is sent to, and the Ingress only
// gets annotations the platform team allowed. This file holds those checks.

// DefaultIngressAnnotationAllowlist is what spec.webhook.ingress.annotations may hold unless the
// manager's --ingress-annotation-allowlist says otherwise: certificate issuance and redirects.
// Snippet, auth and rewrite annotations of ingress controllers run with the controller's
// privileges, so they are never allowed by default.
var DefaultIngressAnnotationAllowlist = []string{
	"cert-manager.io/cluster-issuer",
	"cert-manager.io/issuer",
	"nginx.ingress.kubernetes.io/ssl-redirect",
	"nginx.ingress.kubernetes.io/force-ssl-redirect",
}

// forwardCredential is one Secret a receiver would mount and the target it would be used for.
type forwardCredential struct {
	field  string // spec path, for messages
	ref    *corev1.SecretKeySelector
	target string
}

func forwardCredentials(si *paymentsv1alpha1.StripeIntegration) []forwardCredential {
	fwd := forwardSpec(si)
	var creds []forwardCredential
	if h := fwd.HTTP; h != nil && h.SigningKeySecretRef != nil {
		creds = append(creds, forwardCredential{"spec.receiver.forward.http.signingKeySecretRef", h.SigningKeySecretRef, h.URL})
	}
	if f := fwd.FHIR; f != nil && f.TokenSecretRef != nil {
		creds = append(creds, forwardCredential{"spec.receiver.forward.fhir.tokenSecretRef", f.TokenSecretRef, f.BaseURL})
	}
	return creds
}

// checkReceiverInputs refuses a spec whose receiver would get a Secret or an Ingress annotation an
// admin did not allow. ok is false with the ReceiverReady condition to report; err is transient.
func (r *StripeIntegrationReconciler) checkReceiverInputs(ctx context.Context, si *paymentsv1alpha1.StripeIntegration) (condition, bool, error) {
	const ct = paymentsv1alpha1.ConditionReceiverReady
	if in := ingressSpec(si); in != nil {
		if bad := disallowedAnnotations(in.Annotations, r.ingressAllowlist()); len(bad) > 0 {
			return falseCond(ct, paymentsv1alpha1.ReasonIngressAnnotationNotAllowed, fmt.Sprintf(
				"spec.webhook.ingress.annotations %s not allowed by the operator's --ingress-annotation-allowlist; nothing of this spec is applied until they "+
					"are removed",
				strings.Join(bad, ", "))), false, nil
		}
	}
	for _, fc := range forwardCredentials(si) {
		allowed, err := r.forwardCredentialAllowed(ctx, si, fc)
		if err != nil {
			return condition{}, false, err
		}
		if !allowed {
			// One message whether the Secret is missing, unbound or forbidden: status must not
			// tell an editor which Secrets exist.
			return falseCond(ct, paymentsv1alpha1.ReasonForwardCredentialNotAllowed, fmt.Sprintf(
				"%s: Secret %q is not bound to %s as a forward credential; an admin binds it with the annotation %s: <URL prefix> on the Secret (Stripe "+
					"credentials and signing secrets can never be bound); nothing of this spec is applied until then",
				fc.field, fc.ref.Name, fc.target, paymentsv1alpha1.AnnotationForwardTo)), false, nil
		}
	}
	return condition{}, true, nil
}

// forwardCredentialAllowed reads only the Secret's metadata (from the metadata cache): the
// admin's binding annotation and the operator's own label. Its data is never read here.
func (r *StripeIntegrationReconciler) forwardCredentialAllowed(ctx context.Context, si *paymentsv1alpha1.StripeIntegration,
	fc forwardCredential) (bool, error) {
	m := secretMetadata()
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: si.Namespace, Name: fc.ref.Name}, m); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading forward credential Secret metadata: %w", err)
	}
	if m.Labels[LabelManagedBy] == managedByValue || ownedByIntegration(m.OwnerReferences) {
		return false, nil // a signing secret: never a forward credential
	}
	inUse, err := r.usedAsCredentials(ctx, si.Namespace, fc.ref.Name)
	if err != nil || inUse {
		return false, err
	}
	return forwardTargetAllowed(m.Annotations[paymentsv1alpha1.AnnotationForwardTo], fc.target), nil
}

// usedAsCredentials tells whether any StripeIntegration in the namespace holds its Stripe keys in
// the Secret: those keys must never reach a receiver, whatever annotation the Secret carries.
func (r *StripeIntegrationReconciler) usedAsCredentials(ctx context.Context, namespace, secret string) (bool, error) {
	var list paymentsv1alpha1.StripeIntegrationList
	if err := r.Client.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{secretRefIndex: secret}); err != nil {
		return false, fmt.Errorf("listing StripeIntegrations by credentials Secret: %w", err)
	}
	return len(list.Items) > 0, nil
}

// forwardTargetAllowed is pure: whether target matches one of the whitespace- or comma-separated
// URL prefixes of a forward-to annotation. Scheme, host and port must be equal; the target's path
// must equal the prefix's path or continue it after a "/". A malformed prefix matches nothing.
func forwardTargetAllowed(annotation, target string) bool {
	t, ok := parseTarget(target)
	if !ok {
		return false
	}
	for _, p := range strings.FieldsFunc(annotation, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		prefix, ok := parseTarget(p)
		if !ok || prefix.origin != t.origin {
			continue
		}
		if prefix.path == "" || t.path == prefix.path || strings.HasPrefix(t.path, prefix.path+"/") {
			return true
		}
	}
	return false
}

// target is a forward URL reduced to what the allowlist compares: where it connects and its path.
type target struct {
	origin
	path string
}

func parseTarget(raw string) (target, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || u.Fragment != "" || u.RawQuery != "" || u.Hostname() == "" {
		return target{}, false
	}
	t := target{origin: urlOrigin(u)}
	if t.scheme != "http" && t.scheme != "https" {
		return target{}, false
	}
	// Compare escaped paths so "%2F" can never pass for a segment boundary; ".." segments are
	// refused outright rather than resolved.
	t.path = strings.TrimSuffix(u.EscapedPath(), "/")
	if slices.Contains(strings.Split(t.path, "/"), "..") {
		return target{}, false
	}
	return t, true
}

// disallowedAnnotations is pure: the keys of annotations the allowlist does not cover, sorted. An
// allowlist entry ending in "*" allows every key with that prefix.
func disallowedAnnotations(annotations map[string]string, allowlist []string) []string {
	var bad []string
	for k := range annotations {
		if !slices.ContainsFunc(allowlist, func(a string) bool {
			if p, ok := strings.CutSuffix(a, "*"); ok {
				return strings.HasPrefix(k, p)
			}
			return k == a
		}) {
			bad = append(bad, k)
		}
	}
	slices.Sort(bad)
	return bad
}

func (r *StripeIntegrationReconciler) ingressAllowlist() []string {
	if r.IngressAnnotationAllowlist == nil {
		return DefaultIngressAnnotationAllowlist
	}
	return r.IngressAnnotationAllowlist
}

func ownedByIntegration(refs []metav1.OwnerReference) bool {
	return slices.ContainsFunc(refs, isIntegrationRef)
}

// isIntegrationRef tells whether an owner reference points at a StripeIntegration.
func isIntegrationRef(o metav1.OwnerReference) bool {
	return o.Kind == "StripeIntegration" && o.APIVersion == paymentsv1alpha1.GroupVersion.String()
}

func ingressSpec(si *paymentsv1alpha1.StripeIntegration) *paymentsv1alpha1.IngressSpec {
	if si.Spec.Webhook == nil {
		return nil
	}
	return si.Spec.Webhook.Ingress
}
