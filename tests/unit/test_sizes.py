"""The size limits of the developers' guide, enforced: no function in src/
over 50 lines, no test file over 400. Past those, a function does several
things and a test file checks several subjects; split them."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FUNCTION_LINES = 50
MAX_TEST_FILE_LINES = 400


def long_functions(path: Path) -> list[str]:
    """Each function or method of ``path`` longer than the limit, decorators included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{path.relative_to(ROOT)}:{first} {node.name} ({length} lines)")
    return found


def test_no_function_in_src_is_over_50_lines() -> None:
    too_long = [f for path in sorted((ROOT / "src").rglob("*.py")) for f in long_functions(path)]
    assert not too_long, too_long


def test_no_test_file_is_over_400_lines() -> None:
    lines = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in sorted((ROOT / "tests").rglob("*.py"))
    }
    too_long = {name: n for name, n in lines.items() if n > MAX_TEST_FILE_LINES}
    assert not too_long, too_long
