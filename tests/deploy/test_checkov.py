"""checkov over the rendered manifests, the kustomizations, the Terraform and
the GitHub workflows: no failed check, and no skip without a written reason."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .helpers import REPO

FRAMEWORKS = ("kubernetes", "kustomize", "terraform", "github_actions")
# Where skips may be declared, and how: a Kubernetes annotation
#   checkov.io/skipN: CKV_ID=reason
# or a Terraform comment
#   #checkov:skip=CKV_ID:reason
SKIP_SOURCES = ("deploy", ".github")
K8S_SKIP = re.compile(r"checkov\.io/skip\d+:\s*(?P<id>CKV2?_[A-Z0-9_]+)(?:=(?P<reason>.*))?")
TF_SKIP = re.compile(r"#\s*checkov:skip=(?P<id>CKV2?_[A-Z0-9_]+)(?::(?P<reason>.*))?")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_checkov_passes(checkov_reports: dict[str, dict[str, Any]], framework: str) -> None:
    report = checkov_reports[framework]
    summary = report["summary"]
    failed = report.get("results", {}).get("failed_checks", [])
    lines = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}" for c in failed
    ]
    assert summary["failed"] == 0, "\n".join(lines)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 20, "checkov looked at (almost) nothing"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_checkov_skip_has_a_reason(
    checkov_reports: dict[str, dict[str, Any]], framework: str
) -> None:
    skipped = checkov_reports[framework].get("results", {}).get("skipped_checks", [])
    for c in skipped:
        reason = (c.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason.strip()) >= 15, (
            f"{c['check_id']} on {c['resource']} skipped without a reason"
        )


def test_skip_declarations_carry_reasons() -> None:
    """Also where checkov did not run into them: every declared skip in the
    sources names a check and says why."""
    declared = 0
    for top in SKIP_SOURCES:
        for path in sorted((REPO / top).rglob("*")):
            if not path.is_file() or path.suffix not in (".yaml", ".yml", ".tf"):
                continue
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                if "checkov" not in line or "skip" not in line:
                    continue
                m = K8S_SKIP.search(line) or TF_SKIP.search(line)
                if m is None:
                    continue
                declared += 1
                reason = (m.group("reason") or "").strip()
                where = f"{path.relative_to(REPO)}:{lineno}"
                assert len(reason) >= 15, f"{where}: skip of {m.group('id')} without a reason"
    assert declared > 0
    # And no blanket skips on the command line or in a config file.
    for name in (".checkov.yaml", ".checkov.yml"):
        assert not (REPO / name).exists(), (
            f"{name}: declare skips next to the resource, with a reason"
        )
