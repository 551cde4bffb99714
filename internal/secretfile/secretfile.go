// Package secretfile serves a value read from a mounted Secret file and follows the kubelet's
// updates of it, with one rotation policy for every secret the receiver holds (the signing
// secrets, the HTTP envelope's HMAC key, the FHIR bearer token):
//
//   - Change detection. The kubelet updates a Secret volume atomically: it writes the new
//     files into a fresh directory and swaps the ..data symlink, so a rotation always shows up
//     as another inode at the path. The file is stat'ed (through the symlinks) and read again
//     only when its inode, size or modification time changed; an unchanged file costs one stat,
//     which is why a check may run on every failed signature. Content that reads back identical
//     (a touch, or an update of another key) is not a change. An in-place rewrite of the same
//     size within one mtime tick would be missed; the kubelet never writes in place.
//   - When. File.Current checks at most once per Interval (default 1 s), so a rotation takes
//     effect within a second without a restart; File.Reload checks now, for a caller with reason
//     to think the file changed (a signature that no loaded secret verifies). Only the caller
//     that runs a check waits for it; every other reader gets the value in use.
//   - Errors keep the last good value. A file that vanished, cannot be read, exceeds MaxBytes
//     or does not parse (empty, half written) is not a rotation to follow: the kubelet's swap
//     never shows such a state, so it is a mistake or a moment of a hand-made write, and the
//     value in use keeps working while it lasts. The error is reported through OnError once
//     per distinct error, not at every interval, and returned by Reload. Before the first good
//     read there is no value: callers that cannot start without one fail on Reload's error.
//
// The value and the file's bytes never reach an error or a log line from this package.
package secretfile

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is the minimum time between two checks by Current when Options.Interval is 0.
const DefaultInterval = time.Second

// DefaultMaxBytes caps the read when Options.MaxBytes is 0: far more than any key or token, and a
// mistaken mount of something large is never read into memory.
const DefaultMaxBytes = 64 << 10

// Options configure a File.
type Options[T any] struct {
	// Name names the file in errors, e.g. "signing key file".
	Name string
	// Parse turns the file's bytes into the value. An error (an empty file, say) keeps the
	// previous value; it should not quote the bytes.
	Parse func(raw []byte) (T, error)
	// MaxBytes caps the read: a larger file is an error. Zero means DefaultMaxBytes.
	MaxBytes int64
	// Interval is the minimum time between two checks by Current. Zero means DefaultInterval.
	Interval time.Duration
	// Now is the clock the interval is measured with; nil means time.Now.
	Now func() time.Time
	// OnLoad, if set, is called after a changed value was swapped in, the first load included.
	// OnLoad and OnError run inside the check, so they see checks in order; they must not
	// call Reload.
	OnLoad func(T)
	// OnError, if set, is called when a check fails with another error than the check before;
	// kept tells whether a previous value is still served.
	OnError func(err error, kept bool)
}

// File serves the value of one mounted file. It is safe for concurrent use.
type File[T any] struct {
	path string
	opts Options[T]

	value     atomic.Pointer[T] // nil until the first good read; read lock-free
	lastCheck atomic.Int64      // Unix ns of the last check, throttles Current

	mu      sync.Mutex // serialises checks and guards the fields below
	info    os.FileInfo
	infoErr error // why the file info describes did not parse; nil when it did
	sum     [sha256.Size]byte
	lastErr string // the error last reported; "" after a good check
}

// New returns a File for path. It reads nothing: call Reload for the first value.
func New[T any](path string, opts Options[T]) *File[T] {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &File[T]{path: path, opts: opts}
}

// Current returns the value, first checking the file if the last check is older than the
// interval (or the clock went back). It never waits for another check: while one runs, the
// value it is replacing is returned. The zero T before the first good read.
func (f *File[T]) Current() T {
	now := f.opts.Now().UnixNano()
	last := f.lastCheck.Load()
	if (now-last >= int64(f.opts.Interval) || now < last) && f.lastCheck.CompareAndSwap(last, now) {
		_, _ = f.check()
	}
	return f.Value()
}

// Value returns the value without checking the file; the zero T before the first good read.
func (f *File[T]) Value() T {
	if v := f.value.Load(); v != nil {
		return *v
	}
	var zero T
	return zero
}

// Loaded reports whether a good value has been read.
func (f *File[T]) Loaded() bool {
	return f.value.Load() != nil
}

// Reload checks the file now, whatever the interval, and reports whether the value changed.
// An error says why the file could not be used; the previous value, if any, is kept.
func (f *File[T]) Reload() (changed bool, err error) {
	f.lastCheck.Store(f.opts.Now().UnixNano())
	return f.check()
}

func (f *File[T]) check() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		return false, f.fail(fmt.Errorf("stat %s: %w", f.opts.Name, err))
	}
	if f.info != nil && sameFile(f.info, fi) {
		// Unchanged since the last read: the same outcome, without reading it again.
		if f.infoErr != nil {
			return false, f.fail(f.infoErr)
		}
		f.lastErr = ""
		return false, nil
	}
	raw, err := f.read()
	if err != nil {
		return false, f.fail(err)
	}
	f.info, f.infoErr = fi, nil
	sum := sha256.Sum256(raw)
	if sum == f.sum && f.Loaded() {
		f.lastErr = ""
		return false, nil
	}
	v, err := f.opts.Parse(raw)
	if err != nil {
		f.infoErr = err
		return false, f.fail(err)
	}
	f.sum, f.lastErr = sum, ""
	f.value.Store(&v)
	if f.opts.OnLoad != nil {
		f.opts.OnLoad(v)
	}
	return true, nil
}

// fail reports err through OnError unless it repeats the previous check's error, and returns it.
func (f *File[T]) fail(err error) error {
	if msg := err.Error(); msg != f.lastErr {
		f.lastErr = msg
		if f.opts.OnError != nil {
			f.opts.OnError(err, f.Loaded())
		}
	}
	return err
}

func (f *File[T]) read() ([]byte, error) {
	file, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", f.opts.Name, err)
	}
	defer func() { _ = file.Close() }()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(file, f.opts.MaxBytes+1)); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.opts.Name, err)
	}
	if int64(buf.Len()) > f.opts.MaxBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", f.opts.Name, f.opts.MaxBytes)
	}
	return buf.Bytes(), nil
}

// sameFile reports whether two stats describe the same, unmodified file: same inode (the
// kubelet's symlink swap yields a new one), modification time and size.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}
