#!/usr/bin/env bash
# Connect to the cluster and release IMAGE through the Rollout (deploy/k8s/deploy.sh:
# exit 0 promoted, 1 aborted, 3 stuck, 4 refused); on failure, print what happened.
#
#   scripts/ci-deploy.sh IMAGE@DIGEST
#
# Needs the aws CLI and kubectl (the deploy runner image,
# deploy/k8s/addons/deploy-runner/Dockerfile) and the deploy role's credentials.
set -euo pipefail
# shellcheck source=ci-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/ci-env.sh"

image=${1:?usage: ci-deploy.sh IMAGE}
aws eks update-kubeconfig --name "$EKS_CLUSTER_NAME" --region "$AWS_REGION"
status=0
"$ci_root/deploy/k8s/deploy.sh" "$image" || status=$?
if [ "$status" != 0 ]; then
  kubectl -n pingpong get rollout pingpong -o yaml || true
  kubectl -n pingpong get analysisruns,pods -o wide || true
  kubectl -n pingpong get events --sort-by=.lastTimestamp | tail -n 50 || true
fi
exit "$status"
