"""Whose exception is it: the user's code (a finding) or shapecheck's own (a bug to report).

shapecheck runs the user's constructors and forward passes, and torch inside them. Every
place that calls into that code and catches what it raises asks ``raised_in_shapecheck``
first: an exception whose innermost responsible frame is shapecheck's own code is a bug
in shapecheck, re-raised as ``errors.InternalError`` by ``reraise_if_ours``.

Frames of torch, sympy and the standard library are passed over (they only do what their
caller asked); the first other frame decides. A call from shapecheck into user or torch
code goes through ``call_user``, whose frame marks the boundary: what is raised below it
is the user's. shapecheck's shape-only stand-ins for torch code raise ``StandInError``,
which is torch's error in all but name.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import re
import sysconfig
from dataclasses import dataclass

import sympy
import torch

from ..errors import InternalError

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_LIBRARIES = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (torch, sympy)) + (
    os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep,)


class StandInError(RuntimeError):
    """Raised by shapecheck's shape-only stand-ins for torch code, as torch itself would."""


def call_user(func, /, *args, **kwargs):
    """Call user or torch code: an exception raised below this frame is theirs."""
    return func(*args, **kwargs)


def raised_in_shapecheck(exc: BaseException) -> bool:
    """Whether the innermost frame responsible for ``exc`` is shapecheck's own code."""
    if isinstance(exc, StandInError):
        return False
    for code in reversed(_codes(exc)):
        if code is call_user.__code__:
            return False
        filename = os.path.abspath(code.co_filename) if not code.co_filename.startswith("<") else ""
        if filename.startswith(_PACKAGE):
            return True
        if filename and not filename.startswith(_LIBRARIES):
            return False  # the user's code (or a library of theirs)
    return False


def reraise_if_ours(exc: BaseException) -> None:
    """Raise InternalError from ``exc`` when shapecheck's own code raised it."""
    if raised_in_shapecheck(exc):
        raise InternalError(f"{type(exc).__name__}: {exc}") from exc


def _codes(exc: BaseException) -> list:
    codes, tb = [], exc.__traceback__
    while tb is not None:
        codes.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    return codes


# ---------------------------------------------------------------- a value nobody supplied


@dataclass(frozen=True)
class Unsupplied:
    """A ``None`` that the user's code used as a value: a default that real callers replace.

    ``name``: the parameter (of ``__init__`` when ``constructor``, else of the function that
    failed, usually ``forward``); ``used``: how the failing line reads it (``self.block``).
    """

    name: str
    used: str
    constructor: bool
    line: int


def unsupplied_from_exception(exc: BaseException, path: str) -> Unsupplied | None:
    """The ``None`` default behind ``'NoneType' object is not callable`` and its kind."""
    if not isinstance(exc, (TypeError, AttributeError)) or "NoneType" not in str(exc):
        return None
    frame = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            frame, line = tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next
    return unsupplied_in_frame(frame, line, path) if frame is not None else None


def unsupplied_in_frame(frame, line: int, path: str) -> Unsupplied | None:
    """A ``None`` default read on ``line`` of the user's ``frame``, if one is."""
    text = linecache.getline(path, line)
    this = frame.f_locals.get("self")
    candidates = [(n, f"self.{n}", True) for n in _none_defaults(type(this).__init__)
                  if getattr(this, n, 0) is None] if this is not None else []
    own = _function_of(frame)
    candidates += [(n, n, False) for n in _none_defaults(own) if frame.f_locals.get(n, 0) is None]
    used = [c for c in candidates if re.search(rf"(?<![\w.]){re.escape(c[1])}\b", text)]
    if not used and not text and len(candidates) == 1:
        used = candidates
    return Unsupplied(used[0][0], used[0][1], used[0][2], line) if len(used) == 1 else None


def _none_defaults(func) -> list[str]:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.default is None]


def _function_of(frame):
    this = frame.f_locals.get("self")
    method = getattr(type(this), frame.f_code.co_name, None) if this is not None else None
    return method if getattr(method, "__code__", None) is frame.f_code else None


def unset_global(exc: BaseException, path: str) -> str:
    """For a NameError on a name that the file assigns at top level (in code shapecheck does
    not run, such as ``SCALE = torch.ones(3)``): why the check stops. Else ""."""
    name = getattr(exc, "name", None) if isinstance(exc, NameError) else None
    if not name:
        return ""
    try:
        tree = ast.parse("".join(linecache.getlines(path)))
    except SyntaxError:
        return ""
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and any(
                isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)):
            return (f"`{name}` is set at line {stmt.lineno} by top-level code that shapecheck does not run "
                    f"(it runs only definitions, imports and constants)")
    return ""
