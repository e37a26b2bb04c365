"""README's "What it looks like" is what a real server sends: the same
commands against a real ``pingpong serve``, every header line in the order
it arrives (granian's empty ``server`` and its ``date`` included), the body.
Only the values that cannot repeat are matched by shape: the request id's
random prefix and the date."""

from __future__ import annotations

import http.client
import re
import shlex
from pathlib import Path

from pingpong_toolkit.pingpong import Pingpong

from .helpers import REPO, captured

README = REPO / "README.md"
# Values that differ on every run, matched by their form.
VARYING = {
    "x-request-id": r"[0-9a-f]{12}-\d+",
    "date": r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT",
}


def sample() -> list[tuple[str, list[str]]]:
    """(command, the lines it printed) of the README's first console block."""
    text = README.read_text()
    block = captured(r"## What it looks like\n\n```console\n(.*?)```", text, re.S)
    found: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            found[-1][1].append(line)
    return found


def answer(port: int) -> list[str]:
    """One GET /ping, printed the way ``curl -i`` prints it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/ping", headers={"User-Agent": "curl/8", "Accept": "*/*"})
        response = conn.getresponse()
        body = response.read().decode()
        status = f"HTTP/1.1 {response.status} {response.reason}"
        return [status, *(f"{k}: {v}" for k, v in response.getheaders()), "", body]
    finally:
        conn.close()


def same(shown: str, sent: str) -> bool:
    name = sent.partition(": ")[0]
    if name in VARYING and shown.startswith(f"{name}: "):
        return re.fullmatch(VARYING[name], shown[len(name) + 2 :]) is not None
    return shown.rstrip() == sent.rstrip()


def test_the_readme_sample_is_what_the_server_sends(tmp_path: Path) -> None:
    steps = sample()
    start, _ = steps[0]
    args = shlex.split(captured(r'ARGS="([^"]*)"', start))
    server = Pingpong(args).start(tmp_path)
    try:
        compared = 0
        for command, printed in steps[1:]:
            urls = re.findall(r"http://127\.0\.0\.1:8080/ping", command)
            assert urls, f"README sample: no request in {command!r}"
            for _ in urls:
                sent = answer(server.port)
            if "-i" not in shlex.split(command.split(";")[0]):
                continue
            assert len(printed) == len(sent), (printed, sent)
            for shown, real in zip(printed, sent, strict=True):
                assert same(shown, real), f"README shows {shown!r}, the server sent {real!r}"
            compared += 1
        assert compared == 2  # the admitted answer and the 429
    finally:
        server.stop()
