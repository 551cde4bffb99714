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

// Package testrun holds what the test suites share about how they run.
package testrun

import (
	"flag"
	"strconv"
)

// ParallelByDefault sets -test.parallel to n unless the command line set it; call it from
// TestMain before m.Run. The envtest suites mostly wait (for the manager, a resync, Stripe's
// pacing), so running more tests at once than -parallel's default of GOMAXPROCS (2 on CI) uses
// the machine better; `go test -parallel 1` still runs them one at a time.
func ParallelByDefault(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}
