package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
)

// The finance checks (spec.finance: payout reconciliation, anomaly flags) run beside the
// resync, at their own cadence, once the integration is connected: they read the clinic's
// Stripe account with the operator's key and hand what they find to the clinic's receiver as
// ledger messages (internal/ledger), which the receiver writes to the systems of record with
// its forward credentials. Keys stay in the operator, forward credentials in the receiver.

// ledgerURL is where the receiver takes ledger messages: the host replays go to, with the
// ledger path for the clinic.
func (r *StripeIntegrationReconciler) ledgerURL(si *paymentsv1alpha1.StripeIntegration) (string, error) {
	u, err := url.Parse(r.receiverURL(si))
	if err != nil {
		return "", fmt.Errorf("receiver URL: %w", err)
	}
	u.Path, u.RawPath, u.RawQuery = ledger.PathPrefix+si.Spec.ClinicID, "", ""
	return u.String(), nil
}

// errLedgerNotWritten: the receiver answered, but not that every system of record took the
// message; its message says why.
var errLedgerNotWritten = errors.New("the receiver did not write the ledger message")

// sendLedger hands one ledger message to the clinic's receiver, signed with the endpoint's
// signing secret in sigheader.LedgerHeader, and returns the receiver's answer. It is nil only
// once every system of record accepted the message; sending it again is harmless (the systems
// of record key it on its id).
func (r *StripeIntegrationReconciler) sendLedger(ctx context.Context, si *paymentsv1alpha1.StripeIntegration,
	msg ledger.Message) (ledger.Result, error) {
	if err := msg.Check(); err != nil {
		return ledger.Result{}, fmt.Errorf("not sending an invalid ledger message: %w", err)
	}
	stored, err := r.readSigningSecret(ctx, si)
	if err != nil {
		return ledger.Result{}, fmt.Errorf("reading the signing secret: %w", err)
	}
	if stored.value == "" {
		return ledger.Result{}, errors.New("the signing secret is not stored yet")
	}
	target, err := r.ledgerURL(si)
	if err != nil {
		return ledger.Result{}, err
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return ledger.Result{}, fmt.Errorf("encoding the ledger message: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return ledger.Result{}, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(sigheader.LedgerHeader, sigheader.Ledger.Sign([]byte(stored.value), r.now(), body))
	hc := r.ReplayHTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: ledgerSendTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ledger.Result{}, fmt.Errorf("posting to the receiver: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	var res ledger.Result
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&res); err != nil {
		return ledger.Result{}, fmt.Errorf("receiver answered HTTP %d without its JSON result: %w", resp.StatusCode, err)
	}
	if resp.StatusCode/100 != 2 || res.Status != ledger.StatusWritten {
		return res, fmt.Errorf("%w: HTTP %d, %q: %s", errLedgerNotWritten, resp.StatusCode, res.Status, res.Message)
	}
	return res, nil
}

// ledgerSendTimeout bounds one ledger message's hand-off, the systems of record's writes included.
const ledgerSendTimeout = 30 * time.Second
