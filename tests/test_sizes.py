"""Sizes a reader can hold in mind (issue 15): no class over 250 lines, no function over 60, in identity/.

Read from the source (ast), no servers. A unit that grows past these is split by what it does, not
by where the line count falls.
"""

from __future__ import annotations

import ast
from pathlib import Path

IDENTITY = Path(__file__).resolve().parents[1] / "identity"
MAX_CLASS = 250
MAX_FUNCTION = 60


def oversized(source: str, where: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, where)):
        lines = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
        if isinstance(node, ast.ClassDef) and lines > MAX_CLASS:
            found.append(f"{where}:{node.lineno}: class {node.name} is {lines} lines")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and lines > MAX_FUNCTION:
            found.append(f"{where}:{node.lineno}: function {node.name} is {lines} lines")
    return found


def test_no_class_or_function_is_too_long():
    found = []
    for path in sorted(IDENTITY.rglob("*.py")):
        found += oversized(path.read_text(), str(path.relative_to(IDENTITY.parent)))
    assert not found, "\n".join(found)


def test_the_check_sees_a_long_function_and_a_long_class():
    body = "\n".join(f"    x{n} = {n}" for n in range(MAX_FUNCTION))
    assert oversized(f"def f():\n{body}\n", "f.py") == ["f.py:1: function f is 61 lines"]
    methods = "\n".join(f"    def m{n}(self):\n        return {n}\n" for n in range(MAX_CLASS // 3 + 1))
    assert oversized(f"class C:\n{methods}", "c.py")[0].startswith("c.py:1: class C is ")
