package controller

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	netv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// policySpec renders the apply configuration as the typed spec the apiserver would store.
func policySpec(t *testing.T, si *v1.StripeIntegration, traffic ReceiverTraffic) networkingv1.NetworkPolicySpec {
	t.Helper()
	data, err := json.Marshal(receiverNetworkPolicy(si, traffic))
	if err != nil {
		t.Fatal(err)
	}
	var np networkingv1.NetworkPolicy
	if err := json.Unmarshal(data, &np); err != nil {
		t.Fatal(err)
	}
	return np.Spec
}

type portProto struct {
	proto corev1.Protocol
	port  int32
}

func rulePorts(ports []networkingv1.NetworkPolicyPort) []portProto {
	out := make([]portProto, 0, len(ports))
	for _, p := range ports {
		out = append(out, portProto{*p.Protocol, p.Port.IntVal})
	}
	return out
}

func nsSelector(key, value string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{key: value}}
}

// TestReceiverNetworkPolicy pins who may reach a receiver and what it may reach: the webhook
// port from the configured ingress source plus the operator, the metrics port from the monitoring
// source only, and egress to DNS and its forward targets' ports only. Every case is also
// server-side dry-run applied, so the apiserver validates the policy.
func TestReceiverNetworkPolicy(t *testing.T) {
	t.Parallel()
	ingressNS := nsSelector(corev1.LabelMetadataName, "ingress-nginx")
	ingressPods := nsSelector("app.kubernetes.io/name", "ingress-nginx")
	managerPods := nsSelector("control-plane", "controller-manager")
	managerPeer := networkingv1.NetworkPolicyPeer{NamespaceSelector: nsSelector(corev1.LabelMetadataName, "stripe-operator-system"),
		PodSelector: managerPods}
	defaultMetrics := []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsSelector("metrics", "enabled")}}
	dns := []portProto{{corev1.ProtocolUDP, 53}, {corev1.ProtocolTCP, 53}}
	forward := func(httpURL, fhirURL string) func(*v1.StripeIntegration) {
		return func(si *v1.StripeIntegration) {
			si.Spec.Receiver = &v1.ReceiverSpec{Forward: &v1.ForwardSpec{}}
			if httpURL != "" {
				si.Spec.Receiver.Forward.HTTP = &v1.HTTPTarget{URL: httpURL}
			}
			if fhirURL != "" {
				si.Spec.Receiver.Forward.FHIR = &v1.FHIRTarget{BaseURL: fhirURL}
			}
		}
	}
	cases := map[string]struct {
		traffic     ReceiverTraffic
		spec        func(*v1.StripeIntegration)
		webhookFrom []networkingv1.NetworkPolicyPeer // nil: from anywhere
		metricsFrom []networkingv1.NetworkPolicyPeer
		egress      [][]portProto
	}{
		"defaults: webhook from anywhere, metrics from metrics=enabled, DNS only": {
			metricsFrom: defaultMetrics,
			egress:      [][]portProto{dns},
		},
		"ingress controller and the operator's pods": {
			traffic: ReceiverTraffic{WebhookFromNamespaces: ingressNS, WebhookFromPods: ingressPods,
				ManagerNamespace: "stripe-operator-system", ManagerPods: managerPods},
			webhookFrom: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: ingressNS, PodSelector: ingressPods}, managerPeer},
			metricsFrom: defaultMetrics,
			egress:      [][]portProto{dns},
		},
		"ingress pods in any namespace, the whole operator namespace": {
			traffic: ReceiverTraffic{WebhookFromPods: ingressPods, ManagerNamespace: "ops"},
			webhookFrom: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: ingressPods},
				{NamespaceSelector: nsSelector(corev1.LabelMetadataName, "ops")}},
			metricsFrom: defaultMetrics,
			egress:      [][]portProto{dns},
		},
		"monitoring source with expressions": {
			traffic: ReceiverTraffic{
				MetricsFromNamespaces: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team",
					Operator: metav1.LabelSelectorOpIn, Values: []string{"obs", "sre"}}}},
				MetricsFromPods: nsSelector("app", "prometheus")},
			metricsFrom: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn,
					Values: []string{"obs", "sre"}}}},
				PodSelector: nsSelector("app", "prometheus")}},
			egress: [][]portProto{dns},
		},
		"forward targets on default ports": {
			spec:        forward("https://emr.clinic.example/stripe", "http://fhir.clinic.example/r4"),
			metricsFrom: defaultMetrics,
			egress:      [][]portProto{dns, {{corev1.ProtocolTCP, 80}, {corev1.ProtocolTCP, 443}}},
		},
		"explicit ports, one shared": {
			spec:        forward("https://emr.clinic.example:8443/stripe", "https://10.0.0.7:8443/fhir"),
			metricsFrom: defaultMetrics,
			egress:      [][]portProto{dns, {{corev1.ProtocolTCP, 8443}}},
		},
		"HTTP target only": {
			spec:        forward("http://emr.internal:9000/hook", ""),
			metricsFrom: defaultMetrics,
			egress:      [][]portProto{dns, {{corev1.ProtocolTCP, 9000}}},
		},
	}
	ns := newNamespace(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			si := integration(ns, "clinic-np", uniqueClinic("clinic-np", ns), v1.ModeTest, "keys")
			si.UID = "3f0c8a4e-0000-4000-8000-000000000001"
			if tc.spec != nil {
				tc.spec(si)
			}
			spec := policySpec(t, si, tc.traffic)
			if !slices.Equal(spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
				t.Errorf("policyTypes %v, want Ingress and Egress", spec.PolicyTypes)
			}
			if !equality.Semantic.DeepEqual(spec.PodSelector.MatchLabels, receiverSelector(si)) {
				t.Errorf("podSelector %v, want the receiver's %v", spec.PodSelector, receiverSelector(si))
			}
			if len(spec.Ingress) != 2 {
				t.Fatalf("want 2 ingress rules (webhook, metrics), got %+v", spec.Ingress)
			}
			webhook, metricsRule := spec.Ingress[0], spec.Ingress[1]
			if got := rulePorts(webhook.Ports); !slices.Equal(got, []portProto{{corev1.ProtocolTCP, webhookPort}}) {
				t.Errorf("first rule's ports %v, want the webhook port only", got)
			}
			if !equality.Semantic.DeepEqual(webhook.From, tc.webhookFrom) {
				t.Errorf("webhook port admits %+v, want %+v", webhook.From, tc.webhookFrom)
			}
			if got := rulePorts(metricsRule.Ports); !slices.Equal(got, []portProto{{corev1.ProtocolTCP, opsPort}}) {
				t.Errorf("second rule's ports %v, want the metrics port only", got)
			}
			if len(metricsRule.From) == 0 || !equality.Semantic.DeepEqual(metricsRule.From, tc.metricsFrom) {
				t.Errorf("metrics port admits %+v, want %+v", metricsRule.From, tc.metricsFrom)
			}
			var egress [][]portProto
			for _, rule := range spec.Egress {
				if len(rule.To) != 0 {
					t.Errorf("egress rule restricts destinations unexpectedly: %+v", rule.To)
				}
				egress = append(egress, rulePorts(rule.Ports))
			}
			if !reflect.DeepEqual(egress, tc.egress) {
				t.Errorf("egress ports %v, want %v", egress, tc.egress)
			}
			// The apiserver validates it, and what it stores extracts back to the same apply
			// configuration, so applyIfChanged sends nothing on a resync.
			// (Apply fills its argument in from the answer: each call gets a fresh one.)
			if err := k8sClient.Apply(context.Background(), receiverNetworkPolicy(si, tc.traffic), client.ForceOwnership, client.DryRunAll,
				fieldOwner); err != nil {
				t.Fatalf("the apiserver refuses the policy: %v", err)
			}
			if err := k8sClient.Apply(context.Background(), receiverNetworkPolicy(si, tc.traffic), client.ForceOwnership, fieldOwner); err != nil {
				t.Fatal(err)
			}
			stored := &networkingv1.NetworkPolicy{}
			if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: receiverName(si)}, stored); err != nil {
				t.Fatal(err)
			}
			extracted, err := netv1ac.ExtractNetworkPolicy(stored, string(fieldOwner))
			if err != nil || !equality.Semantic.DeepEqual(extracted, receiverNetworkPolicy(si, tc.traffic)) {
				t.Errorf("the stored policy does not extract to the applied one (a resync would re-apply it): %v", err)
			}
		})
	}
}
