{{/* Names and labels shared by every object of the chart. */}}
{{- define "batchhub.fullname" -}}
{{- printf "%s-batchhub" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "batchhub.labels" -}}
app.kubernetes.io/name: batchhub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "batchhub.hubSelector" -}}
app.kubernetes.io/name: batchhub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: hub
{{- end -}}

{{/* KubeSpawner labels single-user pods with component=singleuser-server. */}}
{{- define "batchhub.singleuserSelector" -}}
component: singleuser-server
{{- end -}}
