# Node failure: the automatic action.
#
# Why an Auto Scaling policy and not EC2 auto-recovery: the "recover" alarm
# action (arn:aws:automate:REGION:ec2:recover) needs one alarm per InstanceId,
# and the nodes are replaced and renamed by their Auto Scaling group all the
# time, so per-instance alarms made by Terraform would point at instances that
# no longer exist. The group itself already replaces a node that fails its EC2
# status checks (health check type EC2 or ELB), but only after the check has
# failed for a while and the node has been terminated.
#
# So each group gets an alarm on StatusCheckFailed aggregated over the group
# (dimension AutoScalingGroupName). It notifies the SNS topic and runs a simple
# scaling policy that adds one node at once: the pods of the failed node have
# somewhere to go before the group's own replacement arrives, and the 2-replica
# floor of pingpong comes back sooner. While the alarm stays in ALARM, CloudWatch
# runs the policy again each period, and the cooldown spaces the additions; the
# group's max_size bounds them. The extra node is removed by the cluster
# autoscaler (or the group's scale-in policy) once it is idle.
resource "aws_autoscaling_policy" "node_surge" {
  for_each = var.node_surge_enabled ? toset(var.node_asg_names) : toset([])

  name                   = "${var.name}-node-surge"
  autoscaling_group_name = each.value
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = 1
  cooldown               = 600
}

resource "aws_cloudwatch_metric_alarm" "node_status_check" {
  for_each = toset(var.node_asg_names)

  alarm_name          = "${var.name}-node-status-check-${each.value}"
  alarm_description   = "A node of Auto Scaling group ${each.value} fails its EC2 status checks; one node is added at once. Runbook: docs/runbooks.md#cloudwatch-node-status-check"
  namespace           = "AWS/EC2"
  metric_name         = "StatusCheckFailed"
  dimensions          = { AutoScalingGroupName = each.value }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  # A group without running nodes publishes nothing; the HealthyHostCount alarm
  # covers that case.
  treat_missing_data = "notBreaching"
  alarm_actions = concat(
    local.alarm_topic,
    var.node_surge_enabled ? [aws_autoscaling_policy.node_surge[each.value].arn] : [],
  )
  ok_actions = local.alarm_topic
  tags       = var.tags
}
