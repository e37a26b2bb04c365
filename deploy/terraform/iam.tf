# CI/CD identities: GitHub Actions assumes these roles through OIDC, no
# long-lived keys. Two roles, because pushing and deploying are trusted
# differently (GitHub docs, "Configuring OpenID Connect in Amazon Web
# Services": the sub claim of a job in an environment is
# repo:OWNER/REPO:environment:NAME, of any other job on main
# repo:OWNER/REPO:ref:refs/heads/main):
#   push   any job of a push to main: build, push to the one ECR repository,
#          sign with the cosign KMS key (Jenkins; GitHub signs keylessly).
#   deploy only jobs of the "production" environment, whose required
#          reviewers GitHub enforces before the job gets a token: may find
#          the cluster; inside it, edit the pingpong namespace only (access
#          entry in eks.tf + deploy/k8s/base/rbac.yaml).
# A Jenkins agent gets the same rights by attaching the two policies
# (outputs ci_push_policy_arn, ci_deploy_policy_arn) to its own roles.

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 1 : 0

  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_github_oidc_provider ? 0 : 1

  url = "https://token.actions.githubusercontent.com"
}

locals {
  # The one workflow that may release: main.yaml as it is on main.
  release_workflow_ref = "${local.github_repo}/.github/workflows/main.yaml@refs/heads/main"

  github_oidc_provider_arn = var.create_github_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn
}

# The sub claim each role trusts: the push role any job of a push to main,
# the deploy role only jobs in the environment (whose required reviewers
# GitHub enforces before the job gets a token), so a job on main without the
# environment's approval cannot deploy.
locals {
  ci_subjects = {
    push   = "repo:${local.github_repo}:ref:refs/heads/main"
    deploy = "repo:${local.github_repo}:environment:${var.github_deploy_environment}"
  }
}

data "aws_iam_policy_document" "ci_trust" {
  for_each = local.ci_subjects

  statement {
    sid     = "GitHubActionsReleaseWorkflow"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.github_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = [each.value]
    }

    # And only the release workflow: another workflow file on main (or in
    # the environment) cannot take the role (AWS STS validates GitHub's
    # job_workflow_ref claim, "AWS STS supports validation of identity
    # provider claims",
    # aws.amazon.com/about-aws/whats-new/2026/01/aws-sts-supports-validation-identity-provider-claims/).
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:job_workflow_ref"
      values   = [local.release_workflow_ref]
    }
  }
}

resource "aws_iam_role" "ci_push" {
  name                 = "${local.name}-ci-push"
  description          = "GitHub Actions (OIDC), pushes to main of ${local.github_repo}: build, push and sign images"
  assume_role_policy   = data.aws_iam_policy_document.ci_trust["push"].json
  max_session_duration = 3600
}

resource "aws_iam_role" "ci_deploy" {
  name                 = "${local.name}-ci-deploy"
  description          = "GitHub Actions (OIDC), environment ${var.github_deploy_environment} of ${local.github_repo}: deploy the Rollout"
  assume_role_policy   = data.aws_iam_policy_document.ci_trust["deploy"].json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "ci_push" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # this action has no resource-level permissions
  }

  # Push and pull of the one repository; signatures and attestations
  # (cosign) are stored next to the image in it.
  statement {
    sid = "EcrPushPullOneRepository"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImageScanFindings",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [aws_ecr_repository.this["app"].arn]
  }

  # cosign sign --key awskms:///alias/<name>-cosign (Jenkins).
  statement {
    sid       = "CosignKmsSign"
    actions   = ["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"]
    resources = [aws_kms_key.cosign.arn]
  }
}

data "aws_iam_policy_document" "ci_deploy" {
  statement {
    sid       = "FindTheCluster"
    actions   = ["eks:DescribeCluster"]
    resources = [module.eks.cluster_arn]
  }
}

resource "aws_iam_policy" "ci_push" {
  name        = "${local.name}-ci-push"
  description = "Push and sign ${local.name} images in ECR"
  policy      = data.aws_iam_policy_document.ci_push.json
}

resource "aws_iam_policy" "ci_deploy" {
  name        = "${local.name}-ci-deploy"
  description = "Reach the ${local.name} EKS cluster (namespace rights come from its access entry)"
  policy      = data.aws_iam_policy_document.ci_deploy.json
}

resource "aws_iam_role_policy_attachment" "ci_push" {
  role       = aws_iam_role.ci_push.name
  policy_arn = aws_iam_policy.ci_push.arn
}

resource "aws_iam_role_policy_attachment" "ci_deploy" {
  role       = aws_iam_role.ci_deploy.name
  policy_arn = aws_iam_policy.ci_deploy.arn
}

# Image signing key for pipelines without a Sigstore identity (Jenkins):
# cosign signs with it through KMS, the private key never leaves KMS, and
# the Kyverno policy verifies with its public key
# (deploy/k8s/components/prod/verify-images.yaml).
resource "aws_kms_key" "cosign" {
  description              = "${local.name}: cosign image signatures"
  customer_master_key_spec = "ECC_NIST_P256"
  key_usage                = "SIGN_VERIFY"
  deletion_window_in_days  = 30
  policy                   = data.aws_iam_policy_document.kms_account_admin.json
}

resource "aws_kms_alias" "cosign" {
  name          = "alias/${local.name}-cosign"
  target_key_id = aws_kms_key.cosign.key_id
}
