package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "sigs.k8s.io/yaml"
)

// isReceiverMonitor tells the receivers' ServiceMonitor from the manager's.
func isReceiverMonitor(obj *unstructured.Unstructured) bool {
	return strings.HasSuffix(obj.GetName(), "-receivers")
}

// TestReceiverMonitoring: with receiverMonitoring on, the chart scrapes the receivers' metrics port
// in every namespace and ships exactly the alert rules of config/prometheus/alerts.yaml, labelled
// for the user's Prometheus; the kustomize copy is the same rules.
func TestReceiverMonitoring(t *testing.T) {
	t.Parallel()
	root := mustRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "config", "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kustomized map[string]any
	if err := utilyaml.Unmarshal(raw, &kustomized); err != nil {
		t.Fatal(err)
	}
	wantSpec := kustomized["spec"]
	checked := 0
	for _, r := range mustRender(t) {
		if r.values == nil || !r.values.ReceiverMonitoring.Enabled {
			continue
		}
		checked++
		rules := r.ofKind("PrometheusRule")
		if len(rules) != 1 {
			t.Fatalf("%s: %d PrometheusRules, want 1", r.name, len(rules))
		}
		if got := rules[0].Object["spec"]; !equality.Semantic.DeepEqual(got, wantSpec) {
			t.Errorf("%s: the chart's alert rules differ from config/prometheus/alerts.yaml", r.name)
		}
		var monitor *unstructured.Unstructured
		for _, m := range r.ofKind("ServiceMonitor") {
			if isReceiverMonitor(m) {
				monitor = m
			}
		}
		if monitor == nil {
			t.Fatalf("%s: no ServiceMonitor for the receivers", r.name)
		}
		for _, obj := range []*unstructured.Unstructured{monitor, rules[0]} {
			for k, v := range r.values.ReceiverMonitoring.Labels {
				if obj.GetLabels()[k] != v {
					t.Errorf("%s: label %s=%q, want %q", describe(obj), k, obj.GetLabels()[k], v)
				}
			}
		}
		// The labels every receiver Service carries (internal/controller/receiver_objects.go), and its port.
		sel, _, _ := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
		if len(sel) != 2 || sel["app.kubernetes.io/name"] != "stripe-receiver" || sel["app.kubernetes.io/managed-by"] != "stripe-operator" {
			t.Errorf("%s: selector %v does not select the receivers' Services", describe(monitor), sel)
		}
		if any, _, _ := unstructured.NestedBool(monitor.Object, "spec", "namespaceSelector", "any"); !any {
			t.Errorf("%s: receivers live in every clinic's namespace, want namespaceSelector.any", describe(monitor))
		}
		endpoints, _, _ := unstructured.NestedSlice(monitor.Object, "spec", "endpoints")
		if len(endpoints) != 1 || endpoints[0].(map[string]any)["port"] != "metrics" {
			t.Errorf("%s: endpoints %v, want the Services' metrics port", describe(monitor), endpoints)
		}
	}
	if checked == 0 {
		t.Fatal("no rendering turns receiverMonitoring on")
	}
}
