"""What one check is asked to do: the settings every front end builds and `api` reads."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

DEFAULT_TIMEOUT = 20.0  # seconds per model (loading, building, tracing, fix proofs)
DEFAULT_MEMORY_MB = 4096  # memory the worker may take beyond what it holds when it starts


@dataclass(frozen=True)
class Settings:
    """Inputs given on the command line (or by the caller) and constructor overrides.

    Input shapes are looked up per model in this order: ``inputs`` (the flag) > the in-file
    hint (``# shapecheck: input=...``) > ``[tool.shapecheck] inputs`` in pyproject.toml >
    an example call found in the file.
    """

    inputs: tuple[str, ...] = ()  # "--input" texts, e.g. "16,1,32,32" or "16,20:int64"
    init: tuple[str, ...] = ()  # "--init" texts, e.g. "n_classes=10"
    models: tuple[str, ...] = ()  # only these models (all when empty)
    symbolic: bool = True  # trace with a symbolic batch dimension
    prove_fixes: bool = True  # re-check each proposed fix before calling it safe
    extra: dict = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT  # per model, enforced by the worker
    memory_mb: int = DEFAULT_MEMORY_MB  # enforced by the worker
    exclude: tuple[str, ...] = ()  # models not to run at all (the worker saw them hang or crash)
    unproven: tuple[str, ...] = ()  # models whose fixes are not re-checked (a re-check crashed)
    # called as observer(phase, model, line) when a phase starts: "load", "model", "fix"
    observer: Callable[[str, str, Any], None] | None = field(default=None, compare=False, repr=False)
    root: str = ""  # the project read for construction sites ("" = found from the file: see source.project)
    # a prebuilt source.project.SiteIndex, shared by the files of one run in one process
    sites: Any = field(default=None, compare=False, repr=False)

    def notify(self, phase: str, model: str = "", line: int | None = None) -> None:
        if self.observer is not None:
            self.observer(phase, model, line)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the worker (the observer and the site index stay behind)."""
        return {"inputs": list(self.inputs), "init": list(self.init), "models": list(self.models),
                "symbolic": self.symbolic, "prove_fixes": self.prove_fixes, "extra": dict(self.extra),
                "timeout": self.timeout, "memory_mb": self.memory_mb, "exclude": list(self.exclude),
                "unproven": list(self.unproven), "root": self.root}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Settings":
        tuples = ("inputs", "init", "models", "exclude", "unproven")
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})


def find_config(path: str) -> str | None:
    """The nearest pyproject.toml in the folder of ``path`` (or ``path`` itself, a folder) or above it."""
    folder = os.path.abspath(path) if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    while True:
        candidate = os.path.join(folder, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def tool_table(config: str, strict: bool = False) -> dict:
    """The `[tool.shapecheck]` table of a pyproject.toml; {} when it has none. One that cannot
    be read: {}, or with `strict` a UsageError naming it. The file is read again only when its
    size or modification time changed."""
    from .errors import UsageError

    try:
        stat = os.stat(config)
        key = (config, stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        key, data = None, exc
    if key is not None:
        data = _TABLES.get(key)
        if data is None:
            data = _TABLES[key] = _parse_toml(config)
    if isinstance(data, Exception):
        if strict:
            raise UsageError(f"{config}: cannot read it: {data}") from None
        return {}
    tool = data.get("tool")
    table = tool.get("shapecheck", {}) if isinstance(tool, dict) else {}
    return table if isinstance(table, dict) else {}


_TABLES: dict[tuple, Any] = {}


def _parse_toml(config: str):
    """The parsed file, or the exception that stopped reading it."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(config, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, ValueError) as exc:
        return exc
