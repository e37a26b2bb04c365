"""yamllint over the YAML this work owns, and pinned tool versions."""

from __future__ import annotations

import json
import re

from pingpong_toolkit.commands import run

from .helpers import REPO

YAMLLINT_CONFIG = REPO / "tests" / "deploy" / "yamllint.yaml"


def test_yamllint() -> None:
    targets = [
        REPO / "deploy" / "k8s",
        REPO / "deploy" / "environment",
        REPO / ".github",
        YAMLLINT_CONFIG,
    ]
    run(["yamllint", "--strict", "-c", str(YAMLLINT_CONFIG), *map(str, targets)])


def test_pip_tools_are_pinned() -> None:
    lines = [
        line.strip()
        for line in (REPO / "tools" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines
    for line in lines:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][\w.]*", line), line


def test_npm_tools_are_pinned_and_locked() -> None:
    package = json.loads((REPO / "tools" / "k8s" / "package.json").read_text())
    lock = json.loads((REPO / "tools" / "k8s" / "package-lock.json").read_text())
    for name, version in package["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}@{version} is not an exact version"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, name


def test_deploy_runner_dockerfile_lints() -> None:
    """The deploy job's runner image (deploy/k8s/addons/deploy-runner), through
    hadolint at its default threshold (any finding fails)."""
    run(["hadolint", str(REPO / "deploy" / "k8s" / "addons" / "deploy-runner" / "Dockerfile")])
