"""The rollout's record: a JSON timeline and a PNG chart drawn from it.

The JSON is the evidence (what the tool saw and decided, and when, in wall-clock
seconds so it lines up with logs and load-generator records); the PNG is the
same timeline for people: traffic weight, request rates, green's error ratio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Report:
    """Filled as the rollout goes; written at the end whatever the outcome."""

    config: dict[str, Any]
    started: float
    outcome: str = "running"  # promoted | rolled_back | aborted
    reason: str = ""
    decided_at: float | None = None  # wall clock of the promote/rollback decision
    finished: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    weights: list[dict[str, Any]] = field(default_factory=list)  # every change, as it happened
    timeline: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    blue: dict[str, Any] = field(default_factory=dict)
    green: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] | None = None

    def event(self, at: float, what: str) -> None:
        self.events.append({"t": at, "elapsed": round(at - self.started, 3), "event": what})

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "started": self.started,
            "decided_at": self.decided_at,
            "finished": self.finished,
            "config": self.config,
            "steps": self.steps,
            "weights": self.weights,
            "timeline": self.timeline,
            "events": self.events,
            "blue": self.blue,
            "green": self.green,
            "load": self.load,
        }

    def write(self, directory: Path) -> tuple[Path, Path | None]:
        """report.json, and report.png when matplotlib is there (else a warning)."""
        directory.mkdir(parents=True, exist_ok=True)
        json_path = directory / "report.json"
        json_path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        png_path = directory / "report.png"
        try:
            draw(self.as_dict(), png_path)
        except ImportError as exc:
            print(f"warning: no chart ({exc}); pip install matplotlib")
            return json_path, None
        return json_path, png_path


def draw(report: dict[str, Any], path: Path) -> None:
    """Three stacked panels over elapsed seconds: weight, req/s, error ratio."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    points = report["timeline"]
    end = max([p["elapsed"] for p in points] + [w["elapsed"] for w in report["weights"]] + [0])
    mid = [p["elapsed"] - p["window"] / 2 for p in points]  # a rate belongs to its window
    fig, (weight, rate, errors) = plt.subplots(3, 1, figsize=(8, 6.4), sharex=True, dpi=80)
    title = f"pingpong blue-green rollout: {report['outcome'].replace('_', ' ')}"
    if report["reason"]:
        title += f"\n{report['reason']}"
    fig.suptitle(title, fontsize=11)

    changes = report["weights"]
    times = [w["elapsed"] for w in changes] + [end]
    for slot, color in (("green", "tab:green"), ("blue", "tab:blue")):
        shares = [w[slot] for w in changes]
        if shares:
            weight.step(times, [*shares, shares[-1]], where="post", color=color, label=slot)
    weight.set_ylabel("traffic weight %")
    weight.set_ylim(-5, 105)

    rate.plot(mid, [p["green_rps"] for p in points], color="tab:green", label="green")
    rate.plot(mid, [p["blue_rps"] for p in points], color="tab:blue", label="blue")
    rate.set_ylabel("requests/s")
    rate.set_ylim(bottom=0)

    limits = report["config"]
    errors.plot(mid, [p["green_error_ratio"] for p in points], color="tab:red",
                marker=".", label="green 5xx ratio")  # fmt: skip
    errors.axhline(limits["max_error_ratio"], color="tab:red", linestyle=":",
                   label="max error ratio")  # fmt: skip
    errors.set_ylabel("5xx / requests")
    errors.set_ylim(bottom=0)
    errors.set_xlabel("seconds since start")
    p99 = errors.twinx()
    p99.plot(mid, [p["green_p99"] for p in points], color="tab:purple", marker=".",
             linewidth=0.8, label="green p99 (s)")  # fmt: skip
    p99.axhline(limits["max_p99"], color="tab:purple", linestyle=":", label="max p99")
    p99.set_ylabel("p99 s", color="tab:purple")
    p99.set_ylim(bottom=0)

    for axis in (weight, rate, errors):
        mark_events(axis, report)
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(loc="upper left", fontsize=8)
    p99.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def mark_events(axis: Any, report: dict[str, Any]) -> None:
    """A vertical line where the rollout decided (promotion or rollback)."""
    decided = report.get("decided_at")
    if decided is not None:
        color = "tab:green" if report["outcome"] == "promoted" else "tab:red"
        axis.axvline(decided - report["started"], color=color, linestyle="--", alpha=0.7)
