{{/* Names ---------------------------------------------------------------------------------------------------- */}}

{{- define "gce.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* `<release>-<chart>`, or the release name alone when it already contains the chart name. */}}
{{- define "gce.fullname" -}}
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

{{- define "gce.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "gce.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gce.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gce.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels ---------------------------------------------------------------------------------------------------
     Selector labels never change across upgrades (a Deployment's selector is immutable); everything else may. */}}

{{- define "gce.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gce.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gce.labels" -}}
helm.sh/chart: {{ include "gce.chart" . }}
{{ include "gce.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: exporter
app.kubernetes.io/part-of: genesys-cloud-exporter
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* metadata.annotations with commonAnnotations merged into `extra` (a dict); prints nothing when both are empty. */}}
{{- define "gce.annotations" -}}
{{- $all := merge (deepCopy (.extra | default dict)) (deepCopy (.root.Values.commonAnnotations | default dict)) }}
{{- with $all }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Workload ------------------------------------------------------------------------------------------------- */}}

{{- define "gce.shards" -}}
{{- int .Values.sharding.shards }}
{{- end }}

{{- define "gce.sharded" -}}
{{- if gt (int .Values.sharding.shards) 1 }}true{{ end }}
{{- end }}

{{- define "gce.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" .Values.image.registry $repo }}{{ end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The credentials Secret's name and keys: the user's existingSecret, or the one the chart creates; empty when
     neither is configured (the exporter then refuses to start and says so, and NOTES.txt warns). */}}
{{- define "gce.secretName" -}}
{{- if (.Values.existingSecret | default dict).name }}
{{- (.Values.existingSecret | default dict).name }}
{{- else if or .Values.clientId .Values.clientSecret }}
{{- include "gce.fullname" . }}
{{- end }}
{{- end }}

{{- define "gce.clientIdKey" -}}
{{- if (.Values.existingSecret | default dict).name }}{{ (.Values.existingSecret | default dict).clientIdKey | default "client-id" }}{{ else }}client-id{{ end }}
{{- end }}

{{- define "gce.clientSecretKey" -}}
{{- if (.Values.existingSecret | default dict).name }}{{ (.Values.existingSecret | default dict).clientSecretKey | default "client-secret" }}{{ else }}client-secret{{ end }}
{{- end }}

{{/* The exporter's config file: values.config as YAML. When sharded and notifications.max_channels is unset, each
     shard gets an equal part of the 20 channels Genesys allows per OAuth client, so shards never evict each
     other's channels. */}}
{{- define "gce.configYaml" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- if include "gce.sharded" . }}
{{- $n := get $cfg "notifications" | default dict }}
{{- if not (get $n "max_channels") }}
{{- $per := max 1 (div 20 (int .Values.sharding.shards)) }}
{{- $_ := set $n "max_channels" $per }}
{{- $_ := set $cfg "notifications" $n }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Prometheus Operator objects: "true"/"false"/"auto" → "true" or "". */}}
{{- define "gce.operatorEnabled" -}}
{{- $v := .value | toString }}
{{- if eq $v "true" }}true
{{- else if eq $v "auto" }}{{ if .root.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" .kind) }}true{{ end }}
{{- end }}
{{- end }}

{{- define "gce.podMonitorEnabled" -}}
{{- include "gce.operatorEnabled" (dict "root" . "value" .Values.podMonitor.enabled "kind" "PodMonitor") }}
{{- end }}

{{/* A ServiceMonitor and a PodMonitor on the same pods would scrape everything twice: the PodMonitor wins. */}}
{{- define "gce.serviceMonitorEnabled" -}}
{{- if not (include "gce.podMonitorEnabled" .) }}
{{- include "gce.operatorEnabled" (dict "root" . "value" .Values.serviceMonitor.enabled "kind" "ServiceMonitor") }}
{{- end }}
{{- end }}

{{- define "gce.prometheusRuleEnabled" -}}
{{- include "gce.operatorEnabled" (dict "root" . "value" .Values.prometheusRule.enabled "kind" "PrometheusRule") }}
{{- end }}

{{/* Fields shared by the ServiceMonitor endpoint and the PodMonitor podMetricsEndpoint. */}}
{{- define "gce.scrapeEndpoint" -}}
path: {{ .Values.telemetryPath }}
{{- with .monitor.scheme }}
scheme: {{ . }}
{{- end }}
{{- with .monitor.interval }}
interval: {{ . }}
{{- end }}
{{- with .monitor.scrapeTimeout }}
scrapeTimeout: {{ . }}
{{- end }}
{{- if .monitor.honorLabels }}
honorLabels: true
{{- end }}
{{- with .monitor.tlsConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .monitor.basicAuth }}
basicAuth:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .monitor.relabelings }}
relabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .monitor.metricRelabelings }}
metricRelabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* A Kubernetes object name from a file's base name: lower case, [a-z0-9-] only. */}}
{{- define "gce.fileObjectName" -}}
{{- $base := .path | base | trimSuffix (ext .path) | lower }}
{{- $base = regexReplaceAll "[^a-z0-9-]+" $base "-" | trimAll "-" }}
{{- printf "%s-%s" (include "gce.fullname" .root) $base | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "true" unless config.web.metrics_enabled is false (null or absent keep the exporter's default: on). */}}
{{- define "gce.metricsEnabled" -}}
{{- if ne (toString (dig "web" "metrics_enabled" true (.Values.config | default dict))) "false" }}true{{ end }}
{{- end }}
