{{/* Names, labels and the values every template derives from the same place. */}}

{{- define "actsearch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "actsearch.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Common labels; call with (dict "ctx" $ "component" "controller"). */}}
{{- define "actsearch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: actsearch
{{ include "actsearch.selectorLabels" . }}
{{- end -}}

{{- define "actsearch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "actsearch.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "actsearch.controllerServiceAccount" -}}
{{- default (printf "%s-controller" (include "actsearch.fullname" .)) .Values.controller.serviceAccount.name -}}
{{- end -}}

{{- define "actsearch.childServiceAccount" -}}
{{- default (printf "%s-child" (include "actsearch.fullname" .)) .Values.children.serviceAccount.name -}}
{{- end -}}

{{- define "actsearch.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "actsearch.trainerImage" -}}
{{- printf "%s:%s" .Values.children.image.repository (default .Chart.AppVersion .Values.children.image.tag) -}}
{{- end -}}

{{/* The release namespace first, then the extra ones, without duplicates. */}}
{{- define "actsearch.namespaces" -}}
{{- prepend .Values.controller.extraNamespaces .Release.Namespace | uniq | toJson -}}
{{- end -}}

{{- define "actsearch.trackingUri" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://%s-mlflow.%s.svc:%d" (include "actsearch.fullname" .) .Release.Namespace (int .Values.mlflow.port) -}}
{{- else -}}
{{- .Values.tracking.uri -}}
{{- end -}}
{{- end -}}

{{- define "actsearch.s3Endpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "http://%s-minio.%s.svc:%d" (include "actsearch.fullname" .) .Release.Namespace (int .Values.minio.port) -}}
{{- else -}}
{{- .Values.s3.endpoint -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; empty when pods use an ambient identity. */}}
{{- define "actsearch.s3Secret" -}}
{{- if .Values.s3.existingSecret -}}
{{- .Values.s3.existingSecret -}}
{{- else if .Values.minio.enabled -}}
{{- printf "%s-s3" (include "actsearch.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The Secret children read S3 data sets with (read-only, never the root keys); empty: none. */}}
{{- define "actsearch.childS3Secret" -}}
{{- .Values.children.s3.existingSecret -}}
{{- end -}}

{{/* The Secret with MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD of the controller, the
     children and `helm test`; empty when MLflow asks for none. */}}
{{- define "actsearch.trackingSecret" -}}
{{- if .Values.mlflow.enabled -}}
{{- if .Values.mlflow.auth.enabled -}}
{{- default (printf "%s-mlflow-auth" (include "actsearch.fullname" .)) .Values.mlflow.auth.existingSecret -}}
{{- end -}}
{{- else -}}
{{- .Values.tracking.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* The envFrom of a pod that talks to MLflow and S3 with the chart's credentials: the
     controller and `helm test` (never a child). Call with (dict "ctx" $ "s3" true). */}}
{{- define "actsearch.credentialsEnvFrom" -}}
{{- $s3 := ternary (include "actsearch.s3Secret" .ctx) "" .s3 -}}
{{- $tracking := include "actsearch.trackingSecret" .ctx -}}
{{- range $name := compact (list $s3 $tracking) }}
- secretRef:
    name: {{ $name }}
{{- end }}
{{- end -}}

{{/* The restricted pod-security context of every container the chart runs. */}}
{{- define "actsearch.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* A password kept across upgrades: the value if given, else the one already in the Secret, else a new one. */}}
{{/* The Secret holding the key that seals results for the evaluation cache. */}}
{{- define "actsearch.trustSecret" -}}
{{- .Values.controller.trustKeySecret | default (printf "%s-trust" (include "actsearch.fullname" .)) -}}
{{- end -}}

{{- define "actsearch.password" -}}
{{- $given := index . "given" -}}
{{- if $given -}}
{{- $given -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- if and $existing (index $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Conflicting or missing options stop the install with a sentence saying what to set. */}}
{{- define "actsearch.validate" -}}
{{- $v := .Values -}}
{{- if and (not $v.mlflow.enabled) (not $v.tracking.uri) -}}
{{- fail "mlflow.enabled is false but tracking.uri is empty: set tracking.uri to your MLflow server, or enable the bundled one (mlflow.enabled=true)" -}}
{{- end -}}
{{- if and $v.mlflow.enabled $v.tracking.uri -}}
{{- fail "tracking.uri is set while mlflow.enabled is true: use either the bundled MLflow (leave tracking.uri empty) or your own (mlflow.enabled=false)" -}}
{{- end -}}
{{- if and (not $v.minio.enabled) (not $v.s3.endpoint) -}}
{{- fail "minio.enabled is false but s3.endpoint is empty: set s3.endpoint (and s3.bucket) to your object store, or enable the bundled MinIO (minio.enabled=true)" -}}
{{- end -}}
{{- if and $v.minio.enabled $v.s3.endpoint -}}
{{- fail "s3.endpoint is set while minio.enabled is true: use either the bundled MinIO (leave s3.endpoint empty) or your own store (minio.enabled=false)" -}}
{{- end -}}
{{- if $v.mlflow.enabled -}}
{{- if and (eq $v.mlflow.backendStore.type "external") (not $v.mlflow.backendStore.external.secretName) -}}
{{- fail "mlflow.backendStore.type is external but mlflow.backendStore.external.secretName is empty: name the Secret that holds the database URI" -}}
{{- end -}}
{{- if and (eq $v.mlflow.backendStore.type "sqlite") (gt (int $v.mlflow.replicas) 1) -}}
{{- fail "mlflow.replicas > 1 needs a shared database: SQLite lives on one pod's volume; set mlflow.backendStore.type to postgresql or external" -}}
{{- end -}}
{{- end -}}
{{- if and (not $v.controller.serviceAccount.create) (not $v.controller.serviceAccount.name) -}}
{{- fail "controller.serviceAccount.create is false but controller.serviceAccount.name is empty: name the existing ServiceAccount to run the controller as" -}}
{{- end -}}
{{- if and (not $v.children.serviceAccount.create) (not $v.children.serviceAccount.name) -}}
{{- fail "children.serviceAccount.create is false but children.serviceAccount.name is empty: name the existing ServiceAccount of child pods" -}}
{{- end -}}
{{- end -}}
