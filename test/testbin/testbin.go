// Package testbin gives the tests that run the operator's commands as processes (the manager,
// the receiver) their binaries. `make test` builds each once, before the tests, into the
// directory it names in EnvDir; a plain `go test` (EnvDir unset) builds the binary the test asks
// for itself. Five packages used to link the manager each on its own, about 6 s of CPU apiece.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
)

// EnvDir names the directory holding prebuilt binaries, one per command, named as the last
// element of its package path ("cmd" → manager, "cmd/receiver" → receiver).
const EnvDir = "STRIPE_OPERATOR_TEST_BINS"

// Build returns the path of the binary of pkg ("./cmd" or "./cmd/receiver", relative to the
// repository root root): the prebuilt one when EnvDir names a directory holding it, else one
// built now into dir, as `make build` builds it (CGO_ENABLED=0).
func Build(root, pkg, dir string) (string, error) {
	name := binaryName(pkg)
	if pre := os.Getenv(EnvDir); pre != "" {
		p := filepath.Join(pre, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s but no %s in it: %w", EnvDir, pre, name, err)
		}
		return p, nil
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
	}
	return out, nil
}

// binaryName is the image's name for pkg's binary: /manager for ./cmd, /receiver for ./cmd/receiver.
func binaryName(pkg string) string {
	if b := path.Base(path.Clean(pkg)); b != "cmd" && b != "." {
		return b
	}
	return "manager"
}
