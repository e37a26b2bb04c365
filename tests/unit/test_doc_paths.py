"""Every repository path the docs and the source's comments name exists.

What counts as a path (so that examples and placeholders do not):
- in README.md, docs/*.md and deploy/**/README.md, a backticked token whose
  first segment is a top-level directory of the repository (``src/...``,
  ``deploy/...``), and every relative markdown link target (relative to the
  document: ``[x](monitoring.md)``);
- in the Python source (src/, tests/, bench/, deploy/), in comments and
  docstrings, such a token that names a file (it has an extension) or a
  directory (it ends in ``/``).
Not a path: a token with a placeholder or a glob (``<name>``, ``*``,
``{a,b}``), and a path in another project cited after that project's name
(``argo-rollouts docs/features/analysis.md``).
A path exists when git tracks it or ignores it: an ignored path is one a
command creates (``bench/results/latest.json``, ``terraform.tfvars``), and a
file that is neither is a stale pointer.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BACKTICKED = re.compile(r"(?:(\S+) )?`([^`\s]+)`")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
WORD = re.compile(r"(?:(\S+) )?([A-Za-z0-9_.][\w.+/-]*/[\w.+/-]*)")
NOT_A_PATH = re.compile(r"[<>*{}$|]|://|\.\.\.")  # placeholders, globs, URLs
PROJECT = re.compile(r"^[a-z0-9]+(?:[-/][a-z0-9]+)+$")  # argo-rollouts, owner/name
EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,8})$")


@cache
def tracked() -> frozenset[str]:
    """Every tracked file and every directory above one, relative to ROOT."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    names = set(files)
    for name in files:
        parts = name.split("/")
        names.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(names)


@cache
def known_extensions() -> frozenset[str]:
    """The extensions of the files the repository has."""
    return frozenset(m.group(1) for n in tracked() if (m := EXTENSION.search(n.split("/")[-1])))


@cache
def top_dirs() -> frozenset[str]:
    return frozenset(n for n in tracked() if "/" not in n and (ROOT / n).is_dir())


def as_path(token: str, *, file_or_dir: bool = False) -> str | None:
    """The repository path a token names, or None if it names none.
    ``file_or_dir``: only one with an extension or a trailing ``/`` counts."""
    token = token.strip(",;:'\"()").rstrip(".").split("::")[0]  # a node id names its file
    token = re.sub(r":\d+(-\d+)?$", "", token)  # file:line
    token = re.sub(r"@[\w./-]+$", "", token)  # file@ref (a workflow at a branch)
    if NOT_A_PATH.search(token) or "/" not in token:
        return None
    extension = EXTENSION.search(token.rsplit("/", 1)[-1])
    if extension and extension.group(1) not in known_extensions():
        return None  # another project's file (granian's src/conversion.rs)
    if file_or_dir and not extension and not token.endswith("/"):
        return None
    token = token.removeprefix("./").rstrip("/")
    return token if token.split("/")[0] in top_dirs() else None


def exists(path: str, relative_to: Path | None = None) -> bool:
    candidates = [] if path.startswith("../") else [path]
    if relative_to is not None:
        resolved = (ROOT / relative_to / path).resolve()
        if resolved.is_relative_to(ROOT):
            candidates.append(str(resolved.relative_to(ROOT)))
    return any(c in tracked() or ignored(c) for c in candidates)


def ignored(path: str) -> bool:
    """Ignored as a file or as a directory (``.peers-venv/`` matches only one)."""
    check = ["git", "check-ignore", path, path + "/"]
    return subprocess.run(check, cwd=ROOT, check=False, capture_output=True).returncode == 0


def documents() -> list[str]:
    return sorted(
        n
        for n in tracked()
        if n == "README.md"
        or re.fullmatch(r"docs/[^/]+\.md", n)
        or re.fullmatch(r"deploy/.+/README\.md", n)
    )


def sources() -> list[str]:
    return sorted(
        n
        for n in tracked()
        if n.endswith(".py") and n.split("/")[0] in ("src", "tests", "bench", "deploy")
    )


def comments_and_docstrings(text: str) -> list[str]:
    found = [
        tok.string
        for tok in tokenize.generate_tokens(io.StringIO(text).readline)
        if tok.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(ast.get_docstring(node) or "")
    return found


def cited_paths(text: str, *, file_or_dir: bool) -> list[tuple[str, str]]:
    """(token, path) for each path the text names, citations of other projects left out."""
    found = []
    for match in (WORD if file_or_dir else BACKTICKED).finditer(text):
        before, token = match.group(1), match.group(2)
        if before is not None and PROJECT.match(before.strip("(`")):
            continue
        path = as_path(token, file_or_dir=file_or_dir)
        if path is not None:
            found.append((token, path))
    return found


def missing_in_document(name: str) -> list[str]:
    text = (ROOT / name).read_text()
    here = Path(name).parent
    missing = [t for t, path in cited_paths(text, file_or_dir=False) if not exists(path, here)]
    for target in LINK.findall(text):
        if "://" in target or target.startswith("mailto:"):
            continue
        if not exists(target.removeprefix("./").rstrip("/"), here):
            missing.append(target)
    return missing


def missing_in_source(name: str) -> list[str]:
    missing = []
    for chunk in comments_and_docstrings((ROOT / name).read_text()):
        for token, path in cited_paths(chunk.replace("`", " "), file_or_dir=True):
            if not exists(path, Path(name).parent):
                missing.append(token)
    return sorted(set(missing))


@pytest.mark.parametrize("name", documents())
def test_every_path_a_document_names_exists(name: str) -> None:
    assert missing_in_document(name) == []


@pytest.mark.parametrize("name", sources())
def test_every_path_a_comment_or_docstring_names_exists(name: str) -> None:
    assert missing_in_source(name) == []


def test_the_rule_tells_paths_from_examples() -> None:
    assert as_path("src/pingpong/config.py") == "src/pingpong/config.py"
    assert as_path("tests/unit/test_doc_paths.py::test_x") == "tests/unit/test_doc_paths.py"
    assert as_path("docs/deploy.md:12") == "docs/deploy.md"
    assert as_path("deploy/k8s/") == "deploy/k8s"
    for example in ["config.yaml", "10/minute", "5/10s", "<dir>/<pid>.json", "deploy/**/x.md",
                    "redis://h:1/0", "a/b", "N/second"]:  # fmt: skip
        assert as_path(example) is None, example
    assert as_path("deploy/pingpong", file_or_dir=True) is None  # a kubectl name, not a file
    assert as_path("src/conversion.rs") is None  # granian's, not ours: no .rs file here
    # a workflow at a branch (an OIDC subject) names the workflow file
    assert as_path(".github/workflows/main.yaml@refs/heads/main") == ".github/workflows/main.yaml"
    assert as_path("deploy/k8s/", file_or_dir=True) == "deploy/k8s"
    assert cited_paths("argo-rollouts docs/features/analysis.md", file_or_dir=True) == []
    assert not exists("src/pingpong/metrics.py")
    assert exists("monitoring.md", Path("docs"))
    assert exists("bench/results/latest.json")  # ignored: a run writes it
