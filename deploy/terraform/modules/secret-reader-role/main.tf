# The AWS role of one namespace's SecretStore: External Secrets Operator
# requests a token of the store's service account (auth.jwt.serviceAccountRef)
# and assumes this role with it (ESO docs, "AWS Access", EKS Service Account
# credentials; IRSA, because serviceAccountRef cannot be used with EKS Pod
# Identity). The trust takes exactly that namespace/service account (the
# token's sub claim) and the STS audience (EKS user guide, "Assign IAM roles
# to Kubernetes service accounts"); the policy reads exactly the given secrets.

variable "name" {
  description = "Name of the IAM role (the service account's eks.amazonaws.com/role-arn names it)."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_provider" {
  description = "The cluster's OIDC issuer without https:// (the condition key prefix)."
  type        = string
}

variable "namespace" {
  description = "Namespace of the SecretStore and its service account."
  type        = string
}

variable "service_account" {
  description = "The service account the SecretStore authenticates as."
  type        = string
}

variable "secret_arns" {
  description = "The Secrets Manager secrets this namespace may read, and no other."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "The key the secrets are encrypted with."
  type        = string
}

data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "read" {
  statement {
    sid       = "ReadItsSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = var.secret_arns
  }

  statement {
    sid       = "DecryptThem"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.trust.json
}

resource "aws_iam_role_policy" "this" {
  name   = var.name
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.read.json
}

output "iam_role_arn" {
  description = "ARN of the role."
  value       = aws_iam_role.this.arn
}
