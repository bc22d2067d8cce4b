"""The pytest plugin (entry point `pytest11`): an assertion, a fixture, and `--shapecheck`.

- `from shapecheck import assert_shapes` works in any test; the `shapecheck` fixture gives the
  same assertion with the options of this run (`--shapecheck-strict`).
- `pytest --shapecheck [paths]` collects every model of the Python files given (folders are
  searched as `shapecheck DIR` searches them) as a test item named `path::Model`. Each file is
  checked once, in one warm worker per pytest process (pytest-xdist workers each start their
  own); findings fail the item with the same text as the CLI, models that cannot be checked
  are skipped with the reason.

torch is never imported by the plugin itself: user code runs in the worker.
"""

from __future__ import annotations

import ast
import os

import pytest

_MODULE_BASES = ("Module", "nn.Module", "torch.nn.Module")


def pytest_addoption(parser) -> None:
    group = parser.getgroup("shapecheck", "shape checks of PyTorch models")
    group.addoption("--shapecheck", action="store_true", help="check every model in the Python files collected")
    group.addoption("--shapecheck-timeout", type=float, default=None, metavar="SECONDS",
                    help="time limit per model (default 20)")
    group.addoption("--shapecheck-strict", action="store_true", help="warnings fail too")


def pytest_configure(config) -> None:
    if config.getoption("--shapecheck"):
        config.pluginmanager.register(_Checker(config), "shapecheck-checker")


def pytest_collect_file(file_path, parent):
    checker = parent.config.pluginmanager.get_plugin("shapecheck-checker")
    if checker is None or file_path.suffix != ".py" or not checker.wanted(str(file_path)):
        return None
    return ModelFile.from_parent(parent, path=file_path)


@pytest.fixture
def shapecheck(request):
    """`shapecheck(model, *inputs, expect=None)`: assert_shapes with this run's options."""
    from .assertions import assert_shapes

    strict = request.config.getoption("--shapecheck-strict")

    def check(model, *inputs, expect=None):
        return assert_shapes(model, *inputs, expect=expect, strict=strict)
    return check


class _Checker:
    """Per pytest process: one warm worker and each file's report, checked once."""

    def __init__(self, config) -> None:
        self.config = config
        self.reports: dict[str, object] = {}
        self.worker = None
        config.add_cleanup(self.close)

    def wanted(self, path: str) -> bool:
        from ..source.walk import imports_torch

        return imports_torch(path)

    def report(self, path: str):
        if path not in self.reports:
            from ..config import Settings
            from ..worker import Worker

            if self.worker is None:
                self.worker = Worker()
            timeout = self.config.getoption("--shapecheck-timeout")
            settings = Settings() if timeout is None else Settings(timeout=timeout)
            self.reports[path] = self.worker.check_file(path, settings)
        return self.reports[path]

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


class ModelFile(pytest.File):
    def collect(self):
        for name in model_names(str(self.path)):
            yield ModelItem.from_parent(self, name=name)


class ModelItem(pytest.Item):
    funcargs: dict = {}  # no fixtures; plugins that look for them on every item find none

    def runtest(self) -> None:
        checker = self.config.pluginmanager.get_plugin("shapecheck-checker")
        report = checker.report(str(self.path))
        result = next((m for m in report.models if m.name == self.name), None)
        mine = [d for d in report.diagnostics if d.model in (self.name, "")]
        failing = ("error", "warning") if self.config.getoption("--shapecheck-strict") else ("error",)
        if any(d.severity.value in failing for d in mine):
            raise ShapeFindings(_cli_text(report, mine))
        if result is None:
            pytest.skip(f"{self.name}: not a model shapecheck could build here")
        if result.status.value == "not_checked":
            pytest.skip(f"{self.name}: {result.reason}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ShapeFindings):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"shapecheck {self.name}"


class ShapeFindings(Exception):
    """The findings of one model, as the CLI prints them."""


def _cli_text(report, diagnostics) -> str:
    import io
    from dataclasses import replace

    from rich.console import Console

    from ..render.terminal import render_report

    buffer = io.StringIO()
    render_report(replace(report, diagnostics=tuple(diagnostics)), Console(file=buffer, no_color=True, width=110,
                                                                          highlight=False, soft_wrap=True), quiet=True)
    return buffer.getvalue().rstrip()


def model_names(path: str) -> list[str]:
    """The model classes and module objects a file defines at top level, read without running it:
    classes derived from nn.Module (directly or through another class of the file) and
    assignments of `nn.…(…)` or of such a class's call."""
    try:
        with open(path, "rb") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return [os.path.basename(path)]  # one item, whose check reports the problem
    models: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(_is_model_base(b, models) for b in node.bases):
            models.append(node.name)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1:
            target, func = node.targets[0], ast.unparse(node.value.func)
            if isinstance(target, ast.Name) and (func.startswith(("nn.", "torch.nn.")) or func in models):
                models.append(target.id)
    return models


def _is_model_base(base, models: list[str]) -> bool:
    text = ast.unparse(base)
    return text in _MODULE_BASES or text in models or text.startswith(("nn.", "torch.nn."))
