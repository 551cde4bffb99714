package receiver

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// maxSecretFileBytes caps the secret file read: a few whsec_ lines are ~100 bytes, and a
// mistaken mount of something large must not be read into memory.
const maxSecretFileBytes = 64 << 10

// secretStore serves the signing secrets from a mounted file and notices when the kubelet
// replaces it. Kubernetes updates Secret volumes by swapping a symlink to a new directory, so a
// change shows up as a new inode/mtime/size at the path; no inotify watch is needed (and
// inotify misses symlink swaps on some volume types).
type secretStore struct {
	path     string
	interval time.Duration
	now      func() time.Time
	log      logr.Logger
	metrics  *metrics

	// secrets is read lock-free on every request; lastCheck (Unix ns) throttles the stat.
	secrets   atomic.Pointer[[]string]
	lastCheck atomic.Int64

	mu      sync.Mutex // serialises reloads and guards the fields below
	info    os.FileInfo
	sum     [sha256.Size]byte
	lastErr string
}

func newSecretStore(path string, interval time.Duration, log logr.Logger, m *metrics) *secretStore {
	s := &secretStore{path: path, interval: interval, now: time.Now, log: log, metrics: m}
	s.secrets.Store(&[]string{})
	return s
}

// current returns the loaded secrets, first checking the file if the last check is older than
// the interval. It never blocks on another reload: if one is running, the old secrets are used.
func (s *secretStore) current() []string {
	now := s.now()
	last := s.lastCheck.Load()
	if now.UnixNano()-last >= int64(s.interval) && s.lastCheck.CompareAndSwap(last, now.UnixNano()) {
		s.reload()
	}
	return *s.secrets.Load()
}

// snapshot returns the loaded secrets without checking the file.
func (s *secretStore) snapshot() []string {
	return *s.secrets.Load()
}

// loaded reports whether at least one secret is held.
func (s *secretStore) loaded() bool {
	return len(*s.secrets.Load()) > 0
}

// forceReload checks the file now, whatever the interval, and reports whether the secrets
// changed. The handler calls it once when no secret verifies a delivery, so that a delivery
// signed with a secret rolled a moment ago is not refused for up to a second. It still costs
// only a stat when the file is unchanged, so forged deliveries cannot make it expensive.
func (s *secretStore) forceReload() bool {
	s.lastCheck.Store(s.now().UnixNano())
	return s.reload()
}

// reload re-reads the file if it changed since the last read and swaps the secrets in when
// their content changed. A file that vanished or holds no secret keeps the
// previous secrets: the kubelet's swap is atomic, so that state is an error to report, not a
// rotation to follow.
func (s *secretStore) reload() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.path)
	if err != nil {
		s.fail(fmt.Errorf("stat signing secret file: %w", err))
		return false
	}
	if s.info != nil && sameFile(s.info, fi) {
		return false
	}
	raw, err := readCapped(s.path)
	if err != nil {
		s.fail(err)
		return false
	}
	s.info = fi
	sum := sha256.Sum256(raw)
	if sum == s.sum && s.loaded() {
		return false
	}
	secrets := parseSecrets(raw)
	if len(secrets) == 0 {
		s.fail(errors.New("signing secret file holds no secret"))
		return false
	}
	s.sum, s.lastErr = sum, ""
	s.secrets.Store(&secrets)
	s.metrics.secretReloads.Inc()
	// Only the count: the secrets themselves, even hashed, stay out of logs.
	s.log.Info("Signing secret loaded", "path", s.path, "secrets", len(secrets))
	return true
}

// fail logs a reload error once per distinct error, as the stat runs every second.
func (s *secretStore) fail(err error) {
	if msg := err.Error(); msg != s.lastErr {
		s.lastErr = msg
		s.log.Error(err, "Cannot load signing secret; keeping the previous one if any", "path", s.path, "loaded", s.loaded())
	}
}

// sameFile reports whether two stats describe the same, unmodified file: same inode (a kubelet
// symlink swap yields a new file), modification time and size.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open signing secret file: %w", err)
	}
	defer func() { _ = f.Close() }()
	raw, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read signing secret file: %w", err)
	}
	if len(raw) > maxSecretFileBytes {
		return nil, fmt.Errorf("signing secret file is larger than %d bytes", maxSecretFileBytes)
	}
	return raw, nil
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
