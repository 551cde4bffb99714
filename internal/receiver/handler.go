package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/bits"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	stripe "github.com/stripe/stripe-go/v76"

	"github.com/clinicpay/stripe-operator/internal/ledger"
	"github.com/clinicpay/stripe-operator/internal/relay"
	"github.com/clinicpay/stripe-operator/internal/sigheader"
)

// response is the short JSON body of every webhook answer.
type response struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Header values of every answer, shared by all of them: net/http clones a handler's header
// before changing anything in it, so no answer can alter another's.
var (
	headerJSON    = []string{"application/json"}
	headerNoStore = []string{"no-store"}
	headerNosniff = []string{"nosniff"}
)

// answerRelayed is the body of the usual answer, encoded once rather than for every event.
var answerRelayed = encodeAnswer(resultRelayed, msgRelayed)

const msgRelayed = "accepted by every system of record"

// encodeAnswer renders an answer body as json.Encoder does: HTML-escaped, newline-terminated.
func encodeAnswer(status, message string) []byte {
	b, _ := json.Marshal(response{Status: status, Message: message}) // two strings: cannot fail
	return append(b, '\n')
}

func writeJSON(w http.ResponseWriter, code int, status, message string) {
	writeAnswer(w, code, encodeAnswer(status, message))
}

func writeAnswer(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h["Content-Type"] = headerJSON
	h["Cache-Control"] = headerNoStore
	h["X-Content-Type-Options"] = headerNosniff
	w.WriteHeader(code)
	// The only possible failure is a gone client, which nobody can be told about.
	_, _ = w.Write(body)
}

// serveWebhook handles POST to the mode's webhook path (and, in Test mode, the legacy one):
// verify, dedup, relay, answer.
func (r *Receiver) serveWebhook(w http.ResponseWriter, req *http.Request) {
	if strings.HasPrefix(req.URL.Path, ledger.PathPrefix) {
		r.serveLedger(w, req)
		return
	}
	if req.URL.Path != r.path && (r.legacy == "" || req.URL.Path != r.legacy) {
		writeJSON(w, http.StatusNotFound, "not_found", "no webhook endpoint at this path")
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	buf := r.bodies.get()
	defer r.bodies.put(buf)
	body, ok := r.readBody(w, req, buf)
	if !ok {
		return
	}
	secrets := r.secrets.Current()
	if len(secrets) == 0 && reloaded(r.secrets) {
		secrets = r.secrets.Value()
	}
	if len(secrets) == 0 {
		r.metrics.events.WithLabelValues(typeUnknown, resultFailed).Inc()
		writeJSON(w, http.StatusServiceUnavailable, "unavailable", "signing secret not loaded yet")
		return
	}
	ev, rej := verifyEvent(body, req.Header.Get("Stripe-Signature"), secrets, time.Now())
	if rej != nil && rej.cause == causeBadSignature && reloaded(r.secrets) {
		// The secret may have been rolled a moment ago: try once more with the new file.
		ev, rej = verifyEvent(body, req.Header.Get("Stripe-Signature"), r.secrets.Value(), time.Now())
	}
	if rej == nil {
		rej = checkMode(ev, r.cfg.Mode)
	}
	if rej != nil {
		r.reject(w, rej)
		return
	}
	if r.answerProbe(w, req, body, ev) {
		return
	}
	r.process(w, req, ev, r.isReplay(req, body, ev))
}

// isReplay reports whether a verified delivery carries a valid replay marker. A marker that does
// not verify is ignored (logged, never an error): the delivery is still validly signed by
// Stripe's scheme, so it gets the treatment of any Stripe delivery, dedup included.
func (r *Receiver) isReplay(req *http.Request, body []byte, ev stripe.Event) bool {
	header := req.Header.Get(sigheader.ReplayHeader)
	if header == "" {
		return false
	}
	if sigheader.VerifyReplay(header, body, r.secrets.Value(), SignatureTolerance, time.Now()) {
		return true
	}
	r.log.Info("Replay marker did not verify; treated as an ordinary delivery", "eventID", ev.ID)
	return false
}

// readBody reads the capped raw body into buf: the signature covers the exact bytes, so nothing
// may decode and re-encode it before verification. The result is valid until buf goes back to
// the pool.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request, buf *bytes.Buffer) ([]byte, bool) {
	// Sized up front only from a declared length a Stripe event could have: an unauthenticated
	// client must not make the receiver hold more memory than it actually sent.
	if n := req.ContentLength; n > 0 && n <= min(r.cfg.MaxBodyBytes, maxPresizedBody) {
		buf.Grow(int(n) + bytes.MinRead) // one read to EOF, no regrowth
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	if err == nil {
		return buf.Bytes(), true
	}
	r.metrics.events.WithLabelValues(typeUnknown, resultRejected).Inc()
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		writeJSON(w, http.StatusRequestEntityTooLarge, "too_large", "body exceeds the receiver's limit")
		return nil, false
	}
	writeJSON(w, http.StatusBadRequest, "rejected", "cannot read body")
	return nil, false
}

// reject answers 400 and counts the cause. Unverified deliveries are logged without any of
// their content: it is whatever the sender chose.
func (r *Receiver) reject(w http.ResponseWriter, rej *rejection) {
	typ := typeUnknown
	kv := []any{"cause", string(rej.cause)}
	if rej.eventType != "" {
		typ = typeLabel(rej.eventType)
		kv = append(kv, "eventID", rej.eventID, "eventType", typ)
	}
	r.metrics.signatureFailures.WithLabelValues(string(rej.cause)).Inc()
	r.metrics.events.WithLabelValues(typ, resultRejected).Inc()
	r.log.Info("Rejected webhook delivery", kv...)
	writeJSON(w, http.StatusBadRequest, "rejected", rej.message)
}

// process relays a verified event once per replica, or again when it is a replay. A concurrent
// delivery of the same id waits for the first one's outcome instead of relaying in parallel; a
// replay that waited on a relay which left out targets (Stripe's retry goes only to the ones
// that failed) then relays to those, so a replay reaches every target.
func (r *Receiver) process(w http.ResponseWriter, req *http.Request, ev stripe.Event, replay bool) {
	typ := typeLabel(string(ev.Type))
	// The event's logger is built only for a line that is written: WithValues renders its values
	// at once, which every relayed event paid for while, at verbosity 0, none of them logs.
	log := eventLog{r.log, ev.ID, typ, replay}
	if len(r.targets) == 0 {
		log.get().Info("Verified event acknowledged without relay")
		r.metrics.events.WithLabelValues(typ, resultAcknowledged).Inc()
		writeJSON(w, http.StatusOK, resultAcknowledged, "verified; no system of record configured")
		return
	}
	var force targetSet // the targets this delivery must reach even if they accepted the event
	if replay {
		force = r.dedup.all
	}
	ok := true
claim:
	for {
		state, f := r.dedup.begin(ev.ID, force)
		switch state {
		case claimSeen:
			break claim
		case claimFollower:
			var done bool
			if ok, done = f.wait(req.Context()); !done {
				return // the sender hung up; it will deliver again
			}
			if !ok || force&f.skip == 0 {
				break claim
			}
			force &= f.skip // the relay it joined left these out
		case claimLeader:
			// Detached from the request: a relay that started finishes (bounded by the forward
			// timeout) so its outcome is recorded for the waiting duplicates and the dedup set.
			accepted := r.relay(context.WithoutCancel(req.Context()), log, ev, f.skip)
			if !r.dedup.finish(ev.ID, f, accepted) {
				ok = false
				break claim
			}
			r.metrics.events.WithLabelValues(typ, resultRelayed).Inc()
			writeAnswer(w, http.StatusOK, answerRelayed)
			return
		}
	}
	if !ok {
		r.metrics.events.WithLabelValues(typ, resultFailed).Inc()
		writeJSON(w, http.StatusServiceUnavailable, resultFailed, "a system of record did not accept the event; retry later")
		return
	}
	if replay {
		// A replay that joined a relay in flight, which reached every target it had to: the
		// event went through during this request, and the operator counts it as delivered.
		r.metrics.events.WithLabelValues(typ, resultRelayed).Inc()
		writeAnswer(w, http.StatusOK, answerRelayed)
		return
	}
	if l := r.log.V(1); l.Enabled() {
		log.get().V(1).Info("Duplicate event not relayed again")
	}
	r.metrics.duplicates.Inc()
	r.metrics.events.WithLabelValues(typ, resultDuplicate).Inc()
	writeJSON(w, http.StatusOK, resultDuplicate, "already relayed")
}

// relay hands ev to every target not in skip (those accepted an earlier delivery), logs each
// failure with a redacted reason, and returns the targets that accepted it.
func (r *Receiver) relay(ctx context.Context, log eventLog, ev stripe.Event, skip targetSet) targetSet {
	start := time.Now()
	accepted, errs := r.relayAll(ctx, relay.Event{ClinicID: r.cfg.ClinicID, Stripe: ev}, skip)
	for _, te := range errs {
		log.get().Error(errors.New(redact(te.err, r.secrets.Value())), "Relay to system of record failed", "target", te.target)
	}
	// One line per relayed event only at verbosity 1 (--log-verbosity): formatting and writing
	// it cost about 7% of the receiver's CPU at saturation, and stripe_receiver_events_total
	// counts the relays. Failures and rejections stay logged at 0.
	if len(errs) == 0 && r.log.V(1).Enabled() {
		log.get().V(1).Info("Event relayed", "targets", len(r.targets), "alreadyAccepted", bits.OnesCount64(uint64(skip)),
			"duration", time.Since(start).String())
	}
	return accepted
}

// eventLog is what a verified event's log lines carry; get builds the logger.
type eventLog struct {
	base   logr.Logger
	id     string
	typ    string
	replay bool
}

func (e eventLog) get() logr.Logger {
	return e.base.WithValues("eventID", e.id, "eventType", e.typ, "replay", e.replay)
}
