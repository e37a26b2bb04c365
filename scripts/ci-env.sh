#!/usr/bin/env bash
# The environment of every pipeline step, from deploy/environment/environment.env
# (the one place for account, region, stack name, host and GitHub repository)
# plus what follows from it. Sourced by the other scripts/ci-*.sh; run on its
# own it prints KEY=VALUE lines (GitHub Actions: >> "$GITHUB_ENV").
#
# A value already in the environment wins (the suite points REGISTRY at a
# local registry; REVISION defaults to the checked-out commit).
set -euo pipefail

ci_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
while IFS='=' read -r key value; do
  case "$key" in '' | \#*) continue ;; esac
  [ -n "${!key:-}" ] || export "$key=$value"
done < "$ci_root/deploy/environment/environment.env"

export REGISTRY=${REGISTRY:-$AWS_ACCOUNT_ID.dkr.ecr.$AWS_REGION.amazonaws.com}
export ECR_REPOSITORY=${ECR_REPOSITORY:-$STACK_NAME}
export IMAGE_REPO=$REGISTRY/$ECR_REPOSITORY
export REVISION=${REVISION:-$(git -C "$ci_root" rev-parse HEAD)}
export EKS_CLUSTER_NAME=${EKS_CLUSTER_NAME:-$STACK_NAME}
# Terraform's names (deploy/terraform/iam.tf, outputs cosign_key_uri, ci_*_role_arn).
export COSIGN_KEY=${COSIGN_KEY:-awskms:///alias/$STACK_NAME-cosign}
export AWS_PUSH_ROLE_ARN=arn:aws:iam::$AWS_ACCOUNT_ID:role/$STACK_NAME-ci-push
export AWS_DEPLOY_ROLE_ARN=arn:aws:iam::$AWS_ACCOUNT_ID:role/$STACK_NAME-ci-deploy
# The keyless signer Kyverno admits (deploy/k8s/policies/verify-images.yaml).
export RELEASE_IDENTITY=https://github.com/$GITHUB_ORG/$GITHUB_REPO/.github/workflows/main.yaml@refs/heads/main
export RELEASE_ISSUER=https://token.actions.githubusercontent.com

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  for key in AWS_ACCOUNT_ID AWS_REGION STACK_NAME PUBLIC_HOST GITHUB_ORG GITHUB_REPO REGISTRY \
    ECR_REPOSITORY IMAGE_REPO REVISION EKS_CLUSTER_NAME COSIGN_KEY AWS_PUSH_ROLE_ARN \
    AWS_DEPLOY_ROLE_ARN RELEASE_IDENTITY RELEASE_ISSUER; do
    printf '%s=%s\n' "$key" "${!key}"
  done
fi
