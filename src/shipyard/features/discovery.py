"""Finding definitions in a project's Python files."""

from __future__ import annotations

import fnmatch
import importlib
import sys
from pathlib import Path

from shipyard.core.errors import DefinitionError
from shipyard.features.definitions import (
    Definition,
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)

_SKIP_DIRS = {"__pycache__", "venv", "site-packages", "node_modules", "tests", "data"}
_TYPES = (Entity, FeatureView, OnDemandFeatureView, FeatureService)


def python_files(root: Path) -> list[Path]:
    """The project's Python files, minus hidden folders, tests, data and `.shipyardignore`."""
    ignore_file = root / ".shipyardignore"
    patterns = ignore_file.read_text().split() if ignore_file.exists() else []
    files = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        parts = rel.parts[:-1]
        if any(p.startswith(".") or p in _SKIP_DIRS for p in parts):
            continue
        if rel.name.startswith("test_") or any(fnmatch.fnmatch(str(rel), p) for p in patterns):
            continue
        files.append(path)
    return files


def discover(root: Path) -> list[Definition]:
    """Import the project's files and return every definition object they hold at top level.

    Files are imported under their own module names with the project folder on sys.path,
    so definitions files can import each other; the modules are removed afterwards so that
    two projects with a file of the same name never see each other's objects.
    """
    root = root.resolve()
    files = python_files(root)
    names = [".".join(p.relative_to(root).with_suffix("").parts) for p in files]
    names = [n.removesuffix(".__init__") for n in names]
    saved = {n: sys.modules.pop(n) for n in list(sys.modules) if _is_project_module(n, names)}
    sys.path.insert(0, str(root))
    found: dict[int, Definition] = {}
    try:
        for path, name in zip(files, names, strict=True):
            try:
                module = importlib.import_module(name)
            except DefinitionError:
                raise
            except Exception as exc:
                raise DefinitionError(
                    f"Importing {path.relative_to(root)} failed: {type(exc).__name__}: {exc}",
                    hint="Fix the file, or list it in .shipyardignore if it holds no definitions.",
                ) from exc
            for value in vars(module).values():
                if isinstance(value, _TYPES):
                    found.setdefault(id(value), value)
    finally:
        sys.path.remove(str(root))
        for n in [n for n in sys.modules if _is_project_module(n, names)]:
            del sys.modules[n]
        sys.modules.update(saved)
    return list(found.values())


def _is_project_module(module: str, names: list[str]) -> bool:
    return any(module == n or module.startswith(n + ".") or n.startswith(module + ".")
               for n in names)
