"""Grafana: dashboards typed against @grafana/schema, every panel query parsed by
promtool, and the provisioning files."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from pingpong_toolkit.commands import require, run

from . import helpers as mh

TYPES_MODULE = mh.GRAFANA_TOOLS / "dashboard-types"

# Grafana's built-in interval variables, replaced by a duration before promtool
# parses the query; any other $variable sits inside a label matcher and becomes ".*".
TIME_VARIABLES = re.compile(
    r"\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}"
)
OTHER_VARIABLES = re.compile(r"\$\{\w+\}|\$\w+")


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(panel title, refId, expr) of every Prometheus query in the dashboard."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel.get("title", ""), target.get("refId", ""), target.get("expr", "")


def to_promql(expr: str) -> str:
    return OTHER_VARIABLES.sub(".*", TIME_VARIABLES.sub("5m", expr))


def test_the_dashboards_exist() -> None:
    names = {p.stem for p in mh.DASHBOARDS}
    assert {
        "pingpong-red",
        "pingpong-throttling",
        "pingpong-storage",
        "pingpong-slo",
        "pingpong-network",
    } <= names


def _type_check(
    tmp_path: Path, sources: dict[str, str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Write each dashboard as `const dashboard: PingpongDashboard = <json>;` and
    run tsc --noEmit over them (``check``: fail the test unless tsc passes)."""
    files: list[str] = []
    for stem, text in sources.items():
        ts = tmp_path / f"{stem.replace('-', '_')}.ts"
        ts.write_text(
            f"import type {{ PingpongDashboard }} from {json.dumps(str(TYPES_MODULE))};\n\n"
            f"export const dashboard: PingpongDashboard = {text.strip()};\n"
        )
        files.append(ts.name)
    tsconfig = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "target": "es2022",
            "module": "esnext",
            "moduleResolution": "bundler",
            "skipLibCheck": True,
            "types": [],
        },
        "files": files,
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(tsconfig, indent=2))
    return run(["tsc", "--noEmit", "-p", "tsconfig.json"], cwd=tmp_path, timeout=120, check=check)


def test_dashboards_have_the_grafana_schema_types(tmp_path: Path) -> None:
    require("node")
    _type_check(tmp_path, {p.stem: p.read_text() for p in mh.DASHBOARDS})


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "missing_field": (lambda d: d.pop("schemaVersion"), "schemaVersion"),
    "unknown_property": (lambda d: d["panels"][1].update(titel="typo"), "titel"),
    "wrong_type": (lambda d: d["panels"][1]["gridPos"].update(h="8"), "number"),
    "query_without_refid": (lambda d: d["panels"][1]["targets"][0].pop("refId"), "refId"),
    "bad_enum": (
        lambda d: d["panels"][1]["fieldConfig"]["defaults"]["thresholds"].update(mode="absolut"),
        "absolut",
    ),
}


def test_type_check_fails_on_schema_violations(tmp_path: Path) -> None:
    """The check is real: each broken copy of a dashboard gets its own error."""
    sources: dict[str, str] = {}
    for name, (mutate, _) in MUTATIONS.items():
        dashboard = load(mh.DASHBOARDS[0])
        mutate(dashboard)
        sources[name] = json.dumps(dashboard, indent=2)
    result = _type_check(tmp_path, sources, check=False)
    assert result.returncode != 0
    for name, (_, message) in MUTATIONS.items():
        errors = [line for line in result.stdout.splitlines() if line.startswith(f"{name}.ts(")]
        assert any(message in line for line in errors), f"{name}: no error about {message!r}"


def test_panel_ids_are_unique_and_queries_complete() -> None:
    for path in mh.DASHBOARDS:
        dashboard = load(path)
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        assert dashboard["uid"] == path.stem
        for panel in panels(dashboard):
            if panel["type"] != "row":
                assert panel.get("targets"), f"{path.name}: panel {panel['title']!r} has no query"
                assert panel.get("description") is not None
        for title, ref, expr in queries(dashboard):
            assert ref and expr, f"{path.name}: panel {title!r} has a query without refId or expr"


def test_panels_fit_the_grid_without_overlapping() -> None:
    for path in mh.DASHBOARDS:
        taken: dict[tuple[int, int], str] = {}
        for panel in panels(load(path)):
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, f"{path.name}: {panel['title']}"
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in taken, (
                        f"{path.name}: {panel['title']!r} overlaps {taken[(x, y)]!r}"
                    )
                    taken[(x, y)] = panel["title"]


def test_panel_queries_parse_with_promtool(tmp_path: Path) -> None:
    """Every panel's PromQL goes into a generated rule file for promtool check rules."""
    rules: list[dict[str, Any]] = []
    for path in mh.DASHBOARDS:
        for n, (title, ref, expr) in enumerate(queries(load(path))):
            name = re.sub(r"\W", "_", f"grafana:{path.stem}_{n}_{ref}:panel")
            rules.append({"record": name, "expr": to_promql(expr), "labels": {"panel": title}})
    assert len(rules) > 40
    rule_file = tmp_path / "grafana-panels.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "grafana-panels", "rules": rules}]}))
    result = run([mh.PROMTOOL, "check", "rules", str(rule_file)])
    assert f"{len(rules)} rules found" in result.stdout


def test_panel_queries_use_only_recorded_series_that_exist() -> None:
    recorded = mh.recorded_series()
    for path in mh.DASHBOARDS:
        for title, _, expr in queries(load(path)):
            unknown = set(mh.RECORDED_NAME.findall(expr)) - recorded
            assert not unknown, f"{path.name}: panel {title!r} reads unknown series {unknown}"


def test_dashboards_cover_red_throttling_storage_slo_and_network() -> None:
    text = {p.stem: p.read_text() for p in mh.DASHBOARDS}
    assert "pingpong_http_request_duration_seconds_bucket" in text["pingpong-red"]
    assert "pingpong_ratelimit_decisions_total" in text["pingpong-throttling"]
    for metric in (
        "pingpong_storage_request_duration_seconds_bucket",
        "pingpong_storage_errors_total",
        "pingpong_storage_fallbacks_total",
        "pingpong_storage_circuit_open",
    ):
        assert metric in text["pingpong-storage"]
    assert "error_budget_remaining" in text["pingpong-slo"]
    for metric in ("probe_success", "container_network_receive_bytes_total"):
        assert metric in text["pingpong-network"]


def test_provisioning_matches_the_dashboards() -> None:
    datasources = yaml.safe_load(
        (mh.GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text()
    )
    prometheus = [d for d in datasources["datasources"] if d["type"] == "prometheus"]
    assert len(prometheus) == 1
    providers = yaml.safe_load(
        (mh.GRAFANA_PROVISIONING / "dashboards" / "pingpong.yml").read_text()
    )
    assert providers["apiVersion"] == 1
    assert providers["providers"][0]["type"] == "file"
    for path in mh.DASHBOARDS:
        variables = {v["name"]: v for v in load(path)["templating"]["list"]}
        assert variables["datasource"]["current"]["value"] == prometheus[0]["uid"]


def test_grafana_tools_are_pinned() -> None:
    package = json.loads((mh.GRAFANA_TOOLS / "package.json").read_text())
    for name, version in package["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned: {version}"
    assert (mh.GRAFANA_TOOLS / "package-lock.json").is_file()
