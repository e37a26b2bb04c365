"""Config that follows its file: an edit (no signal) changes the limit within
5 s, also through a Kubernetes-style ``..data`` symlink swap; an invalid edit
is refused while the old config serves; ``watch_config: false`` turns it off."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from pingpong.service.watch import file_digest


def configmap(root: Path, text: str, version: int) -> Path:
    """What the kubelet does: a new timestamped directory, then ``..data``
    re-pointed at it by an atomic rename; config.yaml -> ..data/config.yaml."""
    target = root / f"..{version}"
    target.mkdir()
    (target / "config.yaml").write_text(text)
    (root / "..data_tmp").symlink_to(target.name)
    os.replace(root / "..data_tmp", root / "..data")
    link = root / "config.yaml"
    if not link.is_symlink():
        link.symlink_to("..data/config.yaml")
    return link


def quota(server: Any) -> str:
    return str(httpx.get(server.url + "/ping").headers["ratelimit-policy"])


def metric(server: Any, name: str) -> str:
    text = httpx.get(server.url + "/metrics").text
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


def wait_for(predicate: Any, limit: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < limit, "not within the limit"
        time.sleep(0.05)
    return time.monotonic() - started


def test_an_edit_changes_the_limit_within_5s_and_a_bad_one_is_refused(
    pingpong: Any, tmp_path: Path
) -> None:
    root = tmp_path / "configmap"
    root.mkdir()
    path = configmap(root, "limit: 3/minute\n", 1)
    server = pingpong("--config", str(path))
    assert quota(server) == '"default";q=3;w=60'
    first_hash = metric(server, "pingpong_config_info")

    configmap(root, "limit: 7/minute\n", 2)
    took = wait_for(lambda: quota(server) == '"default";q=7;w=60', 5.0)
    print(f"config file edit applied after {took:.1f} s")
    assert 'pingpong_config_reloads_total{result="ok"} 1.0' in metric(server, "pingpong_config")
    assert metric(server, "pingpong_config_info") != first_hash

    configmap(root, "limit: 10/fortnight\n", 3)
    wait_for(lambda: 'result="error"} 1.0' in metric(server, "pingpong_config_reloads"), 5.0)
    assert quota(server) == '"default";q=7;w=60'  # the old config keeps serving
    assert "config reload refused" in server.output()
    assert "invalid rate '10/fortnight'" in server.output()
    time.sleep(2.5)  # refused once, not every poll
    assert 'result="error"} 1.0' in metric(server, "pingpong_config_reloads")

    path.unlink()  # a file briefly missing is not an edit either
    time.sleep(2.5)
    assert 'result="error"} 1.0' in metric(server, "pingpong_config_reloads")


def test_watch_config_false_ignores_edits_until_a_signal(pingpong: Any, tmp_path: Path) -> None:
    """The settings contract's proof of watch_config."""
    path = tmp_path / "config.yaml"
    path.write_text("watch_config: false\nlimit: 3/minute\n")
    server = pingpong("--config", str(path))
    path.write_text("watch_config: false\nlimit: 9/minute\n")
    time.sleep(4.5)
    assert quota(server) == '"default";q=3;w=60'
    server.signal(signal.SIGHUP)
    wait_for(lambda: quota(server) == '"default";q=9;w=60', 5.0)


def test_the_file_digest_follows_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "cm"
    root.mkdir()
    path = configmap(root, "a: 1\n", 1)
    before = file_digest(path)
    configmap(root, "a: 2\n", 2)
    assert file_digest(path) not in (None, before)
    assert file_digest(tmp_path / "missing") is None
    assert re.fullmatch(r"[0-9a-f]{64}", before or "")


def test_an_edit_then_sighup_reloads_once(pingpong: Any, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("limit: 3/minute\n")
    server = pingpong("--config", str(path))
    path.write_text("limit: 4/minute\n")
    server.signal(signal.SIGHUP)
    wait_for(lambda: quota(server) == '"default";q=4;w=60', 5.0)
    time.sleep(3)  # more than a poll: the watcher must not reload the same file again
    assert 'pingpong_config_reloads_total{result="ok"} 1.0' in metric(server, "pingpong_config")
