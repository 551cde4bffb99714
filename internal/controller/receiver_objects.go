package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	netv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	paymentsv1alpha1 "github.com/clinicpay/stripe-operator/api/v1alpha1"
)

// Receiver ports and mount paths; cmd/receiver's flags take these values.
const (
	webhookPort       = 8080
	opsPort           = 9090
	signingMountDir   = "/var/run/stripe-webhook"
	httpKeyMountDir   = "/var/run/clinicpay/http-signing-key"
	fhirTokenMountDir = "/var/run/clinicpay/fhir-token"

	// LabelManagedBy selects everything the operator creates; the manager caches only those.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	labelComponent = "app.kubernetes.io/component"
	labelInstance  = "app.kubernetes.io/instance"
	labelClinicID  = "payments.clinicpay.dev/clinic-id"
)

// receiverName names the Deployment, Service, NetworkPolicy and Ingress of an integration: a
// DNS-1035 label (Service names must start with a letter and hold no dot). Names that fit and
// have no dot keep the plain form, so upgrades find their objects; others get a hash of the name.
func receiverName(si *paymentsv1alpha1.StripeIntegration) string {
	const prefix = "stripe-receiver-"
	if len(prefix)+len(si.Name) <= 63 && !strings.Contains(si.Name, ".") {
		return prefix + si.Name
	}
	base := strings.ReplaceAll(si.Name, ".", "-")
	return prefix + base[:min(len(base), 63-len(prefix)-9)] + "-" + shortHash(si.Name)
}

// legacyReceiverName is what receiverName returned before dotted names were sanitised: a
// Deployment (a DNS subdomain) may exist under it, while its Service never could.
func legacyReceiverName(si *paymentsv1alpha1.StripeIntegration) string {
	return "stripe-receiver-" + si.Name
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// labelValue fits an object name into a label value (at most 63 characters): names that fit are
// kept as they are (dots are allowed), longer ones are cut and suffixed with a hash of the name.
func labelValue(name string) string {
	if len(name) <= 63 {
		return name
	}
	return name[:54] + "-" + shortHash(name)
}

// receiverSelector are the labels the Deployment selects its pods by (immutable once created).
func receiverSelector(si *paymentsv1alpha1.StripeIntegration) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name": "stripe-receiver",
		labelInstance:            labelValue(si.Name),
	}
}

func receiverLabels(si *paymentsv1alpha1.StripeIntegration) map[string]string {
	l := receiverSelector(si)
	l[LabelManagedBy] = managedByValue
	l[labelComponent] = "webhook-receiver"
	l[labelClinicID] = si.Spec.ClinicID
	return l
}

func ownerRefApply(si *paymentsv1alpha1.StripeIntegration) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(paymentsv1alpha1.GroupVersion.String()).WithKind("StripeIntegration").
		WithName(si.Name).WithUID(si.UID).WithController(true).WithBlockOwnerDeletion(true)
}

// receiverArgs are cmd/receiver's flags for this integration.
func receiverArgs(si *paymentsv1alpha1.StripeIntegration) []string {
	args := []string{
		"--clinic-id=" + si.Spec.ClinicID,
		"--mode=" + string(si.Spec.Mode),
		"--signing-secret-file=" + signingMountDir + "/" + paymentsv1alpha1.SigningSecretKey,
		fmt.Sprintf("--webhook-bind-address=:%d", webhookPort),
		fmt.Sprintf("--ops-bind-address=:%d", opsPort),
	}
	fwd := forwardSpec(si)
	if h := fwd.HTTP; h != nil {
		args = append(args, "--http-target-url="+h.URL)
		if h.SigningKeySecretRef != nil {
			args = append(args, "--http-signing-key-file="+httpKeyMountDir+"/key")
		}
	}
	if f := fwd.FHIR; f != nil {
		args = append(args, "--fhir-base-url="+f.BaseURL,
			"--fhir-patient-metadata-key="+orDefault(f.PatientMetadataKey, "patient_id"),
			"--fhir-claim-metadata-key="+orDefault(f.ClaimMetadataKey, "claim_id"),
			"--fhir-invoice-metadata-key="+orDefault(f.InvoiceMetadataKey, "invoice_id"))
		if f.TokenSecretRef != nil {
			args = append(args, "--fhir-token-file="+fhirTokenMountDir+"/token")
		}
	}
	return args
}

func forwardSpec(si *paymentsv1alpha1.StripeIntegration) paymentsv1alpha1.ForwardSpec {
	if si.Spec.Receiver == nil || si.Spec.Receiver.Forward == nil {
		return paymentsv1alpha1.ForwardSpec{}
	}
	return *si.Spec.Receiver.Forward
}

// receiverVolumes mounts the signing secret and the forward credentials, each a single key.
func receiverVolumes(si *paymentsv1alpha1.StripeIntegration, signingSecret string) ([]*corev1ac.VolumeApplyConfiguration,
	[]*corev1ac.VolumeMountApplyConfiguration) {
	type mount struct {
		name, secret, key, path, dir string
	}
	mounts := []mount{{"signing-secret", signingSecret, paymentsv1alpha1.SigningSecretKey, paymentsv1alpha1.SigningSecretKey, signingMountDir}}
	fwd := forwardSpec(si)
	if fwd.HTTP != nil && fwd.HTTP.SigningKeySecretRef != nil {
		mounts = append(mounts, mount{"http-signing-key", fwd.HTTP.SigningKeySecretRef.Name, fwd.HTTP.SigningKeySecretRef.Key, "key", httpKeyMountDir})
	}
	if fwd.FHIR != nil && fwd.FHIR.TokenSecretRef != nil {
		mounts = append(mounts, mount{"fhir-token", fwd.FHIR.TokenSecretRef.Name, fwd.FHIR.TokenSecretRef.Key, "token", fhirTokenMountDir})
	}
	vols := make([]*corev1ac.VolumeApplyConfiguration, 0, len(mounts))
	vms := make([]*corev1ac.VolumeMountApplyConfiguration, 0, len(mounts))
	for _, m := range mounts {
		vols = append(vols, corev1ac.Volume().WithName(m.name).WithSecret(corev1ac.SecretVolumeSource().
			WithSecretName(m.secret).WithDefaultMode(0o440).
			WithItems(corev1ac.KeyToPath().WithKey(m.key).WithPath(m.path))))
		vms = append(vms, corev1ac.VolumeMount().WithName(m.name).WithMountPath(m.dir).WithReadOnly(true))
	}
	return vols, vms
}

// Receiver defaults, sized from the receiver's measured use (`make bench`, "A clinic's cost" in
// docs/benchmarks.md). Stripe retries a delivery that fails (live mode for up to 3 days), so a
// receiver that is briefly down delays events but loses none: Test mode runs one replica; Live
// mode runs two behind a PodDisruptionBudget, so a node drain or a rollout never takes both.
const (
	defaultLiveReplicas = 2
	defaultTestReplicas = 1
	// Requests cover the busy use measured at 100 events/s (far above a clinic's real rate)
	// with headroom; the memory limit covers the RSS with the dedup memory full during a burst.
	defaultReceiverCPURequest    = "5m"
	defaultReceiverMemoryRequest = "24Mi"
	defaultReceiverMemoryLimit   = "64Mi"
	// The CPU limit keeps a flood (forged signatures cost an HMAC each) to half a core and keeps
	// the pods admissible in namespaces whose ResourceQuota covers limits.cpu; it is two orders
	// of magnitude above the measured busy use, so real traffic is never throttled.
	defaultReceiverCPULimit = "500m"
	// goMemLimitPercent of the memory limit becomes GOMEMLIMIT: the Go runtime then collects
	// harder before the kernel's OOM killer would act, and keeps the rest for non-heap memory.
	goMemLimitPercent = 90
)

// DefaultReceiverReplicas is the receiver Deployment's replicas when spec.receiver.replicas is unset.
func DefaultReceiverReplicas(mode paymentsv1alpha1.Mode) int32 {
	if mode == paymentsv1alpha1.ModeLive {
		return defaultLiveReplicas
	}
	return defaultTestReplicas
}

// DefaultReceiverResources are the receiver container's resources when spec.receiver.resources
// is unset.
func DefaultReceiverResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(defaultReceiverCPURequest),
			corev1.ResourceMemory: resource.MustParse(defaultReceiverMemoryRequest),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(defaultReceiverCPULimit),
			corev1.ResourceMemory: resource.MustParse(defaultReceiverMemoryLimit),
		},
	}
}

// GoMemLimit is the GOMEMLIMIT value for a container with these resources (whole MiB, rounded
// down), or "" when it has no memory limit.
func GoMemLimit(rr corev1.ResourceRequirements) string {
	limit, ok := rr.Limits[corev1.ResourceMemory]
	if !ok || limit.Value() <= 0 {
		return ""
	}
	return fmt.Sprintf("%dMiB", limit.Value()*goMemLimitPercent/100>>20)
}

// effectiveReceiverResources are spec.receiver.resources when set, else the defaults.
func effectiveReceiverResources(si *paymentsv1alpha1.StripeIntegration) corev1.ResourceRequirements {
	if si.Spec.Receiver != nil && si.Spec.Receiver.Resources != nil {
		return *si.Spec.Receiver.Resources
	}
	return DefaultReceiverResources()
}

func receiverResources(rr corev1.ResourceRequirements) *corev1ac.ResourceRequirementsApplyConfiguration {
	out := corev1ac.ResourceRequirements()
	if len(rr.Requests) > 0 {
		out.WithRequests(rr.Requests)
	}
	if len(rr.Limits) > 0 {
		out.WithLimits(rr.Limits)
	}
	return out
}

// receiverReplicas is spec.receiver.replicas when set, else the mode's default.
func receiverReplicas(si *paymentsv1alpha1.StripeIntegration) int32 {
	if si.Spec.Receiver != nil && si.Spec.Receiver.Replicas != nil {
		return *si.Spec.Receiver.Replicas
	}
	return DefaultReceiverReplicas(si.Spec.Mode)
}

// receiverDeployment runs cmd/receiver under the restricted Pod Security Standard, with no
// service account token and no Stripe API key.
func receiverDeployment(si *paymentsv1alpha1.StripeIntegration, image, signingSecret string) *appsv1ac.DeploymentApplyConfiguration {
	vols, vms := receiverVolumes(si, signingSecret)
	probe := func(path string) *corev1ac.ProbeApplyConfiguration {
		return corev1ac.Probe().WithPeriodSeconds(5).WithTimeoutSeconds(2).WithFailureThreshold(3).
			WithHTTPGet(corev1ac.HTTPGetAction().WithPath(path).WithPort(intstr.FromString("ops")))
	}
	resources := effectiveReceiverResources(si)
	container := corev1ac.Container().WithName("receiver").WithImage(image).
		WithCommand("/receiver").WithArgs(receiverArgs(si)...).
		WithPorts(
			corev1ac.ContainerPort().WithName("webhook").WithContainerPort(webhookPort).WithProtocol(corev1.ProtocolTCP),
			corev1ac.ContainerPort().WithName("ops").WithContainerPort(opsPort).WithProtocol(corev1.ProtocolTCP)).
		WithReadinessProbe(probe("/readyz")).WithLivenessProbe(probe("/healthz")).
		WithResources(receiverResources(resources)).
		WithVolumeMounts(vms...).
		WithSecurityContext(corev1ac.SecurityContext().
			WithAllowPrivilegeEscalation(false).WithReadOnlyRootFilesystem(true).WithRunAsNonRoot(true).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault)))
	if limit := GoMemLimit(resources); limit != "" {
		container.WithEnv(corev1ac.EnvVar().WithName("GOMEMLIMIT").WithValue(limit))
	}
	pod := corev1ac.PodSpec().
		WithAutomountServiceAccountToken(false).
		WithEnableServiceLinks(false).
		WithSecurityContext(corev1ac.PodSecurityContext().
			WithRunAsNonRoot(true).WithRunAsUser(65532).WithRunAsGroup(65532).WithFSGroup(65532).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
		WithContainers(container).
		WithVolumes(vols...).
		WithTopologySpreadConstraints(corev1ac.TopologySpreadConstraint().
			WithMaxSkew(1).WithTopologyKey("kubernetes.io/hostname").
			WithWhenUnsatisfiable(corev1.ScheduleAnyway).
			WithLabelSelector(metav1ac.LabelSelector().WithMatchLabels(receiverSelector(si))))
	return appsv1ac.Deployment(receiverName(si), si.Namespace).
		WithLabels(receiverLabels(si)).WithOwnerReferences(ownerRefApply(si)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(receiverReplicas(si)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(receiverSelector(si))).
			WithTemplate(corev1ac.PodTemplateSpec().WithLabels(receiverLabels(si)).WithSpec(pod)))
}

// receiverService is headless (no ClusterIP): nothing needs a virtual IP. Ingress and Gateway
// controllers route to the Service's endpoints, Prometheus scrapes them, and the operator's
// replays resolve <name>.<namespace>.svc, which for a headless Service gives the ready pods'
// addresses. So the apiserver allocates no ClusterIP (it does so one at a time, the largest cost
// of a new clinic's pass) and kube-proxy programs no rules for it on any node. spec.clusterIP is
// immutable: a Service an older version created with one is replaced (deleteClusterIPService).
func receiverService(si *paymentsv1alpha1.StripeIntegration) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(receiverName(si), si.Namespace).
		WithLabels(receiverLabels(si)).WithOwnerReferences(ownerRefApply(si)).
		WithSpec(corev1ac.ServiceSpec().
			WithClusterIP(corev1.ClusterIPNone).
			WithSelector(receiverSelector(si)).
			WithPorts(
				corev1ac.ServicePort().WithName("webhook").WithPort(webhookPort).WithTargetPort(intstr.FromString("webhook")).WithProtocol(corev1.ProtocolTCP),
				corev1ac.ServicePort().WithName("metrics").WithPort(opsPort).WithTargetPort(intstr.FromString("ops")).WithProtocol(corev1.ProtocolTCP)))
}

// receiverNetworkPolicy admits the webhook port from the configured ingress source and the
// operator (replays), the metrics port from the monitoring source only, and egress only to DNS
// and to the ports of the integration's forward targets: a compromised receiver can reach
// neither the apiserver nor other pods' ports.
func receiverNetworkPolicy(si *paymentsv1alpha1.StripeIntegration, traffic ReceiverTraffic) *netv1ac.NetworkPolicyApplyConfiguration {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	port := func(proto corev1.Protocol, p int32) *netv1ac.NetworkPolicyPortApplyConfiguration {
		return netv1ac.NetworkPolicyPort().WithProtocol(proto).WithPort(intstr.FromInt32(p))
	}
	webhook := netv1ac.NetworkPolicyIngressRule().WithPorts(port(tcp, webhookPort))
	if peers := traffic.webhookPeers(); peers != nil {
		webhook.WithFrom(peers...)
	}
	metricsRule := netv1ac.NetworkPolicyIngressRule().WithPorts(port(tcp, opsPort)).WithFrom(traffic.metricsPeer())
	egress := []*netv1ac.NetworkPolicyEgressRuleApplyConfiguration{
		netv1ac.NetworkPolicyEgressRule().WithPorts(port(udp, dnsPort), port(tcp, dnsPort)),
	}
	if fwd := forwardPorts(si); len(fwd) > 0 {
		targets := netv1ac.NetworkPolicyEgressRule()
		for _, p := range fwd {
			targets.WithPorts(port(tcp, p))
		}
		egress = append(egress, targets)
	}
	return netv1ac.NetworkPolicy(receiverName(si), si.Namespace).
		WithLabels(receiverLabels(si)).WithOwnerReferences(ownerRefApply(si)).
		WithSpec(netv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(receiverSelector(si))).
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress).
			WithIngress(webhook, metricsRule).
			WithEgress(egress...))
}

// receiverIngress routes exactly the clinic's webhook path to the receiver; nil when not wanted.
func receiverIngress(si *paymentsv1alpha1.StripeIntegration) *netv1ac.IngressApplyConfiguration {
	in := ingressSpec(si)
	if in == nil {
		return nil
	}
	spec := netv1ac.IngressSpec().WithRules(netv1ac.IngressRule().WithHost(in.Host).
		WithHTTP(netv1ac.HTTPIngressRuleValue().WithPaths(netv1ac.HTTPIngressPath().
			WithPath(webhookPath(si)).WithPathType(networkingv1.PathTypeExact).
			WithBackend(netv1ac.IngressBackend().WithService(netv1ac.IngressServiceBackend().
				WithName(receiverName(si)).WithPort(netv1ac.ServiceBackendPort().WithName("webhook")))))))
	if in.ClassName != nil {
		spec.WithIngressClassName(*in.ClassName)
	}
	if in.TLSSecretName != "" {
		spec.WithTLS(netv1ac.IngressTLS().WithHosts(in.Host).WithSecretName(in.TLSSecretName))
	}
	ing := netv1ac.Ingress(receiverName(si), si.Namespace).
		WithLabels(receiverLabels(si)).WithOwnerReferences(ownerRefApply(si)).WithSpec(spec)
	if len(in.Annotations) > 0 {
		ing.WithAnnotations(in.Annotations)
	}
	return ing
}
