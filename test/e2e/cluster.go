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

package e2e

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/clinicpay/stripe-operator/test/testenv"
)

// config is what hack/e2e/run.sh hands the test binary: it made the network namespace this
// process runs in, the cgroup root, the images and the runtime wrapper.
type config struct {
	runDir      string   // E2E_RUN_DIR: everything the cluster writes (short: it holds sockets)
	nodeIP      string   // E2E_NODE_IP: the dummy interface's address, the node's and apiserver's
	podCIDR     string   // E2E_POD_CIDR: the CNI bridge's subnet
	binDir      string   // E2E_K8S_BIN: etcd, kube-apiserver, kubelet, kube-controller-manager, kube-scheduler, kube-proxy
	runcWrapper string   // E2E_RUNC_WRAPPER: hack/e2e/runc-wrapper
	cgroupRoot  string   // E2E_CGROUP_ROOT: kubelet's cgroupRoot, made by run.sh in every hierarchy
	cniBinDir   string   // E2E_CNI_BIN: where the CNI plugins are (Debian: /usr/lib/cni)
	pauseImage  string   // E2E_PAUSE_IMAGE: containerd's sandbox_image, imported from a tarball
	images      []string // E2E_IMAGES: image tarballs to import (space separated)
}

func configFromEnv() (config, error) {
	c := config{
		runDir: os.Getenv("E2E_RUN_DIR"), nodeIP: os.Getenv("E2E_NODE_IP"), podCIDR: os.Getenv("E2E_POD_CIDR"),
		binDir: os.Getenv("E2E_K8S_BIN"), runcWrapper: os.Getenv("E2E_RUNC_WRAPPER"),
		cgroupRoot: os.Getenv("E2E_CGROUP_ROOT"), cniBinDir: os.Getenv("E2E_CNI_BIN"),
		pauseImage: os.Getenv("E2E_PAUSE_IMAGE"), images: strings.Fields(os.Getenv("E2E_IMAGES")),
	}
	var missing []string
	for k, v := range map[string]string{"E2E_RUN_DIR": c.runDir, "E2E_NODE_IP": c.nodeIP, "E2E_POD_CIDR": c.podCIDR,
		"E2E_K8S_BIN": c.binDir, "E2E_RUNC_WRAPPER": c.runcWrapper, "E2E_CGROUP_ROOT": c.cgroupRoot,
		"E2E_CNI_BIN": c.cniBinDir, "E2E_PAUSE_IMAGE": c.pauseImage} {
		if v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("%s unset: the e2e tests run inside the network namespace `make e2e` (hack/e2e/run.sh) makes", strings.Join(missing, ", "))
	}
	return c, nil
}

const (
	nodeName        = "e2e-node"
	apiserverPort   = 6443
	serviceCIDR     = "10.0.0.0/24" // envtest's default --service-cluster-ip-range
	kubernetesSvcIP = "10.0.0.1"
	clusterDomain   = "cluster.local"
)

// Cluster is a one-node Kubernetes cluster: etcd and kube-apiserver (envtest's ControlPlane),
// kube-controller-manager, kube-scheduler, containerd with runc and the CNI bridge, kubelet and
// kube-proxy, all processes of this test binary, in the network namespace it runs in.
type Cluster struct {
	cfg        config
	logDir     string
	plane      *envtest.ControlPlane
	containerd *proc
	procs      []*proc // Kubernetes components after the control plane, in start order
	ctrSock    string

	Config     *rest.Config // cluster-admin (system:masters)
	Kube       kubernetes.Interface
	Kubeconfig string // file of Config, for helm and kubectl
	CAFile     string // the apiserver's serving CA
}

func (c *Cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.cfg.runDir}, parts...)...)
}

func step(name string, since time.Time) {
	log.Printf("e2e: %s (%.1fs)", name, time.Since(since).Seconds())
}

// startCluster brings the cluster up and waits for the node to be Ready. On error the caller
// still calls Stop, which stops whatever did start.
func startCluster(ctx context.Context, cfg config) (*Cluster, error) {
	begin := time.Now()
	c := &Cluster{cfg: cfg, logDir: filepath.Join(cfg.runDir, "logs"), ctrSock: filepath.Join(cfg.runDir, "containerd.sock")}
	for _, d := range []string{"logs", "certs", "containerd/root", "containerd/state", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "runc"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			return c, err
		}
	}
	if err := c.startContainerd(ctx); err != nil {
		return c, fmt.Errorf("containerd: %w", err)
	}
	step("containerd up, images imported", begin)
	if err := c.startControlPlane(); err != nil {
		return c, fmt.Errorf("control plane: %w", err)
	}
	step("etcd and kube-apiserver up", begin)
	if err := c.startControllers(); err != nil {
		return c, err
	}
	if err := c.startNode(); err != nil {
		return c, err
	}
	if err := c.waitNodeReady(ctx, 3*time.Minute); err != nil {
		return c, err
	}
	step("node Ready", begin)
	if err := c.waitKubeProxy(ctx, time.Minute); err != nil {
		return c, err
	}
	step("kube-proxy synced; cluster up", begin)
	return c, nil
}

func (c *Cluster) startContainerd(ctx context.Context) error {
	conf := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
]
[grpc]
  address = %[3]q
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[4]q
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %[5]q
        Root = %[6]q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[7]q
    conf_dir = %[8]q
`, c.path("containerd/root"), c.path("containerd/state"), c.ctrSock, c.cfg.pauseImage, c.cfg.runcWrapper,
		c.path("runc"), c.cfg.cniBinDir, c.path("cni/net.d"))
	confPath := c.path("containerd.toml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	p, err := startProc(c.logDir, "containerd", "containerd", "--config", confPath)
	if err != nil {
		return err
	}
	c.containerd = p
	if err := poll(ctx, 30*time.Second, func() error {
		if done, err := p.exited(); done {
			return stopPolling(fmt.Errorf("exited: %v\n%s", err, p.tail(2000)))
		}
		_, err := run("ctr", "-a", c.ctrSock, "version")
		return err
	}); err != nil {
		return err
	}
	for _, img := range append([]string{}, c.cfg.images...) {
		if _, err := run("ctr", "-a", c.ctrSock, "-n", "k8s.io", "images", "import", img); err != nil {
			return err
		}
	}
	return nil
}

// startControlPlane starts etcd and kube-apiserver with envtest, the apiserver serving on the
// node address (so pods reach it through the kubernetes Service) with the ServiceAccount
// admission plugin on (envtest turns it off: it has no controller manager to make the
// ServiceAccounts).
func (c *Cluster) startControlPlane() error {
	certDir := c.path("certs")
	caPEM, err := writeServingCerts(certDir, []net.IP{net.ParseIP(c.cfg.nodeIP), net.ParseIP(kubernetesSvcIP)})
	if err != nil {
		return err
	}
	c.CAFile = filepath.Join(certDir, "serving-ca.crt")
	api := &envtest.APIServer{
		Path:         filepath.Join(c.cfg.binDir, "kube-apiserver"),
		CertDir:      certDir,
		StartTimeout: 2 * time.Minute,
		StopTimeout:  30 * time.Second,
	}
	api.Out = mustLog(c.logDir, "kube-apiserver")
	api.Err = api.Out
	api.Address = c.cfg.nodeIP // SecureServing.ListenAddr
	api.Port = fmt.Sprint(apiserverPort)
	api.CA = caPEM // envtest keeps the certificates it finds in CertDir
	args := api.Configure()
	args.Disable("disable-admission-plugins")
	args.Set("advertise-address", c.cfg.nodeIP)
	args.Set("service-cluster-ip-range", serviceCIDR)
	args.Set("allow-privileged", "false")
	args.Set("endpoint-reconciler-type", "lease")
	etcd := &envtest.Etcd{
		Path:         filepath.Join(c.cfg.binDir, "etcd"),
		DataDir:      c.path("etcd"),
		StartTimeout: time.Minute,
		StopTimeout:  30 * time.Second,
	}
	etcd.Out = mustLog(c.logDir, "etcd")
	etcd.Err = etcd.Out
	c.plane = &envtest.ControlPlane{APIServer: api, Etcd: etcd}
	if err := c.plane.Start(); err != nil {
		return fmt.Errorf("%w\n%s", err, testenv.TailFile(filepath.Join(c.logDir, "kube-apiserver.log"), 3000))
	}
	admin, err := c.plane.AddUser(envtest.User{Name: "e2e-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	c.Config = admin.Config()
	c.Kubeconfig, err = c.writeKubeconfig(admin)
	if err != nil {
		return err
	}
	c.Kube, err = kubernetes.NewForConfig(c.Config)
	return err
}

func mustLog(dir, name string) *os.File {
	f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		panic(err)
	}
	return f
}

func (c *Cluster) writeKubeconfig(u *envtest.AuthenticatedUser) (string, error) {
	data, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	path := c.path("certs", u.Config().Username+".kubeconfig")
	if u.Config().Username == "" {
		path = c.path("certs", fmt.Sprintf("user-%d.kubeconfig", time.Now().UnixNano()))
	}
	return path, os.WriteFile(path, data, 0o600)
}

// componentKubeconfig provisions a client certificate for a node or control-plane component.
// Every component is in system:masters: this cluster runs no Node authorizer and signs no
// per-component RBAC; what the tests judge is the operator's own RBAC, which they do not bypass.
func (c *Cluster) componentKubeconfig(name string) (string, error) {
	u, err := c.plane.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	data, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	path := c.path("certs", strings.ReplaceAll(name, ":", "-")+".kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.cfg.binDir, name) }

func (c *Cluster) startControllers() error {
	kcm, err := c.componentKubeconfig("system:kube-controller-manager")
	if err != nil {
		return err
	}
	p, err := startProc(c.logDir, "kube-controller-manager", c.bin("kube-controller-manager"),
		"--kubeconfig="+kcm, "--authentication-kubeconfig="+kcm, "--authorization-kubeconfig="+kcm,
		"--service-account-private-key-file="+c.path("certs", "sa-signer.key"),
		"--root-ca-file="+c.CAFile,
		"--use-service-account-credentials=false",
		"--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=10257",
		"--service-cluster-ip-range="+serviceCIDR,
		"--allocate-node-cidrs=false",
		"--controllers=*",
		"--v=1")
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	sched, err := c.componentKubeconfig("system:kube-scheduler")
	if err != nil {
		return err
	}
	schedConf := c.path("kube-scheduler.yaml")
	if err := os.WriteFile(schedConf, fmt.Appendf(nil, `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %s
leaderElection:
  leaderElect: false
`, sched), 0o644); err != nil {
		return err
	}
	p, err = startProc(c.logDir, "kube-scheduler", c.bin("kube-scheduler"), "--config="+schedConf,
		"--authentication-kubeconfig="+sched, "--authorization-kubeconfig="+sched,
		"--bind-address=127.0.0.1", "--secure-port=10259", "--v=1")
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}

func (c *Cluster) startNode() error {
	// CNI: one bridge with host-local addresses and a default route through it, so pods reach
	// the node address (the apiserver, the Stripe fake, the sinks) and ClusterIPs via kube-proxy.
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "stripe-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "e2e-br0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, c.path("cni/ipam"), c.cfg.podCIDR)
	if err := os.WriteFile(c.path("cni/net.d", "10-e2e.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	kubeletKC, err := c.componentKubeconfig("system:node:" + nodeName)
	if err != nil {
		return err
	}
	kubeletConf := c.path("kubelet.yaml")
	if err := os.WriteFile(kubeletConf, fmt.Appendf(nil, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupRoot: %[2]s
failCgroupV1: false
failSwapOn: false
resolvConf: ""
clusterDomain: %[3]s
containerRuntimeEndpoint: unix://%[4]s
podLogsDir: %[5]s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
`, c.cfg.nodeIP, c.cfg.cgroupRoot, clusterDomain, c.ctrSock, c.path("pod-logs")), 0o644); err != nil {
		return err
	}
	p, err := startProc(c.logDir, "kubelet", c.bin("kubelet"), "--config="+kubeletConf, "--kubeconfig="+kubeletKC,
		"--hostname-override="+nodeName, "--node-ip="+c.cfg.nodeIP,
		"--root-dir="+c.path("kubelet"), "--cert-dir="+c.path("kubelet", "pki"), "--v=1")
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)

	proxyKC, err := c.componentKubeconfig("system:kube-proxy")
	if err != nil {
		return err
	}
	proxyConf := c.path("kube-proxy.yaml")
	// conntrack zeros: do not touch the conntrack sysctls, which only the initial network
	// namespace may write; localhostNodePorts off: no route_localnet.
	if err := os.WriteFile(proxyConf, fmt.Appendf(nil, `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %[1]s
hostnameOverride: %[2]s
mode: iptables
clusterCIDR: %[3]s
bindAddress: %[4]s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["%[4]s/32"]
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
`, proxyKC, nodeName, c.cfg.podCIDR, c.cfg.nodeIP), 0o644); err != nil {
		return err
	}
	p, err = startProc(c.logDir, "kube-proxy", c.bin("kube-proxy"), "--config="+proxyConf, "--v=1")
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}

// checkProcs fails fast when a component died.
func (c *Cluster) checkProcs() error {
	for _, p := range append([]*proc{c.containerd}, c.procs...) {
		if p == nil {
			continue
		}
		if done, err := p.exited(); done {
			return fmt.Errorf("%s exited: %v\n%s", p.name, err, p.tail(3000))
		}
	}
	return nil
}

func (c *Cluster) waitNodeReady(ctx context.Context, timeout time.Duration) error {
	var last string
	err := poll(ctx, timeout, func() error {
		if err := c.checkProcs(); err != nil {
			return stopPolling(err)
		}
		n, err := c.Kube.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				last = fmt.Sprintf("Ready=%s %s: %s", cond.Status, cond.Reason, cond.Message)
				if cond.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		return errors.New(last)
	})
	if err != nil {
		return fmt.Errorf("node %s not Ready: %w (last: %s)\nkubelet log:\n%s", nodeName, err, last,
			testenv.TailFile(filepath.Join(c.logDir, "kubelet.log"), 3000))
	}
	return nil
}

// waitKubeProxy waits until kube-proxy reports healthy: it has synced Services (the kubernetes
// Service included) into iptables.
func (c *Cluster) waitKubeProxy(ctx context.Context, timeout time.Duration) error {
	err := poll(ctx, timeout, func() error {
		if err := c.checkProcs(); err != nil {
			return stopPolling(err)
		}
		resp, err := http.Get("http://127.0.0.1:10256/healthz")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("kube-proxy healthz: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kube-proxy: %w\n%s", err, testenv.TailFile(filepath.Join(c.logDir, "kube-proxy.log"), 3000))
	}
	return nil
}

// Stop stops everything: the controllers, then every pod (deleted while kubelet runs, so their
// networking is torn down), kube-proxy and kubelet, whatever container is left (containerd's
// shims outlive containerd otherwise), the control plane, containerd. hack/e2e/run.sh then kills
// whatever is left in the network namespace and the cgroup root, and removes them.
func (c *Cluster) Stop() {
	begin := time.Now()
	// The controllers first, so that no ReplicaSet replaces the pods deleted next.
	for i := len(c.procs) - 1; i >= 0; i-- {
		if p := c.procs[i]; p.name == "kube-controller-manager" || p.name == "kube-scheduler" {
			p.stop()
		}
	}
	c.deletePods()
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		if p.name == "kubelet" || p.name == "kube-proxy" {
			p.stop()
		}
	}
	if c.containerd != nil {
		c.removeContainers()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop()
	}
	if c.plane != nil {
		if err := c.plane.Stop(); err != nil {
			log.Printf("e2e: stopping the control plane: %v", err)
		}
	}
	if c.containerd != nil {
		c.containerd.stop()
	}
	step("cluster stopped", begin)
}

// deletePods deletes every pod at once (grace 0) while kubelet still runs, and waits, bounded,
// until kubelet has stopped their sandboxes: that is what tears their CNI networking down (the
// bridge plugin's address leases, libcni's cache files outside the run directory).
func (c *Cluster) deletePods() {
	if c.Kube == nil || c.containerd == nil {
		return
	}
	for _, p := range c.procs {
		if done, _ := p.exited(); p.name == "kubelet" && done {
			return
		}
	}
	ctx := context.Background()
	pods, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		log.Printf("e2e: list pods: %v", err)
		return
	}
	for _, p := range pods.Items {
		_ = c.Kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}
	err = poll(ctx, 30*time.Second, func() error {
		out, err := run("ctr", "-a", c.ctrSock, "-n", "k8s.io", "tasks", "ls", "-q")
		if err != nil {
			return stopPolling(err)
		}
		if n := len(strings.Fields(out)); n > 0 {
			return fmt.Errorf("%d containers still running", n)
		}
		return nil
	})
	if err != nil {
		log.Printf("e2e: deleting the pods: %v", err)
	}
}

// removeContainers kills and deletes every task and container containerd runs for Kubernetes.
func (c *Cluster) removeContainers() {
	ctr := func(args ...string) (string, error) {
		return run(append([]string{"ctr", "-a", c.ctrSock, "-n", "k8s.io"}, args...)...)
	}
	out, err := ctr("tasks", "ls", "-q")
	if err != nil {
		log.Printf("e2e: %v", err)
		return
	}
	for _, id := range strings.Fields(out) {
		if _, err := ctr("tasks", "delete", "-f", id); err != nil && !strings.Contains(err.Error(), "not found") {
			log.Printf("e2e: %v", err)
		}
	}
	out, err = ctr("containers", "ls", "-q")
	if err == nil {
		for _, id := range strings.Fields(out) {
			if _, err := ctr("containers", "delete", id); err != nil {
				log.Printf("e2e: %v", err)
			}
		}
	}
}

// Logs returns the tails of every component's log, for a failing test.
func (c *Cluster) Logs(n int64) string {
	var b strings.Builder
	entries, _ := os.ReadDir(c.logDir)
	for _, e := range entries {
		fmt.Fprintf(&b, "==> %s <==\n%s\n", e.Name(), testenv.TailFile(filepath.Join(c.logDir, e.Name()), n))
	}
	return b.String()
}

type stopPollingErr struct{ error }

func stopPolling(err error) error { return stopPollingErr{err} }

// poll calls f every 250 ms until it returns nil, returns a stopPolling error, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		var stop stopPollingErr
		if errors.As(err, &stop) {
			return stop.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}
