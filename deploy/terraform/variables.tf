variable "vpc_cidr" {
  description = "CIDR of the VPC. deploy/k8s/base (NetworkPolicy, trusted_proxies) assumes 10.0.0.0/16: change both together."
  type        = string
  default     = "10.0.0.0/16"
}

variable "kubernetes_version" {
  description = "EKS Kubernetes minor version. Upgrade one minor version at a time. At least 1.34: the API server merges matchLabelKeys into the spread selector Karpenter reads (tests/deploy/test_spread_versions.py)."
  type        = string
  default     = "1.34"
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDRs allowed to reach the public EKS API endpoint (operators, CI runners). Nodes use the private endpoint."
  type        = list(string)
}

variable "node_instance_types" {
  description = "Instance types of the managed node group (one node per AZ at minimum)."
  type        = list(string)
  default     = ["m7i.large", "m6i.large"]
}

variable "node_min_size" {
  description = "Minimum number of nodes; at least 3 so the pods can spread over three zones."
  type        = number
  default     = 3
}

variable "node_max_size" {
  description = "Maximum number of nodes of the managed node group; raised to what a release at peak needs (addons.tf, local.node_max_size)."
  type        = number
  default     = 9
}

variable "pingpong_max_replicas" {
  description = "maxReplicas of the prod HPA (deploy/k8s/components/prod/patch-hpa.yaml); a release runs twice that many pods."
  type        = number
  default     = 12
}

variable "pingpong_cpu_request_millicores" {
  description = "CPU request of one pingpong pod (deploy/k8s/base/deployment.yaml), in millicores."
  type        = number
  default     = 250
}

variable "node_pod_cpu_millicores" {
  description = "CPU of one node left for pingpong pods after kubelet reservations and DaemonSets, in millicores (m7i.large: 1930 allocatable)."
  type        = number
  default     = 1500
}

variable "node_headroom" {
  description = "Nodes beyond the release surge, for the add-ons (monitoring, controllers, runners)."
  type        = number
  default     = 3
}

variable "redis_node_type" {
  description = "ElastiCache node type of the shared rate-limit store."
  type        = string
  default     = "cache.t4g.small"
}

variable "redis_engine_version" {
  description = "ElastiCache Redis OSS engine version."
  type        = string
  default     = "7.1"
}

variable "github_deploy_environment" {
  description = "GitHub environment the deploy job runs in; only its jobs may assume the deploy role."
  type        = string
  default     = "production"
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC identity provider. Set false when the account already has one."
  type        = bool
  default     = true
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the CloudWatch alarms (each must confirm the subscription)."
  type        = list(string)
  default     = []
}

variable "alb_arn_suffix" {
  description = "ARN suffix (app/NAME/ID) of the ALB the AWS Load Balancer Controller created for the Ingress; empty until the first deploy."
  type        = string
  default     = ""
}

variable "redis_auth_token_version" {
  description = "Change (e.g. increment) to rotate the Redis users' passwords; see secrets.tf."
  type        = number
  default     = 1
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "admin_token_digests" {
  description = "Admin API tokens as digests, one \"name:sha256:<hex>\" each (printf %s \"$TOKEN\" | sha256sum); never the tokens themselves."
  type        = list(string)

  validation {
    condition     = length(var.admin_token_digests) > 0 && alltrue([for d in var.admin_token_digests : can(regex("^[A-Za-z0-9_.-]+:sha256:[0-9a-f]{64}$", d))])
    error_message = "admin_token_digests: at least one entry, each name:sha256:<64 lower-case hex digits>."
  }
}
