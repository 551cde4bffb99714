package fhirrelay

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// fakeFHIR is an in-memory FHIR server on 127.0.0.1 that implements conditional create
// the way FHIR R4 specifies it: If-None-Exist: identifier=<system>|<value> matching no
// resource of the type creates one (201), one match changes nothing (200), several are
// refused (412). It checks the request shape and, when token is set, the bearer token.
type fakeFHIR struct {
	srv   *httptest.Server
	token string
	// override, when set, answers a request instead of the conditional create logic.
	override func(w http.ResponseWriter, r *http.Request) bool

	mu       sync.Mutex
	stored   map[string][]map[string]any // by resource type
	requests []recordedRequest
}

// recordedRequest is what the fake saw of one request, and what it answered.
type recordedRequest struct {
	method, path string
	header       http.Header
	status       int
}

func newFakeFHIR(t *testing.T, token string) *fakeFHIR {
	t.Helper()
	f := &fakeFHIR{token: token, stored: map[string][]map[string]any{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// baseURL is the FHIR base, under a path like a real server's.
func (f *fakeFHIR) baseURL() string { return f.srv.URL + "/r4" }

func (f *fakeFHIR) serve(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		f.mu.Lock()
		f.requests = append(f.requests, recordedRequest{r.Method, r.URL.Path, r.Header.Clone(), rec.status})
		f.mu.Unlock()
	}()
	if f.override != nil && f.override(rec, r) {
		return
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		// Echo what was sent, as careless servers do, so tests can check it never reaches
		// an error message.
		outcome(rec, http.StatusUnauthorized, "login", "invalid credentials: "+r.Header.Get("Authorization"))
		return
	}
	resourceType, ok := strings.CutPrefix(r.URL.Path, "/r4/")
	if r.Method != http.MethodPost || !ok || strings.Contains(resourceType, "/") {
		outcome(rec, http.StatusNotFound, "not-supported", r.Method+" "+r.URL.Path)
		return
	}
	if r.Header.Get("Content-Type") != "application/fhir+json" || r.Header.Get("Accept") != "application/fhir+json" {
		outcome(rec, http.StatusUnsupportedMediaType, "not-supported", "want application/fhir+json")
		return
	}
	f.conditionalCreate(rec, r, resourceType)
}

func (f *fakeFHIR) conditionalCreate(w http.ResponseWriter, r *http.Request, resourceType string) {
	var resource map[string]any
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &resource); err != nil || resource["resourceType"] != resourceType {
		outcome(w, http.StatusBadRequest, "structure", "body is not a "+resourceType)
		return
	}
	key, err := parseIfNoneExist(r.Header.Get("If-None-Exist"))
	if err != nil {
		outcome(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if !hasIdentifier(resource, key) {
		// The write would never be found again: a contract bug, not a server condition.
		outcome(w, http.StatusBadRequest, "invalid", "resource lacks the If-None-Exist identifier")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var matches []map[string]any
	for _, stored := range f.stored[resourceType] {
		if hasIdentifier(stored, key) {
			matches = append(matches, stored)
		}
	}
	switch len(matches) {
	case 0:
		resource["id"] = fmt.Sprintf("%d", len(f.stored[resourceType])+1)
		f.stored[resourceType] = append(f.stored[resourceType], resource)
		w.Header().Set("Location", f.baseURL()+"/"+resourceType+"/"+resource["id"].(string)+"/_history/1")
		writeJSON(w, http.StatusCreated, resource)
	case 1:
		writeJSON(w, http.StatusOK, matches[0])
	default:
		outcome(w, http.StatusPreconditionFailed, "duplicate", fmt.Sprintf("%d resources match", len(matches)))
	}
}

// parseIfNoneExist reads "identifier=<system>|<value>" as a query string, as servers do.
func parseIfNoneExist(header string) (Identifier, error) {
	q, err := url.ParseQuery(header)
	if err != nil || len(q) != 1 || len(q["identifier"]) != 1 {
		return Identifier{}, fmt.Errorf("If-None-Exist %q is not one identifier search", header)
	}
	system, value, ok := strings.Cut(q.Get("identifier"), "|")
	if !ok || system == "" || value == "" {
		return Identifier{}, fmt.Errorf("If-None-Exist %q is not system|value", header)
	}
	return Identifier{System: system, Value: value}, nil
}

func hasIdentifier(resource map[string]any, key Identifier) bool {
	ids, _ := resource["identifier"].([]any)
	for _, id := range ids {
		m, _ := id.(map[string]any)
		if m["system"] == key.System && m["value"] == key.Value {
			return true
		}
	}
	return false
}

// seed stores a resource directly, e.g. to set up duplicates.
func (f *fakeFHIR) seed(resourceType string, resource map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stored[resourceType] = append(f.stored[resourceType], resource)
}

func (f *fakeFHIR) count(resourceType string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.stored[resourceType])
}

func (f *fakeFHIR) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, rs := range f.stored {
		n += len(rs)
	}
	return n
}

func (f *fakeFHIR) requestLog() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.requests...)
}

func outcome(w http.ResponseWriter, status int, code, diagnostics string) {
	writeJSON(w, status, map[string]any{
		"resourceType": "OperationOutcome",
		"issue":        []any{map[string]any{"severity": "error", "code": code, "diagnostics": diagnostics}},
	})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(status int) {
	s.status = status
	s.ResponseWriter.WriteHeader(status)
}
