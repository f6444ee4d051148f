{{/* Chart name. */}}
{{- define "breeze.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: <release>-breeze unless the release name already contains it. */}}
{{- define "breeze.fullname" -}}
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

{{- define "breeze.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "breeze.selectorLabels" -}}
app.kubernetes.io/name: {{ include "breeze.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "breeze.labels" -}}
helm.sh/chart: {{ include "breeze.chart" . }}
{{ include "breeze.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: breeze
{{- end -}}

{{- define "breeze.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "breeze.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "breeze.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding the serving pair the pods mount. */}}
{{- define "breeze.tlsSecretName" -}}
{{- if eq .Values.tls.mode "existingSecret" -}}
{{- .Values.tls.existingSecret -}}
{{- else if eq .Values.tls.mode "selfManaged" -}}
{{- default (printf "%s-tls" (include "breeze.fullname" .)) .Values.tls.selfManagedSecret -}}
{{- else -}}
{{- printf "%s-tls" (include "breeze.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "breeze.leaseNamespace" -}}
{{- default .Release.Namespace .Values.config.leaseNamespace -}}
{{- end -}}

{{/* Namespaces the admission webhooks never see: kube-system, the release namespace, extras. */}}
{{- define "breeze.webhookNamespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range (uniq (concat (list "kube-system" .Release.Namespace) .Values.webhook.excludeNamespaces)) }}
        - {{ . | quote }}
        {{- end }}
{{- end -}}

{{/* Requests by Breeze's own ServiceAccount skip the webhooks (no lock-out). */}}
{{- define "breeze.webhookMatchConditions" -}}
{{- if .Values.webhook.excludeOwnServiceAccount }}
matchConditions:
  - name: exclude-breeze-service-account
    expression: {{ printf "request.userInfo.username != 'system:serviceaccount:%s:%s'" .Release.Namespace (include "breeze.serviceAccountName" .) | quote }}
{{- end }}
{{- end -}}

{{/* clientConfig of a webhook: the Service, plus caBundle in existingSecret mode. */}}
{{- define "breeze.webhookClientConfig" -}}
clientConfig:
  service:
    name: {{ include "breeze.fullname" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: {{ .root.Values.service.port }}
  {{- if eq .root.Values.tls.mode "existingSecret" }}
  caBundle: {{ .root.Values.tls.caBundle | quote }}
  {{- end }}
{{- end -}}

{{/* Annotations of both webhook configurations. */}}
{{- define "breeze.webhookAnnotations" -}}
{{- $ann := deepCopy (default (dict) .Values.webhook.annotations) -}}
{{- if eq .Values.tls.mode "certManager" -}}
{{- $_ := set $ann "cert-manager.io/inject-ca-from" (printf "%s/%s-serving" .Release.Namespace (include "breeze.fullname" .)) -}}
{{- end -}}
{{- if $ann }}
annotations:
  {{- toYaml $ann | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The Istio networking rule shared by both webhooks. */}}
{{- define "breeze.istioRule" -}}
- apiGroups: ["networking.istio.io"]
  apiVersions: ["v1", "v1beta1", "v1alpha3"]
  resources: {{ toJson .resources }}
  operations: {{ toJson .operations }}
  scope: "Namespaced"
{{- end -}}

{{/*
Checks that need the cluster or several values at once (the schema checks each value alone).
Included once, at the top of the Deployment: a failing check fails the whole render.
*/}}
{{- define "breeze.validate" -}}
{{- if and (eq .Values.tls.mode "certManager") (not (.Capabilities.APIVersions.Has "cert-manager.io/v1")) -}}
{{- fail (printf "tls.mode=certManager, but this cluster does not serve cert-manager.io/v1 (cert-manager is not installed, or `helm template` was run without `--api-versions cert-manager.io/v1`). Install cert-manager first, or use tls.mode=selfManaged (the default: Breeze keeps its own CA and needs nothing but Kubernetes)") -}}
{{- end -}}
{{- if not .Values.protocols -}}
{{- fail "protocols must list at least one of dubbo, thrift, redis, zookeeper, kafka (the default is dubbo, thrift, redis, zookeeper)" -}}
{{- end -}}
{{- if and .Values.istiod.enabled (ne .Release.Namespace .Values.config.rootNamespace) -}}
{{- fail (printf "istiod.enabled=true needs Breeze in the mesh root namespace: istiod's API generator (Istio 1.29+, ENABLE_XDS_API_GENERATOR_AUTH, on by default) only serves callers whose identity is in the root namespace, and this release is in %q while config.rootNamespace is %q. Install the release with --namespace %s (or set config.rootNamespace to your meshConfig.rootNamespace), or turn istiod.enabled off" .Release.Namespace .Values.config.rootNamespace .Values.config.rootNamespace) -}}
{{- end -}}
{{- end -}}

{{/* istiod's ADS address: host:port, or host and the TLS port 15012. */}}
{{- define "breeze.istiodAddress" -}}
{{- $a := .Values.istiod.address -}}
{{- if regexMatch ":[0-9]+$" $a -}}
{{- $a -}}
{{- else -}}
{{- printf "%s:15012" $a -}}
{{- end -}}
{{- end -}}
