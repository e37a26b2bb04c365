"""Shared helpers for the monitoring-as-code tests.

The tests run the real tools (promtool, amtool, blackbox_exporter, Alertmanager,
tsc, terraform, checkov) found on PATH. A missing tool is a failure, never a
skip: CI must not pass by testing nothing. See docs/monitoring.md for how to
install them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

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

# Debian's package names for the binaries (prometheus, prometheus-alertmanager,
# prometheus-blackbox-exporter).
PROMTOOL = "promtool"
AMTOOL = "amtool"
ALERTMANAGER = "prometheus-alertmanager"
BLACKBOX_EXPORTER = "prometheus-blackbox-exporter"


def tool(name: str) -> str:
    """Absolute path of a tool on PATH; fails the test when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"required tool {name!r} is not on PATH (see docs/monitoring.md, 'Running the checks')"
        )
    return path


def run(
    cmd: list[str], *, timeout: float = 120, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run a command, capture its output; the caller checks the exit code."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, (
        f"{' '.join(map(str, result.args))} exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


def load_rules() -> list[dict]:
    """Every rule of every rule file, each with the file and group it came from."""
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                rules.append({**rule, "_file": path.name, "_group": group["name"]})
    return rules


def alert_rules() -> list[dict]:
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
    anchors = set()
    in_code = False
    for line in RUNBOOKS.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6}\s+(.*)", line)):
            anchors.add(github_anchor(m.group(1)))
    return anchors


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    """Wait until url answers 200, failing early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(
                f"{proc.args[0]} exited {proc.returncode} before {url} answered:\n{out}\n{err}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 (loopback)
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
