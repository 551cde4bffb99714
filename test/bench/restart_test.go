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
	"testing"
	"time"
)

// TestSpread checks the restart phase's summary of calls per second: seconds outside the
// window are ignored, and each tenth of a 20 s window holds two seconds.
func TestSpread(t *testing.T) {
	start := time.Unix(1_000, 0)
	bySecond := map[int64]int{999: 50, 1000: 30, 1001: 10, 1010: 20, 1019: 20, 1020: 99}
	maxSec, mean, buckets := spread(bySecond, start, 20*time.Second)
	if maxSec != 30 || mean != 4 {
		t.Errorf("spread: busiest %d, mean %.2f; want 30, 4", maxSec, mean)
	}
	want := [restartBuckets]int{40, 0, 0, 0, 0, 20, 0, 0, 0, 20}
	if buckets != want {
		t.Errorf("buckets = %v, want %v", buckets, want)
	}
}
