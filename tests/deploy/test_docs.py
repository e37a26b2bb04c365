"""docs/deploy.md only names files, outputs and overlays that exist."""

from __future__ import annotations

import re

from .helpers import REPO

DOC = REPO / "docs" / "deploy.md"


def test_every_named_path_exists() -> None:
    text = DOC.read_text()
    paths = set(
        re.findall(r"(?<![\w/.-])((?:deploy|tools|tests|docs|\.github)/[\w./{},-]*[\w}])", text)
    )
    paths |= {"Jenkinsfile"} if "Jenkinsfile" in text else set()
    # generate.py --render DIR copies deploy/monitoring to DIR: a path under
    # DIR exists once that step ran when its source in deploy/monitoring does.
    rendered = re.findall(r"generate\.py --render (\S+)", text)
    assert len(paths) > 15
    for path in sorted(paths):
        if "{" in path:  # overlays/{dev,prod,prod-bluegreen}
            head, alternatives = path.split("{")
            expanded = [head + alt for alt in alternatives.rstrip("}").split(",")]
        else:
            expanded = [path]
        for p in expanded:
            # Files the reader makes from an example next to them.
            made = (REPO / f"{p}.example").exists() or any(
                (p == d or p.startswith(f"{d}/"))
                and (REPO / "deploy/monitoring" / p[len(d) :].lstrip("/")).exists()
                for d in rendered
            )
            assert (REPO / p).exists() or made, f"docs/deploy.md names {p}, which does not exist"


def test_terraform_outputs_exist() -> None:
    text = DOC.read_text()
    outputs = (REPO / "deploy" / "terraform" / "outputs.tf").read_text()
    named = set(re.findall(r"output -raw (\w+)", text)) | set(
        re.findall(r"terraform output (\w+)", text)
    )
    assert {
        "cluster_name",
        "ecr_repository_url",
        "redis_secret_name",
        "ci_push_role_arn",
        "ci_deploy_role_arn",
        "alarm_topic_arn",
    } <= named
    for name in named:
        assert f'output "{name}"' in outputs, name


def test_covers_the_whole_path() -> None:
    text = DOC.read_text()
    for must in (
        "terraform init",
        "scripts/ci-push-attest.sh",
        "aws-load-balancer-controller",
        "argo-rollouts",
        "deploy/k8s/deploy.sh",
        "kubectl -n pingpong get pods",
        "kubectl argo rollouts promote",
        "kubectl argo rollouts abort",
        "kubectl argo rollouts undo",
        "terraform validate",
    ):
        assert must in text, must
