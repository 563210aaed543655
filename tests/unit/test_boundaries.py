"""Imports run one way: tests → lab → components (and policy → components). Read from the source with
`ast`, function-level imports included, so a lazy import cannot hide a dependency on the tests."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What each part of the repository must not import (the repository's top-level packages).
FORBIDDEN = {
    "components": {"tests", "lab", "policy", "tools"},
    "__main__.py": {"tests", "lab", "policy", "tools"},
    # A program that composes GlanceService uses the product only, as another repository would.
    "examples": {"tests", "lab", "policy", "tools"},
    "policy": {"tests", "lab", "tools"},
    "lab": {"tests"},
    "tools": {"tests", "lab", "policy", "components"},
}


def python_files(part: str) -> list[Path]:
    path = REPO / part
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in `path`, relative ones resolved."""
    parts = path.relative_to(REPO).with_suffix("").parts
    package = parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            yield node.lineno, module


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_no_import_against_the_direction(part: str) -> None:
    files = python_files(part)
    assert files, f"{part}: no Python files"
    wrong = [
        f"{path.relative_to(REPO)}:{line}: imports {module}"
        for path in files
        for line, module in imports(path)
        if module.split(".")[0] in FORBIDDEN[part]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_walk_sees_lazy_and_relative_imports() -> None:
    assert {module for _, module in imports(REPO / "lab" / "quickstart.py")} >= {
        "lab.standin.executor",  # inside a function
        "lab.stacks",
    }
    assert "lab.lifecycle" in {module for _, module in imports(REPO / "lab" / "pytest_plugin.py")}  # from .lifecycle


def test_toolchain_is_standard_library_only() -> None:
    """tools/ runs before the virtualenv exists (scripts/setup)."""
    wrong = [
        f"{path.relative_to(REPO)}:{line}: imports {module}"
        for path in python_files("tools")
        for line, module in imports(path)
        if module.split(".")[0] not in {*sys.stdlib_module_names, "tools"}
    ]
    assert not wrong, "\n".join(wrong)


def test_scripts_are_shell() -> None:
    """Python lives in .py modules, where ruff and mypy see it; scripts/ holds shell launchers only."""
    for script in sorted((REPO / "scripts").iterdir()):
        first = script.read_text().split("\n", 1)[0]
        assert first in {"#!/usr/bin/env bash", "#!/bin/sh"}, f"{script.relative_to(REPO)}: {first}"
