#!/usr/bin/env bash
# Deploy one image through the pingpong Argo Rollout and wait for the outcome.
# Used by .github/workflows/main.yaml and the Jenkinsfile; runnable by hand.
#
#   deploy/k8s/deploy.sh [--overlay DIR] [--render-only] IMAGE
#
#   IMAGE          REPO:TAG or REPO:TAG@sha256:DIGEST (what CI pushed)
#   --overlay DIR  kustomize overlay (default: deploy/k8s/overlays/prod)
#   --render-only  print the manifests that would be applied, apply nothing
#
# The overlay is rendered with IMAGE in the pingpong container, without
# touching the working tree, then applied (objects labelled
# app.kubernetes.io/component=bootstrap, the Namespace and RBAC, are left to
# a cluster admin). The order makes a refusal harmless: first a server-side
# dry run of everything (RBAC, admission policies and schemas are checked by
# the API server, nothing changes), then every object but the workload
# (PodMonitor, AnalysisTemplates, Services, ...), and the workload last, so
# the release never starts without what watches and judges it. With a
# Rollout it then follows the steps until the new version is stable, or the
# release is aborted.
#
# Exit status:
#   0  the new version is stable
#   1  aborted: the analysis failed or the progress deadline passed, and all
#      traffic is back on the stable version (nothing to do but fix forward)
#   2  usage error
#   3  stuck: degraded without an abort, or no outcome after ROLLOUT_TIMEOUT
#      seconds (default 1800); traffic may be split, a human must decide
#      (kubectl argo rollouts abort|promote pingpong -n pingpong)
#   4  refused by the API server before anything changed (dry run)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
overlay="$here/overlays/prod"
render_only=false
name=pingpong
timeout=${ROLLOUT_TIMEOUT:-1800}
interval=${ROLLOUT_POLL_SECONDS:-10}

usage() {
  sed -n '5,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

image=""
while [ $# -gt 0 ]; do
  case "$1" in
    --overlay) [ $# -ge 2 ] || usage; overlay=$(cd "$2" && pwd); shift 2 ;;
    --render-only) render_only=true; shift ;;
    -h | --help) usage ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) [ -z "$image" ] || usage; image=$1; shift ;;
  esac
done
[ -n "$image" ] || usage

# REPO:TAG[@sha256:...]: a tag is required (ECR tags are immutable).
ref=${image%@*}
case "${ref##*/}" in
  *:?*) ;;
  *) echo "IMAGE needs a tag: $image" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A throw-away kustomization on top of the overlay: the image goes into the
# first container of the pingpong workload (Rollout in prod, Deployment in dev)
# and into the smoke test's Job (prod), which runs the release image too.
cat > "$work/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$work" "$overlay")
patches:
  - target:
      kind: (Rollout|Deployment)
      name: ^pingpong\$
    patch: |-
      - op: test
        path: /spec/template/spec/containers/0/name
        value: pingpong
      - op: replace
        path: /spec/template/spec/containers/0/image
        value: "$image"
  # The smoke Job runs the same image, digest and all (prod overlays).
  - target:
      kind: AnalysisTemplate
      name: ^pingpong-smoke\$
    patch: |-
      - op: test
        path: /spec/metrics/0/provider/job/spec/template/spec/containers/0/name
        value: smoke
      - op: replace
        path: /spec/metrics/0/provider/job/spec/template/spec/containers/0/image
        value: "$image"
YAML
kubectl kustomize "$work" > "$work/rendered.yaml"

if $render_only; then
  cat "$work/rendered.yaml"
  exit 0
fi

# Split the render: the pingpong Rollout/Deployment, and everything else.
: > "$work/workload.yaml"
: > "$work/rest.yaml"
awk -v workload="$work/workload.yaml" -v rest="$work/rest.yaml" '
  function flush() {
    if (doc == "") return
    out = (doc ~ /(^|\n)kind: (Rollout|Deployment)\n/ && doc ~ /\n  name: pingpong\n/) ? workload : rest
    printf "---\n%s", doc > out
    doc = ""
  }
  /^---$/ { flush(); next }
  { doc = doc $0 "\n" }
  END { flush() }
' "$work/rendered.yaml"
[ -s "$work/workload.yaml" ] || { echo "no pingpong workload in $overlay" >&2; exit 2; }
# The overlay's namespace (pingpong; dev: pingpong-dev), as rendered.
namespace=$(sed -n 's/^  namespace: //p' "$work/workload.yaml" | head -n 1)

selector='app.kubernetes.io/component!=bootstrap'
if ! kubectl apply --dry-run=server --selector "$selector" -f "$work/rest.yaml" -f "$work/workload.yaml"; then
  echo "refused by the API server (dry run): nothing was changed" >&2
  exit 4
fi
kubectl apply --selector "$selector" -f "$work/rest.yaml"
kubectl apply --selector "$selector" -f "$work/workload.yaml"

if ! grep -q '^kind: Rollout$' "$work/workload.yaml"; then
  kubectl -n "$namespace" rollout status "deployment/$name" --timeout "${timeout}s"
  exit 0
fi

# Follow the Rollout. Fields: metadata.generation, status.observedGeneration,
# phase (Progressing|Paused|Healthy|Degraded), abort, step, canary weight,
# current and stable pod template hashes, message.
fields='{.metadata.generation}|{.status.observedGeneration}|{.status.phase}|{.status.abort}|{.status.currentStepIndex}|{.status.canary.weights.canary.weight}|{.status.currentPodHash}|{.status.stableRS}|{.status.message}'
deadline=$((SECONDS + timeout))
last=""
while :; do
  IFS='|' read -r gen observed phase aborted step weight current stable message < <(
    kubectl -n "$namespace" get rollout "$name" -o "jsonpath=$fields"
  ) || true
  line="phase=${phase:-?} step=${step:--} canary-weight=${weight:-0}% ${message:+($message)}"
  if [ "$line" != "$last" ]; then
    echo "$(date -u +%H:%M:%S) rollout/$name $line"
    last=$line
  fi
  if [ "$gen" = "$observed" ]; then
    # status.abort is what sends the traffic back to stable (a failed
    # analysis, or progressDeadlineAbort); Degraded without it is a release
    # that stopped half-way.
    if [ "$aborted" = "true" ]; then
      echo "rollout/$name aborted: traffic is back on the stable version ($stable)" >&2
      exit 1
    fi
    if [ "$phase" = "Degraded" ]; then
      echo "rollout/$name stuck: degraded but not aborted; traffic may be split (canary weight ${weight:-0}%)" >&2
      exit 3
    fi
    if [ "$phase" = "Healthy" ] && [ -n "$current" ] && [ "$current" = "$stable" ]; then
      echo "rollout/$name complete: $image is stable ($stable)"
      exit 0
    fi
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "rollout/$name stuck: no outcome after ${timeout}s; traffic may be split (canary weight ${weight:-0}%)" >&2
    exit 3
  fi
  sleep "$interval"
done
