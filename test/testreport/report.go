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

// Package testreport collects the reliability suite's figures: tests in any package call Report, and
// `make reliability` renders what they wrote as docs/reliability.md. It imports nothing from the
// project, so every test package can use it.
package testreport

import (
	"fmt"
	"os"
	"testing"
)

// ReportEnv names the file the reliability suite appends its figures to (`make reliability` sets
// it and renders docs/reliability.md from it).
const ReportEnv = "RELIABILITY_REPORT"

// FullEnv turns on the full-size reliability runs (`make reliability`); without it the tests run
// a bounded subset sized for `make test`.
const FullEnv = "RELIABILITY_FULL"

// Full reports whether the full-size runs were asked for.
func Full() bool { return os.Getenv(FullEnv) == "1" }

// Report logs one figure and, when ReportEnv is set, appends it as a markdown list item under the
// test's name. Lines are short single writes to an O_APPEND file, so packages running in parallel
// do not interleave within a line.
func Report(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	path := os.Getenv(ReportEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Errorf("reliability report: %v", err)
		return
	}
	defer func() { _ = f.Close() }()
	if _, err := fmt.Fprintf(f, "%s\t%s\n", t.Name(), line); err != nil {
		t.Errorf("reliability report: %v", err)
	}
}
