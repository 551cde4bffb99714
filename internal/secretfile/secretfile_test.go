package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicpay/stripe-operator/test/kubefiles"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// harness is a File of trimmed text with a settable clock and recorded hooks.
type harness struct {
	*File[string]
	mu     sync.Mutex
	now    time.Time
	loads  []string
	errors []error
}

func newHarness(t *testing.T, path string, maxBytes int64) *harness {
	t.Helper()
	h := &harness{now: time.Unix(1_700_000_000, 0)}
	h.File = New(path, Options[string]{
		Name:     "test key file",
		MaxBytes: maxBytes,
		Interval: time.Second,
		Now:      func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now },
		Parse: func(raw []byte) (string, error) {
			if s := strings.TrimSpace(string(raw)); s != "" {
				return s, nil
			}
			return "", errors.New("test key file is empty")
		},
		OnLoad:  func(v string) { h.loads = append(h.loads, v) },
		OnError: func(err error, _ bool) { h.errors = append(h.errors, err) },
	})
	return h
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

func TestRotationBySymlinkSwap(t *testing.T) {
	k := kubefiles.New(t, "key", "one\n")
	h := newHarness(t, k.Path(), 0)
	if changed, err := h.Reload(); !changed || err != nil || h.Value() != "one" {
		t.Fatalf("first Reload = %t, %v; value %q", changed, err, h.Value())
	}
	k.Update("two\n")
	if got := h.Current(); got != "one" {
		t.Errorf("Current within the interval = %q, want the cached one", got)
	}
	h.advance(time.Second)
	if got := h.Current(); got != "two" {
		t.Errorf("Current after the interval = %q, want two", got)
	}
	k.Update("three\n")
	if changed, err := h.Reload(); !changed || err != nil || h.Value() != "three" {
		t.Errorf("Reload after a swap = %t, %v; value %q", changed, err, h.Value())
	}
	if changed, err := h.Reload(); changed || err != nil {
		t.Errorf("Reload of an unchanged file = %t, %v", changed, err)
	}
	k.Update("three\n") // a new inode with the same content: not a change
	if changed, err := h.Reload(); changed || err != nil {
		t.Errorf("Reload of identical content = %t, %v", changed, err)
	}
	if strings.Join(h.loads, ",") != "one,two,three" || len(h.errors) != 0 {
		t.Errorf("loads %q, errors %v", h.loads, h.errors)
	}
}

func TestErrorsKeepTheLastGoodValue(t *testing.T) {
	for name, tc := range map[string]struct {
		breakIt func(t *testing.T, path string)
		want    string
	}{
		"missing":   {func(t *testing.T, path string) { _ = os.Remove(path) }, "stat test key file"},
		"emptied":   {func(t *testing.T, path string) { write(t, path, "\n") }, "is empty"},
		"oversize":  {func(t *testing.T, path string) { write(t, path, strings.Repeat("x", 65)) }, "larger than 64 bytes"},
		"directory": {func(t *testing.T, path string) { _ = os.Remove(path); _ = os.Mkdir(path, 0o700) }, "read test key file"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			write(t, path, "good")
			h := newHarness(t, path, 64)
			if _, err := h.Reload(); err != nil {
				t.Fatal(err)
			}
			tc.breakIt(t, path)
			for range 3 {
				h.advance(time.Second)
				if got := h.Current(); got != "good" || !h.Loaded() {
					t.Fatalf("Current = %q after the file broke, want the last good value", got)
				}
			}
			_, err := h.Reload()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Reload = %v, want an error containing %q", err, tc.want)
			}
			if len(h.errors) != 1 {
				t.Errorf("%d errors reported over 4 checks, want 1: %v", len(h.errors), h.errors)
			}
			if strings.Contains(err.Error(), "good") {
				t.Errorf("error quotes the content: %v", err)
			}
			// Fixed again: followed, and a later breakage is reported anew.
			_ = os.RemoveAll(path)
			write(t, path, "fixed")
			if changed, err := h.Reload(); !changed || err != nil || h.Value() != "fixed" {
				t.Errorf("Reload after the fix = %t, %v; value %q", changed, err, h.Value())
			}
			tc.breakIt(t, path)
			if _, err := h.Reload(); err == nil || len(h.errors) != 2 {
				t.Errorf("second breakage: Reload = %v, %d errors reported", err, len(h.errors))
			}
		})
	}
}

// A hand-made, non-atomic write is seen half done: the empty or partial file is reported or
// served only until the complete file, which has another size or mtime, is read.
func TestPartialWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	write(t, path, "old-token")
	h := newHarness(t, path, 0)
	if _, err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := h.Reload(); err == nil || h.Value() != "old-token" {
		t.Errorf("truncated file: Reload = %v, value %q; want an error and the old value", err, h.Value())
	}
	if _, err := f.WriteString("new-"); err != nil {
		t.Fatal(err)
	}
	_, _ = h.Reload()
	if _, err := f.WriteString("token-longer\n"); err != nil {
		t.Fatal(err)
	}
	if changed, err := h.Reload(); !changed || err != nil || h.Value() != "new-token-longer" {
		t.Errorf("completed write: Reload = %t, %v; value %q", changed, err, h.Value())
	}
}

func TestNoValueBeforeTheFirstGoodRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	h := newHarness(t, path, 0)
	if _, err := h.Reload(); err == nil || h.Loaded() || h.Current() != "" {
		t.Fatalf("missing file: Reload = %v, loaded %t", err, h.Loaded())
	}
	write(t, path, "late")
	if got := h.Current(); got != "" {
		t.Errorf("Current within the interval = %q", got)
	}
	h.advance(time.Second)
	if got := h.Current(); got != "late" || !h.Loaded() {
		t.Errorf("Current after the interval = %q", got)
	}
}

func TestClockGoingBackChecks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	write(t, path, "one")
	h := newHarness(t, path, 0)
	if _, err := h.Reload(); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	write(t, tmp, "two")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	h.advance(-time.Hour)
	if got := h.Current(); got != "two" {
		t.Errorf("Current after the clock went back = %q, want a fresh check", got)
	}
}
