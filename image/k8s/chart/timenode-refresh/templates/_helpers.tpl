{{/*
Named templates an app chart includes. Each takes this chart's values map:
from this chart `.Values`, from an app chart that depends on it
`(index .Values "timenode-refresh")` (or its alias). Templates are shared
between a chart and its subcharts, so the app chart can call them directly.
*/}}

{{/*
timenode-refresh.container: the sidecar as a list item, for a pod's
containers (or initContainers when nativeSidecar is true):
  containers:
    - name: app
      ...
    {{- include "timenode-refresh.container" (index .Values "timenode-refresh") | nindent 4 }}
The security context is fixed, not a value: the image needs nothing more.
*/}}
{{- define "timenode-refresh.container" -}}
{{- include "timenode-refresh.validate" . -}}
- name: timenode-refresh
  image: {{ include "timenode-refresh.image" . | quote }}
  imagePullPolicy: {{ .image.pullPolicy | default "IfNotPresent" }}
  {{- if .nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  command: ["/timenodectl", "refresh", "--listen", "0.0.0.0:50011"]
  {{- if or .production .ed25519Only }}
  args:
    {{- if .production }}
    - --production
    {{- end }}
    {{- if .ed25519Only }}
    - --ed25519-only
    {{- end }}
  {{- end }}
  env:
    - name: AUNSORM_CLOCK_REFRESH_URL
      value: {{ required "timenode-refresh: url (the time node's https .../attestation) is required" .url | quote }}
    - name: AUNSORM_CLOCK_REFRESH_INTERVAL_SECS
      value: {{ .intervalSeconds | toString | quote }}
    - name: AUNSORM_CLOCK_MAX_AGE_SECS
      value: {{ .maxAgeSeconds | toString | quote }}
    {{- with .fingerprints }}
    - name: AUNSORM_CALIBRATION_FINGERPRINT
      value: {{ join "," . | quote }}
    {{- end }}
    - name: CREDENTIALS_DIRECTORY
      value: {{ .credentials.mountPath | quote }}
  ports:
    - name: clock-health
      containerPort: 50011
      protocol: TCP
  {{- if .probes.readiness.enabled }}
  readinessProbe:
    httpGet:
      path: /health
      port: clock-health
    periodSeconds: {{ .probes.readiness.periodSeconds }}
    failureThreshold: {{ .probes.readiness.failureThreshold }}
    timeoutSeconds: 2
  {{- end }}
  livenessProbe:
    httpGet:
      path: /metrics
      port: clock-health
    periodSeconds: {{ .probes.liveness.periodSeconds }}
    failureThreshold: {{ .probes.liveness.failureThreshold }}
    timeoutSeconds: 2
  resources:
    {{- toYaml .resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    privileged: false
    capabilities:
      drop: ["ALL"]
    seccompProfile:
      type: RuntimeDefault
  terminationMessagePolicy: FallbackToLogsOnError
  volumeMounts:
    - name: timenode-refresh-credentials
      mountPath: {{ .credentials.mountPath | quote }}
      readOnly: true
{{- end -}}

{{/*
timenode-refresh.volume: the Secret volume the container mounts, as a
list item for the pod's volumes. Only the sidecar mounts it.
*/}}
{{- define "timenode-refresh.volume" -}}
- name: timenode-refresh-credentials
  secret:
    secretName: {{ .credentials.secretName | quote }}
    defaultMode: {{ .credentials.defaultMode }}
{{- end -}}

{{/*
timenode-refresh.podLabels: the label that puts a pod under the
sidecar's NetworkPolicy (networkPolicy.podSelector's default).
*/}}
{{- define "timenode-refresh.podLabels" -}}
timenode.aunsorm/refresh-sidecar: "true"
{{- end -}}

{{/* timenode-refresh.image: repository with the digest, else the tag. */}}
{{- define "timenode-refresh.image" -}}
{{- if .image.digest -}}
{{ .image.repository }}@{{ .image.digest }}
{{- else -}}
{{ .image.repository }}:{{ .image.tag | default (include "timenode-refresh.appVersion" .) }}
{{- end -}}
{{- end -}}

{{/*
timenode-refresh.appVersion: the release the chart was made for; kept here
because the templates only see the values map, not .Chart.
*/}}
{{- define "timenode-refresh.appVersion" -}}0.2.0{{- end -}}

{{/*
timenode-refresh.nodePort: the time node's HTTPS port, from url (443 when
the URL names none), for the NetworkPolicy's egress rule.
*/}}
{{- define "timenode-refresh.nodePort" -}}
{{- $host := (urlParse (.url | default "https://unset")).host -}}
{{- regexFind ":[0-9]+$" $host | trimPrefix ":" | default "443" -}}
{{- end -}}

{{/*
timenode-refresh.validate: what the schema cannot say. fail() does not
stop `helm lint`, only installs and renders.
*/}}
{{- define "timenode-refresh.validate" -}}
{{- if and .url (not (hasPrefix "https://" .url)) -}}
{{- fail (printf "timenode-refresh: url %q: the sidecar accepts https only" .url) -}}
{{- end -}}
{{- if and .production (not .fingerprints) -}}
{{- fail "timenode-refresh: production needs fingerprints (AUNSORM_CALIBRATION_FINGERPRINT)" -}}
{{- end -}}
{{- end -}}
