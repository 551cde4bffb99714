/*
Copyright 2026 The stripe-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command image writes a one-layer container image, as a tarball containerd imports
// (`ctr images import`), from static binaries: what `make e2e` runs instead of `docker build`.
// The operator image gets the Dockerfile's /manager and /receiver, USER 65532:65532 and
// ENTRYPOINT /manager; the pause image gets hack/e2e/pause. Layers are reproducible (fixed
// timestamps and owners), so an unchanged binary yields the same image digest.
//
//	go run ./hack/e2e/image -out op.tar -tag ghcr.io/clinicpay/stripe-operator:e2e \
//	    -file bin/manager=/manager -file bin/receiver=/receiver -entrypoint /manager -user 65532:65532
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(s string) error { *f = append(*f, s); return nil }

func main() {
	var (
		out, tag, entrypoint, user string
		fs                         files
	)
	flag.StringVar(&out, "out", "", "image tarball to write")
	flag.StringVar(&tag, "tag", "", "image reference, e.g. ghcr.io/clinicpay/stripe-operator:e2e")
	flag.StringVar(&entrypoint, "entrypoint", "", "entrypoint (one path)")
	flag.StringVar(&user, "user", "", "USER, e.g. 65532:65532")
	flag.Var(&fs, "file", "SRC=/DST: a file to put in the image, mode 0755 (repeatable)")
	flag.Parse()
	if out == "" || tag == "" || entrypoint == "" || len(fs) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := build(out, tag, entrypoint, user, fs); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

func build(out, tag, entrypoint, user string, fs files) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, f := range fs {
		src, dst, ok := strings.Cut(f, "=")
		if !ok || !strings.HasPrefix(dst, "/") {
			return fmt.Errorf("-file %q: want SRC=/DST", f)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: strings.TrimPrefix(dst, "/"), Mode: 0o755, Size: int64(len(data)),
			ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint = []string{entrypoint}
	cfg.Config.User = user
	cfg.Config.WorkingDir = "/"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(out, ref, img)
}
