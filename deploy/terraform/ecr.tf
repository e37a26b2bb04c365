resource "aws_kms_key" "ecr" {
  description             = "${local.name}: ECR image encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_account_admin.json
}

resource "aws_kms_alias" "ecr" {
  name          = "alias/${local.name}-ecr"
  target_key_id = aws_kms_key.ecr.key_id
}

# The release image (the commit SHA its tag) and the deploy job's runner image
# (deploy/k8s/addons/deploy-runner: GitHub's runner plus the aws CLI and
# kubectl, pushed once by an operator). Tags are immutable: a tag always means
# the same image, so what was tested is what runs. Every push is scanned.
locals {
  ecr_repositories = {
    app           = local.name
    deploy_runner = "${local.name}-deploy-runner"
  }
}

resource "aws_ecr_repository" "this" {
  for_each = local.ecr_repositories

  name                 = each.value
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.ecr.arn
  }
}

moved {
  from = aws_ecr_repository.app
  to   = aws_ecr_repository.this["app"]
}

moved {
  from = aws_ecr_repository.deploy_runner
  to   = aws_ecr_repository.this["deploy_runner"]
}

# Counts release images only (tagged with their commit): signatures and
# attestations are untagged OCI 1.1 referrers of an image (scripts/ci-push-attest.sh),
# so they neither count against the 100 nor are expired on their own; ECR
# removes an image's referrers together with the image ("Amazon ECR lifecycle
# policies", subject and referrers).
resource "aws_ecr_lifecycle_policy" "app" {
  repository = aws_ecr_repository.this["app"].name

  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 100 release images (rollbacks reach far enough back)"
      selection = {
        tagStatus      = "tagged"
        tagPatternList = ["*"]
        countType      = "imageCountMoreThan"
        countNumber    = 100
      }
      action = { type = "expire" }
    }]
  })
}

# Key policy shared by the stack's KMS keys: the account administers and
# uses them through IAM policies (the AWS default key policy, written out).
data "aws_iam_policy_document" "kms_account_admin" {
  # In a key policy "*" is the key itself, and the account root is the only
  # principal: these three findings are about identity policies.
  #checkov:skip=CKV_AWS_109:key policy; resources "*" means this key only, principal is the account root
  #checkov:skip=CKV_AWS_111:key policy; resources "*" means this key only, principal is the account root
  #checkov:skip=CKV_AWS_356:key policy; resources "*" means this key only, principal is the account root
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}
