"""haproxy.cfg for the blue and green slots, from the template next to this module.

The load shedding (per-slot maxconn, queue timeout, the 503 file) is rendered
from ``pingpong_toolkit.haproxy``, the values the shipped compose balancer is
checked against, so the drill sheds as compose does. The runtime API that moves
traffic at run time is ``pingpong_toolkit.haproxy`` too.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from pingpong_toolkit.haproxy import ERRORS, QUEUE_TIMEOUT_MS, SERVER_MAXCONN

TEMPLATE = Path(__file__).with_name("haproxy.cfg")


def render_config(
    *,
    bind: str,
    blue_addr: str,
    green_addr: str,
    socket_path: str,
    metrics_bind: str,
    template: Path = TEMPLATE,
) -> str:
    """haproxy.cfg with its placeholders filled (unknown ones are an error)."""
    return Template(template.read_text()).substitute(
        bind=bind,
        blue_addr=blue_addr,
        green_addr=green_addr,
        socket=socket_path,
        metrics_bind=metrics_bind,
        maxconn=SERVER_MAXCONN,
        queue_timeout_ms=QUEUE_TIMEOUT_MS,
        errorfile=ERRORS / "503.http",
    )
