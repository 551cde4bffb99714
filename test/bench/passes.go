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

package bench

// Where a cold start's time goes, read from the apiserver's audit log: for each integration, the
// span from the manager's first write (the finalizer) to its first status write, and how long the
// apiserver took to answer each kind of write in it. A pass that spends its time waiting for one
// request shows here without instrumenting the manager.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// PassBreakdown is the median first pass of the cold start's integrations.
type PassBreakdown struct {
	Integrations int           // integrations whose first write and first status write were both seen
	Span         time.Duration // median: first write sent → first status write answered
	// Requests is the median apiserver time (received → answered) of each kind of write, in the
	// order the pass makes them.
	Requests []RequestTime
}

// RequestTime is one kind of write and its median time in the apiserver.
type RequestTime struct {
	Kind   string
	Median time.Duration
}

// String renders the breakdown for the report.
func (b PassBreakdown) String() string {
	if b.Integrations == 0 {
		return "no complete first pass in the audit log"
	}
	parts := make([]string, 0, len(b.Requests))
	for _, r := range b.Requests {
		parts = append(parts, fmt.Sprintf("%s %s", r.Kind, ms(r.Median)))
	}
	return fmt.Sprintf("first write → first status write %s (median of %d); apiserver time per write (median): %s",
		ms(b.Span), b.Integrations, strings.Join(parts, ", "))
}

type timedAuditEvent struct {
	auditEvent
	RequestURI string    `json:"requestURI"`
	Received   time.Time `json:"requestReceivedTimestamp"`
	Answered   time.Time `json:"stageTimestamp"`
	ObjectRef  struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
}

var clinicName = regexp.MustCompile(clinicPrefix + `[0-9]+`)

// passBreakdown reads the manager's writes logged after offset.
func (a *auditLog) passBreakdown(offset int64) (PassBreakdown, error) {
	f, err := os.Open(a.path)
	if err != nil {
		return PassBreakdown{}, fmt.Errorf("open audit log: %w", err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return PassBreakdown{}, err
	}
	type first struct{ received, answered time.Time }
	type integration struct {
		start, status time.Time
		seen          map[string]first
	}
	byClinic := map[string]*integration{}
	order := map[string]int{} // kind → first position seen, to list kinds in pass order
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var ev timedAuditEvent
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Stage != "ResponseComplete" || ev.User.Username != benchManagerUser {
			continue
		}
		clinic := clinicName.FindString(ev.ObjectRef.Name)
		if clinic == "" {
			clinic = clinicName.FindString(ev.RequestURI) // Events are named after their object plus a suffix
		}
		if clinic == "" {
			continue
		}
		kind := ev.Verb + " " + ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			kind += "/" + ev.ObjectRef.Subresource
		}
		key := ev.ObjectRef.Namespace + "/" + clinic
		in := byClinic[key]
		if in == nil {
			in = &integration{start: ev.Received, seen: map[string]first{}}
			byClinic[key] = in
		}
		if _, ok := in.seen[kind]; !ok {
			in.seen[kind] = first{ev.Received, ev.Answered}
			if _, ok := order[kind]; !ok {
				order[kind] = len(order)
			}
		}
		if ev.Received.Before(in.start) {
			in.start = ev.Received
		}
		if kind == "patch stripeintegrations/status" && (in.status.IsZero() || ev.Answered.Before(in.status)) {
			in.status = ev.Answered
		}
	}
	if err := sc.Err(); err != nil {
		return PassBreakdown{}, err
	}
	var b PassBreakdown
	spans := make([]time.Duration, 0, len(byClinic))
	perKind := map[string][]time.Duration{}
	for _, in := range byClinic {
		if in.status.IsZero() {
			continue
		}
		spans = append(spans, in.status.Sub(in.start))
		for kind, t := range in.seen {
			perKind[kind] = append(perKind[kind], t.answered.Sub(t.received))
		}
	}
	b.Integrations, b.Span = len(spans), percentile(spans, 50)
	kinds := make([]string, 0, len(perKind))
	for k := range perKind {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return order[kinds[i]] < order[kinds[j]] })
	for _, k := range kinds {
		b.Requests = append(b.Requests, RequestTime{Kind: k, Median: percentile(perKind[k], 50)})
	}
	return b, nil
}
