package receiver

import (
	"bytes"
	"errors"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/clinicpay/stripe-operator/internal/secretfile"
)

// maxSecretFileBytes caps the secret file read: a few whsec_ lines are ~100 bytes, and a
// mistaken mount of something large must not be read into memory.
const maxSecretFileBytes = 64 << 10

// newSecretStore serves the signing secrets from the mounted file with secretfile's rotation
// policy: checked at most once per interval, and at once (Reload) when no secret verifies a
// delivery, so a delivery signed with a secret rolled a moment ago is not refused; a file that
// vanished or holds no secret keeps the previous secrets. Nothing is read yet.
func newSecretStore(path string, interval time.Duration, log logr.Logger, m *metrics) *secretfile.File[[]string] {
	return secretfile.New(path, secretfile.Options[[]string]{
		Name:     "signing secret file",
		Parse:    parseSecretFile,
		MaxBytes: maxSecretFileBytes,
		Interval: interval,
		OnLoad: func(secrets []string) {
			m.secretReloads.Inc()
			// Only the count: the secrets themselves, even hashed, stay out of logs.
			log.Info("Signing secret loaded", "path", path, "secrets", len(secrets))
		},
		OnError: func(err error, kept bool) {
			log.Error(err, "Cannot load signing secret; keeping the previous one if any", "path", path, "loaded", kept)
		},
	})
}

// reloaded checks the file now and reports whether the secrets changed; an error is reported
// through the store's OnError and leaves the secrets as they were.
func reloaded(secrets *secretfile.File[[]string]) bool {
	changed, _ := secrets.Reload()
	return changed
}

func parseSecretFile(raw []byte) ([]string, error) {
	secrets := parseSecrets(raw)
	if len(secrets) == 0 {
		return nil, errors.New("signing secret file holds no secret")
	}
	return secrets, nil
}

// parseSecrets returns the non-empty, trimmed lines: one secret per line, several while a
// secret is rolled (old and new are both valid until the old one expires at Stripe).
func parseSecrets(raw []byte) []string {
	var out []string
	for line := range bytes.Lines(raw) {
		if s := strings.TrimSpace(string(line)); s != "" {
			out = append(out, s)
		}
	}
	return out
}
