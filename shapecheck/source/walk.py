"""Which files `shapecheck DIR` checks: Python files below the folders given, minus the noise.

Skipped: hidden folders (`.git`, `.venv`), virtual environments (a folder with `pyvenv.cfg`),
`build/`, `dist/`, `__pycache__`, `node_modules`, `site-packages`, `*.egg-info`, and the
globs in `[tool.shapecheck] exclude` of the nearest pyproject.toml. Of the rest, only files
that import torch can define or build a model; the others are passed over without loading.
"""

from __future__ import annotations

import fnmatch
import os
import re

from ..config import find_config, tool_table

SKIP_FOLDERS = frozenset({"build", "dist", "__pycache__", "node_modules", "site-packages", "venv", "env"})
_TORCH_IMPORT = re.compile(rb"^\s*(?:import|from)\s+torch\b", re.MULTILINE)


def python_files(paths: list[str]) -> list[tuple[str, bool]]:
    """(path, named): every file named, and the candidate files below every folder named."""
    out: list[tuple[str, bool]] = []
    for path in paths:
        if os.path.isdir(path):
            out += [(f, False) for f in _below(path)]
        else:
            out.append((path, True))
    return out


def _below(root: str) -> list[str]:
    base, excluded = _excluded_globs(root)
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not _skip_folder(folder, d, base, excluded))
        for name in sorted(names):
            path = os.path.join(folder, name)
            if name.endswith(".py") and not _matches(path, base, excluded) and imports_torch(path):
                found.append(path)
    return found


def _skip_folder(parent: str, name: str, base: str, excluded: list[str]) -> bool:
    if name.startswith(".") or name in SKIP_FOLDERS or name.endswith(".egg-info"):
        return True
    path = os.path.join(parent, name)
    return os.path.exists(os.path.join(path, "pyvenv.cfg")) or _matches(path, base, excluded)


def _matches(path: str, base: str, globs: list[str]) -> bool:
    """A glob of [tool.shapecheck] exclude, relative to the pyproject.toml's folder."""
    relative = os.path.relpath(os.path.abspath(path), base).replace(os.sep, "/")
    return any(fnmatch.fnmatch(relative, g) or fnmatch.fnmatch(relative, g.rstrip("/") + "/*") for g in globs)


def imports_torch(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return bool(_TORCH_IMPORT.search(handle.read()))
    except OSError:
        return False


def _excluded_globs(root: str) -> tuple[str, list[str]]:
    config = find_config(root)
    if config is None:
        return root, []
    globs = tool_table(config).get("exclude", [])
    return os.path.dirname(config), [str(g) for g in globs] if isinstance(globs, list) else []
