{{/*
Object names follow config/default's: <fullname>-<name in config/>, so a release named
stripe-operator gets the same names as `make deploy` (stripe-operator-controller-manager, ...).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "stripe-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, else the release name when it contains the
chart name, else <release>-<chart>. Truncated to 63 characters (DNS label).
*/}}
{{- define "stripe-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the manager Deployment and its ServiceAccount. */}}
{{- define "stripe-operator.managerName" -}}
{{- printf "%s-controller-manager" (include "stripe-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of the metrics Service (a DNS-1035 label: at most 63 characters). */}}
{{- define "stripe-operator.metricsServiceName" -}}
{{- printf "%s-controller-manager-metrics-service" (include "stripe-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* chart label value: <name>-<version>. */}}
{{- define "stripe-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "stripe-operator.labels" -}}
helm.sh/chart: {{ include "stripe-operator.chart" . }}
{{ include "stripe-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that identify the release's objects; never change them (selectors are immutable). */}}
{{- define "stripe-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stripe-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels that select the manager pods (Deployment selector, Service, NetworkPolicy). */}}
{{- define "stripe-operator.managerSelectorLabels" -}}
{{ include "stripe-operator.selectorLabels" . }}
app.kubernetes.io/component: manager
{{- end }}

{{/* The manager pods' labels as a label selector string (--manager-pod-selector). */}}
{{- define "stripe-operator.managerSelectorString" -}}
{{- $labels := include "stripe-operator.managerSelectorLabels" . | fromYaml }}
{{- $pairs := list }}
{{- range $k := keys $labels | sortAlpha }}
{{- $pairs = append $pairs (printf "%s=%s" $k (get $labels $k)) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}

{{/* The manager image: repository@digest, or repository:tag with tag defaulting to appVersion. */}}
{{- define "stripe-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* The per-clinic receivers' image: receiverImage, else the manager's. */}}
{{- define "stripe-operator.receiverImage" -}}
{{- .Values.receiverImage | default (include "stripe-operator.image" .) }}
{{- end }}

{{/* Name of the metrics port, which is also its scheme. */}}
{{- define "stripe-operator.metricsPortName" -}}
{{- if .Values.metrics.secure }}https{{ else }}http{{ end }}
{{- end }}

{{/* The namespaces allowed to scrape metrics: networkPolicy.metricsNamespaceSelector, else metrics: enabled. */}}
{{- define "stripe-operator.metricsNamespaceSelector" -}}
{{- if .Values.networkPolicy.metricsNamespaceSelector }}
{{- toYaml .Values.networkPolicy.metricsNamespaceSelector }}
{{- else }}
matchLabels:
  metrics: enabled
{{- end }}
{{- end }}

{{/*
The manager's rules, for its ClusterRole or, with watchNamespaces, a Role in each watched
namespace. They MUST stay identical to config/rbac/role.yaml, which `make manifests` generates
from the +kubebuilder:rbac markers: test/manifests fails when they differ.
*/}}
{{- define "stripe-operator.managerRules" -}}
- apiGroups:
  - ""
  resources:
  - secrets
  verbs:
  - create
  - get
  - list
  - patch
  - update
  - watch
- apiGroups:
  - ""
  resources:
  - services
  verbs:
  - create
  - delete
  - get
  - list
  - patch
  - watch
- apiGroups:
  - apps
  resources:
  - deployments
  verbs:
  - create
  - delete
  - get
  - list
  - patch
  - watch
- apiGroups:
  - events.k8s.io
  resources:
  - events
  verbs:
  - create
  - patch
- apiGroups:
  - networking.k8s.io
  resources:
  - ingresses
  verbs:
  - create
  - delete
  - get
  - list
  - patch
  - watch
- apiGroups:
  - networking.k8s.io
  resources:
  - networkpolicies
  verbs:
  - create
  - get
  - list
  - patch
  - watch
- apiGroups:
  - payments.clinicpay.dev
  resources:
  - stripeintegrations
  verbs:
  - get
  - list
  - patch
  - watch
- apiGroups:
  - payments.clinicpay.dev
  resources:
  - stripeintegrations/finalizers
  verbs:
  - update
- apiGroups:
  - payments.clinicpay.dev
  resources:
  - stripeintegrations/status
  verbs:
  - patch
- apiGroups:
  - policy
  resources:
  - poddisruptionbudgets
  verbs:
  - create
  - delete
  - get
  - list
  - patch
  - watch
{{- end }}
