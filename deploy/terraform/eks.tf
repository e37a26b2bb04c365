module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 21.0"
  #checkov:skip=CKV_TF_1:registry module pinned to one major version by its version constraint; commit pins apply to git sources only

  name               = local.name
  kubernetes_version = var.kubernetes_version

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.private_subnets

  # Operators reach the public endpoint from var.cluster_endpoint_public_access_cidrs.
  # CD does not: GitHub-hosted runners have no fixed addresses. The deploy job
  # runs on a self-hosted runner inside this VPC (an Actions Runner Controller
  # scale set in this cluster, deploy/k8s/addons/arc-runner-set-values.yaml;
  # Jenkins: an agent in the VPC) and reaches the API through the private
  # endpoint, which the node security group may call on 443 (module default).
  endpoint_public_access       = true
  endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs
  endpoint_private_access      = true

  # The IAM OIDC provider of the cluster: each namespace's SecretStore
  # assumes its role with a service account token (secrets.tf).
  enable_irsa = true

  authentication_mode                      = "API"
  enable_cluster_creator_admin_permissions = true
  enabled_log_types                        = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  addons = {
    vpc-cni = {
      before_compute = true
      # Enforce Kubernetes NetworkPolicies (deploy/k8s/base/networkpolicy.yaml).
      configuration_values = jsonencode({
        enableNetworkPolicy = "true"
      })
    }
    coredns                = {}
    kube-proxy             = {}
    eks-pod-identity-agent = { before_compute = true }
    # Resource metrics for the HorizontalPodAutoscaler.
    metrics-server = {}
    # Node health conditions (kernel, networking, storage, container runtime)
    # that node auto repair acts on (EKS user guide, "Detect node health
    # issues with the EKS node monitoring agent").
    eks-node-monitoring-agent = {}
  }

  eks_managed_node_groups = {
    default = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.node_instance_types

      min_size     = var.node_min_size
      max_size     = local.node_max_size
      desired_size = var.node_min_size

      # EKS replaces (or reboots) a node that stays unhealthy (EKS user
      # guide, "Automatically repair nodes in EKS clusters"); its pods wait
      # Pending for Karpenter meanwhile. No scaling policy grows the group.
      node_repair_config = { enabled = true }

      # Nodes pull the pingpong image (and nothing else) from ECR.
      iam_role_additional_policies = {
        ecr_pull = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly"
      }
    }
  }

  # Karpenter finds the nodes' security group by this tag (EC2NodeClass in
  # deploy/k8s/addons/karpenter/nodepool.yaml).
  node_security_group_tags = {
    "karpenter.sh/discovery" = local.name
  }

  # Only the deploy role may edit objects in the pingpong namespace: EKS maps
  # it to the group bound by deploy/k8s/base/rbac.yaml. The push role has no
  # access entry: it cannot reach the cluster at all.
  access_entries = {
    ci_deploy = {
      principal_arn     = aws_iam_role.ci_deploy.arn
      kubernetes_groups = ["pingpong-deployers"]
    }
  }
}

# AWS Load Balancer Controller: its IAM role through EKS Pod Identity.
module "aws_lb_controller_pod_identity" {
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "~> 2.0"
  #checkov:skip=CKV_TF_1:registry module pinned to one major version by its version constraint; commit pins apply to git sources only

  name                            = "${local.name}-aws-lb-controller"
  attach_aws_lb_controller_policy = true
  # This account, cluster and service account only (modules/pod-identity-trust).
  trust_policy_conditions = module.pod_identity_trust["aws-lb-controller"].conditions

  associations = {
    this = {
      cluster_name    = module.eks.cluster_name
      namespace       = module.pod_identity_trust["aws-lb-controller"].namespace
      service_account = module.pod_identity_trust["aws-lb-controller"].service_account
    }
  }
}
