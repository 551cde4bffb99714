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

// Command runc-wrapper is the OCI runtime containerd runs in `make e2e` (its runc options'
// BinaryName). It exists for one reason: kubelet asks for pod sandboxes with oom_score_adj -998,
// and a negative oom_score_adj needs CAP_SYS_RESOURCE, which some VMs (Firecracker here) withhold
// even from root. runc then fails every sandbox with "can't get final child's PID from pipe: EOF".
// For `create` and `run` the wrapper clamps a negative process.oomScoreAdj in the bundle's
// config.json to 0, then execs the real runc with the same arguments; every other call is passed
// through untouched. It changes nothing else in the spec.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// runc's global flags that take a value (all others are booleans).
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

func main() {
	runc, err := realRunc()
	if err != nil {
		fail(err)
	}
	if bundle, ok := bundleOf(os.Args[1:]); ok {
		if err := clampOOMScoreAdj(filepath.Join(bundle, "config.json")); err != nil {
			fail(err)
		}
	}
	fail(syscall.Exec(runc, append([]string{"runc"}, os.Args[1:]...), os.Environ()))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "runc-wrapper: %v\n", err)
	os.Exit(1)
}

// realRunc is $E2E_RUNC, else runc on PATH.
func realRunc() (string, error) {
	if p := os.Getenv("E2E_RUNC"); p != "" {
		return p, nil
	}
	return exec.LookPath("runc")
}

// bundleOf returns the bundle directory of a create or run call.
func bundleOf(args []string) (string, bool) {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		if globalWithValue[args[i]] {
			i++
		}
		i++
	}
	if i >= len(args) || (args[i] != "create" && args[i] != "run") {
		return "", false
	}
	for j := i + 1; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--bundle" || a == "-b":
			if j+1 < len(args) {
				return args[j+1], true
			}
		case strings.HasPrefix(a, "--bundle="):
			return strings.TrimPrefix(a, "--bundle="), true
		case strings.HasPrefix(a, "-b="):
			return strings.TrimPrefix(a, "-b="), true
		}
	}
	wd, err := os.Getwd() // runc's default bundle is the working directory
	return wd, err == nil
}

// clampOOMScoreAdj rewrites config.json only when process.oomScoreAdj is negative.
func clampOOMScoreAdj(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep every other number exactly as written
	var spec map[string]any
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	proc, _ := spec["process"].(map[string]any)
	n, _ := proc["oomScoreAdj"].(json.Number)
	if v, err := n.Int64(); n == "" || err != nil || v >= 0 {
		return nil
	}
	proc["oomScoreAdj"] = json.Number("0")
	out, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, info.Mode().Perm())
}
