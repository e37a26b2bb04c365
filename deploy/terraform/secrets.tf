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

# The stack's three secrets, each with a value from the first apply (a secret
# without a version makes External Secrets fail the sync, the Secret never
# exists and the pods' required volume never mounts):
#   redis-url       rediss:// URL of pingpong's ElastiCache user (elasticache.tf)
#   redis-exporter  address, user and password of redis_exporter's read-only
#                   user (deploy/monitoring/kube-prometheus-stack/redis-exporter.yaml)
#   admin-tokens    the admin API's bearer tokens as digests only (lines
#                   "name:sha256:<hex>", docs/operations.md) from
#                   var.admin_token_digests: a change and an apply rotates or revokes
locals {
  secrets = {
    redis-url = {
      description = "rediss:// URL of the ${local.name} rate-limit store, with its auth token"
      value = jsonencode({
        url = "rediss://${local.redis_users.service.user_name}:${random_password.redis["service"].result}@${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379/0"
      })
    }
    redis-exporter = {
      description = "Address, user and password of the ${local.name} Redis read-only exporter user"
      value = jsonencode({
        address  = "rediss://${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379"
        username = local.redis_users.exporter.user_name
        password = random_password.redis["exporter"].result
      })
    }
    admin-tokens = {
      description = "SHA-256 digests of the ${local.name} admin API tokens"
      value       = join("\n", var.admin_token_digests)
    }
  }
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:ElastiCache user passwords rotate with terraform (random_password keepers) and token digests with the operators who hold the tokens; a Lambda rotator would fight terraform over them
  for_each = local.secrets

  name                    = "${local.name}/${each.key}"
  description             = each.value.description
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "this" {
  for_each = local.secrets

  secret_id     = aws_secretsmanager_secret.this[each.key].id
  secret_string = each.value.value
}

moved {
  from = aws_secretsmanager_secret.redis
  to   = aws_secretsmanager_secret.this["redis-url"]
}

moved {
  from = aws_secretsmanager_secret_version.redis
  to   = aws_secretsmanager_secret_version.this["redis-url"]
}

moved {
  from = aws_secretsmanager_secret.redis_exporter
  to   = aws_secretsmanager_secret.this["redis-exporter"]
}

moved {
  from = aws_secretsmanager_secret_version.redis_exporter
  to   = aws_secretsmanager_secret_version.this["redis-exporter"]
}

moved {
  from = aws_secretsmanager_secret.admin_tokens
  to   = aws_secretsmanager_secret.this["admin-tokens"]
}

moved {
  from = aws_secretsmanager_secret_version.admin_tokens
  to   = aws_secretsmanager_secret_version.this["admin-tokens"]
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
      secrets         = ["redis-url", "admin-tokens"]
    }
    monitoring = {
      namespace       = "monitoring"
      service_account = "redis-exporter-secrets"
      secrets         = ["redis-exporter"]
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
  secret_arns       = [for s in each.value.secrets : aws_secretsmanager_secret.this[s].arn]
  kms_key_arn       = aws_kms_key.secrets.arn
}
