"""Shared helpers for the monitoring-as-code tests.

The tests run the real tools (promtool, amtool, blackbox_exporter, Alertmanager,
tsc, terraform, checkov) found on PATH, through pingpong_toolkit's ``run`` and
``require``: a missing tool is a failure, never a skip (CI must not pass by
testing nothing), and a command that exits non-zero fails with its output unless
the test asks for ``check=False``. docs/monitoring.md says how to install them.
"""

from __future__ import annotations

import atexit
import itertools
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from pingpong_toolkit.commands import require, run
from pingpong_toolkit.processes import Process
from pingpong_toolkit.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "monitoring"
PROMETHEUS = MONITORING / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
ALERTMANAGER_CONFIG = MONITORING / "alertmanager" / "alertmanager.yml"
BLACKBOX_CONFIG = MONITORING / "blackbox" / "blackbox.yml"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
GRAFANA_PROVISIONING = MONITORING / "grafana" / "provisioning"
GRAFANA_TOOLS = REPO / "tools" / "grafana"
CLOUDWATCH_MODULE = REPO / "deploy" / "terraform" / "modules" / "cloudwatch-alarms"
RUNBOOKS = REPO / "docs" / "runbooks.md"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
KPS = MONITORING / "kube-prometheus-stack"
CHART_VERSIONS = REPO / "deploy" / "k8s" / "addons" / "chart-versions.env"

# Debian's package names for the binaries (prometheus, prometheus-alertmanager,
# prometheus-blackbox-exporter).
PROMTOOL = "promtool"
AMTOOL = "amtool"
ALERTMANAGER = "prometheus-alertmanager"
BLACKBOX_EXPORTER = "prometheus-blackbox-exporter"


def load_rules() -> list[dict[str, Any]]:
    """Every rule of every rule file, each with the file and group it came from."""
    rules: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                rules.append({**rule, "_file": path.name, "_group": group["name"]})
    return rules


def alert_rules() -> list[dict[str, Any]]:
    return [r for r in load_rules() if "alert" in r]


def recorded_series() -> set[str]:
    return {r["record"] for r in load_rules() if "record" in r}


# level:metric:operations -- a recording-rule name (at least two colons).
RECORDED_NAME = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_]+:[a-zA-Z0-9_]+\b")


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and GitLab) give a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def runbook_anchors() -> set[str]:
    anchors: set[str] = set()
    in_code = False
    for line in RUNBOOKS.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6}\s+(.*)", line)):
            anchors.add(github_anchor(m.group(1)))
    return anchors


@contextmanager
def serving(
    name: str, argv: Sequence[str], ready_url: str, log_dir: Path, timeout: float = 20
) -> Iterator[Process]:
    """``argv`` running, once ``ready_url`` answers 200; stopped when the block
    ends. A process that exits before it is ready fails the test at once."""
    process = Process.start(name, [require(argv[0]), *argv[1:]], log=log_dir / f"{name}.log")
    try:
        try:
            wait_until(
                lambda: not process.alive() or httpx.get(ready_url, timeout=1).status_code == 200,
                timeout,
            )
        except TimeoutError:
            pytest.fail(f"{ready_url} did not answer within {timeout} s:\n{process.tail()}")
        if not process.alive():
            pytest.fail(f"{name} exited before {ready_url} answered:\n{process.tail()}")
        yield process
    finally:
        process.stop()


def helm_command(release: str) -> list[str]:
    """The ``helm upgrade --install <release> ...`` command of docs/deploy.md,
    continuation lines joined, as its words: what a new user pastes."""
    text = DEPLOY_DOC.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith(f"helm upgrade --install {release} "):
            return shlex.split(line, comments=True)
    pytest.fail(f"docs/deploy.md installs no Helm release {release!r}")


def helm_values(release: str) -> dict[str, Any]:
    """The values Helm gives the chart from that command: ``-f`` files merged
    in order (maps deeply), then ``--set-file key=FILE`` (the file's text, a
    string) and ``--set key=value`` (Helm docs, helm_upgrade: "--set-file set
    values from respective files", "-f specify values in a YAML file")."""
    words = helm_command(release)
    values: dict[str, Any] = {}
    for flag, arg in itertools.pairwise(words):
        if flag in ("-f", "--values"):
            _merge(values, yaml.safe_load(guide_path(arg).read_text()))
        elif flag in ("--set-file", "--set"):
            key, _, value = arg.partition("=")
            text = guide_path(value).read_text() if flag == "--set-file" else value
            _merge(values, _nested(key.split("."), text))
    return values


def guide_path(name: str) -> Path:
    """A file a command of docs/deploy.md names. Under the directory the
    guide's ``generate.py --render DIR`` writes, it is that step's output."""
    target = re.search(r"generate\.py --render (\S+)", DEPLOY_DOC.read_text())
    if target and name.startswith(f"{target.group(1)}/"):
        return _rendered_monitoring() / name[len(target.group(1)) + 1 :]
    return REPO / name


@cache
def _rendered_monitoring() -> Path:
    """deploy/monitoring rendered with the environment, once per session."""
    out = Path(tempfile.mkdtemp(prefix="pingpong-monitoring-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    run([sys.executable, str(KPS / "generate.py"), "--render", str(out)])
    return out


def _nested(path: list[str], value: object) -> dict[str, Any]:
    return {path[0]: value if len(path) == 1 else _nested(path[1:], value)}


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def chart_version(word: str) -> str:
    """A ``--version`` argument of docs/deploy.md: a literal, or ``$NAME`` read
    from deploy/k8s/addons/chart-versions.env (which the steps source)."""
    if not word.startswith("$"):
        return word
    pins = dict(
        line.split("=", 1)
        for line in CHART_VERSIONS.read_text().splitlines()
        if line and not line.startswith("#")
    )
    return pins[word.lstrip("$")]
