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
  value       = local.region
}

output "vpc_id" {
  description = "VPC the cluster runs in (--set vpcId=... for the AWS Load Balancer Controller)."
  value       = module.vpc.vpc_id
}

output "ecr_repository_url" {
  description = "Where CI pushes the image; the prod overlay's images.newName."
  value       = aws_ecr_repository.this["app"].repository_url
}

output "ci_push_role_arn" {
  description = "Role the push job assumes (repository variable AWS_PUSH_ROLE_ARN): ECR push, any job of a push to main."
  value       = aws_iam_role.ci_push.arn
}

output "ci_deploy_role_arn" {
  description = "Role the deploy job assumes (repository variable AWS_DEPLOY_ROLE_ARN): environment production only."
  value       = aws_iam_role.ci_deploy.arn
}

output "ci_push_policy_arn" {
  description = "The push permissions as a policy, to attach to a Jenkins agent role."
  value       = aws_iam_policy.ci_push.arn
}

output "ci_deploy_policy_arn" {
  description = "The deploy permissions as a policy, to attach to the Jenkins deploy agent's role (plus an EKS access entry)."
  value       = aws_iam_policy.ci_deploy.arn
}

output "cosign_key_uri" {
  description = "cosign --key value of the image signing key (Jenkins); its public key goes into the Kyverno policy."
  value       = "awskms:///${aws_kms_alias.cosign.name}"
}

output "redis_primary_endpoint" {
  description = "ElastiCache primary endpoint (TLS, port 6379)."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "redis_secret_name" {
  description = "Secrets Manager secret with the Redis URL (ExternalSecret remoteRef key)."
  value       = aws_secretsmanager_secret.this["redis-url"].name
}

output "node_asg_names" {
  description = "Auto Scaling groups of the managed node group (watched by the alarms)."
  value       = module.eks.eks_managed_node_groups_autoscaling_group_names
}

output "aws_lb_controller_role_arn" {
  description = "IAM role of the AWS Load Balancer Controller (through EKS Pod Identity)."
  value       = module.aws_lb_controller_pod_identity.iam_role_arn
}

output "alarm_topic_arn" {
  description = "SNS topic of every page: CloudWatch alarms and Alertmanager (sns_configs topic_arn)."
  value       = module.alarms.sns_topic_arn
}

output "alertmanager_role_arn" {
  description = "IAM role of Alertmanager (Pod Identity, monitoring/alertmanager): publish to the alarm topic."
  value       = module.pod_identity["alertmanager"].iam_role_arn
}

output "argo_rollouts_role_arn" {
  description = "IAM role of the Argo Rollouts controller (Pod Identity): target-group verification."
  value       = module.pod_identity["argo-rollouts"].iam_role_arn
}

output "secret_reader_role_arns" {
  description = "IAM role of each namespace's SecretStore (IRSA, its own service account): read that namespace's secrets."
  value       = { for k, m in module.secret_reader : k => m.iam_role_arn }
}

output "karpenter_queue_name" {
  description = "Interruption queue of Karpenter (Helm value settings.interruptionQueue)."
  value       = module.karpenter.queue_name
}

output "node_group_max_size" {
  description = "Max size of the managed node group: a release at peak fits (addons.tf)."
  value       = local.node_max_size
}

output "kyverno_role_arn" {
  description = "IAM role of Kyverno's admission controller (Pod Identity): read signatures from ECR, the signing key from KMS."
  value       = module.pod_identity["kyverno"].iam_role_arn
}

output "deploy_runner_repository_url" {
  description = "ECR repository of the deploy job's runner image (deploy/k8s/addons/deploy-runner)."
  value       = aws_ecr_repository.this["deploy_runner"].repository_url
}
