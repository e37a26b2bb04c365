"""haproxy.cfg for the blue and green slots, from the template next to this module.

The runtime API that moves traffic at run time is ``pingpong_toolkit.haproxy``.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).with_name("haproxy.cfg")


def render_config(
    *, bind: str, blue_addr: str, green_addr: str, socket_path: str, template: Path = TEMPLATE
) -> str:
    """haproxy.cfg with its placeholders filled (unknown ones are an error)."""
    return Template(template.read_text()).substitute(
        bind=bind, blue_addr=blue_addr, green_addr=green_addr, socket=socket_path
    )
