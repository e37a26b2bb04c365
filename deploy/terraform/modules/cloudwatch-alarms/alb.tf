# Alarms on the application load balancer in front of pingpong. Each alarm
# notifies the SNS topic when it fires (alarm_actions) and when it clears
# (ok_actions).

locals {
  alarm_topic = [aws_sns_topic.alarms.arn]
  alb_ns      = "AWS/ApplicationELB"

  # The ALB is made by the AWS Load Balancer Controller at the first deploy,
  # after the first apply. CloudWatch rejects a PutMetricAlarm whose
  # dimension value is empty (InvalidParameterValue: dimension values must
  # be 1-1024 characters), so until the suffix is known these alarms are
  # not created at all; docs/deploy.md step 9 sets it and applies again.
  # No TargetGroup is pinned: with Argo's ping-pong routing the group that
  # serves alternates per release (pingpong-ping / pingpong-pong), so every
  # alarm here watches the load balancer, or every group behind it.
  alb_known = var.alb_arn_suffix != ""
  alb_count = local.alb_known ? 1 : 0
}

# 5xx share of the requests, by metric math:
#   (HTTPCode_Target_5XX_Count + HTTPCode_ELB_5XX_Count) / RequestCount
# The ALB publishes a count only for minutes in which it is not zero, so every
# metric is FILLed with 0 first, and the IF keeps the ratio defined:
#   no request and no 5xx                  -> 0   (a quiet service is healthy)
#   no RequestCount but ELB 5xx            -> 100 (no target could be chosen: the
#                                                  ALB answered 503 itself)
#   otherwise                              -> 100 * 5xx / requests
# All three metrics use the LoadBalancer dimension: HTTPCode_ELB_5XX_Count has
# no TargetGroup dimension, and the load balancer serves pingpong alone.
resource "aws_cloudwatch_metric_alarm" "alb_5xx_ratio" {
  count = local.alb_count

  alarm_name          = "${var.name}-alb-5xx-ratio"
  alarm_description   = "More than ${var.error_ratio_threshold_percent} % of the requests to ${var.name} got a 5xx (target or load balancer) in 3 of the last 5 minutes. Runbook: docs/runbooks.md#cloudwatch-alb-5xx-ratio"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.error_ratio_threshold_percent
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic
  tags                = var.tags

  metric_query {
    id          = "error_ratio"
    label       = "5xx share of requests (%)"
    expression  = "IF(requests > 0, 100 * errors / requests, IF(errors > 0, 100, 0))"
    return_data = true
  }

  metric_query {
    id         = "errors"
    label      = "5xx responses"
    expression = "FILL(target_5xx, 0) + FILL(elb_5xx, 0)"
  }

  metric_query {
    id         = "requests"
    label      = "Requests"
    expression = "FILL(request_count, 0)"
  }

  metric_query {
    id = "target_5xx"
    metric {
      namespace   = local.alb_ns
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "elb_5xx"
    metric {
      namespace   = local.alb_ns
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }

  metric_query {
    id = "request_count"
    metric {
      namespace   = local.alb_ns
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      period      = 60
      stat        = "Sum"
    }
  }
}

# p99 of the time from the load balancer sending a request to pingpong until
# the response starts, over every target group (the LoadBalancer dimension
# alone). No request means no data, which is not a breach.
resource "aws_cloudwatch_metric_alarm" "alb_p99_latency" {
  count = local.alb_count

  alarm_name          = "${var.name}-alb-p99-target-response-time"
  alarm_description   = "p99 TargetResponseTime of ${var.name} above ${var.p99_latency_threshold_seconds} s for 15 minutes. Runbook: docs/runbooks.md#cloudwatch-alb-p99-target-response-time"
  namespace           = local.alb_ns
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  extended_statistic  = "p99"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.p99_latency_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic
  tags                = var.tags
}

# Fewer than two healthy targets leaves no redundancy. HealthyHostCount exists
# only per target group; a Metrics Insights query takes, each minute, the
# largest count among the load balancer's target groups: the group that
# serves (the idle ping-pong group has none, or the same pods). Missing data
# is a breach: no group publishing HealthyHostCount is the worst case, not a
# quiet one.
resource "aws_cloudwatch_metric_alarm" "alb_healthy_hosts" {
  count = local.alb_count

  alarm_name          = "${var.name}-alb-healthy-host-count"
  alarm_description   = "Fewer than ${var.min_healthy_hosts} healthy ${var.name} targets in every target group behind the load balancer for 2 minutes. Runbook: docs/runbooks.md#cloudwatch-alb-healthy-host-count"
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "LessThanThreshold"
  threshold           = var.min_healthy_hosts
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic
  tags                = var.tags

  metric_query {
    id          = "healthy"
    label       = "Healthy targets of the serving target group"
    expression  = "SELECT MAX(HealthyHostCount) FROM SCHEMA(\"AWS/ApplicationELB\", LoadBalancer, TargetGroup) WHERE LoadBalancer = '${var.alb_arn_suffix}'"
    period      = 60
    return_data = true
  }
}
