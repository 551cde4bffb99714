package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// runMainEnv makes the test binary run the manager's main instead of the tests, so a test can
// check how the real main exits without building the binary.
const runMainEnv = "STRIPE_OPERATOR_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseWatchNamespaces(t *testing.T) {
	for value, want := range map[string][]string{
		"":                       nil,
		"clinics":                {"clinics"},
		" b , a,b,":              {"a", "b"},
		"clinic-a,clinic-b":      {"clinic-a", "clinic-b"},
		"stripe-operator-system": {"stripe-operator-system"},
	} {
		got, err := parseWatchNamespaces(value)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseWatchNamespaces(%q) = %q, %v; want %q", value, got, err, want)
		}
	}
	for value, wantErr := range map[string]string{
		"Clinics":     `"Clinics" is not a namespace name`,
		"a,b_c":       `"b_c" is not a namespace name`,
		",":           "names no namespace",
		"a/b":         `"a/b" is not a namespace name`,
		"clinics,-x-": `"-x-" is not a namespace name`,
	} {
		if _, err := parseWatchNamespaces(value); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("parseWatchNamespaces(%q) error %v, want one saying %s", value, err, wantErr)
		}
	}
}

func TestCacheOptionsWatchNamespaces(t *testing.T) {
	if all := cacheOptions(nil); len(all.DefaultNamespaces) != 0 {
		t.Errorf("no --watch-namespaces restricts the cache to %v", all.DefaultNamespaces)
	}
	got := cacheOptions([]string{"a", "b"}).DefaultNamespaces
	if len(got) != 2 || got["a"].LabelSelector != nil || got["b"].FieldSelector != nil {
		t.Errorf("cache namespaces %v, want exactly a and b", got)
	}
}

func TestReceiverTrafficFlags(t *testing.T) {
	o := options{
		webhookFromNamespaces: "kubernetes.io/metadata.name=ingress-nginx",
		webhookFromPods:       "app.kubernetes.io/name in (ingress-nginx,haproxy)",
		metricsFromNamespaces: "metrics=enabled",
		managerPodSelector:    "control-plane=controller-manager",
	}
	got, err := receiverTraffic(o, "stripe-operator-system")
	if err != nil {
		t.Fatal(err)
	}
	if got.ManagerNamespace != "stripe-operator-system" || got.MetricsFromPods != nil ||
		!equality.Semantic.DeepEqual(got.WebhookFromNamespaces.MatchLabels, map[string]string{"kubernetes.io/metadata.name": "ingress-nginx"}) ||
		!equality.Semantic.DeepEqual(got.WebhookFromPods.MatchExpressions, []metav1.LabelSelectorRequirement{
			{Key: "app.kubernetes.io/name", Operator: metav1.LabelSelectorOpIn, Values: []string{"haproxy", "ingress-nginx"}}}) ||
		!equality.Semantic.DeepEqual(got.MetricsFromNamespaces.MatchLabels, map[string]string{"metrics": "enabled"}) ||
		!equality.Semantic.DeepEqual(got.ManagerPods.MatchLabels, map[string]string{"control-plane": "controller-manager"}) {
		t.Errorf("receiverTraffic = %+v", got)
	}

	// The defaults: the webhook port open (no peers), metrics from every namespace when the
	// flag is emptied (still never from outside the cluster).
	got, err = receiverTraffic(options{}, "")
	if err != nil || got.WebhookFromNamespaces != nil || got.WebhookFromPods != nil ||
		got.MetricsFromNamespaces == nil || len(got.MetricsFromNamespaces.MatchLabels) != 0 {
		t.Errorf("receiverTraffic(empty) = %+v, %v", got, err)
	}

	for _, tc := range []struct {
		o    options
		flag string
	}{
		{options{webhookFromNamespaces: "team in (a"}, "--receiver-webhook-from-namespaces"},
		{options{webhookFromPods: "app!=x"}, "--receiver-webhook-from-pods"},
		{options{metricsFromNamespaces: "bad key=x"}, "--receiver-metrics-from-namespaces"},
		{options{metricsFromPods: "a=b=c"}, "--receiver-metrics-from-pods"},
		{options{managerPodSelector: "app=" + strings.Repeat("x", 64)}, "--manager-pod-selector"},
	} {
		_, err := receiverTraffic(tc.o, "")
		if err == nil || !strings.Contains(err.Error(), tc.flag) || !strings.Contains(err.Error(), "is not a label selector") {
			t.Errorf("options %+v: error %v, want one naming %s", tc.o, err, tc.flag)
		}
	}
}

// TestBadFlagsExitNonZero runs the manager's main with each bad flag: it must exit 1 with a
// message naming the flag, before it looks for a cluster (KUBECONFIG points nowhere).
func TestBadFlagsExitNonZero(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"--receiver-webhook-from-namespaces=team in (a", "--receiver-webhook-from-namespaces"},
		{"--receiver-metrics-from-namespaces=!!", "--receiver-metrics-from-namespaces"},
		{"--watch-namespaces=Clinics", "--watch-namespaces"},
		{"--leader-election-renew-deadline=20s", "--leader-election-lease-duration (15s) must be longer"},
		{"--leader-election-retry-period=9s", "--leader-election-retry-period (9s)"},
		{"--leader-election-lease-duration=0s", "must be positive"},
		{"--payout-check-interval=0s", "--payout-check-interval must be positive"},
		{"--anomaly-check-interval=0s", "--anomaly-check-interval must be positive"},
		{"--first-status-hold=-1s", "--first-status-hold must not be negative"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], tc.arg, "--health-probe-bind-address=0")
			cmd.Env = append(os.Environ(), runMainEnv+"=1", "KUBECONFIG="+t.TempDir()+"/none", "KUBERNETES_SERVICE_HOST=")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1; output:\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("output does not name %s:\n%s", tc.want, out.String())
			}
		})
	}
}
