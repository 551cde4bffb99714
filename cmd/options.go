package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/clinicpay/stripe-operator/internal/controller"
)

// serviceAccountNamespaceFile holds the pod's namespace wherever a ServiceAccount token is
// mounted, which the manager needs to reach the apiserver in a cluster.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// parseWatchNamespaces turns --watch-namespaces into a sorted list of distinct namespace names;
// nil means every namespace.
func parseWatchNamespaces(value string) ([]string, error) {
	var out []string
	for _, ns := range splitList(value) {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("--watch-namespaces: %q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
		if !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	if value != "" && len(out) == 0 {
		return nil, fmt.Errorf("--watch-namespaces=%q names no namespace; leave it empty to watch all", value)
	}
	slices.Sort(out)
	return out, nil
}

// splitList splits a comma-separated flag value, dropping blanks; never nil.
func splitList(v string) []string {
	out := []string{}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// cacheOptions restricts the manager's cache (and so its watches and the RBAC it needs) to the
// watched namespaces; none means the whole cluster.
func cacheOptions(watched []string) cache.Options {
	opts := controller.CacheOptions()
	if len(watched) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range watched {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// receiverTraffic builds the receivers' NetworkPolicy peers from the --receiver-*-from-* flags;
// managerNamespace is where the manager runs ("" outside a cluster).
func receiverTraffic(o options, managerNamespace string) (controller.ReceiverTraffic, error) {
	t := controller.ReceiverTraffic{ManagerNamespace: managerNamespace}
	for _, f := range []struct {
		flag, value string
		into        **metav1.LabelSelector
	}{
		{"receiver-webhook-from-namespaces", o.webhookFromNamespaces, &t.WebhookFromNamespaces},
		{"receiver-webhook-from-pods", o.webhookFromPods, &t.WebhookFromPods},
		{"receiver-metrics-from-namespaces", o.metricsFromNamespaces, &t.MetricsFromNamespaces},
		{"receiver-metrics-from-pods", o.metricsFromPods, &t.MetricsFromPods},
		{"manager-pod-selector", o.managerPodSelector, &t.ManagerPods},
	} {
		sel, err := parseSelector(f.value)
		if err != nil {
			return controller.ReceiverTraffic{}, fmt.Errorf("--%s=%q is not a label selector (e.g. app.kubernetes.io/name=ingress-nginx): %w", f.flag,
				f.value, err)
		}
		*f.into = sel
	}
	if t.MetricsFromNamespaces == nil {
		// An explicitly empty flag admits scrapers from every namespace, never from outside.
		t.MetricsFromNamespaces = &metav1.LabelSelector{}
	}
	return t, nil
}

// parseSelector parses a label selector string; "" is nil (not set).
func parseSelector(value string) (*metav1.LabelSelector, error) {
	if strings.TrimSpace(value) == "" {
		return nil, nil
	}
	sel, err := metav1.ParseToLabelSelector(value)
	if err != nil {
		return nil, err
	}
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		return nil, err
	}
	return sel, nil
}

// inClusterNamespace is the manager's own namespace in a cluster, "" elsewhere.
func inClusterNamespace() string {
	data, err := os.ReadFile(serviceAccountNamespaceFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}
