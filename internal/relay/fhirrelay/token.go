package fhirrelay

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// tokenRefresh is how long a token read from the file is used before the file is read
// again: rotation takes effect within a second, and a busy receiver reads the file at most
// once a second.
const tokenRefresh = time.Second

// tokenSource serves the bearer token from a file that may be rotated in place (a mounted
// Secret is swapped atomically by the kubelet). The file is re-read rather than stat'ed for
// changes: it is tiny, and an mtime with one-second granularity can miss a quick rotation.
type tokenSource struct {
	path string
	now  func() time.Time

	mu     sync.Mutex
	token  string
	readAt time.Time
}

func newTokenSource(path string) *tokenSource {
	return &tokenSource{path: path, now: time.Now}
}

// get returns the current token, "" when no token file is configured. Errors name the file,
// never its content.
func (s *tokenSource) get() (string, error) {
	if s.path == "" {
		return "", nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && now.Sub(s.readAt) < tokenRefresh && !now.Before(s.readAt) {
		return s.token, nil
	}
	raw, err := os.ReadFile(s.path)
	if err != nil {
		return "", fmt.Errorf("fhir: read token file: %w", err)
	}
	// Secrets written by hand usually end in a newline; nothing else about the token is
	// touched.
	token := strings.TrimRight(string(raw), "\r\n")
	if token == "" {
		return "", errors.New("fhir: token file " + s.path + " is empty")
	}
	s.token, s.readAt = token, now
	return token, nil
}
