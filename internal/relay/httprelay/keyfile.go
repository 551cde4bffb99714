package httprelay

import (
	"bytes"
	"errors"
	"time"

	"github.com/go-logr/logr"

	"github.com/clinicpay/stripe-operator/internal/secretfile"
)

// maxKeyFileBytes caps the key file read; an HMAC key longer than this is a mistake.
const maxKeyFileBytes = 4 << 10

// newKeyFile serves the HMAC key from a mounted Secret file with secretfile's rotation policy:
// a rotated key is used within interval, and a file that became unreadable or empty keeps the
// previous key (signing with it beats failing every delivery) and is logged once. The first
// read happens here, so a bad mount fails at start-up.
func newKeyFile(path string, interval time.Duration, now func() time.Time,
	log logr.Logger) (*secretfile.File[[]byte], error) {
	f := secretfile.New(path, secretfile.Options[[]byte]{
		Name:     "signing key file",
		Parse:    parseKey,
		MaxBytes: maxKeyFileBytes,
		Interval: interval,
		Now:      now,
		OnLoad:   func([]byte) { log.Info("HTTP signing key loaded", "path", path) },
		OnError: func(err error, kept bool) {
			log.Error(err, "Cannot load HTTP signing key; keeping the previous one", "path", path, "loaded", kept)
		},
	})
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// parseKey returns the file's bytes with one trailing newline removed, as editors and
// `kubectl create secret --from-file` often leave one.
func parseKey(raw []byte) ([]byte, error) {
	key := bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
	if len(key) == 0 {
		return nil, errors.New("signing key file is empty")
	}
	return key, nil
}
