"""Prometheus: the scrape config, the rule files and their promtool unit tests."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from pingpong_toolkit.commands import run

from . import helpers as mh

UNIT_TESTS = sorted((mh.PROMETHEUS / "tests").glob("*.test.yml"))
WINDOWS = ["5m", "30m", "1h", "6h", "3d"]
PER_WINDOW = [
    "job:pingpong_ping_requests:rate{w}",
    "job:pingpong_ping_errors:rate{w}",
    "job:pingpong_ping_throttled:rate{w}",
    "job:pingpong_ping_errors_per_request:ratio_rate{w}",
    "job:pingpong_ping_throttled_per_request:ratio_rate{w}",
    "job:pingpong_ping_slow_per_request:ratio_rate{w}",
]


def test_promtool_check_config() -> None:
    result = run([mh.PROMTOOL, "check", "config", "prometheus.yml"], cwd=mh.PROMETHEUS)
    # check config also checks the rule files it names; make sure it named ours.
    for path in mh.RULE_FILES:
        assert f"rules/{path.name}" in result.stdout + result.stderr


def test_scrape_config_has_the_jobs_the_rules_and_dashboards_use() -> None:
    config = yaml.safe_load((mh.PROMETHEUS / "prometheus.yml").read_text())
    jobs = {sc["job_name"]: sc for sc in config["scrape_configs"]}
    assert {"pingpong", "pingpong-probe", "redis", "cadvisor"} <= jobs.keys()
    assert jobs["pingpong-probe"]["params"]["module"] == ["http_ping"]
    blackbox = yaml.safe_load(mh.BLACKBOX_CONFIG.read_text())
    assert "http_ping" in blackbox["modules"]
    assert sorted(config["rule_files"]) == sorted(f"rules/{p.name}" for p in mh.RULE_FILES)
    assert config["alerting"]["alertmanagers"], "no Alertmanager configured"


def test_promtool_check_rules() -> None:
    run([mh.PROMTOOL, "check", "rules", *map(str, mh.RULE_FILES)])


def test_promtool_check_rules_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The check is real: a rule with broken PromQL fails it."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n  - name: x\n    rules:\n"
        "      - record: a:b:c\n        expr: sum(rate(x[5m])\n"  # unbalanced parenthesis
    )
    assert run([mh.PROMTOOL, "check", "rules", str(broken)], check=False).returncode != 0


@pytest.fixture(scope="module")
def unit_test_results() -> dict[str, subprocess.CompletedProcess[str]]:
    """Run every promtool unit-test file at once (they are independent, and the
    long-window ones take several seconds each); each test asserts on its own."""

    def run_one(path: Path) -> tuple[str, subprocess.CompletedProcess[str]]:
        result = run(
            [mh.PROMTOOL, "test", "rules", path.name], cwd=path.parent, timeout=180, check=False
        )
        return path.name, result

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run_one, UNIT_TESTS))


def test_there_are_unit_tests() -> None:
    names = {p.name for p in UNIT_TESTS}
    assert {
        "availability-burn.test.yml",
        "slow-burn.test.yml",
        "latency-burn.test.yml",
        "quiet.test.yml",
        "health.test.yml",
    } <= names


@pytest.mark.parametrize("name", [p.name for p in UNIT_TESTS])
def test_promtool_test_rules(
    unit_test_results: dict[str, subprocess.CompletedProcess[str]], name: str
) -> None:
    result = unit_test_results[name]
    assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
    assert "SUCCESS" in result.stdout


def test_unit_tests_cover_every_alert() -> None:
    """Each alert is exercised by at least one promtool unit test."""
    tested = "\n".join(p.read_text() for p in UNIT_TESTS)
    missing = [r["alert"] for r in mh.alert_rules() if f"alertname: {r['alert']}" not in tested]
    assert not missing, f"alerts without a promtool unit test: {missing}"


def test_every_window_has_every_sli_series() -> None:
    recorded = mh.recorded_series()
    expected = {name.format(w=w) for w in WINDOWS for name in PER_WINDOW}
    assert expected <= recorded, sorted(expected - recorded)
    for extra in [
        "job:pingpong_ping_availability:ratio_rate5m",
        "job:pingpong_ping_latency:ratio_rate5m",
        "job:pingpong_ping_availability:ratio_rate30d",
        "job:pingpong_ping_latency:ratio_rate30d",
        "job:pingpong_availability_error_budget_remaining:ratio30d",
        "job:pingpong_latency_error_budget_remaining:ratio30d",
    ]:
        assert extra in recorded


def test_ratios_are_nan_safe() -> None:
    """Every ratio divides by "(... > 0)", so no traffic gives no sample, not NaN."""
    for rule in mh.load_rules():
        name = rule.get("record", "")
        if ":ratio_rate" in name and "/" in rule["expr"]:
            assert "> 0)" in rule["expr"], f"{name} divides without a '> 0' guard"


def test_rules_read_only_series_that_are_recorded() -> None:
    recorded = mh.recorded_series()
    for rule in mh.load_rules():
        used = set(mh.RECORDED_NAME.findall(rule["expr"]))
        assert used <= recorded, (
            f"{rule.get('record') or rule.get('alert')} reads unknown series {used - recorded}"
        )


def test_alerts_share_a_group_with_the_series_they_read() -> None:
    """Rules of one group run in order; across groups an alert could read values
    one evaluation old (and the promtool tests would be flaky)."""
    rules = mh.load_rules()
    group_of = {r["record"]: r["_group"] for r in rules if "record" in r}
    for rule in rules:
        if "alert" in rule:
            for name in mh.RECORDED_NAME.findall(rule["expr"]):
                assert group_of[name] == rule["_group"], (
                    f"{rule['alert']} reads {name} from another group"
                )


def test_burn_rate_thresholds_follow_the_workbook() -> None:
    exprs = {r["alert"]: " ".join(r["expr"].split()) for r in mh.alert_rules()}
    fast = exprs["PingpongErrorBudgetBurnFast"]
    assert "ratio_rate1h > (14.4 * 0.001)" in fast and "ratio_rate5m > (14.4 * 0.001)" in fast
    medium = exprs["PingpongErrorBudgetBurnMedium"]
    assert "ratio_rate6h > (6 * 0.001)" in medium and "ratio_rate30m > (6 * 0.001)" in medium
    slow = exprs["PingpongErrorBudgetBurnSlow"]
    assert "ratio_rate3d > (1 * 0.001)" in slow and "ratio_rate6h > (1 * 0.001)" in slow
