output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "EKS API endpoint."
  value       = module.eks.cluster_endpoint
}

output "region" {
  description = "AWS region of the stack."
  value       = var.region
}

output "vpc_id" {
  description = "VPC the cluster runs in (--set vpcId=... for the AWS Load Balancer Controller)."
  value       = module.vpc.vpc_id
}

output "ecr_repository_url" {
  description = "Where CI pushes the image; the prod overlay's images.newName."
  value       = aws_ecr_repository.app.repository_url
}

output "ci_role_arn" {
  description = "Role GitHub Actions assumes (repository variable AWS_CI_ROLE_ARN)."
  value       = aws_iam_role.ci.arn
}

output "ci_policy_arn" {
  description = "The CI permissions as a policy, to attach to a Jenkins agent role."
  value       = aws_iam_policy.ci.arn
}

output "redis_primary_endpoint" {
  description = "ElastiCache primary endpoint (TLS, port 6379)."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "redis_auth_token" {
  description = "Auth token of the Redis group; goes into the Secret pingpong-storage, never into git."
  value       = random_password.redis_auth.result
  sensitive   = true
}

output "node_asg_names" {
  description = "Auto Scaling groups of the managed node group (watched by the alarms)."
  value       = module.eks.eks_managed_node_groups_autoscaling_group_names
}

output "aws_lb_controller_role_arn" {
  description = "IAM role of the AWS Load Balancer Controller (through EKS Pod Identity)."
  value       = module.aws_lb_controller_pod_identity.iam_role_arn
}
