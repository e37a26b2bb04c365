"""The PrometheusRules and the Alertmanager chart values that reach the
cluster are the tested sources, unchanged (one source of truth: promtool and
amtool test the files under deploy/monitoring, and the Prometheus Operator
loads PrometheusRule.spec.groups exactly as a rule file's groups, per its API
reference)."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from pingpong_toolkit.commands import run

from . import helpers as mh

KPS = mh.REPO / "deploy" / "monitoring" / "kube-prometheus-stack"


def test_generated_files_are_current() -> None:
    run([sys.executable, str(KPS / "generate.py"), "--check"])


def test_prometheus_rules_equal_the_rule_files() -> None:
    generated = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((KPS / "prometheusrules.yaml").read_text())
    }
    sources = sorted(Path(mh.REPO / "deploy/monitoring/prometheus/rules").glob("*.yml"))
    assert sorted(generated) == [p.stem for p in sources]
    for path in sources:
        assert generated[path.stem]["spec"]["groups"] == yaml.safe_load(path.read_text())["groups"]
