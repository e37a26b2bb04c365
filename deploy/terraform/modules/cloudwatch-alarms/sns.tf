# The alarm topic: every alarm sends ALARM and OK notifications here, and the
# topic mails them to var.alarm_emails. It is encrypted with a customer-managed
# KMS key, whose policy lets CloudWatch (the only publisher) use it.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
}

resource "aws_kms_key" "alarms" {
  description             = "${var.name}: encrypts the CloudWatch alarm SNS topic"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.alarms_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "alarms" {
  name          = "alias/${var.name}-alarms"
  target_key_id = aws_kms_key.alarms.key_id
}

# A key policy's resource is always "*", which in a key policy means this key
# and nothing else; checkov's IAM-policy checks read it as "every resource".
data "aws_iam_policy_document" "alarms_key" {
  #checkov:skip=CKV_AWS_109:Key policy: "*" is this key only; the account root must administer its own key
  #checkov:skip=CKV_AWS_111:Key policy: "*" is this key only; CloudWatch is limited to this account by aws:SourceAccount
  #checkov:skip=CKV_AWS_356:Key policy: the resource of a KMS key policy can only be "*" (this key)
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.alarms.arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

# Alertmanager's two other receivers (deploy/monitoring/alertmanager/
# alertmanager.yml), on the same key: tickets (warning-level alerts, mailed
# to var.ticket_emails or taken in by a ticketing system's e-mail or HTTPS
# intake subscribed here) and the dead man's switch heartbeat (heartbeat.tf),
# which needs no subscriber. Alertmanager publishes through its Pod Identity
# role (deploy/terraform/addons.tf); the account-owner statement lets IAM
# policies grant that.
resource "aws_sns_topic" "tickets" {
  name              = "${var.name}-tickets"
  kms_master_key_id = aws_kms_key.alarms.arn
  tags              = var.tags
}

resource "aws_sns_topic" "heartbeat" {
  name              = "${var.name}-heartbeat"
  kms_master_key_id = aws_kms_key.alarms.arn
  tags              = var.tags
}

# One policy per topic: the account administers all three (so IAM policies,
# Alertmanager's Pod Identity role among them, can grant Publish), and
# CloudWatch may publish to the alarm topic, for this account's alarms only.
locals {
  topics = {
    alarms    = aws_sns_topic.alarms.arn
    tickets   = aws_sns_topic.tickets.arn
    heartbeat = aws_sns_topic.heartbeat.arn
  }
}

resource "aws_sns_topic_policy" "topic" {
  for_each = local.topics

  arn    = each.value
  policy = data.aws_iam_policy_document.topic[each.key].json
}

data "aws_iam_policy_document" "topic" {
  for_each = local.topics

  dynamic "statement" {
    for_each = each.key == "alarms" ? [each.value] : []
    content {
      sid       = "CloudWatchAlarmsPublish"
      actions   = ["sns:Publish"]
      resources = [statement.value]
      principals {
        type        = "Service"
        identifiers = ["cloudwatch.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [local.account_id]
      }
    }
  }

  statement {
    sid = "AccountOwnerManage"
    actions = [
      "sns:GetTopicAttributes",
      "sns:SetTopicAttributes",
      "sns:Subscribe",
      "sns:ListSubscriptionsByTopic",
      "sns:Publish",
    ]
    resources = [each.value]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

moved {
  from = aws_sns_topic_policy.alarms
  to   = aws_sns_topic_policy.topic["alarms"]
}

moved {
  from = aws_sns_topic_policy.alertmanager_topics["tickets"]
  to   = aws_sns_topic_policy.topic["tickets"]
}

moved {
  from = aws_sns_topic_policy.alertmanager_topics["heartbeat"]
  to   = aws_sns_topic_policy.topic["heartbeat"]
}

resource "aws_sns_topic_subscription" "ticket_email" {
  for_each = toset(var.ticket_emails)

  topic_arn = aws_sns_topic.tickets.arn
  protocol  = "email"
  endpoint  = each.value
}
