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
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// restrictedNamespace creates a namespace that enforces restricted Pod Security, deleted at the
// end of the test.
func restrictedNamespace(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}}
	if _, err := cluster.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Wait, bounded, for the namespace to be gone: what the operator must finalize in it is
		// finalized while it still runs, and the next test starts from a clean cluster.
		ctx := context.Background()
		_ = cluster.Kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		if err := poll(ctx, 3*time.Minute, func() error {
			if _, err := cluster.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("namespace %s not deleted (%v)", name, err)
			}
			return nil
		}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// restrictedContext is what restricted Pod Security demands of a container.
func restrictedContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To[int64](65532),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// TestRestrictedPodRuns: a pod that restricted Pod Security admits is scheduled, its sandbox and
// container start under runc (through the oom_score_adj wrapper), and it gets an address on the
// CNI bridge.
func TestRestrictedPodRuns(t *testing.T) {
	ctx := context.Background()
	restrictedNamespace(t, "e2e-pod")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sleeper", Namespace: "e2e-pod"},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken:  ptr.To(true),
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers: []corev1.Container{{
				Name: "pause", Image: e2eCfg.pauseImage, ImagePullPolicy: corev1.PullNever,
				SecurityContext: restrictedContext(),
			}},
		},
	}
	if _, err := cluster.Kube.CoreV1().Pods("e2e-pod").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitPodRunning(t, "e2e-pod", "sleeper", 2*time.Minute)
	_, subnet, _ := net.ParseCIDR(e2eCfg.podCIDR)
	if ip := net.ParseIP(got.Status.PodIP); ip == nil || !subnet.Contains(ip) {
		t.Fatalf("pod IP %q is not on the CNI bridge %s", got.Status.PodIP, e2eCfg.podCIDR)
	}
	t.Logf("pod Running on %s with IP %s", got.Spec.NodeName, got.Status.PodIP)

	// A privileged pod is refused by admission, not by the kubelet.
	bad := pod.DeepCopy()
	bad.Name = "privileged"
	bad.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	if _, err := cluster.Kube.CoreV1().Pods("e2e-pod").Create(ctx, bad, metav1.CreateOptions{}); err == nil {
		t.Fatal("restricted Pod Security admitted a privileged pod")
	}
}

// TestKubernetesServiceViaKubeProxy: the kubernetes Service's ClusterIP answers from this network
// namespace, through kube-proxy's iptables rules, with the apiserver's certificate.
func TestKubernetesServiceViaKubeProxy(t *testing.T) {
	caPEM, err := os.ReadFile(cluster.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(fmt.Sprintf("https://%s/livez", kubernetesSvcIP))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	// 401/403 are fine: what matters is that the apiserver answered on the ClusterIP with a
	// certificate valid for it.
	t.Logf("https://%s/livez: %s", kubernetesSvcIP, resp.Status)
}

func waitPodRunning(t *testing.T, ns, name string, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	err := poll(context.Background(), timeout, func() error {
		p, err := cluster.Kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod = p
		if p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			return nil
		}
		return fmt.Errorf("phase %s, conditions %v, containers %v", p.Status.Phase, p.Status.Conditions, p.Status.ContainerStatuses)
	})
	if err != nil {
		t.Fatalf("pod %s/%s not Running: %v\nevents:\n%s", ns, name, err, events(ns))
	}
	return pod
}

func events(ns string) string {
	list, err := cluster.Kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var s string
	for _, e := range list.Items {
		s += fmt.Sprintf("  %s %s/%s %s: %s\n", e.Type, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Reason, e.Message)
	}
	return s
}
