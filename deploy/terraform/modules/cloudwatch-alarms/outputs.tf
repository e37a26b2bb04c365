output "sns_topic_arn" {
  description = "ARN of the alarm SNS topic (KMS-encrypted); other alarms can notify it too."
  value       = aws_sns_topic.alarms.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the alarm topic."
  value       = aws_kms_key.alarms.arn
}

output "alarm_arns" {
  description = "ARNs of the alarms, by name."
  value = merge(
    { for alarm in aws_cloudwatch_metric_alarm.alb_5xx_ratio : "alb_5xx_ratio" => alarm.arn },
    { for alarm in aws_cloudwatch_metric_alarm.alb_p99_latency : "alb_p99_latency" => alarm.arn },
    { for alarm in aws_cloudwatch_metric_alarm.alb_healthy_hosts : "alb_healthy_hosts" => alarm.arn },
    { for asg, alarm in aws_cloudwatch_metric_alarm.node_status_check : "node_status_check_${asg}" => alarm.arn },
    { for key, alarm in aws_cloudwatch_metric_alarm.redis : "redis_${key}" => alarm.arn },
    { alerting_heartbeat = aws_cloudwatch_metric_alarm.alerting_heartbeat.arn },
  )
}

output "alertmanager_topic_arns" {
  description = "ARNs of the SNS topics Alertmanager publishes to (alertmanager.yml receivers), by receiver."
  value = {
    pingpong-page   = aws_sns_topic.alarms.arn
    pingpong-ticket = aws_sns_topic.tickets.arn
    deadmans-switch = aws_sns_topic.heartbeat.arn
  }
}
