"""Session fixtures of the deploy/ checks (see helpers.py for the tools)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pingpong_toolkit.commands import run

from .helpers import K8S, OVERLAYS, REPO, TF, checkov, norm


@pytest.fixture(scope="session")
def rendered_text() -> dict[str, str]:
    """`kubectl kustomize` of each overlay, rendered once per session."""
    return {o: run(["kubectl", "kustomize", str(K8S / "overlays" / o)]).stdout for o in OVERLAYS}


@pytest.fixture(scope="session")
def rendered(rendered_text: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    return {o: [d for d in yaml.safe_load_all(text) if d] for o, text in rendered_text.items()}


@pytest.fixture(scope="session")
def rendered_dir(rendered_text: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rendered")
    for overlay, text in rendered_text.items():
        (out / f"{overlay}.yaml").write_text(text)
    return out


@pytest.fixture(scope="session")
def checkov_reports(rendered_dir: Path) -> dict[str, dict[str, Any]]:
    """checkov once per framework (each over one directory), reused by the tests."""
    return {
        "kubernetes": checkov(rendered_dir, "kubernetes"),
        "kustomize": checkov(K8S, "kustomize"),
        "terraform": checkov(REPO / "deploy" / "terraform", "terraform"),
        "github_actions": checkov(REPO / ".github", "github_actions"),
    }


@pytest.fixture(scope="session")
def hcl(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every root .tf file parsed by python-hcl2 (hcl2tojson), by file name."""
    out = tmp_path_factory.mktemp("hcl")
    parsed = {}
    for tf in sorted(TF.glob("*.tf")):
        target = out / f"{tf.stem}.json"
        run(["hcl2tojson", str(tf), str(target)])
        parsed[tf.name] = norm(json.loads(target.read_text()))
    assert parsed
    return parsed
