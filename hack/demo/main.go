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

// Command demo runs stripe-operator locally on 127.0.0.1 (see test/demo and docs/demo.md).
//
//	demo run            the guided demo: start, walk through the steps, clean up (make demo)
//	demo up [--detach]  start the environment and keep it running; writes .demo/env (make demo-up)
//	demo down           stop an environment started with up (make demo-down)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/clinicpay/stripe-operator/test/demo"
	"github.com/clinicpay/stripe-operator/test/envtestbins"
)

const (
	stateDir     = ".demo"
	detachWait   = 5 * time.Minute
	downWait     = 30 * time.Second
	usageMessage = "usage: demo run|up [--detach]|down [flags]"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usageMessage)
		os.Exit(2)
	}
	// The demo prints headed steps; envtest's own logging would only add noise (the operator's
	// log is in its log file).
	ctrllog.SetLogger(logr.Discard())
	// Output piped into `head` must not kill the demo before it stops what it started: with
	// SIGPIPE ignored a write fails instead, and the printer carries on.
	signal.Ignore(syscall.SIGPIPE)
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "up":
		err = up(os.Args[2:])
	case "down":
		err = down()
	default:
		fmt.Fprintln(os.Stderr, usageMessage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// flags parses the flags common to run and up.
func flags(name string, args []string) (demo.Config, bool, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfg := demo.Config{Out: os.Stdout}
	fs.StringVar(&cfg.Root, "root", ".", "Repository root.")
	fs.StringVar(&cfg.Assets, "assets", "",
		"Directory with the envtest etcd and kube-apiserver (default: $KUBEBUILDER_ASSETS, else what `make envtest-bins` built under bin/k8s).")
	fs.StringVar(&cfg.Manager, "manager", filepath.Join("bin", "manager"), "Operator manager binary.")
	fs.StringVar(&cfg.Receiver, "receiver", filepath.Join("bin", "receiver"), "Webhook receiver binary.")
	fs.StringVar(&cfg.Kubectl, "kubectl", os.Getenv("KUBECTL"), "kubectl binary (default: $KUBECTL, else kubectl from PATH).")
	fs.StringVar(&cfg.WorkDir, "workdir", "",
		"Directory for the kubeconfig, logs and mounted Secrets (default: a temporary directory for run, .demo for up).")
	fs.DurationVar(&cfg.ResyncPeriod, "resync-period", 20*time.Second, "The operator's --resync-period.")
	detach := fs.Bool("detach", false, "up: start in the background and return once the environment is ready.")
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if cfg.Assets == "" {
		dir, err := envtestbins.Dir()
		if err != nil {
			return cfg, false, err
		}
		cfg.Assets = dir
	}
	if cfg.Kubectl == "" {
		p, err := exec.LookPath("kubectl")
		if err != nil {
			return cfg, false, errors.New("kubectl not found in PATH: install kubectl (v1.32 or newer) or set KUBECTL")
		}
		cfg.Kubectl = p
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return cfg, false, err
	}
	cfg.Root = root
	for _, p := range []*string{&cfg.Assets, &cfg.Manager, &cfg.Receiver} {
		if !filepath.IsAbs(*p) {
			*p = filepath.Join(root, *p)
		}
	}
	return cfg, *detach, nil
}

func run(args []string) error {
	cfg, _, err := flags("run", args)
	if err != nil {
		return err
	}
	if cfg.WorkDir == "" {
		if cfg.WorkDir, err = os.MkdirTemp("", "stripe-operator-demo-"); err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(cfg.WorkDir) }()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err = demo.Run(ctx, cfg)
	if err != nil && ctx.Err() != nil {
		return errors.New("interrupted; everything the demo started has been stopped")
	}
	return err
}

func up(args []string) error {
	cfg, detach, err := flags("up", args)
	if err != nil {
		return err
	}
	state := filepath.Join(cfg.Root, stateDir)
	if cfg.WorkDir == "" {
		cfg.WorkDir = state
	}
	envFile, pidFile := filepath.Join(state, "env"), filepath.Join(state, "pid")
	if pid, ok := runningPID(pidFile); ok {
		return fmt.Errorf("a demo environment is already running (pid %d): make demo-down first", pid)
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}
	_ = os.Remove(envFile) // stale from a killed run
	if detach {
		return upDetached(cfg, envFile)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	defer func() { _ = os.Remove(pidFile) }()
	e, err := demo.Up(ctx, cfg)
	if err != nil {
		return err
	}
	if err := e.WriteEnvFile(envFile); err != nil {
		return errors.Join(err, e.Down())
	}
	fmt.Printf(`
The demo environment is up. Explore it:
  set -a; . %[1]s; set +a
  kubectl apply -k config/samples && kubectl wait --for=condition=Connected si/clinic-a-test
  kubectl get si -A
  curl -s -u sk_test_clinicAdemo0000000000000000: $STRIPE_API_URL/v1/webhook_endpoints
  curl -s -X POST $STRIPE_ADMIN_URL/events -d '{"key":"sk_test_clinicAdemo0000000000000000","type":"payment_intent.succeeded"}'
  curl -s -X POST $STRIPE_ADMIN_URL/payouts -d '{"key":"sk_test_clinicAdemo0000000000000000","pay":true,
    "transactions":[{"type":"charge","amount":8000,"currency":"usd","source":"ch_demo1"}]}'
  kubectl get si clinic-a-test -o jsonpath='{.status.finance}'
  curl -s "$CLINIC_FHIR_URL/r4/PaymentNotice?identifier=https://stripe.com/charges|ch_demo1"
More in docs/demo.md. Stop it with: make demo-down
`, envFile)
	<-ctx.Done()
	fmt.Println("\nstopping the demo environment")
	err = e.Down()
	_ = os.Remove(envFile)
	return err
}

// upDetached starts `demo up` in its own session with output to .demo/demo.log and returns once
// it wrote the env file, or with its log when it failed.
func upDetached(cfg demo.Config, envFile string) error {
	logPath := filepath.Join(filepath.Dir(envFile), "demo.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer func() { _ = lf.Close() }()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"up", "--root", cfg.Root, "--assets", cfg.Assets, "--manager", cfg.Manager, "--receiver", cfg.Receiver,
		"--kubectl", cfg.Kubectl, "--workdir", cfg.WorkDir, "--resync-period", cfg.ResyncPeriod.String()}
	cmd := exec.Command(self, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = lf, lf, cfg.Root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(detachWait)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("the demo environment failed to start (%v):\n%s", err, log)
		case <-deadline:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return fmt.Errorf("the demo environment was not ready within %s; see %s", detachWait, logPath)
		case <-tick.C:
			if _, err := os.Stat(envFile); err == nil {
				log, _ := os.ReadFile(logPath)
				fmt.Print(string(log))
				fmt.Printf("(running in the background as pid %d; its log: %s)\n", cmd.Process.Pid, logPath)
				return nil
			}
		}
	}
}

func down() error {
	state, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	pidFile := filepath.Join(state, "pid")
	pid, ok := runningPID(pidFile)
	if !ok {
		_ = os.Remove(pidFile)
		_ = os.Remove(filepath.Join(state, "env"))
		fmt.Println("no demo environment is running")
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(downWait)
	for time.Now().Before(deadline) {
		if _, ok := runningPID(pidFile); !ok {
			fmt.Println("the demo environment is stopped")
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("pid %d did not stop within %s", pid, downWait)
}

// runningPID returns the pid in pidFile if that process is alive.
func runningPID(pidFile string) (int, bool) {
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	err = syscall.Kill(pid, 0)
	return pid, err == nil || errors.Is(err, syscall.EPERM)
}
