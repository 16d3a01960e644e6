{{/*
Helpers shared by every template. A "service context" is a dict:
  root   the chart's top context ($)
  name   ocr | summarizer | gateway | worker (jobs.worker, with the gateway's image)
  svc    that service's values block
  track  stable | canary          (which gateway-weighted track; ocr and summarizer)
  slot   "" | blue | green        (gateway blue/green without Argo)
*/}}

{{/* The image tag of a service context: slot tag, canary tag, then the global tag, then appVersion. */}}
{{- define "docsum.tag" -}}
{{- $root := .root -}}
{{- $tag := $root.Values.image.tag | default $root.Chart.AppVersion -}}
{{- if and (eq .track "canary") .svc.canary.image.tag -}}
{{- $tag = .svc.canary.image.tag -}}
{{- end -}}
{{- if .slot -}}
{{- $slotTag := (index .svc.blueGreen.slots .slot).tag -}}
{{- if $slotTag }}{{ $tag = $slotTag }}{{ end -}}
{{- end -}}
{{- $tag -}}
{{- end -}}

{{/* The chart's name (app.kubernetes.io/name): nameOverride, else the chart's. */}}
{{- define "docsum.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's name prefix: fullnameOverride, else the release name (when it holds the
     chart's name: release docsum → docsum-ocr), else <release>-<name>. 40 characters at most so
     that the longest Service name (<prefix>-summarizer-canary-pods) stays a 63-character DNS
     label. */}}
{{- define "docsum.fullname" -}}
{{- $name := include "docsum.name" . -}}
{{- $full := .Values.fullnameOverride -}}
{{- if not $full -}}
{{- $full = ternary .Release.Name (printf "%s-%s" .Release.Name $name) (contains $name .Release.Name) -}}
{{- end -}}
{{- $full | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name of a service context: <fullname>-<service>[-canary|-<slot>]. */}}
{{- define "docsum.componentName" -}}
{{ include "docsum.fullname" .root }}-{{ .name }}{{ if eq .track "canary" }}-canary{{ end }}{{ if .slot }}-{{ .slot }}{{ end }}
{{- end -}}

{{/* The headless Service of an ocr/summarizer track: <componentName>-pods. Its name resolves to
     the addresses of the track's ready pods, so the gateway balances, retries and breaks per pod
     (services/gateway/resolve.py); backends name it with the container's port. */}}
{{- define "docsum.podsName" -}}
{{ include "docsum.componentName" . }}-pods
{{- end -}}

{{/* A backend URL of the gateway's backends file: http://<podsName>:<containerPort>. */}}
{{- define "docsum.backendURL" -}}
{{- $svc := index .root.Values .name -}}
http://{{ include "docsum.podsName" . }}:{{ $svc.port }}
{{- end -}}

{{/* Labels that select one service's pods (immutable once a Deployment exists). */}}
{{- define "docsum.selectorLabels" -}}
app.kubernetes.io/name: {{ include "docsum.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- if has .name (list "ocr" "summarizer") }}
docsum.io/track: {{ .track | default "stable" }}
{{- end }}
{{- if .slot }}
docsum.io/slot: {{ .slot }}
{{- end }}
{{- end -}}

{{/* helm.sh/chart: the chart and its version. */}}
{{- define "docsum.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels of a service's pods: no helm.sh/chart, so a chart upgrade that changes nothing
     in the pods does not restart them. */}}
{{- define "docsum.podLabels" -}}
{{ include "docsum.selectorLabels" . }}
app.kubernetes.io/part-of: docsum
app.kubernetes.io/version: {{ include "docsum.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .root.Values.managedBy | default .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Every label of a service's objects. */}}
{{- define "docsum.labels" -}}
{{ include "docsum.podLabels" . }}
helm.sh/chart: {{ include "docsum.chart" .root }}
{{- end -}}

{{/* Labels of objects that belong to no one service (namespace, rules, policies). */}}
{{- define "docsum.commonLabels" -}}
app.kubernetes.io/name: {{ include "docsum.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ include "docsum.chart" . }}
app.kubernetes.io/part-of: docsum
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Values.managedBy | default .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The ServiceAccount of a service's pods: serviceAccount.name, else <fullname>-<service>. */}}
{{- define "docsum.serviceAccountName" -}}
{{- .svc.serviceAccount.name | default (include "docsum.componentName" (dict "root" .root "name" .name "track" "stable")) -}}
{{- end -}}

{{/* The port probes and scrapes use: `probes` (probePort) when probes.separatePort, else `http`. */}}
{{- define "docsum.probePortName" -}}
{{- ternary "probes" "http" .Values.probes.separatePort -}}
{{- end -}}

{{/* Labels that select every pod of the release. */}}
{{- define "docsum.releaseSelector" -}}
app.kubernetes.io/name: {{ include "docsum.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Environment variable prefix of a service: DOCSUM_OCR_ ... */}}
{{- define "docsum.envPrefix" -}}
DOCSUM_{{ upper .name }}_
{{- end -}}

{{/* The resources of a service context: the GPU block on GPU pods, nvidia.com/gpu added. */}}
{{- define "docsum.resources" -}}
{{- if and (eq .name "ocr") .svc.gpu.enabled -}}
{{- $r := deepCopy .svc.gpu.resources -}}
{{- $_ := set $r.limits "nvidia.com/gpu" .svc.gpu.count -}}
{{- $_ := set $r.requests "nvidia.com/gpu" .svc.gpu.count -}}
{{- toYaml $r -}}
{{- else -}}
{{- toYaml .svc.resources -}}
{{- end -}}
{{- end -}}

{{/* torch threads = the CPU limit in whole cores (at least 1) unless torchThreads is set. */}}
{{- define "docsum.torchThreads" -}}
{{- if .svc.torchThreads -}}
{{- .svc.torchThreads -}}
{{- else -}}
{{- $res := include "docsum.resources" . | fromYaml -}}
{{- $cpu := toString $res.limits.cpu -}}
{{- if hasSuffix "m" $cpu -}}
{{- max 1 (div (trimSuffix "m" $cpu | atoi) 1000) -}}
{{- else -}}
{{- max 1 (float64 $cpu | floor | int) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The service's settings ConfigMap (envFrom): DOCSUM_<SVC>_<NAME> from svc.settings. */}}
{{- define "docsum.settingsData" -}}
{{- $prefix := include "docsum.envPrefix" . -}}
{{- range $k, $v := .svc.settings }}
{{ printf "%s%s" $prefix (upper $k) }}: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/* The image of a service context: <registry>/<repository>@<digest> for the stable track when
     image.digests.<service> is set, else :<tag> (+ gpu.imageTagSuffix on GPU pods). */}}
{{- define "docsum.image" -}}
{{- $root := .root -}}
{{- $digest := index $root.Values.image.digests (ternary "gateway" .name (eq .name "worker")) | default "" -}}
{{- $base := printf "%s/%s" $root.Values.image.registry .svc.image.repository -}}
{{- if and $digest (eq .track "stable") (not .slot) -}}
{{- printf "%s@%s" $base $digest -}}
{{- else -}}
{{- $suffix := "" -}}
{{- if and (eq .name "ocr") .svc.gpu.enabled }}{{ $suffix = .svc.gpu.imageTagSuffix }}{{ end -}}
{{- printf "%s:%s%s" $base (include "docsum.tag" .) $suffix -}}
{{- end -}}
{{- end -}}

{{/* The pod template of a service context (Deployment and Rollout share it). */}}
{{- define "docsum.podTemplate" -}}
{{- $root := .root -}}
{{- $svc := .svc -}}
{{- $prefix := include "docsum.envPrefix" . -}}
{{- $gpu := and (eq .name "ocr") $svc.gpu.enabled -}}
{{- $probePort := include "docsum.probePortName" $root -}}
{{- /* The gateway (async routes) and the workers talk to Redis when jobs are on. */ -}}
{{- $jobs := and $root.Values.jobs.enabled (has .name (list "gateway" "worker")) -}}
metadata:
  labels:
    {{- include "docsum.podLabels" . | nindent 4 }}
    {{- with $svc.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/settings: {{ include "docsum.settingsData" . | sha256sum | trunc 16 }}
    {{- with $svc.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "docsum.serviceAccountName" . }}
  # No service needs the Kubernetes API.
  automountServiceAccountToken: false
  # Service links would inject DOCSUM_OCR_PORT=tcp://… into every pod: a clash with our settings.
  enableServiceLinks: false
  # Must exceed preStop + the service's drain (SHUTDOWN_GRACE_S; a worker's job: DRAIN_S) so
  # in-flight requests (the current job) finish.
  {{- $grace := int (index $svc.settings "SHUTDOWN_GRACE_S" | default 25) }}
  {{- if eq .name "worker" }}{{ $grace = max $grace (int (index $svc.settings "DRAIN_S" | default 60)) }}{{ end }}
  terminationGracePeriodSeconds: {{ add $root.Values.preStopSleepSeconds $grace 10 }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if and $gpu $svc.gpu.runtimeClassName }}
  runtimeClassName: {{ $svc.gpu.runtimeClassName }}
  {{- end }}
  {{- $nodeSelector := deepCopy $svc.nodeSelector }}
  {{- $tolerations := $svc.tolerations }}
  {{- if $gpu }}
  {{- $nodeSelector = merge $nodeSelector $svc.gpu.nodeSelector }}
  {{- $tolerations = concat $tolerations $svc.gpu.tolerations }}
  {{- end }}
  {{- with $nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $svc.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $root.Values.topologySpread.enabled }}
  topologySpreadConstraints:
    {{- range $key := list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
    - maxSkew: 1
      topologyKey: {{ $key }}
      whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "docsum.selectorLabels" $ | nindent 10 }}
    {{- end }}
  {{- end }}
  containers:
    - name: {{ .name }}
      image: {{ include "docsum.image" . | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: ["serve", "{{ .name }}"]
      ports:
        - name: http
          containerPort: {{ $svc.port }}
          protocol: TCP
        {{- if $root.Values.probes.separatePort }}
        - name: probes
          containerPort: {{ $svc.probePort }}
          protocol: TCP
        {{- end }}
      env:
        - {name: {{ $prefix }}HOST, value: "0.0.0.0"}
        - {name: {{ $prefix }}PORT, value: {{ $svc.port | quote }}}
        {{- if $root.Values.probes.separatePort }}
        - {name: {{ $prefix }}PROBE_PORT, value: {{ $svc.probePort | quote }}}
        {{- end }}
        {{- if has .name (list "ocr" "summarizer") }}
        - {name: {{ $prefix }}TORCH_THREADS, value: {{ include "docsum.torchThreads" . | quote }}}
        - {name: {{ $prefix }}DEVICE, value: {{ ternary "cuda" "cpu" $gpu | quote }}}
        {{- else }}
        - {name: {{ $prefix }}BACKENDS_FILE, value: /etc/docsum/backends/backends.json}
        {{- if eq .name "gateway" }}
        - {name: DOCSUM_GATEWAY_API_KEYS_FILE, value: /etc/docsum/api-keys/api-keys}
        {{- end }}
        {{- if $jobs }}
        - {name: {{ $prefix }}REDIS_URL, value: {{ include "docsum.redisURL" $root | quote }}}
        - {name: {{ $prefix }}REDIS_PASSWORD_FILE, value: /etc/docsum/redis/password}
        {{- end }}
        {{- end }}
        # The root filesystem is read-only: caches (HF, torch) go to the /tmp emptyDir.
        - {name: HOME, value: /tmp}
        - {name: HF_HUB_OFFLINE, value: "1"}
        {{- with $svc.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      envFrom:
        - configMapRef:
            name: {{ include "docsum.componentName" (dict "root" $root "name" .name "track" "stable") }}
      resources:
        {{- include "docsum.resources" . | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.containerSecurityContext | nindent 8 }}
      startupProbe:
        httpGet: {path: /readyz, port: {{ $probePort }}}
        periodSeconds: {{ $svc.startupProbe.periodSeconds }}
        failureThreshold: {{ $svc.startupProbe.failureThreshold }}
        timeoutSeconds: 2
      readinessProbe:
        httpGet: {path: /readyz, port: {{ $probePort }}}
        periodSeconds: 5
        failureThreshold: 2
        timeoutSeconds: 2
      livenessProbe:
        httpGet: {path: /livez, port: {{ $probePort }}}
        periodSeconds: 10
        failureThreshold: 3
        timeoutSeconds: 2
      lifecycle:
        preStop:
          exec:
            command: ["sleep", "{{ $root.Values.preStopSleepSeconds }}"]
      volumeMounts:
        - {name: tmp, mountPath: /tmp}
        {{- if has .name (list "gateway" "worker") }}
        # A directory mount (not subPath) so ConfigMap and Secret updates reach the pod.
        - {name: backends, mountPath: /etc/docsum/backends, readOnly: true}
        {{- end }}
        {{- if eq .name "gateway" }}
        - {name: api-keys, mountPath: /etc/docsum/api-keys, readOnly: true}
        {{- end }}
        {{- if $jobs }}
        - {name: redis-auth, mountPath: /etc/docsum/redis, readOnly: true}
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $root.Values.tmpSizeLimit }}
    {{- if has .name (list "gateway" "worker") }}
    # The workers follow the gateway's backends (and canary weights) too.
    - name: backends
      configMap:
        name: {{ include "docsum.fullname" $root }}-gateway-backends
    {{- end }}
    {{- if eq .name "gateway" }}
    - name: api-keys
      secret:
        secretName: {{ include "docsum.apiKeysSecret" $root }}
        defaultMode: 0440
    {{- end }}
    {{- if $jobs }}
    - name: redis-auth
      secret:
        secretName: {{ include "docsum.redisSecret" $root }}
        items: [{key: password, path: password}]
        defaultMode: 0440
    {{- end }}
{{- end -}}

{{/* Service contexts of every enabled workload: stable, canary tracks and gateway slots. */}}
{{- define "docsum.workloads" -}}
{{- $out := list -}}
{{- range $name := list "ocr" "summarizer" "gateway" -}}
{{- $svc := index $.Values $name -}}
{{- if $svc.enabled -}}
{{- if and (eq $name "gateway") $svc.blueGreen.enabled -}}
{{- range $slot := list "blue" "green" -}}
{{- $out = append $out (dict "name" $name "track" "stable" "slot" $slot) -}}
{{- end -}}
{{- else -}}
{{- $out = append $out (dict "name" $name "track" "stable" "slot" "") -}}
{{- end -}}
{{- if and (ne $name "gateway") $svc.canary.enabled -}}
{{- $out = append $out (dict "name" $name "track" "canary" "slot" "") -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The Secret holding the gateway's API keys: existingSecret, else <fullname>-api-keys. */}}
{{- define "docsum.apiKeysSecret" -}}
{{- .Values.gateway.apiKeys.existingSecret | default (printf "%s-api-keys" (include "docsum.fullname" .)) -}}
{{- end -}}

{{/* The Secret (key api-key) with the API key `helm test` uses: tests.apiKey.existingSecret,
     else <fullname>-test-api-key (which the chart makes when it makes the keys Secret). */}}
{{- define "docsum.testKeySecret" -}}
{{- .Values.tests.apiKey.existingSecret | default (printf "%s-test-api-key" (include "docsum.fullname" .)) -}}
{{- end -}}

{{/* Fail early, with what to do, when a feature's custom resources are not served. Helm knows
     the kinds (group/version/Kind) only from a cluster's discovery (install, upgrade, template
     --validate or --api-versions): offline renders (template, lint) are not checked.
     dict: root, value (the value that turned the feature on), kinds, install (what provides them). */}}
{{- define "docsum.requireKinds" -}}
{{- $caps := .root.Capabilities.APIVersions -}}
{{- if $caps.Has "apps/v1/Deployment" -}}
{{- range $kind := .kinds -}}
{{- if not ($caps.Has $kind) -}}
{{- fail (printf "%s needs %s, which this cluster does not serve: %s first, or turn %s off" $.value $kind $.install $.value) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The AnalysisTemplates a Rollout runs, with the new (Latest) and Stable pod-template hashes. */}}
{{- define "docsum.analysisRef" -}}
templates:
  - templateName: {{ include "docsum.fullname" .root }}-error-rate
  - templateName: {{ include "docsum.fullname" .root }}-p99-latency
args:
  - name: service
    value: {{ .name }}
  # The Rollout's own namespace, wherever kustomize or Helm puts it.
  - name: namespace
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
  - name: new-hash
    valueFrom:
      podTemplateHashValue: Latest
  - name: stable-hash
    valueFrom:
      podTemplateHashValue: Stable
{{- end -}}

{{/* The gateway's live slot: the live Service's (kept across upgrades; `docsum rollout promote`
     owns it after install), else gateway.blueGreen.activeSlot. */}}
{{- define "docsum.activeSlot" -}}
{{- $live := lookup "v1" "Service" .Release.Namespace (printf "%s-gateway" (include "docsum.fullname" .)) -}}
{{- $slot := "" -}}
{{- if $live -}}
{{- $slot = index ($live.spec.selector | default dict) "docsum.io/slot" | default "" -}}
{{- end -}}
{{- $slot | default .Values.gateway.blueGreen.activeSlot -}}
{{- end -}}


{{/* Redis of the async jobs: jobs.redis.external.url, else the chart's StatefulSet. */}}
{{- define "docsum.redisURL" -}}
{{- .Values.jobs.redis.external.url | default (printf "redis://%s-redis:%v/0" (include "docsum.fullname" .) .Values.jobs.redis.port) -}}
{{- end -}}

{{/* The Secret (key `password`) of Redis: jobs.redis.auth.existingSecret, else
     <fullname>-redis-auth (which the chart makes, with a password kept across upgrades). */}}
{{- define "docsum.redisSecret" -}}
{{- .Values.jobs.redis.auth.existingSecret | default (printf "%s-redis-auth" (include "docsum.fullname" .)) -}}
{{- end -}}

{{/* The worker's service context: jobs.worker's values with the gateway's image (the worker
     runs the gateway's pipeline: pypdfium2, httpx, redis). */}}
{{- define "docsum.workerContext" -}}
{{- $svc := merge (dict "image" .Values.gateway.image) (deepCopy .Values.jobs.worker) -}}
{{- toJson (dict "name" "worker" "track" "stable" "slot" "" "svc" $svc) -}}
{{- end -}}

{{/* Redis' probe: PONG with the password (redis-cli reads REDISCLI_AUTH; it exits 0 on an
     error reply, hence the grep). */}}
{{- define "docsum.redisPing" -}}
REDISCLI_AUTH="$(cat /etc/redis/auth/password)" redis-cli -p {{ .port }} ping | grep -q PONG
{{- end -}}

{{/* NetworkPolicy egress rules to ocr's and the summarizer's API ports (the gateway, workers). */}}
{{- define "docsum.backendEgress" -}}
{{- $sel := include "docsum.releaseSelector" . | fromYaml -}}
{{- range $name := list "ocr" "summarizer" }}
- to:
    - podSelector:
        matchLabels:
          {{- toYaml $sel | nindent 10 }}
          app.kubernetes.io/component: {{ $name }}
  ports:
    - {protocol: TCP, port: {{ (index $.Values $name).port }}}
{{- end }}
{{- end -}}
