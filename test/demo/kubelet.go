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

package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
	"github.com/clinicpay/stripe-operator/internal/controller"
	"github.com/clinicpay/stripe-operator/test/testenv"
)

const (
	// kubeletPeriod is how often the stand-in syncs Deployments, probes and mounted Secrets.
	kubeletPeriod = 250 * time.Millisecond
	// restartBackoffMax caps the delay before a crashed receiver is started again.
	restartBackoffMax = 10 * time.Second
	managedByValue    = "stripe-operator"
)

// kubelet stands in for the kubelet, the Deployment controller and the garbage collector, which
// envtest does not run, for the receiver Deployments the operator creates. For each replica it
// runs the container's command as a local process with the Deployment's own arguments, writes the
// Secret volumes to a directory and points the mount paths there, gives the ports free loopback
// addresses, and reports the Deployment available only while the process's readiness endpoint
// answers. When a StripeIntegration is gone it deletes what the integration owned, as the
// garbage collector would.
type kubelet struct {
	c        client.Client
	binaries map[string]string // container command → local binary
	dir      string            // per-pod directories and logs
	net      *network
	out      *printer

	mu      sync.Mutex
	pods    map[types.NamespacedName][]*pod
	started []int // pids of every receiver process started
}

// pod is one receiver replica running as a local process.
type pod struct {
	name        string
	hash        string // pod template hash it was started from
	dir         string
	proc        *process
	webhookAddr string
	readyURL    string
	ready       bool
	secrets     map[string]string // Secret name → resourceVersion written to disk
	restarts    int
	notBefore   time.Time
}

func newKubelet(c client.Client, binaries map[string]string, dir string, n *network, out *printer) *kubelet {
	return &kubelet{c: c, binaries: binaries, dir: dir, net: n, out: out, pods: map[types.NamespacedName][]*pod{}}
}

// run syncs until ctx ends, then stops every process it started.
func (k *kubelet) run(ctx context.Context) {
	defer k.stopAll()
	tick := time.NewTicker(kubeletPeriod)
	defer tick.Stop()
	last := "" // a problem is printed once, not every period
	for {
		err := errors.Join(k.collectGarbage(ctx), k.sync(ctx))
		switch {
		case ctx.Err() != nil:
		case err != nil && err.Error() != last:
			last = err.Error()
			k.out.info("kubelet stand-in: %v", err)
		case err == nil:
			last = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// running returns the number of live receiver processes.
func (k *kubelet) running() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, ps := range k.pods {
		for _, p := range ps {
			if p.proc != nil && !p.proc.exited() {
				n++
			}
		}
	}
	return n
}

// pids returns the process ids of all receivers started so far (running or not).
func (k *kubelet) pids() []int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.started)
}

func (k *kubelet) stopAll() {
	k.mu.Lock()
	all := k.pods
	k.pods = map[types.NamespacedName][]*pod{}
	k.mu.Unlock()
	var wg sync.WaitGroup
	for _, ps := range all {
		for _, p := range ps {
			wg.Go(func() { k.stopPod(p) })
		}
	}
	wg.Wait()
}

func (k *kubelet) stopPod(p *pod) {
	if p.proc != nil {
		p.proc.stop()
	}
	_ = os.RemoveAll(filepath.Join(p.dir, "volumes")) // the log stays for reading after the demo
}

func (k *kubelet) sync(ctx context.Context) error {
	var deps appsv1.DeploymentList
	if err := k.c.List(ctx, &deps, client.MatchingLabels{controller.LabelManagedBy: managedByValue}); err != nil {
		return fmt.Errorf("list Deployments: %w", err)
	}
	seen := map[types.NamespacedName]bool{}
	var errs []string
	for i := range deps.Items {
		d := &deps.Items[i]
		key := client.ObjectKeyFromObject(d)
		seen[key] = true
		if err := k.syncDeployment(ctx, d); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", key, err))
		}
	}
	k.mu.Lock()
	var gone [][]*pod
	for key, ps := range k.pods {
		if !seen[key] {
			gone = append(gone, ps)
			delete(k.pods, key)
		}
	}
	k.mu.Unlock()
	for _, ps := range gone {
		for _, p := range ps {
			k.stopPod(p)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func templateHash(d *appsv1.Deployment) string {
	raw, _ := json.Marshal(d.Spec.Template) // a typed struct always marshals
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

func (k *kubelet) syncDeployment(ctx context.Context, d *appsv1.Deployment) error {
	key := client.ObjectKeyFromObject(d)
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	hash := templateHash(d)

	k.mu.Lock()
	pods := k.pods[key]
	k.mu.Unlock()

	// Replace replicas of an old template, and scale to the wanted count.
	var keep, drop []*pod
	for _, p := range pods {
		if p.hash == hash && int32(len(keep)) < want {
			keep = append(keep, p)
		} else {
			drop = append(drop, p)
		}
	}
	for i := int32(len(keep)); i < want; i++ {
		keep = append(keep, &pod{name: fmt.Sprintf("%s-%s-%d", d.Name, hash[:6], i), hash: hash})
	}
	for _, p := range drop {
		k.stopPod(p)
	}

	var errs []string
	for _, p := range keep {
		if err := k.syncPod(ctx, d, p); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", p.name, err))
		}
	}
	k.mu.Lock()
	k.pods[key] = keep
	k.mu.Unlock()

	k.route(ctx, d, keep)
	if err := k.updateStatus(ctx, d, keep, want); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// syncPod starts (or restarts after a crash) one replica, refreshes its mounted Secrets, and
// probes its readiness.
func (k *kubelet) syncPod(ctx context.Context, d *appsv1.Deployment, p *pod) error {
	if p.proc != nil && p.proc.exited() {
		p.ready = false
		p.restarts++
		backoff := min(time.Duration(1<<min(p.restarts, 10))*250*time.Millisecond, restartBackoffMax)
		p.notBefore = time.Now().Add(backoff)
		k.out.info("kubelet stand-in: receiver %s exited (%v); restarting in %s (log: %s)", p.name, p.proc.err, backoff, p.proc.log.Name())
		p.proc = nil
	}
	if p.dir == "" {
		p.dir = filepath.Join(k.dir, d.Namespace+"_"+p.name)
	}
	// Like the kubelet, refresh Secret volumes in place; the receiver reloads the file itself.
	mounts, err := k.writeVolumes(ctx, d, p)
	if err != nil {
		return err
	}
	if p.proc == nil {
		if time.Now().Before(p.notBefore) {
			return nil
		}
		if err := k.startPod(d, p, mounts); err != nil {
			return err
		}
	}
	p.ready = httpOK(ctx, p.readyURL)
	return nil
}

// writeVolumes writes the Secret volumes of the pod template to disk and returns mount path →
// local directory. A missing Secret keeps the pod from starting, as on a node.
func (k *kubelet) writeVolumes(ctx context.Context, d *appsv1.Deployment, p *pod) (map[string]string, error) {
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		return nil, fmt.Errorf("want exactly one container, found %d", len(spec.Containers))
	}
	if p.secrets == nil {
		p.secrets = map[string]string{}
	}
	mounts := map[string]string{}
	for _, vm := range spec.Containers[0].VolumeMounts {
		idx := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name })
		if idx < 0 || spec.Volumes[idx].Secret == nil {
			return nil, fmt.Errorf("volume %q: only Secret volumes are supported by the stand-in", vm.Name)
		}
		src := spec.Volumes[idx].Secret
		dir := filepath.Join(p.dir, "volumes", vm.Name)
		mounts[vm.MountPath] = dir
		var sec corev1.Secret
		if err := k.c.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: src.SecretName}, &sec); err != nil {
			return nil, fmt.Errorf("volume %q: Secret %s: %w", vm.Name, src.SecretName, err)
		}
		if p.secrets[src.SecretName] == sec.ResourceVersion {
			continue
		}
		if err := writeSecretFiles(dir, &sec, src.Items); err != nil {
			return nil, fmt.Errorf("volume %q: %w", vm.Name, err)
		}
		p.secrets[src.SecretName] = sec.ResourceVersion
	}
	return mounts, nil
}

// writeSecretFiles writes the selected keys (all keys without items) atomically, owner-only.
func writeSecretFiles(dir string, sec *corev1.Secret, items []corev1.KeyToPath) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if len(items) == 0 {
		for key := range sec.Data {
			items = append(items, corev1.KeyToPath{Key: key, Path: key})
		}
	}
	for _, it := range items {
		val, ok := sec.Data[it.Key]
		if !ok {
			return fmt.Errorf("no key %q in Secret %s", it.Key, sec.Name)
		}
		dst := filepath.Join(dir, filepath.Clean("/" + it.Path)[1:])
		tmp := dst + ".tmp"
		if err := os.WriteFile(tmp, val, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
	}
	return nil
}

// startPod runs the container command with its arguments, rewritten for this machine: mount
// paths point at the written volumes, bind addresses at free loopback ports, and in-cluster
// names of the demo clinic system at its loopback addresses.
func (k *kubelet) startPod(d *appsv1.Deployment, p *pod, mounts map[string]string) error {
	ctr := d.Spec.Template.Spec.Containers[0]
	if len(ctr.Command) == 0 {
		return fmt.Errorf("container %q has no command", ctr.Name)
	}
	bin, ok := k.binaries[ctr.Command[0]]
	if !ok {
		return fmt.Errorf("container command %q is not one of the operator image's binaries", ctr.Command[0])
	}
	all := append(slices.Clone(ctr.Command[1:]), ctr.Args...)
	isBind := func(a string) bool {
		flagPart, _, ok := strings.Cut(a, "=")
		return ok && strings.HasSuffix(flagPart, "-bind-address")
	}
	free, err := testenv.FreeAddrs(len(slices.DeleteFunc(slices.Clone(all), func(a string) bool { return !isBind(a) })))
	if err != nil {
		return err
	}
	ports := map[string]string{} // container port (number or name) → local address
	args := make([]string, 0, len(all))
	for _, a := range all {
		if isBind(a) {
			flagPart, val, _ := strings.Cut(a, "=")
			addr := free[0]
			free = free[1:]
			ports[strings.TrimPrefix(val, ":")] = addr
			a = flagPart + "=" + addr
		}
		for mp, dir := range mounts {
			a = strings.ReplaceAll(a, "="+mp+"/", "="+dir+"/")
		}
		args = append(args, k.net.resolveArg(a))
	}
	for _, cp := range ctr.Ports {
		if addr, ok := ports[itoa(int(cp.ContainerPort))]; ok {
			ports[cp.Name] = addr
		}
	}
	p.webhookAddr = ports["webhook"]
	if rp := ctr.ReadinessProbe; rp != nil && rp.HTTPGet != nil {
		p.readyURL = "http://" + ports[rp.HTTPGet.Port.String()] + rp.HTTPGet.Path
	}
	if p.webhookAddr == "" || !strings.HasPrefix(p.readyURL, "http://127.0.0.1:") {
		return fmt.Errorf("container needs a %q port and an HTTP readiness probe on a bound port", "webhook")
	}
	env := make([]string, 0, len(ctr.Env))
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	proc, err := startProcess(p.name, bin, args, env, filepath.Join(k.dir, d.Namespace+"_"+p.name+".log"))
	if err != nil {
		return err
	}
	p.proc, p.ready = proc, false
	k.mu.Lock()
	k.started = append(k.started, proc.cmd.Process.Pid)
	k.mu.Unlock()
	return nil
}

// route points the integration's public webhook URL, and the webhook port of each Service that
// selects the Deployment's pods, at its ready replicas.
func (k *kubelet) route(ctx context.Context, d *appsv1.Deployment, pods []*pod) {
	var addrs []string
	for _, p := range pods {
		if p.ready {
			addrs = append(addrs, p.webhookAddr)
		}
	}
	var svcs corev1.ServiceList
	if err := k.c.List(ctx, &svcs, client.InNamespace(d.Namespace)); err == nil {
		for _, svc := range svcs.Items {
			if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				continue
			}
			for _, sp := range svc.Spec.Ports {
				if sp.TargetPort.StrVal == "webhook" {
					k.net.setService(fmt.Sprintf("%s.%s.svc:%d", svc.Name, svc.Namespace, sp.Port), addrs)
				}
			}
		}
	}
	owner := metav1.GetControllerOf(d)
	if owner == nil || owner.Kind != "StripeIntegration" {
		return
	}
	var si v1.StripeIntegration
	if err := k.c.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: owner.Name}, &si); err != nil || si.UID != owner.UID {
		return
	}
	// The public route is configured from the spec, as a platform's Ingress is, not from the
	// status: the operator's first status waits for the receiver to be ready
	// (--first-status-hold), and Stripe may deliver as soon as it says Connected. The demo's
	// manager has no --webhook-base-url, so the spec gives the URL.
	u := controller.WebhookURL(&si, "")
	if u == "" {
		u = si.Status.WebhookURL
	}
	if u == "" {
		return
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	k.net.setRoute(u, addrs)
}

// updateStatus writes the Deployment status the Deployment controller and kubelet would report.
func (k *kubelet) updateStatus(ctx context.Context, d *appsv1.Deployment, pods []*pod, want int32) error {
	var ready int32
	for _, p := range pods {
		if p.ready {
			ready++
		}
	}
	st := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           int32(len(pods)),
		UpdatedReplicas:    int32(len(pods)),
		ReadyReplicas:      ready,
		AvailableReplicas:  ready,
	}
	st.UnavailableReplicas = want - ready
	avail := appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable",
		Message: fmt.Sprintf("%d of %d replicas ready (kubelet stand-in)", ready, want)}
	if ready >= want && want > 0 {
		avail.Status, avail.Reason = corev1.ConditionTrue, "MinimumReplicasAvailable"
	}
	if old := findCondition(d.Status.Conditions, appsv1.DeploymentAvailable); old != nil && old.Status == avail.Status && old.Message == avail.Message {
		avail.LastTransitionTime, avail.LastUpdateTime = old.LastTransitionTime, old.LastUpdateTime
	} else {
		now := metav1.Now()
		avail.LastTransitionTime, avail.LastUpdateTime = now, now
	}
	st.Conditions = []appsv1.DeploymentCondition{avail}
	cur := d.Status
	cur.Conditions = []appsv1.DeploymentCondition{}
	if c := findCondition(d.Status.Conditions, appsv1.DeploymentAvailable); c != nil {
		cur.Conditions = append(cur.Conditions, *c)
	}
	if equalStatus(cur, st) {
		return nil
	}
	d.Status = st
	if err := k.c.Status().Update(ctx, d); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update Deployment status: %w", err)
	}
	return nil
}

func findCondition(cs []appsv1.DeploymentCondition, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}

func equalStatus(a, b appsv1.DeploymentStatus) bool {
	ja, _ := json.Marshal(a) // typed structs always marshal
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// collectGarbage deletes objects the operator labelled and a StripeIntegration controlled once
// that integration is gone, as the garbage collector does in a cluster.
func (k *kubelet) collectGarbage(ctx context.Context) error {
	sel := client.MatchingLabels{controller.LabelManagedBy: managedByValue}
	lists := []client.ObjectList{&appsv1.DeploymentList{}, &corev1.ServiceList{}, &corev1.SecretList{}, &networkingv1.NetworkPolicyList{},
		&networkingv1.IngressList{}, &policyv1.PodDisruptionBudgetList{}}
	for _, l := range lists {
		if err := k.c.List(ctx, l, sel); err != nil {
			return fmt.Errorf("list %T: %w", l, err)
		}
		items, err := meta.ExtractList(l)
		if err != nil {
			return fmt.Errorf("list %T: %w", l, err)
		}
		for _, item := range items {
			obj, ok := item.(client.Object)
			if !ok {
				continue
			}
			owner := metav1.GetControllerOf(obj)
			if owner == nil || owner.Kind != "StripeIntegration" {
				continue
			}
			var si v1.StripeIntegration
			err := k.c.Get(ctx, types.NamespacedName{Namespace: obj.GetNamespace(), Name: owner.Name}, &si)
			switch {
			case err == nil && si.UID == owner.UID:
				continue
			case err != nil && !apierrors.IsNotFound(err):
				return fmt.Errorf("get owner of %s: %w", obj.GetName(), err)
			}
			if err := k.c.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("delete orphan %s: %w", obj.GetName(), err)
			}
		}
	}
	return nil
}
