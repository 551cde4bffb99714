package httprelay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// maxKeyFileBytes caps the key file read; an HMAC key longer than this is a mistake.
const maxKeyFileBytes = 4 << 10

// keyFile serves the HMAC key from a mounted Secret file and picks up a rotated key: the
// kubelet swaps a symlink, so a changed inode, size or mtime at the path means a new key.
type keyFile struct {
	path     string
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	key     []byte
	info    os.FileInfo
	checked time.Time
}

func newKeyFile(path string, interval time.Duration, now func() time.Time) (*keyFile, error) {
	k := &keyFile{path: path, interval: interval, now: now}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

// current returns the key, re-reading the file at most once per interval. A file that became
// unreadable or empty keeps the previous key: signing with it beats failing every delivery.
func (k *keyFile) current() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now := k.now(); now.Sub(k.checked) >= k.interval {
		k.checked = now
		_ = k.loadLocked() // errors keep the old key; New already proved the file once
	}
	return k.key
}

func (k *keyFile) load() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.checked = k.now()
	return k.loadLocked()
}

func (k *keyFile) loadLocked() error {
	fi, err := os.Stat(k.path)
	if err != nil {
		return fmt.Errorf("stat signing key file: %w", err)
	}
	if k.info != nil && os.SameFile(k.info, fi) && k.info.ModTime().Equal(fi.ModTime()) && k.info.Size() == fi.Size() {
		return nil
	}
	key, err := readKey(k.path)
	if err != nil {
		return err
	}
	k.key, k.info = key, fi
	return nil
}

// readKey returns the file's bytes with one trailing newline removed, as editors and
// `kubectl create secret --from-file` often leave one.
func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open signing key file: %w", err)
	}
	defer func() { _ = f.Close() }()
	raw, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read signing key file: %w", err)
	}
	if len(raw) > maxKeyFileBytes {
		return nil, fmt.Errorf("signing key file is larger than %d bytes", maxKeyFileBytes)
	}
	key := bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
	if len(key) == 0 {
		return nil, errors.New("signing key file is empty")
	}
	return key, nil
}
