"""One release: HAProxy's two server slots, the processes behind them, the record.

preflight -> start green -> shift step by step (observe, judge) -> promote or
roll back. Every phase is said on stdout and kept in the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

from pingpong_rollout.analysis import Snapshot, Verdict, fmt_ratio, fmt_seconds, judge, scrape
from pingpong_rollout.plan import (
    NOT_STARTED,
    PROMOTED,
    ROLLED_BACK,
    Blue,
    Interrupted,
    Plan,
    StartFailed,
    interrupts_raise,
)
from pingpong_rollout.report import Report
from pingpong_toolkit.haproxy import HAProxyError, RuntimeAPI
from pingpong_toolkit.pingpong import NotServing, Pingpong
from pingpong_toolkit.waiting import eventually


@dataclass
class Rollout:
    api: RuntimeAPI
    plan: Plan
    blue_server: str
    green_server: str
    blue: Blue
    report: Report
    green: Pingpong | None = None
    weights: dict[str, int] = field(default_factory=dict)

    # -- output

    def say(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        print(f"{stamp}Z {message}", flush=True)
        self.report.event(time.time(), message)

    def set_weights(self, green_share: int) -> None:
        """green gets ``green_share`` percent, blue the rest: one step of the shift."""
        self.weights = {self.blue_server: 100 - green_share, self.green_server: green_share}
        self.api.set_weights(self.weights)
        now = time.time()
        self.report.weights.append(
            {"t": now, "elapsed": round(now - self.report.started, 3),
             "blue": 100 - green_share, "green": green_share}
        )  # fmt: skip

    # -- observation

    def observe(self, phase: str, seconds: float, fail_fast: bool = False) -> Verdict:
        """Read green (and blue) every sample_interval for ``seconds``; record the
        timeline; the verdict on the whole window."""
        first = self._scrape_green()
        last, blue_last, last_t = first, self._scrape_blue(), time.monotonic()
        end = last_t + seconds
        while (now := time.monotonic()) < end:
            time.sleep(min(self.plan.sample_interval, end - now))
            current = self._scrape_green()
            blue_now, now = self._scrape_blue(), time.monotonic()
            self._record(phase, now - last_t, current, last, blue_now, blue_last)
            last, blue_last, last_t = current, blue_now, now
            if fail_fast and first is not None and current is not None:
                verdict = judge(current - first, self.plan.thresholds)
                if not verdict.passed and verdict.requests >= self.plan.thresholds.min_requests:
                    return verdict  # already conclusive: do not feed green more traffic
        if first is None or last is None:
            return judge(None, self.plan.thresholds)
        return judge(last - first, self.plan.thresholds)

    def _scrape_green(self) -> Snapshot | None:
        return scrape(self.green.url) if self.green else None

    def _scrape_blue(self) -> Snapshot | None:
        return scrape(self.blue.url) if self.blue.url and self.blue.alive() else None

    def _record(
        self,
        phase: str,
        dt: float,
        green: Snapshot | None,
        green_before: Snapshot | None,
        blue: Snapshot | None,
        blue_before: Snapshot | None,
    ) -> None:
        green_window = green - green_before if green and green_before else None
        blue_window = blue - blue_before if blue and blue_before else None
        now = time.time()
        self.report.timeline.append(
            {
                "t": now,
                "elapsed": round(now - self.report.started, 3),
                "window": round(dt, 3),
                "phase": phase,
                "weight_blue": self.weights.get(self.blue_server),
                "weight_green": self.weights.get(self.green_server),
                "green_requests": green_window.requests if green_window else None,
                "green_rps": round(green_window.requests / dt, 2) if green_window else None,
                "blue_rps": round(blue_window.requests / dt, 2) if blue_window else None,
                "green_error_ratio": green_window.error_ratio() if green_window else None,
                "green_p99": green_window.quantile(0.99) if green_window else None,
            }
        )

    # -- the phases

    def preflight(self) -> None:
        """Blue serves and has all the traffic; the green slot has none."""
        blue = self.api.server(self.blue_server)
        self.api.server(self.green_server)  # exists
        if not blue.up:
            raise StartFailed(f"HAProxy server {self.blue_server} is {blue.status}, not serving")
        if not eventually(self.blue.ready, 5, 0.1):
            raise StartFailed(f"blue at {self.blue.url} is not ready")
        self.set_weights(0)
        self.say(f"preflight ok: {self.blue_server} {blue.status}, weights {self.weights}")

    def start_green(self, green: Pingpong) -> None:
        """Point the green slot at the new process, wait until both it and HAProxy
        say it is ready (HAProxy's checks are what routing obeys)."""
        self.green = green
        assert green.process is not None, "green is launched before it is handed over"
        log = green.process.log
        self.report.green.update({"pid": green.process.pid, "url": green.url, "log": str(log)})
        self.api.set_addr(self.green_server, green.host, green.port)
        self.api.set_state(self.green_server, "ready")
        self.say(f"{self.green_server} (new) started: pid {green.process.pid} on {green.url}")
        try:
            green.wait_until("/readyz", self.plan.ready_timeout)
        except NotServing as exc:
            raise StartFailed(f"{exc} (log {log})") from None
        if not self.api.wait_status(self.green_server, up=True, timeout=self.plan.ready_timeout):
            raise StartFailed("HAProxy's health checks never saw green up")
        self.say(f"{self.green_server} (new) ready: /readyz 200, HAProxy check UP")

    def shift(self) -> Verdict:
        """Every step: move weights, observe, judge. The first failing verdict,
        else the last step's (passed)."""
        verdict = self.observe("baseline", self.plan.settle)
        for index, share in enumerate(self.plan.steps, 1):
            started = time.time()
            self.set_weights(share)
            verdict = self.observe(f"step {index}", self.plan.pause, self.plan.fail_fast)
            self.report.steps.append(
                {
                    "step": index,
                    "weights": dict(self.weights),
                    "started": started,
                    "ended": time.time(),
                    **verdict.as_dict(),
                }
            )
            self.say(self.step_line(index, share, verdict))
            if not verdict.passed:
                break
        return verdict

    def step_line(self, index: int, share: int, verdict: Verdict) -> str:
        """One line per step: weights, what green answered, the verdict."""
        outcome = "PASS" if verdict.passed else f"FAIL ({verdict.reason})"
        return (
            f"step {index}/{len(self.plan.steps)} weights {self.blue_server}={100 - share} "
            f"{self.green_server}={share} | {self.green_server} (new): "
            f"{verdict.requests} requests, error ratio {fmt_ratio(verdict.error_ratio)}, "
            f"p99 {fmt_seconds(verdict.p99)} | {outcome}"
        )

    def roll_back(self, reason: str) -> None:
        """All traffic to blue first (nothing new reaches green), then stop green."""
        self.set_weights(0)
        self.report.outcome, self.report.reason = "rolled_back", reason
        self.report.decided_at = time.time()
        self.say(f"ROLLBACK: {reason}; weights {self.weights}")
        self.observe("rolled back", self.plan.settle)
        if self.green is not None:
            code = self.green.stop(self.plan.drain_timeout)
            self.report.green["exit_code"] = code
            self.say(f"{self.green_server} (new) stopped (exit {code})")

    def promote(self) -> None:
        """Green has everything: drain blue (no new requests, open ones finish,
        then SIGTERM so pingpong's own drain runs) and wait for it to exit."""
        self.report.outcome, self.report.reason = "promoted", ""
        self.report.decided_at = time.time()
        self.say(f"PROMOTED: {self.green_server} has 100% of the traffic")
        self.api.set_state(self.blue_server, "drain")
        self.observe("promoted", self.plan.settle)
        idle = self.api.wait_idle(self.blue_server, self.plan.drain_timeout)
        state = "no open sessions" if idle else "timed out"
        self.say(f"{self.blue_server} (old) drained in HAProxy: {state}")
        process = self.blue.process
        if process is None:
            self.say(f"{self.blue_server} (old): no --blue-pid, left running at weight 0")
            return
        process.terminate()
        code = process.wait(self.plan.drain_timeout)
        self.report.blue["exit_code"] = code
        how = f"code {code}" if code is not None else "not our child: code unknown"
        self.say(f"{self.blue_server} (old) pid {process.pid} exited ({how})")

    def execute(self, start_green: Callable[[], Pingpong]) -> int:
        """preflight, start green (``start_green()``: launched, not yet ready),
        shift, decide; the exit status."""
        try:
            with interrupts_raise():
                self.preflight()
                self.start_green(start_green())
                verdict = self.shift()
                if verdict.passed:
                    self.promote()
                    return PROMOTED
                self.roll_back(verdict.reason)
                return ROLLED_BACK
        except StartFailed as exc:
            self.report.outcome, self.report.reason = "not_started", str(exc)
            self.say(f"NOT STARTED: {exc}")
            self._stop_green()
            return NOT_STARTED
        except Interrupted as exc:
            if self.report.outcome == "promoted":  # blue may be draining: no way back
                self.say(f"interrupted ({exc}) while draining blue: green keeps the traffic")
                return PROMOTED
            self.roll_back(f"interrupted ({exc})")
            return ROLLED_BACK
        except HAProxyError as exc:
            self.say(f"HAProxy error: {exc}")
            with suppress(HAProxyError):
                self.roll_back(f"HAProxy error: {exc}")
            self._stop_green()
            shifted = any(change["green"] > 0 for change in self.report.weights)
            self.report.outcome = "rolled_back" if shifted else "not_started"
            self.report.reason = f"HAProxy error: {exc}"
            return ROLLED_BACK if shifted else NOT_STARTED
        finally:
            self.report.finished = time.time()

    def _stop_green(self) -> None:
        if self.green is not None and self.green.process and self.green.process.alive():
            self.report.green["exit_code"] = self.green.stop(self.plan.drain_timeout)
