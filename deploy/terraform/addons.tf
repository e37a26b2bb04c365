# AWS identities of the in-cluster add-ons (EKS Pod Identity), Karpenter, and
# the node capacity a release needs. Namespaces and service-account names
# are the ones the Helm values under deploy/k8s/addons and
# deploy/monitoring/kube-prometheus-stack use; tests/deploy checks that they
# agree.

# One Pod Identity role per add-on service account that calls AWS, each with
# the policy document below (modules/pod-identity-role: trusted for exactly
# that cluster, namespace and service account).
locals {
  pod_identities = {
    argo-rollouts = {
      namespace       = "argo-rollouts"
      service_account = "argo-rollouts"
      policy_json     = data.aws_iam_policy_document.argo_rollouts.json
    }
    alertmanager = {
      namespace       = "monitoring"
      service_account = "alertmanager"
      policy_json     = data.aws_iam_policy_document.alertmanager.json
    }
    kyverno = {
      namespace       = "kyverno"
      service_account = "kyverno-admission-controller"
      policy_json     = data.aws_iam_policy_document.kyverno.json
    }
  }
}

module "pod_identity" {
  source   = "./modules/pod-identity-role"
  for_each = local.pod_identities

  name            = "${local.name}-${each.key}"
  cluster_name    = module.eks.cluster_name
  cluster_arn     = module.eks.cluster_arn
  namespace       = each.value.namespace
  service_account = each.value.service_account
  policy_json     = each.value.policy_json
}

# Argo Rollouts with --aws-verify-target-group (argo-rollouts
# docs/features/traffic-management/alb.md, "Zero-Downtime Updates with AWS
# TargetGroup Verification"): before it scales the old version down or moves
# on from a setWeight step, the controller checks in the ELB API that the
# target groups hold the new pods and the weights. These six read-only calls
# are the permissions that page lists.
data "aws_iam_policy_document" "argo_rollouts" {
  #checkov:skip=CKV_AWS_356:the elasticloadbalancing Describe* calls have no resource-level permissions
  statement {
    sid = "VerifyTargetGroups"
    actions = [
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTargetHealth",
    ]
    resources = ["*"]
  }
}


# Alertmanager publishes pages to the alarm topic (sns_configs). The topic is
# KMS-encrypted, so the publisher also needs the key: SNS calls
# kms:GenerateDataKey* and kms:Decrypt on the publisher's behalf (AWS SNS
# docs, "Encryption at rest": "publishers ... must have kms:GenerateDataKey*
# and kms:Decrypt permissions").
data "aws_iam_policy_document" "alertmanager" {
  statement {
    sid       = "PublishToTheReceivers"
    actions   = ["sns:Publish"]
    resources = values(module.alarms.alertmanager_topic_arns)
  }

  statement {
    sid       = "UseTheTopicKey"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = [module.alarms.kms_key_arn]
  }
}


# Kyverno verifies the pingpong images' signatures and SBOM attestations
# (deploy/k8s/policies/verify-images.yaml): it reads them from ECR and the
# Jenkins signing key's public half from KMS. Without an AWS identity of its
# own it cannot: the nodes keep IMDS to one hop (pods cannot reach the node
# role), so the admission controller gets a Pod Identity role (Kyverno docs,
# "Verify Images / Private registries": the amazon credential helper uses the
# AWS SDK's default chain, which includes EKS Pod Identity).
data "aws_iam_policy_document" "kyverno" {
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # this action has no resource-level permissions
  }

  statement {
    sid       = "ReadSignaturesAndAttestations"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages", "ecr:ListImages"]
    resources = [aws_ecr_repository.this["app"].arn]
  }

  statement {
    sid       = "JenkinsSigningPublicKey"
    actions   = ["kms:GetPublicKey", "kms:DescribeKey"]
    resources = [aws_kms_key.cosign.arn]
  }

  statement {
    sid       = "DecryptTheImages"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.ecr.arn]
  }
}


# The roles registry modules make (Karpenter's controller, the AWS Load
# Balancer Controller, the EBS CSI driver) get the same trust as ours.
locals {
  registry_pod_identities = {
    karpenter         = { namespace = "kube-system", service_account = "karpenter" }
    aws-lb-controller = { namespace = "kube-system", service_account = "aws-load-balancer-controller" }
    ebs-csi           = { namespace = "kube-system", service_account = "ebs-csi-controller-sa" }
  }
}

module "pod_identity_trust" {
  source   = "./modules/pod-identity-trust"
  for_each = local.registry_pod_identities

  cluster_arn     = module.eks.cluster_arn
  namespace       = each.value.namespace
  service_account = each.value.service_account
}

# Karpenter adds nodes when pods are Pending, in the zone they need: a
# release doubles the pods (setCanaryScale 100) and zone spread is
# DoNotSchedule, so a fixed node group would leave green Pending at peak.
# The module creates the controller role (Pod Identity), the node role and
# the interruption queue (terraform-aws-eks modules/karpenter/README.md).
module "karpenter" {
  source  = "terraform-aws-modules/eks/aws//modules/karpenter"
  version = "~> 21.0"
  #checkov:skip=CKV_TF_1:registry module pinned to one major version by its version constraint; commit pins apply to git sources only

  cluster_name    = module.eks.cluster_name
  namespace       = module.pod_identity_trust["karpenter"].namespace
  service_account = module.pod_identity_trust["karpenter"].service_account
  # The module trusts pods.eks.amazonaws.com with no condition at all; this
  # replaces its "PodIdentity" statement (override_policy_documents replace
  # statements of the same sid) with this account, cluster and service
  # account only (modules/pod-identity-trust).
  iam_role_override_assume_policy_documents = [module.pod_identity_trust["karpenter"].json]

  # A fixed name: the EC2NodeClass (deploy/k8s/addons/karpenter) names it.
  node_iam_role_name            = "${local.name}-karpenter-node"
  node_iam_role_use_name_prefix = false
  node_iam_role_additional_policies = {
    ecr_pull = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly"
  }
}

# The managed node group alone must also hold a release at peak (Karpenter
# runs on it, and a Karpenter outage must not stall releases): the HPA's
# maximum, twice (old and new version at full size), spread evenly over the
# three zones, at the pods' CPU request, plus var.node_headroom for the
# add-ons (monitoring, controllers, runners).
locals {
  release_surge_pods     = 2 * var.pingpong_max_replicas
  surge_pods_per_zone    = ceil(local.release_surge_pods / 3)
  pingpong_pods_per_node = floor(var.node_pod_cpu_millicores / var.pingpong_cpu_request_millicores)
  release_surge_nodes    = 3 * ceil(local.surge_pods_per_zone / local.pingpong_pods_per_node)
  node_max_size          = max(var.node_max_size, local.release_surge_nodes + var.node_headroom)
}

# The EBS CSI driver, so that PersistentVolumeClaims get volumes: Prometheus
# keeps its 35 days on one (StorageClass gp3, deploy/monitoring/
# storageclass-gp3.yaml). As an EKS add-on, its controller's service account
# kube-system/ebs-csi-controller-sa gets the AWS managed
# AmazonEBSCSIDriverPolicy through Pod Identity (EKS user guide, "Amazon EBS
# CSI driver" and "Use Pod Identity with the EBS CSI driver").
module "ebs_csi_pod_identity" {
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "~> 2.0"
  #checkov:skip=CKV_TF_1:registry module pinned to one major version by its version constraint; commit pins apply to git sources only

  name                      = "${var.name}-ebs-csi"
  attach_aws_ebs_csi_policy = true
  trust_policy_conditions   = module.pod_identity_trust["ebs-csi"].conditions
}

resource "aws_eks_addon" "ebs_csi" {
  cluster_name = module.eks.cluster_name
  addon_name   = "aws-ebs-csi-driver"

  pod_identity_association {
    role_arn        = module.ebs_csi_pod_identity.iam_role_arn
    service_account = "ebs-csi-controller-sa"
  }
}

# The per-add-on module blocks became one for_each: the same roles, kept.
moved {
  from = module.argo_rollouts_pod_identity
  to   = module.pod_identity["argo-rollouts"]
}

moved {
  from = module.alertmanager_pod_identity
  to   = module.pod_identity["alertmanager"]
}

moved {
  from = module.kyverno_pod_identity
  to   = module.pod_identity["kyverno"]
}
