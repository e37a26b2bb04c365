"""``pingpong-rollout drill``: the self-contained demo writes its report, a
JSON timeline and a PNG chart, for a good and a bad release.

The drill starts its own redis-server, blue, HAProxy and steady load; the
test checks what it leaves behind: report.json (the timeline the tool saw and
decided on) and report.png (a real PNG, every chunk's CRC checked and the
image data inflated to the size its header announces).
"""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from pingpong_toolkit.commands import require
from tests.bluegreen.conftest import rollout_command

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BYTES_PER_PIXEL = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> channels (8-bit depth)


def check_png(path: Path) -> tuple[int, int]:
    """Width and height of a valid 8-bit PNG, or an AssertionError saying why not."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, "not a PNG signature"
    offset, chunks, idat = 8, [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append(kind)
        if kind == b"IDAT":
            idat += body
        offset += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND" and b"IDAT" in chunks, chunks
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert depth == 8, depth
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + width * BYTES_PER_PIXEL[colour])
    return width, height


@pytest.mark.parametrize(
    ("faults", "code", "outcome"),
    [([], 0, "promoted"), (["--fault-error-rate", "1"], 1, "rolled_back")],
    ids=["good-release", "bad-release"],
)
def test_drill_writes_a_json_and_png_report(
    tmp_path: Path, faults: list[str], code: int, outcome: str
) -> None:
    for tool in ("haproxy", "redis-server", "redis-cli"):
        require(tool)
    report_dir = tmp_path / "report"
    done = subprocess.run(
        [*rollout_command(), "drill", "--steps", "25,100", "--pause", "2",
         "--settle", "1", "--min-requests", "10", "--max-p99", "0.75", "--load-rate", "100",
         "--report-dir", str(report_dir), "--workdir", str(tmp_path / "work"), *faults],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    print(done.stdout, done.stderr)
    assert done.returncode == code, done.stdout + done.stderr

    report = json.loads((report_dir / "report.json").read_text())
    assert report["outcome"] == outcome
    assert report["config"]["steps"] == [25, 100]
    assert report["config"]["max_error_ratio"] == 0.001
    for step in report["steps"]:
        assert set(step) >= {"step", "weights", "started", "ended", "passed", "requests",
                             "error_ratio", "p99", "reason"}  # fmt: skip
    phases = {point["phase"] for point in report["timeline"]}
    assert {"baseline", "step 1"} <= phases
    for point in report["timeline"]:
        assert set(point) >= {"t", "elapsed", "weight_blue", "weight_green", "green_rps",
                              "blue_rps", "green_error_ratio", "green_p99"}  # fmt: skip
    assert any((p["green_rps"] or 0) > 0 for p in report["timeline"] if p["phase"] == "step 1")
    assert report["weights"][0] == {**report["weights"][0], "blue": 100, "green": 0}
    assert report["load"]["requests"] > 100
    if outcome == "promoted":
        assert [s["passed"] for s in report["steps"]] == [True, True]
        assert report["weights"][-1]["green"] == 100
        assert report["load"]["failed"] == 0
        assert report["blue"]["exit_code"] == 0  # the drill's own child: drained, exit 0
    else:
        assert len(report["steps"]) == 1 and not report["steps"][0]["passed"]
        assert report["weights"][-1]["green"] == 0
        assert "error ratio" in report["reason"]
        assert 0 < report["load"]["failed"] <= report["load"]["by_slot"]["green"]

    width, height = check_png(report_dir / "report.png")
    assert width >= 400 and height >= 300
    assert (report_dir / "report.png").stat().st_size < 200_000
