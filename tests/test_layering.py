"""Imports flow one way: cli → admin/config → storage, and proxy → storage; nothing imports cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "weir"

FORBIDDEN = {
    "proxy": ("weir.cli", "weir.admin", "weir.config", "typer", "rich", "httpx"),
    "storage": ("weir.cli", "weir.admin", "weir.config", "weir.proxy", "typer", "rich"),
    "admin": ("weir.cli", "weir.proxy"),
    "config": ("weir.cli",),
}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_flow_one_way(package: str) -> None:
    offences = [
        f"{path.relative_to(SOURCE)} imports {name}"
        for path in sorted((SOURCE / package).rglob("*.py"))
        for name in imported_modules(path)
        if name.startswith(FORBIDDEN[package])
    ]

    assert offences == []
