# Inputs passed by the root module (deploy/terraform): name, alb_arn_suffix,
# alarm_emails, node_asg_names, redis_cluster_ids.
# Every other input has a default.

variable "name" {
  description = "Name prefix of every resource (for example \"pingpong-prod\")."
  type        = string
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the application load balancer (aws_lb.arn_suffix), the CloudWatch LoadBalancer dimension. Empty: no ALB alarms yet."
  type        = string
  default     = ""
}

variable "redis_cluster_ids" {
  description = "ElastiCache cache cluster ids (members of the replication group); each gets the Redis alarms (elasticache.tf)."
  type        = list(string)
  default     = []
}

variable "redis_engine_cpu_threshold_percent" {
  description = "EngineCPUUtilization (the Redis thread) above which the CPU alarm fires. AWS suggests alarming at 90 % of one core for the engine."
  type        = number
  default     = 80
}

variable "redis_memory_threshold_percent" {
  description = "DatabaseMemoryUsagePercentage above which the memory alarm fires (evictions start at maxmemory)."
  type        = number
  default     = 80
}

variable "redis_replication_lag_threshold_seconds" {
  description = "ReplicationLag of a replica, in seconds, above which the lag alarm fires (failover would lose that much)."
  type        = number
  default     = 1
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic (each must confirm its subscription)."
  type        = list(string)
}

variable "node_asg_names" {
  description = "Auto Scaling groups of the nodes that run pingpong; each gets a node-failure alarm and a replacement-capacity action."
  type        = list(string)
}

variable "error_ratio_threshold_percent" {
  description = "5xx share of ALB requests, in percent, above which the 5xx alarm fires. 1.44 % is the 14.4x burn rate of a 99.9 % SLO."
  type        = number
  default     = 1.44
}

variable "p99_latency_threshold_seconds" {
  description = "p99 of TargetResponseTime, in seconds, above which the latency alarm fires (the latency SLO threshold is 0.1 s)."
  type        = number
  default     = 0.1
}

variable "min_healthy_hosts" {
  description = "The HealthyHostCount alarm fires below this number of healthy targets."
  type        = number
  default     = 2
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "ticket_emails" {
  description = "E-mail addresses subscribed to the ticket topic (Alertmanager's warning-level alerts); empty when a ticketing system subscribes itself."
  type        = list(string)
  default     = []
}
