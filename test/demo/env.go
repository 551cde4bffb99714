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

// Package demo runs stripe-operator on one machine, on 127.0.0.1 only: an envtest control plane
// (the project's own kube-apiserver and etcd), the CRDs, the Stripe fake with its admin API, the
// real operator binary, a stand-in for the kubelet that runs receiver Deployments as local
// processes, and a demo clinic system (billing over HTTP and a FHIR server) that prints what it
// receives. Run walks a newcomer through the operator's life cycle; Up keeps the environment
// running for exploring with kubectl and curl. `make demo`, `make demo-up` and its test use it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/test/admissionpolicy"
	"github.com/clinicpay/stripe-operator/test/stripefake"
	"github.com/clinicpay/stripe-operator/test/testenv"
)

// Config locates what the demo runs.
type Config struct {
	// Root is the repository root (config/ is read from it).
	Root string
	// Assets is the directory with the envtest etcd and kube-apiserver binaries.
	Assets string
	// Manager and Receiver are the operator's binaries (the image's /manager and /receiver).
	Manager, Receiver string
	// Kubectl is the kubectl binary the steps run.
	Kubectl string
	// WorkDir holds the kubeconfig, the env file, logs and the receivers' mounted Secrets.
	WorkDir string
	// Out receives the readable output.
	Out io.Writer
	// ResyncPeriod is the operator's --resync-period (how soon it notices drift made in the
	// "dashboard"); 0 means 20s.
	ResyncPeriod time.Duration
}

// The manager's finance cadence in the demo: seconds, so the payout, the delivery and the anomaly
// checks show within the scenario (the defaults are an hour, half an hour and 5 minutes).
const (
	payoutCheckInterval   = 2 * time.Second
	deliveryCheckInterval = 3 * time.Second
	anomalyCheckInterval  = 2 * time.Second
)

// Env is a running demo environment.
type Env struct {
	cfg Config
	out *printer

	testEnv    *envtest.Environment
	client     client.Client
	kubeconfig string
	fake       *stripefake.Server
	fakeURL    string
	clinic     *clinicSystem
	net        *network
	edge       *edge
	kubelet    *kubelet
	manager    *process

	stopKubelet context.CancelFunc
	kubeletDone chan struct{}
}

// Up starts everything and returns when the operator is ready. On error, whatever was started
// is stopped again.
func Up(ctx context.Context, cfg Config) (_ *Env, err error) {
	if cfg.ResyncPeriod == 0 {
		cfg.ResyncPeriod = 20 * time.Second
	}
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	e := &Env{cfg: cfg, out: &printer{w: cfg.Out}}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Down())
		}
	}()
	for _, d := range []string{cfg.WorkDir, e.podsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}

	e.out.step("Starting the demo environment (127.0.0.1 only)")
	start := time.Now()
	if err := e.startControlPlane(); err != nil {
		return nil, err
	}
	e.out.info("control plane   kube-apiserver + etcd (envtest, %s), CRDs from config/crd/bases", filepath.Base(cfg.Assets))

	if e.clinic, err = startClinicSystem(e.out); err != nil {
		return nil, fmt.Errorf("start the demo clinic system: %w", err)
	}
	e.net = newNetwork(e.clinic.billingAddr, e.clinic.fhirAddr)
	e.out.info("clinic system   billing http://%s, FHIR R4 http://%s", e.clinic.billingAddr, e.clinic.fhirAddr)
	if e.edge, err = startEdge(e.net, filepath.Join(cfg.WorkDir, "public-ca.pem")); err != nil {
		return nil, fmt.Errorf("start the demo network's load balancer: %w", err)
	}
	e.out.info("network         load balancer https://%s (TLS, demo CA), the operator's DNS via proxy http://%s", e.edge.lbAddr, e.edge.proxyAddr)

	e.fake = stripefake.New(stripefake.AcceptAnyKey(), stripefake.WithAdminAPI(),
		stripefake.WithHTTPClient(&http.Client{Transport: e.net, Timeout: 10 * time.Second}),
		stripefake.WithDeliveryRetries([]time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second}))
	if e.fakeURL, err = e.fake.Start(); err != nil {
		return nil, fmt.Errorf("start the Stripe fake: %w", err)
	}
	e.out.info("Stripe fake     %s (any well-formed key; admin API under %s)", e.fakeURL, stripefake.AdminPrefix)

	kctx, cancel := context.WithCancel(context.Background())
	e.stopKubelet, e.kubeletDone = cancel, make(chan struct{})
	e.kubelet = newKubelet(e.client, map[string]string{"/receiver": cfg.Receiver, "/manager": cfg.Manager}, e.podsDir(), e.net, e.out)
	go func() {
		defer close(e.kubeletDone)
		e.kubelet.run(kctx)
	}()
	e.out.info("kubelet         stand-in: runs receiver Deployments as local processes")

	if err := e.startManager(ctx); err != nil {
		return nil, err
	}
	e.out.info("operator        %s (log: %s)", cfg.Manager, e.manager.log.Name())
	e.out.info("ready in %s", time.Since(start).Round(100*time.Millisecond))
	return e, nil
}

func checkConfig(cfg Config) error {
	var missing []string
	for what, path := range map[string]string{
		"etcd (make envtest-bins)":           filepath.Join(cfg.Assets, "etcd"),
		"kube-apiserver (make envtest-bins)": filepath.Join(cfg.Assets, "kube-apiserver"),
		"manager binary (make build)":        cfg.Manager,
		"receiver binary (make build)":       cfg.Receiver,
		"kubectl":                            cfg.Kubectl,
		"CRDs (make manifests)":              filepath.Join(cfg.Root, "config", "crd", "bases"),
	} {
		if path == "" {
			missing = append(missing, what)
			continue
		}
		if _, err := os.Stat(path); err != nil {
			missing = append(missing, fmt.Sprintf("%s: %v", what, err))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("demo: missing %s", strings.Join(missing, "; "))
	}
	if cfg.Out == nil || cfg.WorkDir == "" {
		return errors.New("demo: Out and WorkDir are required")
	}
	return nil
}

func (e *Env) podsDir() string { return filepath.Join(e.cfg.WorkDir, "pods") }

func (e *Env) startControlPlane() error {
	e.testEnv = &envtest.Environment{
		BinaryAssetsDirectory: e.cfg.Assets,
		CRDDirectoryPaths:     []string{filepath.Join(e.cfg.Root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	restCfg, err := e.testEnv.Start()
	if err != nil {
		return fmt.Errorf("start the envtest control plane: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1.AddToScheme(scheme)); err != nil {
		return fmt.Errorf("build scheme: %w", err)
	}
	if e.client, err = client.New(restCfg, client.Options{Scheme: scheme}); err != nil {
		return fmt.Errorf("build client: %w", err)
	}
	// As an install does: the finalizer policy of config/admission.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := admissionpolicy.Install(ctx, e.client, e.cfg.Root, "default"); err != nil {
		return err
	}
	user, err := e.testEnv.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("add the demo admin user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("render kubeconfig: %w", err)
	}
	e.kubeconfig = filepath.Join(e.cfg.WorkDir, "kubeconfig")
	if err := os.WriteFile(e.kubeconfig, kc, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

func (e *Env) startManager(ctx context.Context) error {
	probeAddr, err := testenv.FreeAddr()
	if err != nil {
		return err
	}
	args := []string{
		"--stripe-api-url=" + e.fakeURL,
		"--leader-elect=false",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + probeAddr,
		"--resync-period=" + e.cfg.ResyncPeriod.String(),
		"--receiver-image=ghcr.io/clinicpay/stripe-operator:demo",
		// Finance checks within the demo's seconds, not the production hour and half hour.
		"--payout-check-interval=" + payoutCheckInterval.String(),
		"--delivery-check-interval=" + deliveryCheckInterval.String(),
		"--anomaly-check-interval=" + anomalyCheckInterval.String(),
	}
	env := append([]string{"KUBECONFIG=" + e.kubeconfig}, e.edge.env()...)
	e.manager, err = startProcess("manager", e.cfg.Manager, args, env, filepath.Join(e.cfg.WorkDir, "manager.log"))
	if err != nil {
		return err
	}
	return waitHTTPOK(ctx, e.manager, "http://"+probeAddr+"/readyz", 60*time.Second)
}

// WriteEnvFile writes KUBECONFIG=… and STRIPE_API_URL=… lines for people and scripts.
func (e *Env) WriteEnvFile(path string) error {
	body := fmt.Sprintf("KUBECONFIG=%s\nSTRIPE_API_URL=%s\nSTRIPE_ADMIN_URL=%s%s\nCLINIC_BILLING_URL=http://%s\nCLINIC_FHIR_URL=http://%s\n",
		e.kubeconfig, e.fakeURL, e.fakeURL, strings.TrimSuffix(stripefake.AdminPrefix, "/"), e.clinic.billingAddr, e.clinic.fhirAddr)
	return os.WriteFile(path, []byte(body), 0o600)
}

// Kubeconfig is the path of the admin kubeconfig.
func (e *Env) Kubeconfig() string { return e.kubeconfig }

// StripeURL is the Stripe fake's base URL.
func (e *Env) StripeURL() string { return e.fakeURL }

// Running returns the number of processes the demo started that are still running.
func (e *Env) Running() int {
	n := 0
	if e.kubelet != nil {
		n += e.kubelet.running()
	}
	if e.manager != nil && !e.manager.exited() {
		n++
	}
	return n
}

// Down stops everything Up started, in reverse order, and reports what failed to stop.
func (e *Env) Down() error {
	var errs []error
	if e.manager != nil {
		e.manager.stop()
	}
	if e.stopKubelet != nil {
		e.stopKubelet()
		<-e.kubeletDone
	}
	if e.fake != nil {
		errs = append(errs, e.fake.Close())
	}
	if e.clinic != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, e.clinic.close(ctx))
		cancel()
	}
	if e.edge != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, e.edge.close(ctx))
		cancel()
	}
	if e.testEnv != nil {
		errs = append(errs, e.testEnv.Stop())
	}
	if n := e.Running(); n > 0 {
		errs = append(errs, fmt.Errorf("%d demo processes still running", n))
	}
	return errors.Join(errs...)
}
