package receiver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/clinicpay/stripe-operator/internal/relay"
)

// targetError is one target's failure, kept apart so each is logged with its target name.
type targetError struct {
	target string
	err    error
}

// relayAll hands ev to every target not in skip concurrently, each bounded by the forward
// timeout, and returns the set of targets that accepted it and the failures.
func (r *Receiver) relayAll(ctx context.Context, ev relay.Event, skip targetSet) (targetSet, []targetError) {
	if len(r.targets) == 1 {
		// The usual single target: no closure, lock or wait group to allocate on every event.
		if skip&1 != 0 {
			return 0, nil
		}
		if err := r.deliverOne(ctx, r.targets[0], ev); err != nil {
			return 0, []targetError{{target: r.targets[0].Name(), err: err}}
		}
		return 1, nil
	}
	var (
		mu       sync.Mutex
		accepted targetSet
		errs     []targetError
		wg       sync.WaitGroup
	)
	deliver := func(i int) {
		t := r.targets[i]
		err := r.deliverOne(ctx, t, ev)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, targetError{target: t.Name(), err: err})
			return
		}
		accepted |= 1 << i
	}
	var todo []int
	for i := range r.targets {
		if skip&(1<<i) == 0 {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return 0, nil
	}
	// The first target runs on this goroutine: with the usual single target, no goroutine
	// hand-off is paid on every event.
	for _, i := range todo[1:] {
		wg.Go(func() { deliver(i) })
	}
	deliver(todo[0])
	wg.Wait()
	return accepted, errs
}

// deliverOne calls one target with its own timeout and records how long it took. A panicking
// target becomes an error: it runs on a goroutine net/http does not guard, and one bad target
// must not take down the receiver.
func (r *Receiver) deliverOne(ctx context.Context, t relay.Target, ev relay.Event) (err error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ForwardTimeout)
	defer cancel()
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("target panicked: %v", p)
		}
		r.metrics.relayDuration.WithLabelValues(t.Name()).Observe(time.Since(start).Seconds())
		r.metrics.recordRelay(t.Name(), err, time.Now())
	}()
	if err := t.Deliver(ctx, ev); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return fmt.Errorf("no answer within %s: %w", r.cfg.ForwardTimeout, err)
		}
		return err
	}
	return nil
}

// Patterns that may carry credentials in a target's error text: URL user info, query strings
// (tokens are sometimes passed as ?access_token=), and Authorization-style values.
var (
	redactUserinfo = regexp.MustCompile(`(://)[^/@\s]+@`)
	redactQuery    = regexp.MustCompile(`(https?://[^\s?"]+)\?[^\s"]*`)
	redactBearer   = regexp.MustCompile(`(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]+`)
)

// maxReasonLen bounds a logged reason; a target could return a whole response body.
const maxReasonLen = 300

// redact turns a target error into a loggable reason: known secrets and credential-looking
// parts removed, length bounded.
func redact(err error, secrets []string) string {
	s := err.Error()
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[REDACTED]")
		}
	}
	s = redactUserinfo.ReplaceAllString(s, "${1}[REDACTED]@")
	s = redactQuery.ReplaceAllString(s, "${1}?[REDACTED]")
	s = redactBearer.ReplaceAllString(s, "${1} [REDACTED]")
	if len(s) > maxReasonLen {
		s = strings.ToValidUTF8(s[:maxReasonLen], "") + "…"
	}
	return s
}
