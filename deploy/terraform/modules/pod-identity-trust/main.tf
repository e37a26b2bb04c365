# Who may use an EKS Pod Identity role: the pods.eks.amazonaws.com service
# principal (sts:AssumeRole + sts:TagSession, EKS user guide "Create IAM role
# with trust policy required by EKS Pod Identity"), and only
#   - for this account (aws:SourceAccount: the confused-deputy guard of the
#     IAM user guide, "The confused deputy problem"), and
#   - for one service account of one namespace of one cluster: the session
#     tags EKS Pod Identity sets when it assumes the role (eks-cluster-arn,
#     kubernetes-namespace, kubernetes-service-account; EKS user guide,
#     "Setting Conditions" and "Enable or disable session tags").
# Without the tags, a Pod Identity association made for any service account
# of any cluster in the account could take the role. aws:SourceArn is not
# used: EKS documents the session tags for this, not a source ARN.
# Used by pod-identity-role and, for the roles registry modules make
# (Karpenter, the Load Balancer Controller, the EBS CSI driver), as an
# override document or a list of conditions.

variable "cluster_arn" {
  description = "ARN of the EKS cluster whose pods may use the role."
  type        = string
}

variable "namespace" {
  description = "Namespace of the service account."
  type        = string
}

variable "service_account" {
  description = "Name of the service account."
  type        = string
}

data "aws_caller_identity" "current" {}

locals {
  conditions = [
    { test = "StringEquals", variable = "aws:SourceAccount", values = [data.aws_caller_identity.current.account_id] },
    { test = "StringEquals", variable = "aws:RequestTag/eks-cluster-arn", values = [var.cluster_arn] },
    { test = "StringEquals", variable = "aws:RequestTag/kubernetes-namespace", values = [var.namespace] },
    { test = "StringEquals", variable = "aws:RequestTag/kubernetes-service-account", values = [var.service_account] },
  ]
}

data "aws_iam_policy_document" "this" {
  statement {
    # The sid of the Karpenter module's own statement, which this replaces
    # there (terraform-aws-eks modules/karpenter/main.tf, controller_assume_role).
    sid     = "PodIdentity"
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
    dynamic "condition" {
      for_each = local.conditions
      content {
        test     = condition.value.test
        variable = condition.value.variable
        values   = condition.value.values
      }
    }
  }
}

output "json" {
  description = "The trust policy document."
  value       = data.aws_iam_policy_document.this.json
}

output "conditions" {
  description = "Its conditions, for modules that take trust_policy_conditions."
  value       = local.conditions
}

output "namespace" {
  description = "The namespace trusted."
  value       = var.namespace
}

output "service_account" {
  description = "The service account trusted."
  value       = var.service_account
}
