package fhirrelay

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/clinicpay/stripe-operator/internal/secretfile"
)

// tokenSource serves the bearer token from a mounted Secret file with secretfile's rotation
// policy: a rotated token is used within a second, and a file that vanished or became empty
// keeps the last good token (the FHIR server, not a half-updated file, decides whether it is
// still good) and is logged once.
type tokenSource struct {
	file *secretfile.File[string] // nil: no token file, no Authorization header
	// now is the clock of the one-second refresh; tests move it.
	now func() time.Time
}

func newTokenSource(path string, log logr.Logger) *tokenSource {
	s := &tokenSource{now: time.Now}
	if path == "" {
		return s
	}
	s.file = secretfile.New(path, secretfile.Options[string]{
		Name:  "token file",
		Parse: parseToken,
		Now:   func() time.Time { return s.now() },
		OnLoad: func(string) {
			log.Info("FHIR token loaded", "path", path)
		},
		OnError: func(err error, kept bool) {
			log.Error(err, "Cannot load FHIR token; keeping the previous one", "path", path, "loaded", kept)
		},
	})
	return s
}

// load reads the token file once; New fails on its error, so a missing or empty token fails
// at startup rather than on the first payment.
func (s *tokenSource) load() error {
	if s.file == nil {
		return nil
	}
	if _, err := s.file.Reload(); err != nil {
		return fmt.Errorf("fhir: %w", err)
	}
	return nil
}

// get returns the current token, "" when no token file is configured.
func (s *tokenSource) get() string {
	if s.file == nil {
		return ""
	}
	return s.file.Current()
}

// parseToken trims the line ending that Secrets written by hand usually have; nothing else
// about the token is touched. Errors name the file, never its content.
func parseToken(raw []byte) (string, error) {
	token := strings.TrimRight(string(raw), "\r\n")
	if token == "" {
		return "", errors.New("token file is empty")
	}
	return token, nil
}
