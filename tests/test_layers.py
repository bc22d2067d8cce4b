"""The rooms stay separate: the core never imports front ends or rich; rules never import torch."""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shapecheck")


def imports_of(path: str) -> set[str]:
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found |= {f"{base}.{a.name}" if base.endswith(".") is False else base + a.name for a in node.names}
    return found


def files(room: str) -> list[str]:
    root = os.path.join(PACKAGE, room)
    if os.path.isfile(root + ".py"):
        return [root + ".py"]
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".py")]


@pytest.mark.parametrize("room, forbidden", [
    ("diagnostics", ("torch", "libcst", "rich", "frontends", "render", "engine")),
    ("rules", ("torch", "rich", "frontends", "render", "engine", "fixes", "api")),
    ("engine", ("rich", "frontends", "render", "rules", "fixes", "api")),
    ("fixes", ("torch", "rich", "frontends", "render", "engine", "api")),
    ("api", ("rich", "frontends", "render")),
    ("render", ("torch", "frontends", "engine", "api")),
    ("conv", ("rich", "frontends", "rules", "fixes", "api")),
    ("worker", ("rich", "frontends", "render", "torch")),
    ("source", ("torch", "libcst", "rich", "frontends", "render", "engine", "rules", "fixes", "api")),
    ("config", ("torch", "libcst", "rich", "frontends", "render", "engine")),
    ("frontends", ("torch", "libcst", "engine", "rules", "fixes", "conv", "diagnostics")),
])
def test_room_imports(room, forbidden):
    for path in files(room):
        for name in imports_of(path):
            parts = name.lstrip(".").split(".")
            assert not any(p in forbidden for p in parts[:2] if p), f"{path} imports {name}"
