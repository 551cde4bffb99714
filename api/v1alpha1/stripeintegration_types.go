package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode is the Stripe environment an integration talks to.
// +kubebuilder:validation:Enum=Test;Live
type Mode string

const (
	// ModeTest uses Stripe test-mode keys (sk_test_/rk_test_, pk_test_); no real money moves.
	ModeTest Mode = "Test"
	// ModeLive uses live-mode keys (sk_live_/rk_live_, pk_live_); real payments.
	ModeLive Mode = "Live"
)

// Default key names inside the credentials Secret.
const (
	DefaultPublishableKeyKey = "publishableKey"
	DefaultSecretKeyKey      = "secretKey"
)

// DefaultEnabledEvents are the payment events a clinic's system of record needs.
// Keep in sync with the +kubebuilder:default marker on WebhookSpec.EnabledEvents.
var DefaultEnabledEvents = []string{
	"payment_intent.succeeded",
	"payment_intent.payment_failed",
	"charge.succeeded",
	"charge.refunded",
	"invoice.payment_succeeded",
	"customer.created",
	"customer.updated",
}

// StripeIntegrationSpec is the desired connection of one clinic to Stripe in one mode.
// +kubebuilder:validation:XValidation:rule="!has(self.webhook) || !(has(self.webhook.baseURL) && has(self.webhook.url))",message="set webhook.baseURL or webhook.url, not both"
// +kubebuilder:validation:XValidation:rule="self.mode != 'Live' || !has(self.webhook) || ((!has(self.webhook.baseURL) || self.webhook.baseURL.startsWith('https://')) && (!has(self.webhook.url) || self.webhook.url.startsWith('https://')))",message="Live mode requires an https webhook URL"
// +kubebuilder:validation:XValidation:rule="!has(self.webhook) || !has(self.webhook.url) || self.webhook.url.endsWith('/' + self.clinicID)",message="webhook.url must end with /<clinicID>"
type StripeIntegrationSpec struct {
	// clinicID identifies the clinic in webhook paths (/stripe/webhook/<clinicID> in Live mode,
	// /stripe/webhook-test/<clinicID> in Test mode) and Stripe metadata. A DNS-1123 label; immutable once set, because Stripe and the clinic's system of
	// record key their data on it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="clinicID is immutable"
	ClinicID string `json:"clinicID"`

	// mode is the Stripe environment: Test or Live. Both keys in the Secret must be of this mode.
	// Immutable: promote a clinic to Live with a second StripeIntegration, so the Test one's
	// endpoint is removed by deleting it rather than left behind in Stripe's test mode.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="mode is immutable: create a second StripeIntegration for Live and delete the Test one"
	Mode Mode `json:"mode"`

	// credentialsSecretRef names the Secret, in the same namespace, that holds the clinic's
	// publishable key and secret (sk_) or restricted (rk_) key. Only admins should be able to read it.
	// +required
	CredentialsSecretRef CredentialsSecretRef `json:"credentialsSecretRef"`

	// invoiceFooterDisclaimer is the non-secret text the clinic prints in invoice footers.
	// It is visible to everyone who can read this object.
	// +optional
	// +kubebuilder:validation:MaxLength=5000
	InvoiceFooterDisclaimer string `json:"invoiceFooterDisclaimer,omitempty"`

	// webhook configures the Stripe webhook endpoint registered for the clinic. When omitted, the
	// operator's --webhook-base-url is used with the default events.
	// +optional
	Webhook *WebhookSpec `json:"webhook,omitempty"`

	// receiver configures the per-clinic webhook receiver that verifies and relays Stripe events.
	// +optional
	Receiver *ReceiverSpec `json:"receiver,omitempty"`

	// suspend stops all Stripe API calls for this integration and leaves what exists in Stripe as is.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// finance opts the clinic into payout reconciliation and anomaly flags (docs/finance.md).
	// +optional
	Finance *FinanceSpec `json:"finance,omitempty"`
}

// CredentialsSecretRef points at the Secret with the clinic's Stripe keys.
type CredentialsSecretRef struct {
	// name of the Secret in the StripeIntegration's namespace. A Secret name (DNS subdomain): a
	// reference to another namespace such as "ns/keys" is refused.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// publishableKeyKey is the data key holding the publishable key (pk_test_… or pk_live_…).
	// +optional
	// +kubebuilder:default=publishableKey
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	PublishableKeyKey string `json:"publishableKeyKey,omitempty"`

	// secretKeyKey is the data key holding the secret key (sk_…) or restricted key (rk_…).
	// +optional
	// +kubebuilder:default=secretKey
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretKeyKey string `json:"secretKeyKey,omitempty"`
}

// WebhookSpec describes the clinic's Stripe webhook endpoint.
type WebhookSpec struct {
	// baseURL is the public base URL of the receivers; the endpoint URL becomes
	// <baseURL>/stripe/webhook/<clinicID> in Live mode and <baseURL>/stripe/webhook-test/<clinicID>
	// in Test mode. Mutually exclusive with url. https required in Live mode. No user info, no fragment.
	// +optional
	// +kubebuilder:validation:MaxLength=2000
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (self.startsWith('https://') || self.startsWith('http://'))",message="baseURL must be an absolute http(s) URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')",message="baseURL must not carry user info (user:password@): credentials never go in a URL",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="baseURL must not have a fragment (#...)"
	BaseURL string `json:"baseURL,omitempty"`

	// url is the full endpoint URL, for setups that route differently; it must end with
	// /<clinicID>. Mutually exclusive with baseURL. https required in Live mode. No user info, no
	// fragment. Two StripeIntegrations with one URL conflict: the later one registers nothing.
	// +optional
	// +kubebuilder:validation:MaxLength=2000
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (self.startsWith('https://') || self.startsWith('http://'))",message="url must be an absolute http(s) URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')",message="url must not carry user info (user:password@): credentials never go in a URL",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="url must not have a fragment (#...)"
	URL string `json:"url,omitempty"`

	// enabledEvents are the Stripe event types sent to the endpoint.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:Pattern=`^(\*|[a-z_]+(\.[a-z_]+)+)$`
	// +kubebuilder:validation:items:MaxLength=100
	// +kubebuilder:default={"payment_intent.succeeded","payment_intent.payment_failed","charge.succeeded","charge.refunded","invoice.payment_succeeded","customer.created","customer.updated"}
	EnabledEvents []string `json:"enabledEvents,omitempty"`

	// ingress, when set, makes the operator create an Ingress routing the clinic's webhook path
	// (/stripe/webhook/<clinicID> in Live mode, /stripe/webhook-test/<clinicID> in Test mode) on
	// host to the receiver Service.
	// +optional
	Ingress *IngressSpec `json:"ingress,omitempty"`
}

// IngressSpec describes the Ingress in front of the clinic's receiver.
type IngressSpec struct {
	// host is the public host name Stripe posts to (the host of the webhook URL).
	// +required
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Host string `json:"host"`

	// className is the IngressClass to use; the cluster default when omitted.
	// +optional
	ClassName *string `json:"className,omitempty"`

	// tlsSecretName names a TLS Secret for host; omit when TLS terminates elsewhere.
	// +optional
	TLSSecretName string `json:"tlsSecretName,omitempty"`

	// annotations are added to the Ingress, e.g. for the ingress controller or cert-manager.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ReceiverSpec configures the clinic's webhook receiver Deployment.
type ReceiverSpec struct {
	// replicas of the receiver Deployment. When unset: 2 in Live mode, with a
	// PodDisruptionBudget that lets voluntary disruptions take one pod at a time, and 1 in Test
	// mode (Stripe retries failed deliveries, so a restart delays events but loses none). Any
	// value of 2 or more gets the PodDisruptionBudget.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=20
	Replicas *int32 `json:"replicas,omitempty"`

	// resources of the receiver container. When omitted: requests and limits sized from the
	// receiver's measured use (docs/benchmarks.md), and GOMEMLIMIT at 90% of the memory limit.
	// When set, GOMEMLIMIT follows its memory limit, if any.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// forward names where verified events are relayed. With no target the receiver
	// acknowledges verified events and logs them, which suits a first connection.
	// +optional
	Forward *ForwardSpec `json:"forward,omitempty"`
}

// ForwardSpec lists the clinic's systems of record.
type ForwardSpec struct {
	// http relays a compact JSON envelope per event to the clinic's HTTP endpoint.
	// +optional
	HTTP *HTTPTarget `json:"http,omitempty"`

	// fhir writes FHIR R4 resources (PaymentNotice and friends) to the clinic's FHIR server.
	// +optional
	FHIR *FHIRTarget `json:"fhir,omitempty"`
}

// HTTPTarget is a plain HTTP system of record.
type HTTPTarget struct {
	// url receives a POST per event. No user info (use signingKeySecretRef), no fragment.
	// +required
	// +kubebuilder:validation:MaxLength=2000
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (self.startsWith('https://') || self.startsWith('http://'))",message="url must be an absolute http(s) URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')",message="url must not carry user info (user:password@): credentials never go in a URL",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="url must not have a fragment (#...)"
	URL string `json:"url"`

	// signingKeySecretRef selects the key used to HMAC-sign each relayed envelope so the clinic
	// can verify it came from its receiver.
	// +optional
	SigningKeySecretRef *corev1.SecretKeySelector `json:"signingKeySecretRef,omitempty"`
}

// FHIRTarget is a FHIR R4 server.
type FHIRTarget struct {
	// baseURL of the FHIR R4 REST API. No user info (use tokenSecretRef), no fragment.
	// +required
	// +kubebuilder:validation:MaxLength=2000
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (self.startsWith('https://') || self.startsWith('http://'))",message="baseURL must be an absolute http(s) URL"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*@')",message="baseURL must not carry user info (user:password@): credentials never go in a URL",reason="FieldValueForbidden"
	// +kubebuilder:validation:XValidation:rule="!self.contains('#')",message="baseURL must not have a fragment (#...)"
	BaseURL string `json:"baseURL"`

	// tokenSecretRef selects the bearer token for the FHIR server.
	// +optional
	TokenSecretRef *corev1.SecretKeySelector `json:"tokenSecretRef,omitempty"`

	// patientMetadataKey is the Stripe metadata key holding the FHIR Patient id.
	// +optional
	// +kubebuilder:default=patient_id
	// +kubebuilder:validation:MaxLength=40
	PatientMetadataKey string `json:"patientMetadataKey,omitempty"`

	// claimMetadataKey is the Stripe metadata key holding the FHIR Claim id.
	// +optional
	// +kubebuilder:default=claim_id
	// +kubebuilder:validation:MaxLength=40
	ClaimMetadataKey string `json:"claimMetadataKey,omitempty"`

	// invoiceMetadataKey is the Stripe metadata key holding the FHIR Invoice id.
	// +optional
	// +kubebuilder:default=invoice_id
	// +kubebuilder:validation:MaxLength=40
	InvoiceMetadataKey string `json:"invoiceMetadataKey,omitempty"`
}

// StripeIntegrationStatus is the observed state of the clinic's Stripe connection.
type StripeIntegrationStatus struct {
	// conditions: KeysValid, Authenticated, WebhookEndpointReady, ReceiverReady and the summary Connected.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation last reconciled without a transient error.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// mode of the keys in use, as parsed from their prefixes.
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// accountID is the Stripe account (acct_…) the key belongs to, when the key may read it.
	// Restricted keys often cannot, and then this stays empty.
	// +optional
	AccountID string `json:"accountID,omitempty"`

	// webhookEndpointID is the Stripe webhook endpoint (we_…) registered for the clinic.
	// +optional
	WebhookEndpointID string `json:"webhookEndpointID,omitempty"`

	// webhookURL is the URL registered with Stripe.
	// +optional
	WebhookURL string `json:"webhookURL,omitempty"`

	// signingSecretName is the Secret, owned by this object, that holds the endpoint's signing
	// secret (data key "signingSecret"). The receiver mounts it; Stripe shows the secret only once.
	// +optional
	SigningSecretName string `json:"signingSecretName,omitempty"`

	// manualCleanup lists Stripe webhook endpoints this integration created that the operator could
	// not remove, e.g. on a previous account whose key is no longer available. Remove them in the
	// Stripe dashboard; they receive events nobody verifies.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	ManualCleanup []string `json:"manualCleanup,omitempty"`

	// lastProbeTime is when the Stripe probe last produced a different outcome (or ran with new
	// keys). It does not move on every resync; probe freshness is a metric.
	// +optional
	LastProbeTime *metav1.Time `json:"lastProbeTime,omitempty"`

	// replay reports the last replay of Stripe's event log to the receiver.
	// +optional
	Replay *ReplayStatus `json:"replay,omitempty"`

	// keyFingerprint is a non-reversible fingerprint (truncated SHA-256) of the keys Stripe last
	// accepted, so admins can tell whether a rotation was picked up without reading the Secret.
	// +optional
	KeyFingerprint string `json:"keyFingerprint,omitempty"`

	// finance reports payout reconciliation and anomaly detection, when spec.finance enables them.
	// +optional
	Finance *FinanceStatus `json:"finance,omitempty"`
}

// ReplayPhase is the state of a replay request.
// +kubebuilder:validation:Enum=Running;Succeeded;Failed
type ReplayPhase string

const (
	// ReplayRunning: the replay goes on in bounded chunks across reconcile passes; resumeAfter
	// says how far it got, so a restarted operator continues there.
	ReplayRunning ReplayPhase = "Running"
	// ReplaySucceeded: every listed event was accepted by the receiver.
	ReplaySucceeded ReplayPhase = "Succeeded"
	// ReplayFailed: the request was invalid, the events could not be listed, or some deliveries failed.
	ReplayFailed ReplayPhase = "Failed"
)

// ReplayStatus reports the last replay request (annotation payments.clinicpay.dev/replay-since).
type ReplayStatus struct {
	// since is the annotation value this status answers; each value runs once.
	// +required
	Since string `json:"since"`

	// phase is Running until every event of the range was handed to the receiver, then the
	// outcome.
	// +required
	Phase ReplayPhase `json:"phase"`

	// delivered counts events the receiver accepted so far (duplicates are accepted and dropped there).
	// +optional
	Delivered int32 `json:"delivered,omitempty"`

	// failed counts events the receiver did not accept so far.
	// +optional
	Failed int32 `json:"failed,omitempty"`

	// until is the end of the replayed range, fixed when the replay starts: events created from
	// then on are Stripe's own deliveries.
	// +optional
	Until *metav1.Time `json:"until,omitempty"`

	// resumeAfter is the replay's cursor while it runs: every event created before it was
	// handed to the receiver (delivered or counted failed); the next pass lists from there.
	// +optional
	ResumeAfter *metav1.Time `json:"resumeAfter,omitempty"`

	// oldestFailed is the creation time of the oldest event the receiver did not accept: a new
	// request from this time re-sends it.
	// +optional
	OldestFailed *metav1.Time `json:"oldestFailed,omitempty"`

	// message gives the progress while the replay runs, then explains the outcome.
	// +optional
	Message string `json:"message,omitempty"`

	// completionTime is when the replay finished; unset while it runs.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// StripeIntegration connects one clinic to Stripe in one mode (Test or Live).
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=si,categories=clinicpay
// +kubebuilder:printcolumn:name="Clinic",type=string,JSONPath=`.spec.clinicID`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Connected",type=string,JSONPath=`.status.conditions[?(@.type=="Connected")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Connected")].reason`
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.webhookEndpointID`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StripeIntegration struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired connection.
	// +required
	Spec StripeIntegrationSpec `json:"spec"`

	// status is the observed connection.
	// +optional
	Status StripeIntegrationStatus `json:"status,omitempty"`
}

// StripeIntegrationList contains a list of StripeIntegration.
// +kubebuilder:object:root=true
type StripeIntegrationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StripeIntegration `json:"items"`
}
