"""STYLE.md's size habits, held by the product code (domain, application, infrastructure,
interfaces): most functions short, no module over ~400 lines without a reason at its top."""

from __future__ import annotations

import ast
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("domain", "application", "infrastructure", "interfaces")
MODULE_LINES = 400
# A longer module says why in its docstring, in a sentence starting with these words.
REASON = "Longer than 400 lines"


def _modules() -> list[Path]:
    return sorted(path for package in PRODUCT for path in (ROOT / package).rglob("*.py"))


def _function_lengths(tree: ast.Module) -> list[int]:
    return [
        node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
    ]


def test_the_median_function_is_ten_lines_or_fewer() -> None:
    lengths = [n for path in _modules() for n in _function_lengths(ast.parse(path.read_text()))]

    assert len(lengths) > 500  # the walk found the product code
    assert statistics.median(lengths) <= 10


def test_a_module_over_400_lines_says_why_at_its_top() -> None:
    unexplained = []
    for path in _modules():
        text = path.read_text()
        if text.count("\n") > MODULE_LINES and REASON not in (
            ast.get_docstring(ast.parse(text)) or ""
        ):
            unexplained.append(str(path.relative_to(ROOT)))

    assert unexplained == []
