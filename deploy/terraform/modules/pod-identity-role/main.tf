# One IAM role for one Kubernetes service account through EKS Pod Identity:
# the trust of ../pod-identity-trust (this account, this cluster, this
# namespace and service account only), an inline policy, and the
# association. Used for the add-ons that call AWS (deploy/terraform/addons.tf,
# local.pod_identities).

variable "name" {
  description = "Name of the IAM role."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster of the association."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of that cluster (the trust's eks-cluster-arn session tag)."
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

module "trust" {
  source = "../pod-identity-trust"

  cluster_arn     = var.cluster_arn
  namespace       = var.namespace
  service_account = var.service_account
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = module.trust.json
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
