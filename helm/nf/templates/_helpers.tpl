{{- define "nf.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "nf.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "nf.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The Secret holding the URI, keys and key material: the operator's or the chart's. */}}
{{- define "nf.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- include "nf.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "nf.catalogName" -}}
{{- if .Values.catalog.existingConfigMap -}}
{{- .Values.catalog.existingConfigMap -}}
{{- else -}}
{{- printf "%s-catalog" (include "nf.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "nf.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* SIGTERM arrives after the preStop pause; the NF drains requests and background work
     within shutdown_grace_s and its supervisor gives the servers 5 s more; then a margin. */}}
{{- define "nf.terminationGrace" -}}
{{- $grace := .Values.config.server.shutdown_grace_s | default 10 | ceil | int -}}
{{- add (int .Values.preStopSleepSeconds) $grace 5 5 -}}
{{- end -}}

{{/*
The host networks with their own SBI listener (config.networks[] with sbi_port), as a JSON
list of {"name": "sbi-n<i>", "port": <sbi_port>}: container, Service and NetworkPolicy
ports. Port names are numbered (a port name has at most 15 characters).
*/}}
{{- define "nf.networkListeners" -}}
{{- $out := list }}
{{- range (.Values.config.networks | default list) }}
{{- if .sbi_port }}
{{- $out = append $out (dict "name" (printf "sbi-n%d" (len $out)) "port" .sbi_port "network" .id) }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
The NF's nf.yaml: `config`, plus the `diameter:` section when diameter.enabled (its
settings from diameter.config; where it listens and its TLS files set by the chart).
*/}}
{{- define "nf.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if .Values.diameter.enabled }}
{{- $dia := deepCopy (.Values.diameter.config | default dict) }}
{{- $_ := set $dia "enabled" true }}
{{- $_ = set $dia "host" "0.0.0.0" }}
{{- $_ = set $dia "port" .Values.diameter.port }}
{{- if .Values.diameter.tls.enabled }}
{{- $_ = set $dia "tls_cert_file" "/etc/nf/secrets/diameter-tls.crt" }}
{{- $_ = set $dia "tls_key_file" "/etc/nf/secrets/diameter-tls.key" }}
{{- end }}
{{- $_ = set $config "diameter" $dia }}
{{- end }}
{{- toYaml $config }}
{{- end }}
