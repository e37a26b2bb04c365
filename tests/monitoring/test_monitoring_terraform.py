"""The CloudWatch alarms Terraform module: format, checkov, and its interface."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from pingpong_toolkit.commands import run

from . import helpers as mh

# What deploy/terraform passes to the module; these inputs must stay, required,
# and every other input needs a default.
# alb_arn_suffix defaults to "" (no ALB alarms before
# the ALB exists), redis_cluster_ids to [] (no ElastiCache alarms without a Redis).
REQUIRED_INPUTS = {
    "name",
    "alarm_emails",
    "node_asg_names",
}


def duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", text))


def module_text() -> str:
    return "\n".join(p.read_text() for p in sorted(mh.CLOUDWATCH_MODULE.glob("*.tf")))


def variables() -> dict[str, str]:
    """variable name -> body of its block (the module's blocks are formatted by
    terraform fmt, so each one ends with a "}" alone on a line)."""
    return dict(
        re.findall(r'^variable "(\w+)" \{\n(.*?)^\}', module_text(), re.MULTILINE | re.DOTALL)
    )


def test_terraform_fmt_check() -> None:
    run(["terraform", "fmt", "-check", "-diff", "-recursive", str(mh.CLOUDWATCH_MODULE)])


def test_module_inputs() -> None:
    found = variables()
    assert found.keys() >= REQUIRED_INPUTS
    required = {
        name
        for name, body in found.items()
        if not re.search(r"^\s*default\s*=", body, re.MULTILINE)
    }
    assert required == REQUIRED_INPUTS, f"inputs without a default: {required}"
    assert re.search(r"type\s*=\s*list\(string\)", found["alarm_emails"])
    assert re.search(r"type\s*=\s*list\(string\)", found["node_asg_names"])


def test_alb_node_and_elasticache_alarms() -> None:
    text = module_text()
    for metric in (
        "HTTPCode_Target_5XX_Count",
        "HTTPCode_ELB_5XX_Count",
        "RequestCount",
        "TargetResponseTime",
        "StatusCheckFailed",
    ):
        assert f'"{metric}"' in text
    assert 'extended_statistic  = "p99"' in text
    found = re.search(
        r'resource "aws_cloudwatch_metric_alarm" "alb_healthy_hosts" \{(.*?)^\}',
        text,
        re.MULTILINE | re.DOTALL,
    )
    assert found, "no alb_healthy_hosts alarm"
    healthy = found.group(1)
    assert re.search(r'treat_missing_data\s*=\s*"breaching"', healthy)
    assert re.search(r'comparison_operator\s*=\s*"LessThanThreshold"', healthy)
    assert re.search(r"kms_master_key_id\s*=\s*aws_kms_key\.alarms\.arn", text)
    alarms = re.findall(
        r'^resource "aws_cloudwatch_metric_alarm" "(\w+)" \{(.*?)^\}',
        text,
        re.MULTILINE | re.DOTALL,
    )
    # 3 ALB alarms, the node status check, the ElastiCache alarms (for_each),
    # the alerting pipeline's heartbeat.
    assert len(alarms) == 6
    for name, body in alarms:
        assert "alarm_actions" in body and "ok_actions" in body, name


def test_a_failed_node_is_replaced_and_nothing_is_left_to_scale_in() -> None:
    """No Auto Scaling policy grows the node group: nothing would shrink it
    again (no cluster-autoscaler; Karpenter only removes the nodes it
    launched, karpenter.sh docs "Disruption": it acts on NodeClaims). Pods
    of a failed node go Pending and Karpenter adds a node for them
    (karpenter.sh "Concepts": it watches unschedulable pods), while EKS node
    auto repair replaces the failed node in the managed group (EKS user guide,
    "Automatically repair nodes in EKS clusters": node_repair_config on the
    group, health from the eks-node-monitoring-agent add-on). The status
    check alarm only pages."""
    text = module_text()
    assert "aws_autoscaling_policy" not in text
    assert "node_surge" not in text
    alarm = mh.CLOUDWATCH_MODULE / "nodes.tf"
    actions = re.search(r"alarm_actions\s*=\s*(\S+)", alarm.read_text())
    assert actions and actions.group(1) == "local.alarm_topic"
    eks = (mh.CLOUDWATCH_MODULE.parents[1] / "eks.tf").read_text()
    group = eks[eks.index("eks_managed_node_groups") :]
    assert re.search(r"node_repair_config\s*=\s*\{\s*enabled\s*=\s*true", group)
    assert re.search(r"eks-node-monitoring-agent\s*=", eks[: eks.index("eks_managed_node_groups")])


def test_checkov_skips_carry_a_reason() -> None:
    for line in module_text().splitlines():
        if "checkov:skip=" in line:
            assert re.search(r"checkov:skip=CKV2?_\w+:\s*\S.{10,}", line), (
                f"skip without a reason: {line.strip()}"
            )


def test_checkov(tmp_path: Path) -> None:
    result = run(
        [
            "checkov",
            "--directory",
            str(mh.CLOUDWATCH_MODULE),
            "--framework",
            "terraform",
            "--skip-download",  # no network: no guidelines from the Prisma Cloud API
            "--output",
            "json",
            "--output-file-path",
            str(tmp_path),
        ],
        timeout=180,
        check=False,
    )
    report_file = tmp_path / "results_json.json"
    assert report_file.is_file(), f"checkov wrote no report:\n{result.stdout}\n{result.stderr}"
    report = json.loads(report_file.read_text())
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and not failed, failed
    assert summary["passed"] > 10
    assert summary["parsing_errors"] == 0
    assert result.returncode == 0, result.stderr


def _alarm(name: str) -> str:
    found = re.search(
        rf'^resource "aws_cloudwatch_metric_alarm" "{name}" \{{(.*?)^\}}',
        module_text(),
        re.MULTILINE | re.DOTALL,
    )
    assert found, f"no {name} alarm"
    return found.group(1)


def test_alb_alarms_watch_both_ping_pong_target_groups() -> None:
    """argo-rollouts docs/features/traffic-management/alb.md (ping-pong): each
    release comes up behind the idle one of pingpong-ping / pingpong-pong, so
    the stable target group alternates. An alarm pinned to one TargetGroup
    pages falsely (missing data, breaching) and then watches an idle group.
    TargetResponseTime is published per LoadBalancer too (ELB user guide,
    "CloudWatch metrics for your Application Load Balancer", dimensions);
    HealthyHostCount only per target group, so the alarm takes the MAX over
    every target group of the load balancer with a Metrics Insights query
    (CloudWatch user guide, "Create alarms on Metrics Insights queries")."""
    assert "target_group_arn_suffix" not in module_text()
    p99 = _alarm("alb_p99_latency")
    assert re.search(r"dimensions\s*=\s*\{\s*LoadBalancer = var\.alb_arn_suffix\s*\}", p99)
    healthy = _alarm("alb_healthy_hosts")
    query = re.search(r'expression\s*=\s*"(SELECT .*?)"\n', healthy)
    assert query, "HealthyHostCount must come from a Metrics Insights query"
    sql = query.group(1)
    assert sql.startswith("SELECT MAX(HealthyHostCount)")
    assert 'SCHEMA(\\"AWS/ApplicationELB\\", LoadBalancer, TargetGroup)' in sql
    assert "WHERE LoadBalancer = '${var.alb_arn_suffix}'" in sql
    assert "GROUP BY" not in sql  # one series: the best-served group


def test_a_dead_alerting_pipeline_pages_through_cloudwatch() -> None:
    """Alertmanager's Watchdog route publishes to the heartbeat topic at least
    once per alarm period; the alarm on that topic's NumberOfMessagesPublished
    pages through the alarm topic when it stops, missing data breaching."""
    config = yaml.safe_load(mh.ALERTMANAGER_CONFIG.read_text())
    (watchdog,) = [
        r for r in config["route"]["routes"] if r["matchers"] == ['alertname = "Watchdog"']
    ]
    receivers = {r["name"]: r for r in config["receivers"]}
    (sns,) = receivers[watchdog["receiver"]]["sns_configs"]
    assert sns["topic_arn"].endswith(":${STACK_NAME}-heartbeat")
    heartbeat = _alarm("alerting_heartbeat")
    assert 'namespace           = "AWS/SNS"' in heartbeat
    assert 'metric_name         = "NumberOfMessagesPublished"' in heartbeat
    assert "TopicName = aws_sns_topic.heartbeat.name" in heartbeat
    assert re.search(r'treat_missing_data\s*=\s*"breaching"', heartbeat)
    assert re.search(r"alarm_actions\s*=\s*local\.alarm_topic", heartbeat)
    period = int(re.search(r"period\s*=\s*(\d+)", heartbeat).group(1))  # type: ignore[union-attr]
    assert duration_seconds(watchdog["repeat_interval"]) * 2 <= period
