// Package envtestbins finds the envtest control plane (kube-apiserver, etcd) that
// hack/envtest-bins.sh builds, so that no test names a Kubernetes version or a path.
package envtestbins

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
)

// Dir returns the directory of the envtest control plane binaries (kube-apiserver, etcd):
// $KUBEBUILDER_ASSETS when set, else the one directory hack/envtest-bins.sh builds under the
// repository's bin/k8s/<version>-linux-<arch> (the newest, should there be several). Tests call it
// rather than naming a Kubernetes version, so that a version bump touches only the Makefile.
func Dir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, checkAssets(dir)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dirs, err := filepath.Glob(filepath.Join(root, "bin", "k8s", "*-linux-"+runtime.GOARCH))
	if err != nil || len(dirs) == 0 {
		return "", fmt.Errorf("no envtest control plane under %s: run `make envtest-bins` (`make test` does it for you) or set KUBEBUILDER_ASSETS",
			filepath.Join(root, "bin", "k8s"))
	}
	slices.Sort(dirs) // lexical is good enough to prefer a newer patch of one minor version
	dir := dirs[len(dirs)-1]
	return dir, checkAssets(dir)
}

func checkAssets(dir string) error {
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return fmt.Errorf("the envtest control plane is not built at %s (%v): run `make envtest-bins` "+
				"(`make test` does it for you) or set KUBEBUILDER_ASSETS", dir, err)
		}
	}
	return nil
}

// RepoRoot is the directory holding the module's go.mod, found from the working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
