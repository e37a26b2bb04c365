"""`python -m bench --quick` works end to end: every configuration is measured,
and the table, the JSON file and the chart are written. (CI checks that the
suite runs, not the ratios: the machine is shared and noisy.)"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.env import ensure_peers_venv
from bench.servers import all_configs
from pingpong_toolkit.commands import require
from tests import REPO

FAMILIES = ("pingpong", "slowapi", "flask-limiter")
QuickRun = tuple[str, dict[str, Any], Path]  # stdout, latest.json, the output directory


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    require("wrk")
    require("redis-server")
    ensure_peers_venv()  # once per machine (about a minute), outside the run's own bound
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, f"bench failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout, json.loads((out / "latest.json").read_text()), out


@pytest.mark.slow
@pytest.mark.timeout(280)  # the fixture: the peers' install, if not done yet, then ~100 s
def test_every_configuration_is_measured(quick_run: QuickRun) -> None:
    stdout, data, _ = quick_run
    names = [c.name for c in all_configs()]
    assert list(data["summary"]) == names
    for name in names:
        summary = data["summary"][name]
        assert summary["rps"] > 0, name
        assert math.isfinite(summary["p50_ms"]) and summary["p50_ms"] > 0, name
        assert summary["p99_ms"] >= summary["p50_ms"], name
        assert summary["paced_rps"] > 0, name
        if name.endswith("-rejected"):
            assert summary["share_429"] > 0.9, name
        else:
            assert summary["share_429"] == 0, name
    for name in ("pingpong-redis-admitted", "pingpong-redis-rejected", "slowapi-redis-rejected"):
        assert data["summary"][name]["redis_calls_per_request"] > 0, name
    for name in ("pingpong-memory-admitted", "pingpong-redis-admitted"):
        assert "added_p99_ms" in data["summary"][name]
    table_rows = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert len(table_rows) >= len(names) + 1
    assert {t["id"] for t in data["targets"]} >= {"1", "2a", "2b", "3a", "3b", "4", "5", "6a", "7"}


@pytest.mark.slow
def test_accuracy_memory_and_outputs(quick_run: QuickRun) -> None:
    _, data, out = quick_run
    for family in FAMILIES:
        accuracy = data["accuracy"][family]
        assert accuracy["admitted"] > 0 and accuracy["rejected"] > 0, family
        assert accuracy["gcra_bound"] >= 100, family
    assert data["memory"]["bytes_per_key"] > 0
    assert data["memory"]["table_size_after_fill"] == data["memory"]["keys"]
    assert data["redis_keys"]["keys"] > 0
    assert data["machine"]["cpu"] and data["machine"]["python"]
    assert (out / "latest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "full.json").exists()  # a quick run never replaces the full one


def test_app_cost_reports_each_path_against_the_bare_callable() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.app_cost", "2000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows: dict[str, tuple[float, float]] = {}
    for line in done.stdout.splitlines()[2:]:
        name, us_cell, ratio_cell = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name] = (float(us_cell), float(ratio_cell))
    assert list(rows) == [
        "raw RSGI callable",
        "pingpong memory:// admitted",
        "pingpong memory:// rejected",
    ]
    assert rows["raw RSGI callable"][1] == 1.0
    for name in ("pingpong memory:// admitted", "pingpong memory:// rejected"):
        us, ratio = rows[name]
        assert us > 0
        assert ratio == pytest.approx(us / rows["raw RSGI callable"][0], rel=0.1, abs=0.1)
