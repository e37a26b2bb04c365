# Alarms on the ElastiCache Redis members (namespace AWS/ElastiCache,
# dimension CacheClusterId), from the metrics AWS recommends watching
# (ElastiCache user guide, "Which metrics should I monitor?"):
#   EngineCPUUtilization            the Redis thread itself (CPUUtilization
#                                   averages over all cores of the node)
#   DatabaseMemoryUsagePercentage   share of maxmemory used; near 100 %
#                                   Redis evicts keys
#   Evictions                       keys dropped for memory: rate-limit state
#                                   lost, clients get fresh quotas
#   ReplicationLag                  replicas only: what a failover loses
# Each notifies the alarm topic; missing data is not a breach (a primary
# publishes no ReplicationLag).

locals {
  redis_ns = "AWS/ElastiCache"
  redis_metrics = {
    engine_cpu = {
      metric    = "EngineCPUUtilization"
      stat      = "Average"
      threshold = var.redis_engine_cpu_threshold_percent
      what      = "Redis engine CPU above ${var.redis_engine_cpu_threshold_percent} %"
    }
    memory = {
      metric    = "DatabaseMemoryUsagePercentage"
      stat      = "Maximum"
      threshold = var.redis_memory_threshold_percent
      what      = "Redis memory above ${var.redis_memory_threshold_percent} % of maxmemory"
    }
    evictions = {
      metric    = "Evictions"
      stat      = "Sum"
      threshold = 0
      what      = "Redis evicted keys (rate-limit state lost)"
    }
    replication_lag = {
      metric    = "ReplicationLag"
      stat      = "Maximum"
      threshold = var.redis_replication_lag_threshold_seconds
      what      = "Redis replica more than ${var.redis_replication_lag_threshold_seconds} s behind"
    }
  }
  redis_alarms = merge([
    for cluster in var.redis_cluster_ids : {
      for key, m in local.redis_metrics : "${cluster}-${key}" => merge(m, { cluster = cluster, key = key })
    }
  ]...)
}

resource "aws_cloudwatch_metric_alarm" "redis" {
  for_each = local.redis_alarms

  alarm_name          = "${var.name}-redis-${each.key}"
  alarm_description   = "${each.value.what} on ${each.value.cluster} for 5 minutes. Runbook: docs/runbooks.md#cloudwatch-elasticache-redis"
  namespace           = local.redis_ns
  metric_name         = each.value.metric
  dimensions          = { CacheClusterId = each.value.cluster }
  statistic           = each.value.stat
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic
  tags                = var.tags
}
