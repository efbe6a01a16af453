{{/*
Chart name, cut to 63 characters (the DNS label limit of Kubernetes names).
*/}}
{{- define "shepherd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: fullnameOverride, or <release>-<name> (just <release> when it already contains the name),
cut to 63 characters.
*/}}
{{- define "shepherd.fullname" -}}
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

{{/*
Chart label value: name-version.
*/}}
{{- define "shepherd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Namespace of every namespaced object.
*/}}
{{- define "shepherd.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: name and instance only, so they never change on upgrade.
*/}}
{{- define "shepherd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shepherd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "shepherd.labels" -}}
helm.sh/chart: {{ include "shepherd.chart" . }}
{{ include "shepherd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shepherd
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Name of the operator's ServiceAccount.
*/}}
{{- define "shepherd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "shepherd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Operator image reference: repository:tag (tag defaults to appVersion) or repository@digest.
*/}}
{{- define "shepherd.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Name of the webhook Service, certificate and configuration.
*/}}
{{- define "shepherd.webhookName" -}}
{{- printf "%s-webhook" (include "shepherd.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Secret holding the webhook's serving certificate (cert-manager mode).
*/}}
{{- define "shepherd.webhookSecretName" -}}
{{- printf "%s-tls" (include "shepherd.webhookName" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Where the operator reads (certManager) or writes (selfSigned) the webhook certificate.
*/}}
{{- define "shepherd.webhookCertDir" -}}
/tmp/shepherd-webhook-certs
{{- end }}

{{/*
Rewrite one generated rule for this release: drop disabled alerts (returns ""), override severity,
add labels and point runbook_url at .Values.defaults.runbookBaseUrl. Input: dict "rule" "root".
*/}}
{{- define "shepherd.rule" -}}
{{- $rule := deepCopy .rule }}
{{- $v := .root.Values }}
{{- if and $rule.alert (index $v.prometheusRules.disabled $rule.alert) }}
{{- else }}
{{- if $rule.alert }}
{{- $labels := merge (dict) (default (dict) $rule.labels) $v.prometheusRules.additionalAlertLabels }}
{{- with index $v.prometheusRules.severityOverrides $rule.alert }}
{{- $_ := set $labels "severity" . }}
{{- end }}
{{- $_ := set $rule "labels" $labels }}
{{- $annotations := default (dict) $rule.annotations }}
{{- $_ := set $annotations "runbook_url" (printf "%s/%s.md" (trimSuffix "/" $v.defaults.runbookBaseUrl) $rule.alert) }}
{{- $_ := set $rule "annotations" $annotations }}
{{- end }}
{{- toYaml (list $rule) }}
{{- end }}
{{- end }}
