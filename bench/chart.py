"""The PNG chart of req/s by configuration. Runs under the peers' virtualenv
(matplotlib lives there): ``python -m bench.chart RESULTS.json OUT.png``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLORS = {
    "raw": "#7f7f7f",
    "raw-rsgi": "#4d4d4d",
    "raw-uvicorn": "#b0b0b0",
    "starlette": "#bcbd22",
    "fastapi": "#17becf",
    "pingpong": "#d62728",
    "slowapi": "#1f77b4",
    "flask-limiter": "#2ca02c",
}


def family(name: str) -> str:
    for known in ("pingpong", "slowapi", "flask-limiter"):
        if name.startswith(known):
            return known
    return name


def draw(data: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = data["summary"]
    names = list(summary)[::-1]  # first configuration on top
    rps = [summary[n]["rps"] for n in names]
    low = [summary[n]["rps"] - summary[n]["rps_min"] for n in names]
    high = [summary[n]["rps_max"] - summary[n]["rps"] for n in names]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(names) + 1.6))
    ax.barh(names, rps, xerr=[low, high], color=[COLORS[family(n)] for n in names], capsize=2)
    right = max((summary[n]["rps_max"] for n in names), default=1.0)
    for y, name in enumerate(names):  # the median, right of the whisker
        x = summary[name]["rps_max"] + right * 0.01
        ax.text(x, y, f"{summary[name]['rps']:,.0f}", va="center", fontsize=8)
    ax.set_xlabel("requests per second (median; whiskers: min and max of the rounds)")
    machine = data["machine"]
    ax.set_title(
        f"GET /ping, one worker on CPU 0, wrk -t1 -c32 on CPU 1 ({data['mode']} run)\n"
        f"{machine['cpu']}, {machine['cores']} cores, Python {machine['python']}",
        fontsize=9,
    )
    ax.set_xlim(0, right * 1.12)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    draw(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
