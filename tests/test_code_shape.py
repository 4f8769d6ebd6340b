"""The shape the team keeps (shared/STYLE.md): no function in src/ over 60 lines, so each reads
on one screen; a longer one is split into named steps."""

from __future__ import annotations

import ast

from tests.conftest import REPO

LONGEST = 60


def test_no_function_in_src_is_over_60_lines():
    long = []
    for path in sorted((REPO / "src" / "medssl").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines})")
    assert long == []
