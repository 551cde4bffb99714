package fhirrelay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// fhirJSON is the FHIR JSON media type, sent as Content-Type and Accept.
const fhirJSON = "application/fhir+json"

// maxErrorBody bounds how much of an error response is read for its OperationOutcome.
const maxErrorBody = 64 << 10

// Deliver maps the event and writes each resulting resource with a conditional create. It
// returns nil once every write was accepted (201 created, or 200: it already existed) and
// for events the mapping acknowledges without a write. Errors never contain the token.
func (t *Target) Deliver(ctx context.Context, ev relay.Event) error {
	writes, err := t.mapEvent(ev)
	if err != nil {
		return fmt.Errorf("fhir: map %s event %s: %w", ev.Stripe.Type, ev.Stripe.ID, err)
	}
	for _, w := range writes {
		if _, err := t.conditionalCreate(ctx, w); err != nil {
			return fmt.Errorf("fhir: %s event %s: %w", ev.Stripe.Type, ev.Stripe.ID, err)
		}
	}
	return nil
}

// maxExistingBody bounds how much of a 200 answer is read when the write asks for the existing
// resource (a PaymentNotice is a few KB).
const maxExistingBody = 1 << 20

// created is how the server accepted a conditional create.
type created struct {
	// now is true for 201 Created: nothing matched and the resource was created by this request.
	now bool
	// existing is the matching resource the server returned with 200 OK, read only for writes
	// that ask for it (write.wantExisting) and only when the server sent it.
	existing []byte
}

// conditionalCreate sends POST [base]/<Type> with If-None-Exist. Per FHIR R4 the server
// creates the resource when nothing matches (201), does nothing when one resource matches
// (200) and refuses with 412 when several match, which means duplicates already exist
// (https://hl7.org/fhir/R4/http.html#ccreate).
func (t *Target) conditionalCreate(ctx context.Context, w write) (created, error) {
	body, err := json.Marshal(w.resource)
	if err != nil {
		return created{}, fmt.Errorf("encode %s: %w", w.resourceType, err)
	}
	token := t.token.get()
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/"+w.resourceType, bytes.NewReader(body))
	if err != nil {
		return created{}, fmt.Errorf("build %s request: %w", w.resourceType, err)
	}
	req.Header.Set("Content-Type", fhirJSON)
	req.Header.Set("Accept", fhirJSON)
	req.Header.Set("If-None-Exist", ifNoneExist(w.key))
	if w.wantExisting {
		// Asks for the stored resource in the answer (https://hl7.org/fhir/R4/http.html#ins-return);
		// a server that sends none anyway only loses the "filled by an earlier attempt" check.
		req.Header.Set("Prefer", "return=representation")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		// *url.Error names the method and URL; request headers never appear in it.
		return created{}, fmt.Errorf("create %s: %w", w.resourceType, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return created{}, statusError(resp, w, token)
	}
	out := created{now: resp.StatusCode == http.StatusCreated}
	if w.wantExisting && resp.StatusCode == http.StatusOK {
		out.existing, _ = io.ReadAll(io.LimitReader(resp.Body, maxExistingBody))
	}
	// Drain so the connection is reused; the body (the stored resource) is not needed.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return out, nil
}

// ifNoneExist is the search that finds an earlier write of the same resource. System URIs are
// constants; the value is a Stripe id, query-escaped in case it ever holds '&' or '#'.
func ifNoneExist(key Identifier) string {
	return "identifier=" + key.System + "|" + url.QueryEscape(key.Value)
}

// statusError describes a refused write: the status and, when the body is an
// OperationOutcome, its issues. A server could echo request headers back, so the token is
// scrubbed from anything taken from the body.
func statusError(resp *http.Response, w write, token string) error {
	what := fmt.Sprintf("create %s (%s)", w.resourceType, ifNoneExist(w.key))
	status := resp.Status
	if resp.StatusCode == http.StatusPreconditionFailed {
		status += ": several resources match, duplicates exist on the server"
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	detail := outcomeSummary(body, token)
	if detail == "" {
		return fmt.Errorf("%s: %s", what, status)
	}
	return fmt.Errorf("%s: %s: %s", what, status, detail)
}
