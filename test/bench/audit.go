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
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// auditPolicy logs, at Metadata level, every write the manager's user makes, once (at
// ResponseComplete), and nothing else: the apiserver counts the operator's writes, not the
// operator itself.
func auditPolicy(user string) string {
	return fmt.Sprintf(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
- level: Metadata
  users: [%q]
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
`, user)
}

// Writes counts the manager's write requests as the apiserver's audit log recorded them.
type Writes struct {
	Total int
	// ByResource counts by "verb resource[/subresource]", e.g. "patch deployments".
	ByResource map[string]int
}

// Summary renders ByResource as "n verb resource, …", largest first.
func (w Writes) Summary() string {
	type kv struct {
		k string
		n int
	}
	all := make([]kv, 0, len(w.ByResource))
	for k, n := range w.ByResource {
		all = append(all, kv{k, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || (all[i].n == all[j].n && all[i].k < all[j].k) })
	parts := make([]string, 0, len(all))
	for _, e := range all {
		parts = append(parts, fmt.Sprintf("%d %s", e.n, e.k))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

type auditLog struct {
	path string
}

// offset is the current size of the log: countSince(offset) counts what came after.
func (a *auditLog) offset() (int64, error) {
	st, err := os.Stat(a.path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

type auditEvent struct {
	Stage string `json:"stage"`
	Verb  string `json:"verb"`
	User  struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// countSince counts the manager's completed writes logged after offset.
func (a *auditLog) countSince(offset int64) (Writes, error) {
	w := Writes{ByResource: map[string]int{}}
	f, err := os.Open(a.path)
	if err != nil {
		return w, fmt.Errorf("open audit log: %w", err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return w, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue // a line being written right now
		}
		if ev.Stage != "ResponseComplete" || ev.User.Username != benchManagerUser {
			continue
		}
		res := ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			res += "/" + ev.ObjectRef.Subresource
		}
		w.Total++
		w.ByResource[ev.Verb+" "+res]++
	}
	return w, sc.Err()
}
