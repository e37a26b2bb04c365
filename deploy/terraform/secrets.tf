# The Redis URL (with the auth token) lives in Secrets Manager, never in a
# hand-made Kubernetes Secret: External Secrets Operator copies it into the
# Secret "pingpong-storage" (deploy/k8s/components/prod/externalsecret.yaml)
# and refreshes it every hour.
#
# Rotation (docs/deploy.md, "Rotating the Redis passwords"): bump
# var.redis_auth_token_version and apply. random_password makes new
# passwords for the RBAC users (elasticache.tf); this secret gets the new
# URL; ESO refreshes the Kubernetes Secret; a restart of the Rollout
# (kubectl argo rollouts restart pingpong -n pingpong) moves the pods to it.

resource "aws_kms_key" "secrets" {
  description             = "${local.name}: Secrets Manager encryption"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms_account_admin.json
}

resource "aws_secretsmanager_secret" "redis" {
  #checkov:skip=CKV2_AWS_57:the value holds an ElastiCache user password; terraform rotates it (random_password keepers), a Lambda rotator would fight terraform over it
  name                    = "${local.name}/redis-url"
  description             = "rediss:// URL of the ${local.name} rate-limit store, with its auth token"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "redis" {
  secret_id = aws_secretsmanager_secret.redis.id
  secret_string = jsonencode({
    url = "rediss://${local.redis_users.service.user_name}:${random_password.redis["service"].result}@${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379/0"
  })
}

# redis_exporter's read-only user (deploy/monitoring/kube-prometheus-stack/redis-exporter.yaml).
resource "aws_secretsmanager_secret" "redis_exporter" {
  #checkov:skip=CKV2_AWS_57:an ElastiCache user password; terraform rotates it (random_password keepers), a Lambda rotator would fight terraform over it
  name                    = "${local.name}/redis-exporter"
  description             = "Address, user and password of the ${local.name} Redis read-only exporter user"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "redis_exporter" {
  secret_id = aws_secretsmanager_secret.redis_exporter.id
  secret_string = jsonencode({
    address  = "rediss://${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379"
    username = local.redis_users.exporter.user_name
    password = random_password.redis["exporter"].result
  })
}

# The admin API's bearer tokens, as digests only (lines "name:sha256:<hex>", see
# docs/operations.md), from var.admin_token_digests: the secret has a value
# from the first apply, before any workload mounts it (a secret without a
# version makes External Secrets fail the sync, the Secret never exists and the
# pods' required volume never mounts). External Secrets Operator copies it into
# the Secret pingpong-admin-tokens; a change of the variable and an apply
# rotates or revokes (docs/operations.md).
resource "aws_secretsmanager_secret" "admin_tokens" {
  #checkov:skip=CKV2_AWS_57:digests of operator tokens, rotated by the operators who hold the tokens (docs/operations.md)
  name                    = "${local.name}/admin-tokens"
  description             = "SHA-256 digests of the ${local.name} admin API tokens"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "admin_tokens" {
  secret_id     = aws_secretsmanager_secret.admin_tokens.id
  secret_string = join("\n", var.admin_token_digests)
}

# Who reads which secret: each namespace's SecretStore authenticates as a
# service account of its own (auth.jwt.serviceAccountRef) whose role reads
# that namespace's secrets and nothing else. External Secrets Operator itself
# has no AWS identity: a SecretStore without auth gets no credentials, so no
# namespace that may create a SecretStore can borrow another's access (ESO
# docs, "AWS Access" and "Security Best Practices"; the Kyverno policy
# deploy/k8s/policies/restrict-secret-stores.yaml refuses such a store).
locals {
  secret_readers = {
    pingpong = {
      namespace       = "pingpong"
      service_account = "pingpong-secrets"
      secrets         = [aws_secretsmanager_secret.redis.arn, aws_secretsmanager_secret.admin_tokens.arn]
    }
    monitoring = {
      namespace       = "monitoring"
      service_account = "redis-exporter-secrets"
      secrets         = [aws_secretsmanager_secret.redis_exporter.arn]
    }
  }
}

module "secret_reader" {
  source   = "./modules/secret-reader-role"
  for_each = local.secret_readers

  name              = "${local.name}-secrets-${each.key}"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_provider     = module.eks.oidc_provider
  namespace         = each.value.namespace
  service_account   = each.value.service_account
  secret_arns       = each.value.secrets
  kms_key_arn       = aws_kms_key.secrets.arn
}
