# The dead man's switch, outside the cluster it watches. kube-prometheus-stack's
# Watchdog alert always fires; Alertmanager sends it every minute to the
# heartbeat topic (alertmanager.yml, receiver deadmans-switch). When
# Prometheus stops evaluating, Alertmanager stops sending, or the path between
# them or to SNS breaks, the topic's NumberOfMessagesPublished drops to
# nothing, and this alarm pages through the alarm topic, which does not depend
# on any of them. SNS pushes its metrics to CloudWatch every five minutes
# (Amazon SNS developer guide, "Monitoring Amazon SNS topics using
# CloudWatch"), so the period is 5 minutes and two empty ones page: within
# 10-15 minutes of the pipeline's death. Missing data is the very failure
# watched: breaching.
resource "aws_cloudwatch_metric_alarm" "alerting_heartbeat" {
  alarm_name          = "${var.name}-alerting-pipeline-heartbeat"
  alarm_description   = "No Watchdog heartbeat from Alertmanager on ${aws_sns_topic.heartbeat.name} for 10 minutes: Prometheus or Alertmanager is down, no alert can page. Runbook: docs/runbooks.md#cloudwatch-alerting-pipeline-heartbeat"
  namespace           = "AWS/SNS"
  metric_name         = "NumberOfMessagesPublished"
  dimensions          = { TopicName = aws_sns_topic.heartbeat.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_topic
  ok_actions          = local.alarm_topic
  tags                = var.tags
}
