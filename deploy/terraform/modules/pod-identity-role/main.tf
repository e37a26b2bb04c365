# One IAM role for one Kubernetes service account through EKS Pod Identity:
# the trust policy of the pods.eks.amazonaws.com service principal
# (sts:AssumeRole + sts:TagSession, as the EKS user guide "EKS Pod Identity
# role" prescribes), an inline policy, and the association. Used for the
# add-ons that call AWS: Argo Rollouts (target-group verification),
# Alertmanager (SNS), External Secrets (Secrets Manager).

variable "name" {
  description = "Name of the IAM role."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster of the association."
  type        = string
}

variable "namespace" {
  description = "Namespace of the service account."
  type        = string
}

variable "service_account" {
  description = "Name of the service account that gets the role."
  type        = string
}

variable "policy_json" {
  description = "The role's permissions (an IAM policy document)."
  type        = string
}

data "aws_caller_identity" "current" {}

# Only EKS Pod Identity acting for this account's clusters: without
# aws:SourceAccount the service principal could be used on behalf of another
# account (confused deputy; EKS user guide, "Create IAM role with trust policy
# required by EKS Pod Identity", condition aws:SourceAccount / aws:SourceArn).
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.trust.json
}

resource "aws_iam_role_policy" "this" {
  name   = var.name
  role   = aws_iam_role.this.id
  policy = var.policy_json
}

resource "aws_eks_pod_identity_association" "this" {
  cluster_name    = var.cluster_name
  namespace       = var.namespace
  service_account = var.service_account
  role_arn        = aws_iam_role.this.arn
}

output "iam_role_arn" {
  description = "ARN of the role."
  value       = aws_iam_role.this.arn
}
