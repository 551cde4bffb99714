/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package stripefake

import (
	"time"
)

// WithDeliveryRetries makes the fake retry failed webhook deliveries on its
// own, as Stripe does. After a delivery of a triggered event to an endpoint
// fails (non-2xx answer or transport error), it is retried in the background
// after schedule[0], then, if that fails too, schedule[1] later, and so on
// until one attempt succeeds or the schedule is exhausted. Each attempt is
// re-rendered and re-signed at the time it is sent (with the endpoint's
// current URL and secret) and recorded in Deliveries. Retries stop early when
// the event was delivered meanwhile (for example by Redeliver), the endpoint
// was deleted or disabled, or the server is closed.
//
// Stripe's real schedule is exponential backoff over up to 3 days in live
// mode (a few attempts over hours in test mode), so a receiver that answers
// 5xx loses nothing as long as it recovers within that window; tests use a
// compressed schedule such as {100ms, 200ms, 400ms}. Delays use the real
// clock even when WithClock is set; signature timestamps use the fake clock.
//
// Only the first delivery of an event (TriggerEvent) starts a schedule: a
// failed Redeliver, like a manual resend in the dashboard, does not.
// WaitForDeliveries also waits for pending retries, and Close cancels them.
func WithDeliveryRetries(schedule []time.Duration) Option {
	return func(c *config) {
		c.retrySchedule = make([]time.Duration, 0, len(schedule))
		for _, d := range schedule {
			c.retrySchedule = append(c.retrySchedule, max(d, 0))
		}
	}
}

// scheduleRetry starts the next automatic retry of a failed job, if any is
// due, and counts it in flight so WaitForDeliveries waits for it. Callers
// hold s.mu.
func (s *Server) scheduleRetry(failed deliveryJob) {
	if !failed.autoRetry || s.closed || failed.attempt >= len(s.cfg.retrySchedule) {
		return
	}
	delay := s.cfg.retrySchedule[failed.attempt]
	s.markInflight(failed.eventID)
	go s.retryAfter(delay, failed)
}

// retryAfter waits delay (or until Close) and sends the next attempt.
func (s *Server) retryAfter(delay time.Duration, failed deliveryJob) {
	defer s.batchDone(failed.eventID)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.closing:
		return
	}
	if j, ok := s.retryJob(failed); ok {
		s.deliver(j)
	}
}

// retryJob re-renders a failed job for its next attempt, or reports that no
// retry is needed any more.
func (s *Server) retryJob(failed deliveryJob) (deliveryJob, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return deliveryJob{}, false
	}
	ev, e := s.events[failed.eventID], s.endpoints[failed.endpointID]
	if ev == nil || e == nil || e.status != statusEnabled || ev.delivered[e.id] {
		return deliveryJob{}, false
	}
	j, err := renderJob(ev, e, s.cfg.now())
	if err != nil {
		// The same event rendered for the first attempt, so this cannot
		// happen; dropping the retry is the only safe answer if it does.
		return deliveryJob{}, false
	}
	j.autoRetry, j.attempt = true, failed.attempt+1
	return j, true
}
