package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
)

// LedgerMaxBodyBytes caps a ledger message's body. A payout's item is about 300 bytes of JSON,
// so a payout of 10,000 balance transactions is about 3 MiB; 16 MiB leaves room for Stripe ids
// growing and for the largest payouts Stripe lists, and still bounds what an unauthenticated
// client can make the receiver hold (at most ledgerSlots bodies at once).
const LedgerMaxBodyBytes int64 = 16 << 20

// ledgerSlots bounds the ledger messages read and written at once: each may hold a body of up to
// LedgerMaxBodyBytes. The operator sends them one at a time per clinic; further ones wait.
const ledgerSlots = 4

// Kind label values of stripe_receiver_ledger_messages_total besides ledger.KindPayout and
// ledger.KindFlag: a message not verified or not of a known kind.
const kindUnknown = "unknown"

// Results of one ledger message, the result label of stripe_receiver_ledger_messages_total.
const (
	ledgerWritten      = ledger.StatusWritten // every target recorded it
	ledgerFailed       = "failed"             // a target did not, or no secret is loaded (503)
	ledgerRejected     = "rejected"           // 400, 404, 405, 413
	ledgerUnauthorized = "unauthorized"       // 401: no valid Clinicpay-Ledger-Signature
)

func ledgerKinds() []string { return []string{ledger.KindPayout, ledger.KindFlag, kindUnknown} }
func ledgerResults() []string {
	return []string{ledgerWritten, ledgerFailed, ledgerRejected, ledgerUnauthorized}
}

// serveLedger takes a ledger message from the operator at ledger.PathPrefix + <clinicID>:
// method, clinic, size, signature and content are checked in this order, each refused with its
// own status, then the message is written to every system of record, in parallel. Messages are
// not deduplicated here: the targets are idempotent on the message id, and the operator sends a
// message again until it is answered "written".
func (r *Receiver) serveLedger(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		r.ledgerRefused(w, http.StatusMethodNotAllowed, kindUnknown, ledgerRejected, "method_not_allowed", "use POST")
		return
	}
	if strings.TrimPrefix(req.URL.Path, ledger.PathPrefix) != r.cfg.ClinicID {
		r.ledgerRefused(w, http.StatusNotFound, kindUnknown, ledgerRejected, "not_found", "no ledger endpoint for this clinic at this path")
		return
	}
	select {
	case r.ledgerSlots <- struct{}{}:
		defer func() { <-r.ledgerSlots }()
	case <-req.Context().Done():
		return // the sender hung up; it sends again
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, LedgerMaxBodyBytes))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			r.ledgerRefused(w, http.StatusRequestEntityTooLarge, kindUnknown, ledgerRejected, "too_large",
				fmt.Sprintf("ledger message exceeds %d bytes", LedgerMaxBodyBytes))
			return
		}
		r.ledgerRefused(w, http.StatusBadRequest, kindUnknown, ledgerRejected, "rejected", "cannot read body")
		return
	}
	secrets := r.secrets.Current()
	if len(secrets) == 0 && reloaded(r.secrets) {
		secrets = r.secrets.Value()
	}
	if len(secrets) == 0 {
		r.ledgerRefused(w, http.StatusServiceUnavailable, kindUnknown, ledgerFailed, ledgerFailed, "signing secret not loaded yet")
		return
	}
	header := req.Header.Get(sigheader.LedgerHeader)
	err = verifyLedger(header, body, secrets)
	if errors.Is(err, sigheader.ErrMismatch) && reloaded(r.secrets) {
		// The secret may have been rolled a moment ago: try once more with the new file.
		err = verifyLedger(header, body, r.secrets.Value())
	}
	if err != nil {
		r.ledgerRefused(w, http.StatusUnauthorized, kindUnknown, ledgerUnauthorized, "unauthorized", ledgerSignatureMessage(err))
		return
	}
	msg, err := r.decodeLedger(body)
	if err != nil {
		kind := kindUnknown
		if msg.Kind == ledger.KindPayout || msg.Kind == ledger.KindFlag {
			kind = msg.Kind
		}
		r.ledgerRefused(w, http.StatusBadRequest, kind, ledgerRejected, "rejected", err.Error())
		return
	}
	r.writeLedger(w, req, msg)
}

// verifyLedger checks a Clinicpay-Ledger-Signature against the signing secrets: the Ledger
// scheme's domain makes a Stripe-Signature or replay marker computed with the same secret fail.
func verifyLedger(header string, body []byte, secrets []string) error {
	keys := make([][]byte, len(secrets))
	for i, s := range secrets {
		keys[i] = []byte(s)
	}
	return sigheader.Ledger.Verify(header, body, SignatureTolerance, time.Now(), keys...)
}

// ledgerSignatureMessage says why a signature was refused, without echoing any of it.
func ledgerSignatureMessage(err error) string {
	switch {
	case errors.Is(err, sigheader.ErrNoHeader):
		return "missing " + sigheader.LedgerHeader + " header"
	case errors.Is(err, sigheader.ErrInvalidHeader):
		return "invalid " + sigheader.LedgerHeader + " header"
	case errors.Is(err, sigheader.ErrOutOfTolerance):
		return sigheader.LedgerHeader + " timestamp is more than " + SignatureTolerance.String() + " from the receiver's clock"
	}
	return "no valid " + sigheader.LedgerHeader + " for this endpoint's signing secret"
}

// decodeLedger decodes a signed message and checks it belongs here: well formed (Message.Check),
// for this clinic, and of this receiver's mode, down to the payout and the flagged event.
func (r *Receiver) decodeLedger(body []byte) (ledger.Message, error) {
	var msg ledger.Message
	if !utf8.Valid(body) {
		return msg, errors.New("ledger message is not valid UTF-8")
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		return ledger.Message{}, fmt.Errorf("ledger message is not JSON of a message: %w", err)
	}
	if err := msg.Check(); err != nil {
		return msg, err
	}
	live := r.cfg.Mode == ModeLive
	if msg.ClinicID != r.cfg.ClinicID {
		return msg, fmt.Errorf("message %s is for clinic %q, this receiver serves %q", msg.ID, msg.ClinicID, r.cfg.ClinicID)
	}
	if msg.Livemode != live || (msg.Payout != nil && msg.Payout.Livemode != live) {
		return msg, fmt.Errorf("message %s: livemode contradicts the receiver's %s mode", msg.ID, r.cfg.Mode)
	}
	if msg.Flag != nil && len(msg.Flag.Event) > 0 {
		var ev struct {
			ID       string `json:"id"`
			Livemode *bool  `json:"livemode"`
		}
		if err := json.Unmarshal(msg.Flag.Event, &ev); err != nil {
			return msg, fmt.Errorf("message %s: the flagged event is not JSON: %w", msg.ID, err)
		}
		if ev.ID != msg.Flag.EventID {
			return msg, fmt.Errorf("message %s: the flagged event is %q, the flag names %s", msg.ID, ev.ID, msg.Flag.EventID)
		}
		if ev.Livemode != nil && *ev.Livemode != live {
			return msg, fmt.Errorf("message %s: the flagged event's livemode contradicts the receiver's %s mode", msg.ID, r.cfg.Mode)
		}
	}
	return msg, nil
}

// writeLedger writes msg to every target and answers: 200 with the union of what they filled in
// once all accepted it, 503 naming the targets that did not.
func (r *Receiver) writeLedger(w http.ResponseWriter, req *http.Request, msg ledger.Message) {
	log := r.log.WithValues("ledgerMessage", msg.ID, "kind", msg.Kind)
	start := time.Now()
	// Detached from the request like event relays: a write that started finishes, bounded by the
	// forward timeout, rather than leave a target half written.
	filled, errs := r.writeLedgerAll(context.WithoutCancel(req.Context()), msg)
	if len(errs) > 0 {
		names := make([]string, 0, len(errs))
		for _, te := range errs {
			names = append(names, te.target)
			log.Error(errors.New(redact(te.err, r.secrets.Value())), "Ledger message not written to a system of record", "target", te.target)
		}
		slices.Sort(names)
		r.metrics.ledger.WithLabelValues(msg.Kind, ledgerFailed).Inc()
		writeLedgerResult(w, http.StatusServiceUnavailable, ledger.Result{Status: ledgerFailed,
			Message: "not written to " + strings.Join(names, ", ") + "; send again later"})
		return
	}
	r.metrics.ledger.WithLabelValues(msg.Kind, ledgerWritten).Inc()
	log.Info("Ledger message written", "targets", len(r.targets), "filled", len(filled), "duration", time.Since(start).String())
	res := ledger.Result{Status: ledger.StatusWritten, Filled: filled, FilledCount: len(filled)}
	if len(filled) > ledger.MaxFilledIDs {
		// The first ones (sorted); the FHIR server's filled-from-payout extension names them all.
		res.Filled = filled[:ledger.MaxFilledIDs]
		res.Message = fmt.Sprintf("%d payments filled in; the first %d listed", len(filled), ledger.MaxFilledIDs)
	}
	writeLedgerResult(w, http.StatusOK, res)
}

// writeLedgerAll hands msg to every target concurrently, each bounded by the forward timeout,
// and returns the sorted, deduplicated union of the payments they filled in and the failures. A
// target that records no ledger messages is a failure: answering "written" without it would
// tell the operator the clinic's books are complete when they are not.
func (r *Receiver) writeLedgerAll(ctx context.Context, msg ledger.Message) ([]string, []targetError) {
	var (
		mu     sync.Mutex
		filled []string
		errs   []targetError
		wg     sync.WaitGroup
	)
	for _, t := range r.targets {
		wg.Go(func() {
			got, err := r.writeLedgerOne(ctx, t, msg)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, targetError{target: t.Name(), err: err})
				return
			}
			filled = append(filled, got...)
		})
	}
	wg.Wait()
	slices.Sort(filled)
	return slices.Compact(filled), errs
}

// writeLedgerOne calls one target with its own timeout; a panicking target becomes an error.
func (r *Receiver) writeLedgerOne(ctx context.Context, t relay.Target, msg ledger.Message) (filled []string, err error) {
	lw, ok := t.(relay.LedgerWriter)
	if !ok {
		return nil, errors.New("this system of record does not record ledger messages")
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ForwardTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			filled, err = nil, fmt.Errorf("target panicked: %v", p)
		}
	}()
	filled, err = lw.WriteLedger(ctx, msg)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return nil, fmt.Errorf("not written within %s: %w", r.cfg.ForwardTimeout, err)
	}
	return filled, err
}

// ledgerRefused answers a message that was not written, in the receiver's answer style (the
// operator reads the body as a ledger.Result: status and message).
func (r *Receiver) ledgerRefused(w http.ResponseWriter, code int, kind, result, status, message string) {
	r.metrics.ledger.WithLabelValues(kind, result).Inc()
	if code == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	// Only the cause: the body is the sender's, and not logged before it verified.
	r.log.Info("Refused ledger message", "status", code, "reason", message)
	writeLedgerResult(w, code, ledger.Result{Status: status, Message: message})
}

func writeLedgerResult(w http.ResponseWriter, code int, res ledger.Result) {
	b, _ := json.Marshal(res) // strings only: cannot fail
	writeAnswer(w, code, append(b, '\n'))
}
