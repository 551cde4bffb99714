//go:build e2e

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

// Package e2e runs the operator on a real one-node Kubernetes cluster (see docs/testing.md):
// `make e2e` builds the parts, makes a network namespace and runs this test binary inside it;
// TestMain brings the cluster up once, the tests share it, and TestMain tears it down.
package e2e

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

var (
	cluster  *Cluster
	e2eCfg   config
	stopOnce sync.Once
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	cfg, err := configFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	e2eCfg = cfg
	ctrllog.SetLogger(logr.Discard()) // the tests' clients; component logs are files
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := startCluster(ctx, cfg)
	stop := func() { stopOnce.Do(c.Stop) }
	defer stop()
	// An interrupted run still tears the cluster down.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		log.Printf("e2e: %v: tearing the cluster down", s)
		cancel()
		stop()
		os.Exit(1)
	}()
	if err != nil {
		log.Printf("e2e: cluster did not come up: %v", err)
		fmt.Fprintln(os.Stderr, c.Logs(2000))
		return 1
	}
	cluster = c
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "e2e: failed; component logs are under %s (kept by E2E_KEEP=1); tails:\n%s", cfg.runDir, c.Logs(1500))
	}
	return code
}
