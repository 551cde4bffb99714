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

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPassBreakdown reads a small audit log in the apiserver's JSON format: the span runs from an
// integration's first write to its first status write, Events count by the object they name,
// other users and unfinished stages are ignored, and kinds are listed in the order passes make them.
func TestPassBreakdown(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	line := func(user, stage, verb, resource, sub, ns, name string, at, took time.Duration) string {
		return fmt.Sprintf(`{"kind":"Event","stage":%q,"verb":%q,"user":{"username":%q},"requestURI":"/x/%s",`+
			`"objectRef":{"resource":%q,"subresource":%q,"namespace":%q,"name":%q},"responseStatus":{"code":200},`+
			`"requestReceivedTimestamp":%q,"stageTimestamp":%q}`, stage, verb, user, name, resource, sub, ns, name,
			t0.Add(at).Format(time.RFC3339Nano), t0.Add(at+took).Format(time.RFC3339Nano))
	}
	const m, done = benchManagerUser, "ResponseComplete"
	lines := make([]string, 0, 14)
	for i, shift := range []time.Duration{0, time.Second} {
		ns, si := "bench-0", fmt.Sprintf("clinic-%d", i)
		lines = append(lines,
			line(m, done, "patch", "stripeintegrations", "", ns, si, shift, 10*time.Millisecond),
			line(m, "RequestReceived", "patch", "services", "", ns, "stripe-receiver-"+si, shift+50*time.Millisecond, 0),
			line(m, done, "patch", "services", "", ns, "stripe-receiver-"+si, shift+50*time.Millisecond, 500*time.Millisecond),
			line("someone-else", done, "patch", "services", "", ns, "stripe-receiver-"+si, shift, 5*time.Second),
			line(m, done, "patch", "stripeintegrations", "status", ns, si, shift+600*time.Millisecond, 20*time.Millisecond),
			line(m, done, "create", "events", "", ns, si+".18eec4184f271ad8", shift+700*time.Millisecond, 30*time.Millisecond),
			line(m, done, "patch", "stripeintegrations", "status", ns, si, shift+2*time.Second, 20*time.Millisecond),
		)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n{\"partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := (&auditLog{path: path}).passBreakdown(0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Integrations != 2 || b.Span != 620*time.Millisecond {
		t.Errorf("%d integrations, span %s; want 2 and 620ms", b.Integrations, b.Span)
	}
	want := []RequestTime{{"patch stripeintegrations", 10 * time.Millisecond}, {"patch services", 500 * time.Millisecond},
		{"patch stripeintegrations/status", 20 * time.Millisecond}, {"create events", 30 * time.Millisecond}}
	if fmt.Sprint(b.Requests) != fmt.Sprint(want) {
		t.Errorf("requests %v, want %v", b.Requests, want)
	}
	if s := b.String(); !strings.Contains(s, "patch services 500 ms") {
		t.Errorf("String() = %q", s)
	}
}

// TestFloorColdFloor: the floor is the larger of the writes at the small-write rate and the
// Services at the Service rate; an unmeasured rate gives no bound.
func TestFloorColdFloor(t *testing.T) {
	f := Floor{Small: 1000, SmallTook: time.Second, Services: 100, ServicesTook: 2 * time.Second}
	w, s := f.ColdFloor(11_000, 1000)
	if w != 11*time.Second || s != 20*time.Second {
		t.Errorf("floor by writes %s, by Services %s; want 11s and 20s", w, s)
	}
	if w, s := (Floor{}).ColdFloor(11_000, 1000); w != 0 || s != 0 {
		t.Errorf("unmeasured floor gave %s, %s", w, s)
	}
}
