"""What one check is asked to do: the settings every front end builds and `api` reads."""

from __future__ import annotations

from dataclasses import dataclass, field


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
