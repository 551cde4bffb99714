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

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBundleOf(t *testing.T) {
	wd, _ := os.Getwd()
	for _, tc := range []struct {
		args   []string
		bundle string
		ok     bool
	}{
		// What containerd's runc shim passes.
		{[]string{"--root", "/run/r", "--log", "/l.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/p", "id"}, "/b", true},
		{[]string{"--systemd-cgroup", "run", "-b", "/b2", "id"}, "/b2", true},
		{[]string{"create", "--bundle=/b3", "id"}, "/b3", true},
		{[]string{"--root=/run/r", "create", "id"}, wd, true}, // runc's default bundle: the working directory
		{[]string{"--root", "/run/r", "start", "id"}, "", false},
		{[]string{"--root", "/run/r", "exec", "--process", "/p.json", "id"}, "", false},
		{[]string{"--log", "create", "state", "id"}, "", false}, // "create" is --log's value here
		{nil, "", false},
	} {
		bundle, ok := bundleOf(tc.args)
		if bundle != tc.bundle || ok != tc.ok {
			t.Errorf("bundleOf(%q) = %q, %v; want %q, %v", tc.args, bundle, ok, tc.bundle, tc.ok)
		}
	}
}

func TestClampOOMScoreAdj(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// Negative: clamped to 0; every other field and number kept exactly.
		{`{"process":{"oomScoreAdj":-998,"user":{"uid":65532}},"linux":{"resources":{"memory":{"limit":9223372036854771712}}}}`,
			`{"linux":{"resources":{"memory":{"limit":9223372036854771712}}},"process":{"oomScoreAdj":0,"user":{"uid":65532}}}`},
		// Zero, positive or absent: the file is not rewritten.
		{`{"process": {"oomScoreAdj": 1000}}`, `{"process": {"oomScoreAdj": 1000}}`},
		{`{"process": {"oomScoreAdj": 0}}`, `{"process": {"oomScoreAdj": 0}}`},
		{`{"process": {"args": ["/pause"]}}`, `{"process": {"args": ["/pause"]}}`},
	} {
		path := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(path, []byte(tc.in), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := clampOOMScoreAdj(path); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if strings.TrimSpace(string(got)) != tc.want {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	if err := clampOOMScoreAdj(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("a missing config.json is not an error")
	}
}
