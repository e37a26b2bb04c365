# The shared rate-limit store: Redis OSS with TLS in transit (rediss://), an
# RBAC users (below), encryption at rest, one replica in another AZ with automatic
# failover. pingpong reaches it as PINGPONG_STORAGE from the Secret
# "pingpong-storage", which External Secrets fills from Secrets Manager
# (secrets.tf).

# Redis is a trust boundary: no shared full-rights token. ElastiCache RBAC
# users (ElastiCache user guide, "Role-Based Access Control (RBAC)"), each
# with a Redis ACL access string (redis.io, "ACL"): the service may touch its
# own keys and channels (pp:*) with the commands it runs, redis_exporter only
# reads server statistics, never a key. The "default" user every user group
# must hold is switched off. The access strings are files so the suite runs a
# real redis-server with exactly them (tests/deploy/test_redis_acl.py).
locals {
  redis_users = {
    service  = { user_name = local.name, access = trimspace(file("${path.module}/redis-acl/service.acl")) }
    exporter = { user_name = "${local.name}-exporter", access = trimspace(file("${path.module}/redis-acl/exporter.acl")) }
  }
}

resource "random_password" "redis" {
  for_each = local.redis_users

  length  = 64
  special = false

  # A new value of var.redis_auth_token_version makes new passwords
  # (rotation, see secrets.tf).
  keepers = {
    version = var.redis_auth_token_version
  }
}

resource "random_password" "redis_default_user" {
  length  = 64
  special = false
}

resource "aws_elasticache_user" "default" {
  user_id       = "${local.name}-default"
  user_name     = "default"
  engine        = "redis"
  access_string = "off resetkeys resetchannels -@all"
  passwords     = [random_password.redis_default_user.result]
}

resource "aws_elasticache_user" "redis" {
  for_each = local.redis_users

  user_id       = each.value.user_name
  user_name     = each.value.user_name
  engine        = "redis"
  access_string = each.value.access
  passwords     = [random_password.redis[each.key].result]
}

resource "aws_elasticache_user_group" "redis" {
  user_group_id = "${local.name}-users"
  engine        = "redis"
  user_ids      = concat([aws_elasticache_user.default.user_id], [for u in aws_elasticache_user.redis : u.user_id])
}

resource "aws_kms_key" "redis" {
  description             = "${local.name}: ElastiCache encryption at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_account_admin.json
}

resource "aws_elasticache_subnet_group" "redis" {
  name       = "${local.name}-redis"
  subnet_ids = module.vpc.database_subnets
}

resource "aws_security_group" "redis" {
  name        = "${local.name}-redis"
  description = "ElastiCache Redis for ${local.name}: reachable from the EKS nodes and pods only"
  vpc_id      = module.vpc.vpc_id
}

# With the VPC CNI, pods use VPC addresses from the node subnets and the node
# security group: allowing the node security group covers them.
resource "aws_vpc_security_group_ingress_rule" "redis_from_nodes" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis TLS from EKS nodes and pods"
  referenced_security_group_id = module.eks.node_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id = "${local.name}-ratelimit"
  description          = "${local.name} shared rate-limit state"

  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = 6379
  parameter_group_name = "default.redis7"

  num_cache_clusters         = local.redis_nodes
  automatic_failover_enabled = true
  multi_az_enabled           = true

  subnet_group_name  = aws_elasticache_subnet_group.redis.name
  security_group_ids = [aws_security_group.redis.id]

  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  user_group_ids             = [aws_elasticache_user_group.redis.user_group_id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.redis.arn

  snapshot_retention_limit   = 1
  auto_minor_version_upgrade = true
  apply_immediately          = false
}

# The member clusters of a cluster-mode-disabled group are named
# <group id>-001, -002, ... (ElastiCache). Built from known values, not from
# member_clusters, so that the alarms' for_each is known at the first plan.
locals {
  redis_nodes           = 2
  redis_member_clusters = [for i in range(1, local.redis_nodes + 1) : format("%s-ratelimit-%03d", local.name, i)]
}
