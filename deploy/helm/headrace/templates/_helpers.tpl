{{/* Names, labels and the settings every container shares. */}}

{{- define "headrace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "headrace.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "headrace.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "headrace.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "headrace.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "headrace.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: headrace
{{- end }}

{{- define "headrace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "headrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component's objects; call with (dict "root" $ "component" "ingest"). */}}
{{- define "headrace.componentLabels" -}}
{{ include "headrace.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "headrace.componentSelectorLabels" -}}
{{ include "headrace.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "headrace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "headrace.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "headrace.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The services, each a Deployment with the same shape. */}}
{{- define "headrace.components" -}}ingest runner scheduler executor{{- end }}

{{/* One component's values: the shared defaults, overridden by its own block. */}}
{{- define "headrace.componentValues" -}}
{{- $own := index .root.Values.components .component }}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy $own)) }}
{{- end }}

{{/* Where mounted credential files live in the containers. */}}
{{- define "headrace.kafkaTlsDir" -}}/etc/headrace/kafka-tls{{- end }}
{{- define "headrace.cassandraTlsDir" -}}/etc/headrace/cassandra-tls{{- end }}

{{/*
The settings shared by every container, as HEADRACE_* variables (a map of strings). The
ConfigMap holds them for the services; the migration Job gets them inline, because as a
pre-install hook it runs before the ConfigMap exists.
*/}}
{{- define "headrace.config" -}}
{{- $k := .Values.kafka }}
{{- $c := .Values.cassandra }}
HEADRACE_KAFKA_BOOTSTRAP: {{ $k.bootstrapServers | quote }}
HEADRACE_TOPIC_PREFIX: {{ $k.topicPrefix | quote }}
HEADRACE_GROUP_PREFIX: {{ $k.groupPrefix | quote }}
HEADRACE_PARTITIONS: {{ $k.partitions | quote }}
HEADRACE_REPLICATION_FACTOR: {{ $k.replicationFactor | quote }}
HEADRACE_INTAKE_TOPICS: {{ join "," $k.intakeTopics | quote }}
HEADRACE_KAFKA_SECURITY_PROTOCOL: {{ $k.securityProtocol | quote }}
{{- if $k.sasl.mechanism }}
HEADRACE_KAFKA_SASL_MECHANISM: {{ $k.sasl.mechanism | quote }}
HEADRACE_KAFKA_SASL_USERNAME: {{ $k.sasl.username | quote }}
{{- end }}
{{- if $k.tls.secretName }}
HEADRACE_KAFKA_SSL_CAFILE: {{ printf "%s/%s" (include "headrace.kafkaTlsDir" .) $k.tls.caKey | quote }}
{{- if $k.tls.certKey }}
HEADRACE_KAFKA_SSL_CERTFILE: {{ printf "%s/%s" (include "headrace.kafkaTlsDir" .) $k.tls.certKey | quote }}
HEADRACE_KAFKA_SSL_KEYFILE: {{ printf "%s/%s" (include "headrace.kafkaTlsDir" .) $k.tls.keyKey | quote }}
{{- end }}
{{- end }}
HEADRACE_CASSANDRA_HOSTS: {{ join "," $c.hosts | quote }}
HEADRACE_CASSANDRA_PORT: {{ $c.port | quote }}
HEADRACE_KEYSPACE: {{ $c.keyspace | quote }}
HEADRACE_CASSANDRA_CONSISTENCY: {{ $c.consistency | quote }}
HEADRACE_CASSANDRA_SERIAL_CONSISTENCY: {{ $c.serialConsistency | quote }}
{{- if $c.auth.username }}
HEADRACE_CASSANDRA_USERNAME: {{ $c.auth.username | quote }}
{{- end }}
{{- if $c.tls.secretName }}
HEADRACE_CASSANDRA_SSL_CAFILE: {{ printf "%s/%s" (include "headrace.cassandraTlsDir" .) $c.tls.caKey | quote }}
{{- end }}
HEADRACE_CALL_TIMEOUT: {{ .Values.callTimeoutSeconds | quote }}
HEADRACE_RETENTION: {{ .Values.retentionSeconds | int64 | quote }}
HEADRACE_DEAD_LETTER_RETENTION: {{ .Values.deadLetterRetentionSeconds | int64 | quote }}
HEADRACE_MAX_STEPS: {{ .Values.maxSteps | int64 | quote }}
HEADRACE_REQUIRE_SIGNED_ANSWERS: {{ .Values.requireSignedAnswers | quote }}
HEADRACE_LOG_FORMAT: {{ .Values.logging.format | quote }}
HEADRACE_LOG_LEVEL: {{ .Values.logging.level | quote }}
{{- if .Values.otel.endpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ .Values.otel.endpoint | quote }}
{{- end }}
{{- end }}

{{/* The Kafka and Cassandra passwords, from the Secrets named in the values. */}}
{{- define "headrace.credentialEnv" -}}
{{- if .Values.kafka.sasl.passwordSecret.name }}
- name: HEADRACE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.passwordSecret.name }}
      key: {{ .Values.kafka.sasl.passwordSecret.key }}
{{- end }}
{{- if .Values.cassandra.auth.passwordSecret.name }}
- name: HEADRACE_CASSANDRA_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.cassandra.auth.passwordSecret.name }}
      key: {{ .Values.cassandra.auth.passwordSecret.key }}
{{- end }}
{{- end }}

{{/*
The keys a component reads, from the Secrets named in `secrets`: the ingest checks event keys,
signing keys and the dashboard token; the executor signs its calls to apps; the runner and the
scheduler need none; `helm test` sends an event and reads it back.
*/}}
{{- define "headrace.keyEnv" -}}
{{- $env := dict "eventKeys" "HEADRACE_EVENT_KEYS" "signingKey" "HEADRACE_SIGNING_KEY" "signingKeys" "HEADRACE_SIGNING_KEYS" "dashboardToken" "HEADRACE_DASHBOARD_TOKEN" }}
{{- $needs := dict "ingest" (list "eventKeys" "signingKey" "signingKeys" "dashboardToken") "executor" (list "signingKey" "signingKeys") "test" (list "eventKeys" "signingKey" "signingKeys") }}
{{- range $setting := (get $needs .component | default list) }}
{{- $ref := index $.root.Values.secrets $setting }}
{{- if $ref.name }}
- name: {{ get $env $setting }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes for the mounted TLS Secrets and the writable /tmp a read-only root needs. */}}
{{- define "headrace.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.kafka.tls.secretName }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.secretName }}
{{- end }}
{{- if .Values.cassandra.tls.secretName }}
- name: cassandra-tls
  secret:
    secretName: {{ .Values.cassandra.tls.secretName }}
{{- end }}
{{- end }}

{{- define "headrace.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.secretName }}
- name: kafka-tls
  mountPath: {{ include "headrace.kafkaTlsDir" . }}
  readOnly: true
{{- end }}
{{- if .Values.cassandra.tls.secretName }}
- name: cassandra-tls
  mountPath: {{ include "headrace.cassandraTlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
Rolls the pods when the configuration changes: the settings, and which Secrets and keys they
read (a Secret's content is not the chart's: restart the pods after rotating one).
*/}}
{{- define "headrace.configChecksum" -}}
{{- list (include "headrace.config" .) .Values.secrets .Values.kafka .Values.cassandra | toJson | sha256sum }}
{{- end }}
