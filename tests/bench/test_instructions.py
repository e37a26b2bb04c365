"""The instruction budget: callgrind's count per request, on every path the
budget names, stays within 10 % of bench/instructions_budget.json.

Instructions, unlike seconds, do not depend on what else the machine runs: two
runs of the same code agree to a fraction of a percent, which this test checks
too (two runs at once, one per core), so a failure is the code, not the noise.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bench import instructions
from pingpong_toolkit.commands import require
from pingpong_toolkit.redis import RedisServer

STABLE = 0.02  # two runs of the same code differ by less than this share


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Two runs at once, each on its own redis-server (a run resets the command
    stats it reads)."""
    require("valgrind")
    servers = [RedisServer(workdir=tmp_path_factory.mktemp("redis")).start() for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(instructions.count, instructions.PHASES, s.url) for s in servers]
            return [run.result() for run in runs]
    finally:
        for server in servers:
            server.stop()


@pytest.mark.timeout(400)  # two callgrind runs side by side: about a minute
def test_every_path_is_within_its_instruction_budget(two_runs: list[dict[str, Any]]) -> None:
    budget: dict[str, int] = json.loads(instructions.BUDGET.read_text())
    assert set(budget) <= set(two_runs[0]), "the budget names a phase the bench does not run"
    for run in two_runs:
        assert instructions.over_budget(run, budget) == []


def test_the_count_is_the_same_in_two_runs(two_runs: list[dict[str, Any]]) -> None:
    first, second = two_runs
    for name, phase in first.items():
        assert phase["per_request"] == pytest.approx(second[name]["per_request"], rel=STABLE), name


def test_each_phase_decided_what_it_claims(two_runs: list[dict[str, Any]]) -> None:
    """The count is of real decisions: every one by the storage named (no
    fallback, no error), admitted or rejected as the phase says, and on Redis
    one EVALSHA per batch of concurrent requests (none when the deny cache
    answers)."""
    for name, phase in two_runs[0].items():
        total = phase["warmup"] + phase["requests"]
        assert phase["fallbacks"] == {} and phase["storage_errors"] == {}, name
        if "admitted" in name:
            assert phase["decisions"] == {"default/allowed": total}, name
        else:
            assert phase["decisions"] == {"default/allowed": 1, "default/limited": total - 1}
        if phase["storage"] == "redis":
            expected = phase["requests"] // phase["batch"] if "admitted" in name else 0
            assert phase["evalsha"] == expected, name
