data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:only the first three zones (sorted by name) are used, see local.azs; a new zone does not change them
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 3)

  tags = merge(var.tags, {
    Project   = local.name
    ManagedBy = "terraform"
    Source    = "deploy/terraform"
  })
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 6.0"
  #checkov:skip=CKV_TF_1:registry module pinned to one major version by its version constraint; commit pins apply to git sources only

  name = local.name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets  = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets   = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 48 + i)]
  database_subnets = [for i, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, 52 + i)]

  enable_nat_gateway     = true
  one_nat_gateway_per_az = true

  create_database_subnet_group = false

  enable_flow_log                                 = true
  create_flow_log_cloudwatch_log_group            = true
  create_flow_log_cloudwatch_iam_role             = true
  flow_log_cloudwatch_log_group_retention_in_days = 90

  # Subnet discovery of the AWS Load Balancer Controller.
  public_subnet_tags = {
    "kubernetes.io/role/elb" = 1
  }
  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = 1
    # Karpenter launches nodes into these subnets (EC2NodeClass selector).
    "karpenter.sh/discovery" = local.name
  }
}

module "alarms" {
  source = "./modules/cloudwatch-alarms"

  name              = local.name
  alb_arn_suffix    = var.alb_arn_suffix
  alarm_emails      = var.alarm_emails
  node_asg_names    = module.eks.eks_managed_node_groups_autoscaling_group_names
  redis_cluster_ids = local.redis_member_clusters
}
