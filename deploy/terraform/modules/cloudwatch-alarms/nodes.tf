# Node failure: a page, and nothing to undo.
#
# Why no EC2 auto-recovery: the "recover" alarm action
# (arn:aws:automate:REGION:ec2:recover) needs one alarm per InstanceId, and the
# nodes are replaced and renamed by their Auto Scaling group all the time.
# Why no "+1 node" scaling policy: nothing would ever remove that node again
# (there is no cluster-autoscaler, and Karpenter only removes the nodes it
# launched), so every failure would leave the group one node larger.
#
# What recovers instead: the pods of the failed node go Pending and Karpenter
# adds a node for them within a minute or two (deploy/terraform/addons.tf),
# and EKS node auto repair replaces the failed node in the managed group
# (node_repair_config, deploy/terraform/eks.tf). Each group gets an alarm on
# StatusCheckFailed aggregated over the group (dimension AutoScalingGroupName)
# that pages, so a human sees a node that keeps failing.
resource "aws_cloudwatch_metric_alarm" "node_status_check" {
  for_each = toset(var.node_asg_names)

  alarm_name          = "${var.name}-node-status-check-${each.value}"
  alarm_description   = "A node of Auto Scaling group ${each.value} fails its EC2 status checks; EKS node auto repair replaces it, Karpenter places its pods. Runbook: docs/runbooks.md#cloudwatch-node-status-check"
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
  alarm_actions      = local.alarm_topic
  ok_actions         = local.alarm_topic
  tags               = var.tags
}
