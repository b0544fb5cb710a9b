"""Imports run one way: core <- sim <- agents, core <- real, and app above them all.

Every module is parsed, so an import hidden inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"facetwin": "facetwin", "app": "facetwin.app", "sim": "facetwin.sim", "agents": "facetwin.agents",
           "real": "facetwin.real", "assets": "facetwin.assets"}
# layer -> the layers it may import (besides itself)
ALLOWED = {
    "core": {"assets"},
    "assets": set(),
    "sim": {"core", "assets"},
    "agents": {"core", "assets", "sim"},
    "real": {"core", "assets"},
    "app": {"core", "assets", "sim", "agents", "real"},
}


def layer(module: str) -> str:
    for name in ("app", "sim", "agents", "real", "assets"):
        if module == f"facetwin.{name}" or module.startswith(f"facetwin.{name}."):
            return name
    return "core"


def modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


def imported(module: str, path: Path) -> set[str]:
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {name for name in found if name == "facetwin" or name.startswith("facetwin.")}


MODULES = modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    own = layer(module)
    wrong = sorted(name for name in imported(module, MODULES[module])
                   if layer(name) != own and layer(name) not in ALLOWED[own])
    assert not wrong, f"{module} ({own}) imports {wrong}; {own} may import only {sorted(ALLOWED[own])}"


def test_every_folder_is_covered():
    assert {layer(m) for m in MODULES} == set(ALLOWED)
    assert len(MODULES) > 100


@pytest.mark.parametrize("package, absent", [
    ("facetwin", ("gymnasium", "mujoco", "torch", "ray", "facetwin.sim", "facetwin.agents", "facetwin.real")),
    ("facetwin.real", ("gymnasium", "mujoco", "torch", "facetwin.sim", "facetwin.agents")),
])
def test_light_imports(package, absent):
    code = f"import sys, {package}; print([m for m in {absent!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"import {package} pulls in {out}"
