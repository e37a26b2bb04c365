"""What the layout promises: the core loads no framework, and the granian
hooks the server overrides still exist (so an upgrade fails here, not live)."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("pingpong.core", ["prometheus_client", "granian", "pydantic", "redis"]),
        ("pingpong.core.limiter", ["prometheus_client", "granian", "pydantic", "redis"]),
        ("pingpong.core.storage.registry", ["prometheus_client", "granian", "pydantic"]),
        # Checking a config needs no driver: they load when a Redis URL is opened.
        ("pingpong.config", ["redis", "hiredis", "granian"]),
        ("pingpong.core.storage.registry", ["redis", "hiredis"]),
    ],
)
def test_the_core_imports_no_framework(module: str, absent: list[str]) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {absent!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_check_config_loads_no_redis_driver(tmp_path: Path) -> None:
    config = tmp_path / "pingpong.yaml"
    config.write_text("storage: 'redis+sentinel://:pw@h1:26379,h2:26379/main/1'\n")
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['pingpong', 'check-config', {str(config)!r}]\n"
        "try:\n    runpy.run_module('pingpong', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print(','.join(m for m in ('redis', 'hiredis') if m in sys.modules))"
    )
    lines = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert lines[0] == f"{config}: OK"
    assert lines[-1] == ""  # neither driver loaded


def test_only_the_cli_and_the_config_read_the_environment() -> None:
    """Everything else gets what it needs as arguments (the settings, the
    build, the workers' metrics directory): nothing travels through os.environ."""
    src = Path(__file__).resolve().parents[2] / "src" / "pingpong"
    readers = []
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv"):
                readers.append(str(path.relative_to(src)))
    assert sorted(set(readers)) == ["cli.py", "cli_admin.py", "config.py"]


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
