// Package kubefiles writes files the way the kubelet updates a mounted Secret or ConfigMap
// volume (its atomic writer), for tests of code that follows such files: <dir>/<key> is a
// symlink to ..data/<key>, ..data a symlink to a versioned directory ..<version>, and an update
// writes a new version directory, swaps ..data with a rename and removes the old version.
package kubefiles

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Dir is one mounted volume holding a single key.
type Dir struct {
	t       testing.TB
	dir     string
	key     string
	version int
}

// New creates the volume in a test temp directory with content under key.
func New(t testing.TB, key, content string) *Dir {
	t.Helper()
	d := &Dir{t: t, dir: t.TempDir(), key: key}
	d.Update(content)
	if err := os.Symlink(filepath.Join("..data", key), d.Path()); err != nil {
		t.Fatal(err)
	}
	return d
}

// Path is the key's path, as a container sees it.
func (d *Dir) Path() string { return filepath.Join(d.dir, d.key) }

// Update replaces the content as the kubelet does: never in place, always by a symlink swap.
func (d *Dir) Update(content string) {
	d.t.Helper()
	d.version++
	ts := "..v" + strconv.Itoa(d.version)
	if err := os.Mkdir(filepath.Join(d.dir, ts), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, ts, d.key), []byte(content), 0o600); err != nil {
		d.t.Fatal(err)
	}
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		d.t.Fatal(err)
	}
	if d.version > 1 {
		if err := os.RemoveAll(filepath.Join(d.dir, "..v"+strconv.Itoa(d.version-1))); err != nil {
			d.t.Fatal(err)
		}
	}
}
