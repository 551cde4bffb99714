package controller

import (
	"net/url"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	netv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// DefaultMetricsFromNamespaces is who may scrape the receivers' metrics when nothing else is
// configured: namespaces labelled metrics=enabled, as kubebuilder's config/network-policy does.
const DefaultMetricsFromNamespaces = "metrics=enabled"

// dnsPort is where the receiver resolves its forward targets' host names.
const dnsPort = 53

// ReceiverTraffic says which peers the receivers' NetworkPolicy admits. The zero value admits the
// webhook port from anywhere (the operator cannot guess the ingress controller) and the metrics
// port from DefaultMetricsFromNamespaces.
type ReceiverTraffic struct {
	// WebhookFromNamespaces and WebhookFromPods select the ingress controller's pods. Both nil
	// admits the webhook port from anywhere; pods without namespaces match in every namespace.
	WebhookFromNamespaces, WebhookFromPods *metav1.LabelSelector
	// MetricsFromNamespaces and MetricsFromPods select the scrapers; nil namespaces means
	// DefaultMetricsFromNamespaces, nil pods every pod there.
	MetricsFromNamespaces, MetricsFromPods *metav1.LabelSelector
	// ManagerNamespace and ManagerPods select the operator's own pods, which re-deliver
	// replays to the webhook port (DefaultReceiverURL). An empty namespace leaves them out.
	ManagerNamespace string
	ManagerPods      *metav1.LabelSelector
}

// webhookPeers are the sources admitted to the webhook port; nil admits every source.
func (t ReceiverTraffic) webhookPeers() []*netv1ac.NetworkPolicyPeerApplyConfiguration {
	if t.WebhookFromNamespaces == nil && t.WebhookFromPods == nil {
		return nil
	}
	peers := []*netv1ac.NetworkPolicyPeerApplyConfiguration{peer(orAll(t.WebhookFromNamespaces), t.WebhookFromPods)}
	if t.ManagerNamespace != "" {
		own := &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: t.ManagerNamespace}}
		peers = append(peers, peer(own, t.ManagerPods))
	}
	return peers
}

// metricsPeer is the only source admitted to the metrics (ops) port.
func (t ReceiverTraffic) metricsPeer() *netv1ac.NetworkPolicyPeerApplyConfiguration {
	ns := t.MetricsFromNamespaces
	if ns == nil {
		ns = &metav1.LabelSelector{MatchLabels: map[string]string{"metrics": "enabled"}}
	}
	return peer(ns, t.MetricsFromPods)
}

// orAll turns "no namespace selector" into "every namespace": a peer with only a pod selector
// would otherwise match pods in the receiver's own namespace alone.
func orAll(s *metav1.LabelSelector) *metav1.LabelSelector {
	if s == nil {
		return &metav1.LabelSelector{}
	}
	return s
}

func peer(namespaces, pods *metav1.LabelSelector) *netv1ac.NetworkPolicyPeerApplyConfiguration {
	p := netv1ac.NetworkPolicyPeer().WithNamespaceSelector(selectorApply(namespaces))
	if pods != nil {
		p.WithPodSelector(selectorApply(pods))
	}
	return p
}

// selectorApply copies a selector, leaving empty fields unset so that what the apiserver
// returns (and applyIfChanged extracts) compares equal to it.
func selectorApply(s *metav1.LabelSelector) *metav1ac.LabelSelectorApplyConfiguration {
	out := metav1ac.LabelSelector()
	if len(s.MatchLabels) > 0 {
		out.WithMatchLabels(s.MatchLabels)
	}
	for _, e := range s.MatchExpressions {
		req := metav1ac.LabelSelectorRequirement().WithKey(e.Key).WithOperator(e.Operator)
		if len(e.Values) > 0 {
			req.WithValues(e.Values...)
		}
		out.WithMatchExpressions(req)
	}
	return out
}

// forwardPorts are the TCP ports of the integration's forward targets, sorted and distinct: an
// explicit port, else 443 for https and 80 for http. Unparsable URLs add nothing (the CRD
// admits only http(s) URLs; the receiver could not reach such a target anyway).
func forwardPorts(si *paymentsv1alpha1.StripeIntegration) []int32 {
	fwd := forwardSpec(si)
	var urls []string
	if fwd.HTTP != nil {
		urls = append(urls, fwd.HTTP.URL)
	}
	if fwd.FHIR != nil {
		urls = append(urls, fwd.FHIR.BaseURL)
	}
	var ports []int32
	for _, raw := range urls {
		if p := urlPort(raw); p > 0 && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	slices.Sort(ports)
	return ports
}

// urlPort is the TCP port a URL connects to; 0 when there is none.
func urlPort(raw string) int32 {
	u, err := url.Parse(raw)
	if err != nil {
		return 0
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || n < 1 || n > 65535 {
			return 0
		}
		return int32(n)
	}
	n, _ := strconv.ParseInt(defaultPort(u.Scheme), 10, 32) // 0 for other schemes
	return int32(n)
}
