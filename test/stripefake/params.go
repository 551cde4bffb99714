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
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Stripe's metadata limits.
const (
	maxMetadataKeys     = 50
	maxMetadataKeyLen   = 40
	maxMetadataValueLen = 500
)

// paramBase returns the name before any bracket: metadata[k] -> metadata.
func paramBase(key string) string {
	base, _, _ := strings.Cut(key, "[")
	return base
}

// checkParams rejects parameters whose base name is not allowed, like Stripe's
// parameter_unknown error; it catches client encoding bugs early.
func checkParams(p url.Values, names ...string) *apiError {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(names, paramBase(k)) {
			return errUnknownParam(k)
		}
	}
	return nil
}

// stringParam returns a scalar parameter and whether it was sent.
func stringParam(p url.Values, name string) (string, bool) {
	v, ok := p[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func boolParam(p url.Values, name string) (bool, bool, *apiError) {
	v, ok := stringParam(p, name)
	if !ok {
		return false, false, nil
	}
	switch v {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	default:
		return false, true, errInvalidParam(name, "Invalid boolean: %s", v)
	}
}

// listParam decodes an array parameter sent as name[0]=a&name[1]=b (what
// stripe-go sends) or name[]=a&name[]=b. A bare empty name= is an explicitly
// empty list, which stripe-go sends for a non-nil empty slice.
func listParam(p url.Values, name string) ([]string, bool, *apiError) {
	type indexed struct {
		i int
		v string
	}
	var items []indexed
	var appended []string
	present := false
	for k, vs := range p {
		if paramBase(k) != name {
			continue
		}
		present = true
		switch inner := strings.TrimSuffix(strings.TrimPrefix(k, name), "]"); {
		case k == name:
			if len(vs) != 1 || vs[0] != "" {
				return nil, true, errInvalidParam(name, "Invalid array")
			}
		case inner == "[":
			appended = append(appended, vs...)
		default:
			i, err := strconv.Atoi(strings.TrimPrefix(inner, "["))
			if err != nil || i < 0 || !strings.HasPrefix(inner, "[") {
				return nil, true, errInvalidParam(k, "Invalid array")
			}
			items = append(items, indexed{i, vs[0]})
		}
	}
	slices.SortFunc(items, func(a, b indexed) int { return a.i - b.i })
	out := make([]string, 0, len(items)+len(appended))
	for _, it := range items {
		out = append(out, it.v)
	}
	return append(out, appended...), present, nil
}

// metadataUpdate is a decoded metadata parameter: keys to set, keys to unset
// (sent with an empty value) and whether all keys are cleared (metadata=).
type metadataUpdate struct {
	set      map[string]string
	unset    []string
	clearAll bool
	present  bool
}

func metadataParam(p url.Values) (metadataUpdate, *apiError) {
	mu := metadataUpdate{set: map[string]string{}}
	for k, vs := range p {
		if paramBase(k) != "metadata" {
			continue
		}
		mu.present = true
		if k == "metadata" {
			if vs[0] != "" {
				return mu, errInvalidParam("metadata", "Invalid object")
			}
			mu.clearAll = true
			continue
		}
		name, ok := strings.CutSuffix(strings.TrimPrefix(k, "metadata["), "]")
		if !ok || name == "" || strings.ContainsAny(name, "[]") {
			return mu, errInvalidParam(k, "Invalid metadata key: %s", k)
		}
		if utf8.RuneCountInString(name) > maxMetadataKeyLen {
			return mu, errInvalidParam(k, "Metadata keys can have up to %d characters, but you passed in a key that is %d characters. Invalid key: %s",
				maxMetadataKeyLen, utf8.RuneCountInString(name), name)
		}
		if n := utf8.RuneCountInString(vs[0]); n > maxMetadataValueLen {
			return mu, errInvalidParam(k, "Metadata values can have up to %d characters, but you passed in a value that is %d characters. Invalid value: %s",
				maxMetadataValueLen, n, vs[0])
		}
		if vs[0] == "" {
			mu.unset = append(mu.unset, name)
		} else {
			mu.set[name] = vs[0]
		}
	}
	return mu, nil
}

// apply merges the update into m following Stripe's rules and checks the
// key-count limit.
func (mu metadataUpdate) apply(m map[string]string) (map[string]string, *apiError) {
	out := make(map[string]string, len(m)+len(mu.set))
	if !mu.clearAll {
		for k, v := range m {
			out[k] = v
		}
	}
	for _, k := range mu.unset {
		delete(out, k)
	}
	for k, v := range mu.set {
		out[k] = v
	}
	if len(out) > maxMetadataKeys {
		return nil, errInvalidParam("metadata", "You can have up to %d metadata keys, but you passed in %d.", maxMetadataKeys, len(out))
	}
	return out, nil
}

// listReq is a decoded list request.
type listReq struct {
	limit  int
	after  string
	before string
}

// listBaseParams are accepted by every list endpoint.
func listBaseParams() []string {
	return []string{"limit", "starting_after", "ending_before", "expand"}
}

func parseListReq(p url.Values) (listReq, *apiError) {
	lr := listReq{limit: 10}
	if v, ok := stringParam(p, "limit"); ok {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			return lr, invalidRequest(http.StatusBadRequest, "parameter_invalid_integer", "limit", "Invalid integer: %s", v)
		case n < 1:
			return lr, errInvalidParam("limit", "This value must be greater than or equal to 1.")
		case n > 100:
			return lr, errInvalidParam("limit", "This value must be less than or equal to 100.")
		}
		lr.limit = n
	}
	lr.after, _ = stringParam(p, "starting_after")
	lr.before, _ = stringParam(p, "ending_before")
	if lr.after != "" && lr.before != "" {
		return lr, invalidRequest(http.StatusBadRequest, "parameters_exclusive", "ending_before",
			"You may only specify one of these parameters: ending_before, starting_after.")
	}
	return lr, nil
}

// cursorParam names the cursor parameter in use, for error messages.
func (lr listReq) cursorParam() (string, string) {
	if lr.before != "" {
		return "ending_before", lr.before
	}
	return "starting_after", lr.after
}

// paginate returns one page of items, which must be sorted newest first (by
// descending seq), following Stripe's cursor semantics. cursorSeq is the seq
// of the starting_after/ending_before object, ignored without a cursor.
func paginate[T any](items []T, seq func(T) int64, lr listReq, cursorSeq int64) ([]T, bool) {
	switch {
	case lr.after != "":
		i, _ := slices.BinarySearchFunc(items, cursorSeq, func(it T, c int64) int { return cmpDesc(seq(it), c) })
		if i < len(items) && seq(items[i]) == cursorSeq {
			i++
		}
		end := min(i+lr.limit, len(items))
		return items[i:end], end < len(items)
	case lr.before != "":
		j, _ := slices.BinarySearchFunc(items, cursorSeq, func(it T, c int64) int { return cmpDesc(seq(it), c) })
		start := max(j-lr.limit, 0)
		return items[start:j], start > 0
	default:
		end := min(lr.limit, len(items))
		return items[:end], end < len(items)
	}
}

// cmpDesc orders by descending value for binary search over newest-first lists.
func cmpDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	default:
		return 0
	}
}

// listJSON is Stripe's list envelope.
type listJSON[T any] struct {
	Object  string `json:"object"`
	URL     string `json:"url"`
	HasMore bool   `json:"has_more"`
	Data    []T    `json:"data"`
}
