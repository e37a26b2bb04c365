"""Blue-green through a real HAProxy, under a steady load: a good release takes
all traffic with zero failed requests, a bad one is rolled back at its first
failing step, and a client's quota carries over from blue to green.

Each test: blue behind HAProxy (shared redis-server), a bounded steady load on
the frontend, then ``pingpong-rollout run`` starts green and shifts the weights.
The client's own record of every answer (status, latency, X-Served-By) is
the evidence, next to the tool's report and HAProxy's runtime state. A 503
passes only as a counted shed: the 503s seen equal what blue's and green's
shedders and HAProxy's (its metrics) counted.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from collections import Counter

import httpx
import pytest

from pingpong_rollout.load import Answer, LoadSummary, SteadyLoad
from pingpong_toolkit.waiting import wait_until
from tests.bluegreen.conftest import LOAD_KEY, QUOTA, ShedCounts, Stack, rollout_command

RATE = 200  # requests/s: 20/s reach green at the 10% step, plenty for min-requests 10
PAUSE = 2.0  # seconds per step (the tests' --pause)
# The tests' --max-p99 is 0.75 s (conftest): loose enough for a busy 2-core CI
# machine, where a healthy green's slowest request can take 0.4 s; the latency
# fault adds a whole second to every green request.


def steady_load(stack: Stack) -> SteadyLoad:
    """Bounded: 60 s and 12000 requests at most, whatever happens."""
    return SteadyLoad(
        stack.frontend + "/ping",
        RATE,
        max_seconds=60,
        max_requests=12_000,
        headers={"X-API-Key": LOAD_KEY},
    )


def largest_gap(answers: list[Answer]) -> float:
    times = sorted(a.sent for a in answers)
    return max((b - a for a, b in itertools.pairwise(times)), default=float("inf"))


def describe(summary: LoadSummary) -> str:
    return f"{summary.as_dict()}; failures: {summary.failures()[:5]}"


def assert_503s_counted(
    answers: list[Answer], stack: Stack, sheds: ShedCounts, blue_after: float, green_after: float
) -> int:
    """The 503s seen are as many as the shedders counted: blue's and green's (each
    read after it could get no more /ping: ``*_after``) and HAProxy's own. So a
    503 of another cause cannot pass for a shed. Returns the 503s."""
    seen = Counter(a.status for a in answers)[503]
    blue = sheds.count(stack.blue.url, blue_after)
    green = sheds.count(stack.green_url, green_after)
    balancer = stack.balancer.shed()
    assert seen == blue + green + balancer, (seen, {"blue": blue, "green": green,
                                                    "haproxy": balancer})  # fmt: skip
    return seen


def test_good_release_moves_all_traffic_with_zero_failed_requests(stack: Stack) -> None:
    with ShedCounts(stack.blue.url, stack.green_url) as sheds:
        with steady_load(stack) as load:
            code, report, output = stack.rollout()
            time.sleep(1)  # the load goes on after the rollout: all of it on green
        load_done = time.time()
        time.sleep(0.3)
    answers = load.summary.answers

    assert code == 0, output
    assert report["outcome"] == "promoted"
    assert [s["weights"]["green"] for s in report["steps"]] == [10, 25, 50, 100]
    assert all(s["passed"] for s in report["steps"]), report["steps"]
    # Zero failed requests: no 5xx but counted sheds, no connection error; no 429
    # either (the load's tier is far above what it sends). Blue is counted once
    # its weight was 0 (the last step), green once the load was over.
    blue_idle = report["steps"][-1]["started"] + 0.5
    shed = assert_503s_counted(answers, stack, sheds, blue_idle, load_done)
    assert [a for a in load.summary.failures() if a.status != 503] == [], describe(load.summary)
    assert {a.status for a in answers} <= {200, 503}, describe(load.summary)
    assert shed <= 0.01 * len(answers), describe(load.summary)  # a healthy stack sheds little
    assert len(answers) > RATE * PAUSE * 4
    # 100% on green once the last step began, and HAProxy agrees.
    last_step = report["steps"][-1]["started"] + 0.2
    tail = [a for a in answers if a.sent > last_step]
    assert tail and {a.served_by for a in tail} == {"green"}
    assert stack.haproxy.api.get_weight("green") == 100
    assert stack.haproxy.api.get_weight("blue") == 0
    assert httpx.get(stack.frontend + "/version").json()["slot"] == "green"
    # Blue drained (/readyz 503, then out of rotation) and exited 0.
    assert stack.blue_process.wait(5) == 0
    assert "draining" in stack.blue.output()
    assert "blue (old) pid" in output and "exited" in output


# A green that sheds at a share of the load blue carries unshed: one /ping at a
# time (max_in_flight 1) while each takes 0.1 s, at ~20 req/s. Its own 503s are
# its answers, counted against it; HAProxy's never reach it (docs/bluegreen.md).
SHEDS = ["PINGPONG_MAX_IN_FLIGHT=1", "PINGPONG_FAULT_DELAY=0.1"]


@pytest.mark.parametrize(
    ("faults", "reason"),
    [(["PINGPONG_FAULT_ERROR_RATE=0.5"], "error ratio"), (["PINGPONG_FAULT_DELAY=1"], "p99"),
     (SHEDS, "error ratio")],
    ids=["errors", "latency", "sheds"],
)  # fmt: skip
def test_bad_release_rolls_back_at_the_first_failing_step(
    stack: Stack, faults: list[str], reason: str
) -> None:
    options = [arg for fault in faults for arg in ("--green-env", fault)]
    with ShedCounts(stack.blue.url, stack.green_url) as sheds:
        with steady_load(stack) as load:
            code, report, output = stack.rollout(*options)
            time.sleep(1)
        load_done = time.time()
        time.sleep(0.3)
    answers = load.summary.answers

    assert code == 1, output
    assert report["outcome"] == "rolled_back"
    assert reason in report["reason"]
    # Aborted at the first step (10%): its analysis failed, no later step ran.
    [step] = report["steps"]
    assert step["weights"] == {"blue": 90, "green": 10}
    assert not step["passed"]
    # Back to blue within one step interval of the shift...
    rolled_back = report["decided_at"]
    assert rolled_back - step["started"] <= PAUSE + 1.0
    # ...and nothing new reached green after that (0.3 s: requests already routed).
    late = [a for a in answers if a.served_by == "green" and a.sent > rolled_back + 0.3]
    assert late == []
    # Blast radius: only green's share of the exposure window saw the fault.
    exposed = [a for a in answers if step["started"] <= a.sent <= rolled_back]
    on_green = [a for a in answers if a.served_by == "green"]
    if reason == "error ratio":
        hurt = [a for a in answers if a.failed]
    else:
        hurt = [a for a in answers if a.latency >= 1.0]
    # Green is counted once it had weight 0 (the rollback), blue once the load was over.
    shed = assert_503s_counted(answers, stack, sheds, load_done, rolled_back + 0.5)
    if faults == SHEDS:
        assert shed == len(hurt) > 0  # the rollback was the shedder's doing, each one counted
    assert hurt, "the fault was never seen: the drill proved nothing"
    assert {a.served_by for a in hurt} == {"green"}
    assert len(on_green) <= 0.10 * len(exposed) * 1.5 + 5, (len(on_green), len(exposed))
    assert len(hurt) <= 0.10 * len(exposed) * 1.5 + 5
    # Blue kept serving throughout: every blue answer a 200, no gap in its stream.
    on_blue = [a for a in answers if a.served_by == "blue"]
    assert {a.status for a in on_blue} == {200}
    assert [a for a in answers if a.status is None] == []
    assert largest_gap(on_blue) < 1.0  # 180 req/s expected: a second without one is an outage
    assert stack.blue_process.alive()
    # Green stopped, weights back: blue 100, green 0.
    green = stack.green()
    assert green is not None
    wait_until(lambda: not green.alive(), 5)
    assert stack.haproxy.api.get_weight("blue") == 100
    assert stack.haproxy.api.get_weight("green") == 0


def probe(stack: Stack) -> tuple[int, str, int]:
    """One /ping with no API key: the per-address policy of QUOTA a day."""
    response = httpx.get(stack.frontend + "/ping")
    match = re.search(r"r=(\d+)", response.headers["ratelimit"])
    assert match, response.headers
    return response.status_code, response.headers["x-served-by"], int(match.group(1))


def test_client_quota_is_the_same_before_and_after_the_shift(stack: Stack) -> None:
    before = [probe(stack) for _ in range(3)]
    assert before == [(200, "blue", QUOTA - 1), (200, "blue", QUOTA - 2), (200, "blue", QUOTA - 3)]

    with steady_load(stack) as load:
        code, _, output = stack.rollout("--steps", "50,100")
    assert code == 0, output
    assert load.summary.failures() == []

    # Green reads the same Redis keys: the next request goes on from blue's
    # count (not from a fresh QUOTA), and the limit bites exactly where it says.
    after = [probe(stack) for _ in range(3)]
    assert after == [(200, "green", QUOTA - 4), (200, "green", QUOTA - 5), (429, "green", 0)]


def test_cli_help_and_refuses_a_green_that_would_not_share_limits() -> None:
    shown = subprocess.run(
        [*rollout_command(), "--help"], capture_output=True, text=True, check=True
    )
    assert "run" in shown.stdout and "drill" in shown.stdout
    refused = subprocess.run(
        [*rollout_command(), "run", "--haproxy-socket", "/nonexistent",
         "--storage", "memory://"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "Redis" in refused.stderr
