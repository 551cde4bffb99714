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
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseCPUTimes(t *testing.T) {
	before, err := parseCPUTimes(strings.NewReader("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	// 100 more ticks: 30 user, 10 system, 55 idle, 5 iowait → 40% busy.
	after, err := parseCPUTimes(strings.NewReader("cpu  130 0 60 855 55 0 0 0 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := after.busySince(before); math.Abs(got-0.40) > 1e-9 {
		t.Errorf("busy = %v, want 0.40", got)
	}
	if got := after.busySince(after); got != 0 {
		t.Errorf("no ticks elapsed: busy = %v, want 0", got)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6\n", "cpu 1 2 x 4 5 6\n"} {
		if _, err := parseCPUTimes(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestBusiestWait(t *testing.T) {
	before := map[string][2]time.Duration{"1": {100, 10}, "2": {500, 50}}
	after := map[string][2]time.Duration{"1": {900, 30}, "2": {600, 400}, "3": {50, 5}}
	// Thread 1 ran 800 ns (the most) and waited 20 ns meanwhile.
	if got := busiestWait(before, after); got != 20 {
		t.Errorf("busiestWait = %v, want 20ns", got)
	}
	if got := busiestWait(nil, after); got != -1 {
		t.Errorf("without a first reading: %v, want -1", got)
	}
}
