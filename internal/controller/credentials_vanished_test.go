package controller

import (
	"context"
	"errors"
	"testing"

	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// The key check read the keys, then the Secret went before the protection phase: the pass must
// stop there. Before, a missing Secret counted as "nothing to protect", and the pass went on to
// probe Stripe and create an endpoint with the keys of a deleted Secret (make test saw
// TestTerminatingUnprotectedSecretGetsNoEndpoint count 3 Stripe calls once).
func TestCredentialsGoneDuringThePassStopIt(t *testing.T) {
	t.Parallel()
	si := branchSI()
	c := crfake.NewClientBuilder().WithScheme(branchScheme(t)).WithObjects(si).Build() // no credentials Secret
	r := &StripeIntegrationReconciler{Client: c, SecretReader: c}
	if err := r.protectCredentials(context.Background(), si); !errors.Is(err, errCredentialsTerminating) {
		t.Fatalf("protectCredentials with the Secret gone = %v, want errCredentialsTerminating", err)
	}
}
