"""Packages that are not installed where shapecheck runs.

A model file often imports a sibling module or package of its project (`from models import
BaseVAE`, `from .attend import Attend`) whose own imports name a package that is not
installed here (`torchvision` for data transforms, `wandb` for logging) and that the model
itself never touches. Python would fail the whole sibling import, and every model of the file
with it. While the loader runs the skeleton, `AbsentPackages` sits at the end of
`sys.meta_path`: an unconditional import of a missing top-level package, made by a module of
the user's project, gets a stand-in module whose every attribute is `Unavailable`. Any use of
such a name stops only the model that uses it (SC907, a note on the environment).

Not replaced: imports guarded by a `try` whose handler catches ImportError (the project's own
fallback then runs as it would), `importlib.util.find_spec` probes, imports made by installed
packages, and the checked file's own top-level imports (the loader binds those name by name).
"""

from __future__ import annotations

import ast
import functools
import importlib.machinery
import os
import sys
import types

from shapecheck.errors import MissingPackage

SKELETON = "__shapecheck_user__"  # the module name the loader runs the checked file's top level under
_NOT_PROJECT = tuple(os.path.abspath(p) + os.sep for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}
                     | {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})
_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


class Unavailable:
    """Stands for a name whose import failed: any use stops the model that uses it with
    MissingPackage (SC907, a note on the environment), not with a NameError that would read
    as the user's bug. At the top level of another module of the project (`NORMALIZE =
    T.Normalize(...)` in a sibling that is imported for something else) a use gives another
    `Unavailable`, so the module still loads and only what uses the result stops."""

    def __init__(self, name: str, package: str, path: str) -> None:
        self._what = (name, package, path)

    def _use(self, frame):
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") != SKELETON:
            return self
        name, package, path = self._what
        line = None
        while frame is not None and line is None:
            line = frame.f_lineno if frame.f_code.co_filename == path else None
            frame = frame.f_back
        raise MissingPackage(f"`{name}` comes from `{package}`, which is not installed where shapecheck runs: "
                             f"the model was not checked (install `{package}` to check it)", path if line else "", line,
                             package)

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._use(sys._getframe(1))

    def __call__(self, *args, **kwargs):
        return self._use(sys._getframe(1))

    def __getitem__(self, key):
        return self._use(sys._getframe(1))

    def __iter__(self):
        self._use(sys._getframe(1))
        return iter(())

    def __instancecheck__(self, instance) -> bool:
        self._use(sys._getframe(1))
        return False

    __subclasscheck__ = __instancecheck__

    def __repr__(self) -> str:
        return f"<{self._what[0]}: {self._what[1]} is not installed>"


class AbsentModule(types.ModuleType):
    """The stand-in for a package that is not installed: each attribute is `Unavailable`."""

    def __init__(self, name: str, importer: str) -> None:
        super().__init__(name)
        self.__path__: list[str] = []  # a package: `import absent.sub` comes back here
        self.__all__: list[str] = []  # `from absent import *` binds nothing
        self._importer = importer

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Unavailable(attr, self.__name__.partition(".")[0], self._importer)


class AbsentPackages:
    """A meta path finder of last resort for the user's project (see the module docstring)."""

    def __init__(self) -> None:
        self.importers: dict[str, str] = {}  # top-level package replaced -> the file that imported it

    def __enter__(self) -> AbsentPackages:
        sys.meta_path.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for name, module in list(sys.modules.items()):
            if isinstance(module, AbsentModule):
                del sys.modules[name]

    def find_spec(self, fullname: str, path=None, target=None):
        top = fullname.partition(".")[0]
        importer = self.importers.get(top) if top != fullname else self._importer()
        if importer is None:
            return None
        self.importers[top] = importer
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> AbsentModule:
        return AbsentModule(spec.name, self.importers[spec.name.partition(".")[0]])

    def exec_module(self, module: types.ModuleType) -> None:
        return None

    def _importer(self) -> str | None:
        """The user file whose unguarded import statement asked for the missing package."""
        frame = sys._getframe(2)
        if frame.f_code.co_name != "_find_spec" or frame.f_back.f_code.co_name != "_find_and_load_unlocked":
            return None  # a probe (importlib.util.find_spec), not an import statement
        while frame is not None and "importlib" in frame.f_code.co_filename:
            frame = frame.f_back
        if frame is None:
            return None
        filename = os.path.abspath(frame.f_code.co_filename)
        if frame.f_globals.get("__name__") == SKELETON or not _project_file(filename):
            return None
        if frame.f_lineno in _guarded_lines(filename, _mtime(filename)):
            return None
        return filename


def _project_file(filename: str) -> bool:
    """A file of the user's project: not installed, not the standard library, not shapecheck."""
    if not os.path.isfile(filename) or "site-packages" in filename or "dist-packages" in filename:
        return False
    return not filename.startswith(_NOT_PROJECT)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


@functools.lru_cache(maxsize=64)
def _guarded_lines(path: str, mtime: float) -> frozenset[int]:
    """Lines of `path` inside a `try` body whose handlers catch a failed import."""
    from shapecheck.source import SourceError, read_source

    try:
        tree = ast.parse(read_source(path).text)
    except (OSError, SourceError, SyntaxError, ValueError):
        return frozenset()
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_catches_import(h) for h in node.handlers):
            for stmt in node.body:
                lines.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return frozenset(lines)


def _catches_import(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    names = {k.id if isinstance(k, ast.Name) else getattr(k, "attr", "") for k in kinds}
    return bool(names & _IMPORT_ERRORS)
