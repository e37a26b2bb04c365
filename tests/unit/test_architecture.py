"""What the layout promises: the core loads no framework, and the granian
hooks the server overrides still exist (so an upgrade fails here, not live)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("pingpong.core", ["prometheus_client", "granian", "pydantic", "redis"]),
        ("pingpong.core.limiter", ["prometheus_client", "granian", "pydantic", "redis"]),
        ("pingpong.core.storage.registry", ["prometheus_client", "granian", "pydantic"]),
    ],
)
def test_the_core_imports_no_framework(module: str, absent: list[str]) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {absent!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_importing_the_app_registers_nothing_globally() -> None:
    code = (
        "import pingpong.http.app, pingpong.server.run\n"
        "from prometheus_client import REGISTRY\n"
        "print(sorted(n for n in REGISTRY._names_to_collectors if n.startswith('pingpong')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_embedded_granian_hooks_pingpong_overrides_still_exist() -> None:
    """granian_server.Granian overrides ``_init_shared_socket`` (which must set
    ``_shd``), sets ``workers_kill_timeout`` and reads ``bind_addr``."""
    from granian.net import SocketHolder
    from granian.rsgi import HTTPProtocol
    from granian.server.embed import Server

    source = inspect.getsource(Server)
    assert callable(getattr(Server, "_init_shared_socket", None))
    assert "self._shd" in source
    assert "workers_kill_timeout" in source
    assert "bind_addr" in source
    assert callable(getattr(Server, "serve", None)) and callable(getattr(Server, "stop", None))
    assert hasattr(HTTPProtocol, "response_bytes")
    assert SocketHolder.__name__ == "SocketHolder"


def test_the_supervisor_never_loops_on_crashing_workers() -> None:
    from pingpong.server.supervisor import RestartPolicy

    now = [0.0]
    policy = RestartPolicy(per_minute=3, clock=lambda: now[0])
    assert not policy.restart(was_ready=False)  # died before it could serve: stop
    policy = RestartPolicy(per_minute=3, clock=lambda: now[0])
    assert [policy.restart(was_ready=True) for _ in range(4)] == [True, True, True, False]
    now[0] = 61.0
    assert policy.restart(was_ready=True)  # a minute later the budget is back
