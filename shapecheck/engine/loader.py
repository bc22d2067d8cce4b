"""Load a user's model file without running its script part.

`parse(source, path)` checks the syntax and returns a `SourceFile`. `load(src)` executes only
a skeleton of the file in a fresh namespace and returns that namespace:

- kept: imports, `def`s, `class`es, assignments of constant expressions and of module
  objects (`model = nn.Sequential(...)`, `net = Net()`), and `if`/`try` blocks made of these;
  an argparse parser with its `add_argument` calls, and `opt = parser.parse_args()` evaluated
  with an empty command line (defaults only);
- dropped: everything under `if __name__ == "__main__":`, loops, `with` blocks, bare calls,
  and assignments of any other call (`loader = DataLoader(...)`, `x = torch.randn(...)`).

Each kept top-level statement is compiled on its own from the file's own syntax tree, with the
file's path as filename, so every code object (methods of the user's classes included) carries
the true path, lines and columns. A kept statement that raises is skipped and noted; a failing
top-level import is a `LoadError`. The skeleton runs under `torch.device("meta")` (module
objects hold no memory), with `__name__` set to "__shapecheck_user__", the file's folder first
on `sys.path`, and no bytecode written; `sys.path` and `sys.modules` are restored afterwards
(modules imported from the user's folder are forgotten, so an edited sibling is re-read).

Spans are worked out from the `ast` tree (see `locate`); libcst is used only to write fixes.
"""

from __future__ import annotations

import __future__ as future_module
import argparse
import ast
import builtins
import collections
import contextlib
import copy
import dataclasses
import enum
import functools
import io
import linecache
import os
import sys
import types
from dataclasses import dataclass
from typing import Any

from shapecheck.errors import MissingPackage
from shapecheck.engine.absent import SKELETON, AbsentPackages, Unavailable
from shapecheck.diagnostics import Span
from shapecheck.source import SourceError, char_column, read_source, split_lines, universal_lines
from shapecheck.source.nodes import all_nodes
from shapecheck.source.values import as_literal, compared_options

USER_MODULE_NAME = SKELETON
HINT_MARKER = "shapecheck:"

# Method calls that only move a module between devices or dtypes: stripped from kept
# assignments (the skeleton runs on the meta device, where `.to("cuda")` cannot work).
MOVE_METHODS = frozenset({"to", "cuda", "cpu"})
# Method calls kept on a safe receiver (a module object or a small constant tensor).
SAFE_METHODS = frozenset({
    "eval", "train", "float", "double", "half", "bfloat16", "requires_grad_",
    "view", "reshape", "unsqueeze", "squeeze", "permute", "transpose", "t", "flatten",
    "expand", "repeat", "contiguous", "clone", "detach", "long", "int", "bool",
    "get", "copy", "keys", "values", "items", "format", "join", "split", "upper", "lower",
})
SAFE_BUILTINS = frozenset({
    "range", "len", "int", "float", "complex", "str", "bool", "bytes", "tuple", "list",
    "dict", "set", "frozenset", "min", "max", "sum", "abs", "round", "pow", "divmod",
    "zip", "enumerate", "reversed", "sorted", "map", "filter", "isinstance", "issubclass",
    "hasattr", "type", "object", "property", "staticmethod", "classmethod", "slice", "repr",
    "chr", "ord", "hex", "any", "all",
})
SAFE_TORCH = (
    "device", "cuda.is_available", "cuda.device_count", "backends.mps.is_available",
    "tensor", "as_tensor", "Size", "get_default_dtype", "finfo", "iinfo",
)
# Calls inside a file-defined function that make it unsafe to run as a model builder.
UNSAFE_CALLS = frozenset({
    "print", "open", "input", "exec", "eval", "exit", "quit", "backward", "step",
    "zero_grad", "fit", "save", "savefig", "show", "download", "load", "load_state_dict",
    "read_csv", "urlopen", "urlretrieve", "system", "run", "Popen", "sleep", "DataLoader",
    "manual_seed", "seed", "mkdir", "makedirs", "remove", "rmtree", "write", "train_model",
})
FACTORY_MODULES = ("torchvision.models", "timm")


class LoadError(Exception):
    """The file cannot be loaded: a syntax error, a failing import, or a failing module.

    `kind` is "syntax", "import" (a top-level import raised ImportError), "missing" (only
    failed imports, nothing else to check: a package not installed here) or "exec" (a
    top-level import raised something else while running the imported module).
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None,
                 kind: str = "exec") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.kind = kind

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.message}"


@dataclass(frozen=True)
class Skipped:
    """A top-level statement that was not executed (`failed`: it was kept but raised)."""

    line: int
    end_line: int
    reason: str
    failed: bool = False
    missing_import: str = ""  # the module a failing top-level import names


@dataclass(frozen=True)
class Assumed:
    """A required command-line option with no default, given a value so the file could load."""

    option: str  # "--dataset"
    value: Any
    why: str  # "its first choice", "the first value the file tests it for"
    line: int | None  # the add_argument call that declares it


@dataclass
class LoadResult:
    namespace: dict
    skipped: list[Skipped]
    assumed: list[Assumed] = dataclasses.field(default_factory=list)

    @property
    def missing_imports(self) -> list[Skipped]:
        """Top-level imports that failed (a package not installed here); the rest still loads."""
        return [s for s in self.skipped if s.missing_import]


class SourceFile:
    """One parsed file: its text, lines (at Python's line breaks) and `ast` tree.

    `cache` holds per-file indexes built by other engine modules (one pass each, kept here).
    """

    def __init__(self, source: str, path: str, tree: ast.Module) -> None:
        self.path = path
        self.source = source
        self.lines = split_lines(source)
        self.tree = tree
        self.comment_hints = _comment_hints(source, tree, self.lines)
        self.class_lines = _class_lines(tree)
        self.cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"SourceFile({self.path!r})"

    def hint_for(self, line: int, key: str = "input") -> tuple[int, str] | None:
        """The `# shapecheck:` comment mentioning `key` for a definition at `line`: on that
        line, or on the comment and decorator lines directly above it (the nearest wins).
        Returns (hint line, text)."""
        probe = line
        while probe >= 1:
            text = self.comment_hints.get(probe)
            if text is not None and key in text:
                return probe, text
            stripped = self.lines[probe - 1].strip() if probe <= len(self.lines) else ""
            if probe != line and not (stripped.startswith("#") or stripped.startswith("@")):
                return None
            probe -= 1
        return None


def parse(source: str, path: str) -> SourceFile:
    """Check the syntax of `source` and return its SourceFile; LoadError(kind="syntax")."""
    try:
        tree = compile(source, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        compile(tree, path, "exec", dont_inherit=True)  # what only the compiler refuses: `def f(x, x)`
    except SyntaxError as exc:
        column = exc.offset - 1 if exc.offset else None
        raise LoadError(exc.msg, exc.lineno, column, "syntax") from None
    except ValueError as exc:  # null bytes
        raise LoadError(str(exc), None, None, "syntax") from None
    return SourceFile(source, path, tree)


def parse_file(path: str) -> SourceFile:
    """Read and parse a file as Python reads it (see `shapecheck.source`)."""
    try:
        source = read_source(path).text
    except SourceError as exc:
        raise LoadError(exc.message, exc.line, exc.column, "syntax") from None
    return parse(source, path)


def load(src: SourceFile) -> dict:
    """Execute the skeleton of `src` and return its namespace (see the module docstring)."""
    return load_report(src).namespace


def load_report(src: SourceFile) -> LoadResult:
    """Like `load`, and also the statements that were dropped or failed (for --debug)."""
    folder = os.path.dirname(os.path.abspath(src.path))
    package, package_root = _package_of(folder)
    module = types.ModuleType(USER_MODULE_NAME)
    namespace = module.__dict__
    namespace.update({"__file__": src.path, "__builtins__": builtins, "__package__": package,
                      _DEFAULTS: functools.partial(argument_defaults, assumed=(assumed := []))})
    added_paths = [folder] if package_root is None else [package_root, folder]  # the package wins over a same-named module beside the file
    skipped: list[Skipped] = []
    flags = _future_flags(src.tree)
    from .build import building

    with _isolated(module, added_paths, src):
        with building("meta"):
            for stmt in src.tree.body:
                _run_top_statement(stmt, namespace, src, flags, skipped)
    return LoadResult(namespace, skipped, _declared(assumed, src))


def _dropped_names(skipped: list[Skipped], src: SourceFile) -> dict[str, int]:
    """Names that dropped top-level assignments would have bound -> their line."""
    lines = {s.line for s in skipped if not s.failed}
    names: dict[str, int] = {}
    for stmt in src.tree.body:
        if stmt.lineno in lines and isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                for node in ast.walk(target):
                    if isinstance(node, ast.Name):
                        names.setdefault(node.id, stmt.lineno)
    return names


# ---------------------------------------------------------------- execution


def _run_top_statement(stmt: ast.stmt, namespace: dict, src: SourceFile, flags: int,
                       skipped: list[Skipped]) -> None:
    kept, reason = _keep(stmt, namespace, src)
    end = getattr(stmt, "end_lineno", stmt.lineno) or stmt.lineno
    if kept is None:
        skipped.append(Skipped(stmt.lineno, end, reason))
        return
    if kept is not stmt:  # parts were replaced: the new nodes take their places from around them
        kept = ast.fix_missing_locations(kept)
    code = compile(ast.Module(body=[kept], type_ignores=[]), src.path, "exec", flags=flags, dont_inherit=True)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            exec(code, namespace)
    except MissingPackage as exc:  # a top-level statement that uses a name whose import failed
        skipped.append(Skipped(stmt.lineno, end, exc.message, failed=True))
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):  # what it would have bound is unavailable
            _bind_unavailable(stmt, exc, namespace, src.path)
    except (Exception, SystemExit) as exc:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            error = _import_error(stmt, exc, src)
            if error.kind != "import":  # a module of the user's that fails: the file cannot load
                raise error from None
            skipped.append(Skipped(stmt.lineno, end, error.message, True, _imported_name(stmt)))
            _bind_unavailable(stmt, exc, namespace, src.path)
            return
        if isinstance(exc, ImportError) and isinstance(stmt, ast.If):
            line = user_line(exc, src.path) or stmt.lineno
            raise LoadError(f"cannot import: {exc}", line, None, "import") from None
        reason = f"{type(exc).__name__}: {exc}"
        missing = getattr(exc, "name", None) if isinstance(exc, NameError) else None
        dropped_line = _dropped_names(skipped, src).get(missing) if missing else None
        if dropped_line:
            reason += f" (its assignment on line {dropped_line} was not run)"
        skipped.append(Skipped(stmt.lineno, end, reason, failed=True))


def first_line(exc: BaseException) -> str:
    """An exception's message, first line only (its type name when the message is empty)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def user_line(exc: BaseException, path: str) -> int | None:
    """The line of the innermost traceback frame that runs code of `path`."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _bind_unavailable(stmt: ast.Import | ast.ImportFrom, exc: BaseException, namespace: dict, path: str) -> None:
    """Each name a failed import would have bound stands for the package that is missing."""
    package = getattr(exc, "name", None) or _imported_name(stmt)
    for alias in stmt.names:
        if alias.name == "*":
            continue
        bound = alias.asname or (alias.name if isinstance(stmt, ast.ImportFrom) else alias.name.split(".")[0])
        namespace.setdefault(bound, Unavailable(bound, package.split(".")[0], path))


def _imported_name(stmt: ast.Import | ast.ImportFrom) -> str:
    if isinstance(stmt, ast.ImportFrom):
        return "." * stmt.level + (stmt.module or "")
    return ", ".join(alias.name for alias in stmt.names)


def _import_error(stmt: ast.Import | ast.ImportFrom, exc: BaseException, src: SourceFile) -> LoadError:
    name = _imported_name(stmt)
    column = char_column(src.lines[stmt.lineno - 1], stmt.col_offset)
    if isinstance(exc, ImportError):
        return LoadError(f"cannot import {name}: {exc}", stmt.lineno, column, "import")
    return LoadError(f"importing {name} failed: {type(exc).__name__}: {exc}", stmt.lineno, column, "exec")


class _isolated:
    """Run the skeleton with the user's folder importable, then restore sys state."""

    def __init__(self, module: types.ModuleType, paths: list[str], src: SourceFile) -> None:
        self.module = module
        self.paths = paths
        self.src = src

    def __enter__(self) -> None:
        self.modules_before = set(sys.modules)
        self.previous = sys.modules.get(USER_MODULE_NAME)
        self.bytecode = sys.dont_write_bytecode
        sys.dont_write_bytecode = True
        for path in reversed(self.paths):
            sys.path.insert(0, path)
        sys.modules[USER_MODULE_NAME] = self.module
        self.absent = AbsentPackages().__enter__()
        text_lines = universal_lines(self.src.source)
        linecache.cache[self.src.path] = (len(self.src.source), None, text_lines, self.src.path)

    def __exit__(self, *exc_info: object) -> None:
        self.absent.__exit__()
        sys.dont_write_bytecode = self.bytecode
        for path in self.paths:
            if path in sys.path:
                sys.path.remove(path)
        if self.previous is None:
            sys.modules.pop(USER_MODULE_NAME, None)
        else:
            sys.modules[USER_MODULE_NAME] = self.previous
        for name in set(sys.modules) - self.modules_before:
            if _is_user_module(sys.modules.get(name), self.paths):
                del sys.modules[name]


def _is_user_module(module: object, folders: list[str]) -> bool:
    location = getattr(module, "__file__", None)
    if not location:
        return False
    location = os.path.abspath(location)
    if "site-packages" in location or "dist-packages" in location:
        return False
    return any(location.startswith(folder + os.sep) for folder in folders)


def _package_of(folder: str) -> tuple[str | None, str | None]:
    """For a file inside a package: its dotted package name and the folder above the top
    package (so relative imports work); (None, None) for a plain script folder."""
    parts: list[str] = []
    current = folder
    while os.path.isfile(os.path.join(current, "__init__.py")):
        parts.append(os.path.basename(current))
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    if not parts or not all(part.isidentifier() for part in parts):
        return None, None
    return ".".join(reversed(parts)), current


def _future_flags(tree: ast.Module) -> int:
    flags = 0
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__":
            for alias in stmt.names:
                feature = getattr(future_module, alias.name, None)
                flags |= getattr(feature, "compiler_flag", 0)
    return flags


# ---------------------------------------------------------------- what to keep


def _keep(stmt: ast.stmt, namespace: dict, src: SourceFile) -> tuple[ast.stmt | None, str]:
    """The statement to execute (possibly with parts replaced by `pass`), or None and why."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                         ast.ClassDef, ast.Pass)):
        return stmt, ""
    if isinstance(stmt, ast.Expr):
        if isinstance(stmt.value, ast.Constant) or _parser_call(stmt.value, namespace):
            return stmt, ""
        return None, "bare expression or call"
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        return _keep_assignment(stmt, namespace, src)
    if isinstance(stmt, ast.If):
        return _keep_if(stmt, namespace, src)
    if isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
        return _keep_try(stmt, namespace, src)
    if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
        return None, "top-level loop"
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return None, "with block"
    return None, f"{type(stmt).__name__.lower()} statement"


def _keep_assignment(stmt: ast.stmt, namespace: dict, src: SourceFile
                     ) -> tuple[ast.stmt | None, str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    if not all(_simple_target(t) for t in targets):
        return None, "assignment to a complex target"
    if stmt.value is None:
        return stmt, ""
    value = _empty_command_line(_strip_moves(copy.deepcopy(stmt.value)), namespace, src)
    problem = _unsafe_reason(value, namespace, src)
    if problem:
        return None, problem
    kept = copy.copy(stmt)
    kept.value = value
    return kept, ""


def _keep_if(stmt: ast.If, namespace: dict, src: SourceFile) -> tuple[ast.stmt | None, str]:
    if any(isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(stmt.test)):
        return None, "if __name__ == '__main__' block"
    problem = _unsafe_reason(stmt.test, namespace, src)
    if problem:
        return None, problem
    body = _keep_block(stmt.body, namespace, src)
    orelse = _keep_block(stmt.orelse, namespace, src)
    if body is None and orelse is None:
        return None, "if block with nothing to keep"
    kept = copy.copy(stmt)
    kept.body = body or [_pass_at(stmt.body[0])]
    kept.orelse = orelse or []
    return kept, ""


def _keep_try(stmt: ast.stmt, namespace: dict, src: SourceFile) -> tuple[ast.stmt | None, str]:
    body = _keep_block(stmt.body, namespace, src)
    if body is None:
        return None, "try block with nothing to keep"
    kept = copy.copy(stmt)
    kept.body = body
    handlers = []
    for handler in stmt.handlers:
        new_handler = copy.copy(handler)
        new_handler.body = _keep_block(handler.body, namespace, src) or [_pass_at(handler.body[0])]
        handlers.append(new_handler)
    kept.handlers = handlers
    kept.orelse = _keep_block(stmt.orelse, namespace, src) or []
    kept.finalbody = _keep_block(stmt.finalbody, namespace, src) or []
    if not kept.handlers and not kept.finalbody:
        kept.finalbody = [_pass_at(stmt.body[0])]
    return kept, ""


def _keep_block(block: list[ast.stmt], namespace: dict, src: SourceFile) -> list[ast.stmt] | None:
    """The block with dropped statements replaced by `pass`; None when nothing is kept."""
    result = []
    any_kept = False
    for stmt in block:
        kept, _ = _keep(stmt, namespace, src)
        if kept is None or isinstance(kept, ast.Pass):
            result.append(_pass_at(stmt))
        else:
            result.append(kept)
            any_kept = True
    return result if any_kept else None


def _pass_at(stmt: ast.stmt) -> ast.Pass:
    return ast.copy_location(ast.Pass(), stmt)


def _simple_target(target: ast.expr) -> bool:
    if isinstance(target, (ast.Tuple, ast.List)):
        return all(_simple_target(t) for t in target.elts)
    if isinstance(target, ast.Starred):
        return _simple_target(target.value)
    return isinstance(target, (ast.Name, ast.Attribute, ast.Subscript))


PARSER_METHODS = frozenset({"add_argument", "add_argument_group", "add_mutually_exclusive_group",
                            "set_defaults", "parse_args", "parse_known_args"})


def _parser_call(node: ast.expr, namespace: dict) -> bool:
    """`parser.add_argument(...)` (or another method of PARSER_METHODS) on an argparse parser
    or group of the module."""
    import argparse

    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in PARSER_METHODS and isinstance(node.func.value, ast.Name)):
        return False
    owner = namespace.get(node.func.value.id)
    return isinstance(owner, (argparse.ArgumentParser, argparse._ArgumentGroup))


_DEFAULTS = "__shapecheck_argument_defaults__"


def _empty_command_line(value: ast.expr, namespace: dict, src: SourceFile) -> ast.expr:
    """`parser.parse_args()` -> the parser's defaults with an empty command line: never the
    command line shapecheck itself was given. A required argument with no default takes the
    first of its `choices`, else the first value the file compares it with
    (`if opt.dataset in ['imagenet', 'folder']:`), else None, rather than ending the program."""
    if (_parser_call(value, namespace) and value.func.attr in ("parse_args", "parse_known_args")
            and not value.args and not value.keywords):
        known = ast.Constant(value.func.attr == "parse_known_args")
        stated = as_literal(compared_options(src.tree)) or ast.Dict(keys=[], values=[])
        return ast.Call(func=ast.Name(id=_DEFAULTS, ctx=ast.Load()), args=[value.func.value, known, stated],
                        keywords=[])
    return value


def argument_defaults(parser: argparse.ArgumentParser, known: bool, stated: dict | None = None,
                      assumed: list | None = None):
    """What `parser.parse_args([])` gives, with every required argument optional for the call
    and given the value `stated` for it (or its first choice) when it has no default; each value
    so given is added to `assumed` as (option, value, why)."""
    required = [(action, action.default) for action in parser._actions if action.required]
    for action, default in required:
        action.required = False
        if default is None:
            action.default = next(iter(action.choices)) if action.choices else (stated or {}).get(action.dest)
            why = "its first choice" if action.choices else "the first value the file tests it for"
            option = (action.option_strings or [action.dest])[-1]
            if action.default is not None and assumed is not None and (option, action.default, why) not in assumed:
                assumed.append((option, action.default, why))
    try:
        return parser.parse_known_args([]) if known else parser.parse_args([])
    finally:
        for action, default in required:
            action.required, action.default = True, default


def _declared(assumed: list, src: SourceFile) -> list[Assumed]:
    """Each assumed option with the line of the add_argument call that declares it."""
    lines = {}
    for node in all_nodes(src.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    lines.setdefault(arg.value, node.lineno)
    return [Assumed(option, value, why, lines.get(option)) for option, value, why in assumed]


class _StripMoves(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr in MOVE_METHODS:
            return node.func.value
        return node


def _strip_moves(node: ast.expr) -> ast.expr:
    """`Net().to(device).cuda()` -> `Net()`: device moves cannot run on the meta device."""
    return _StripMoves().visit(node)


_SAFE_NODES = (
    ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Slice, ast.BinOp, ast.UnaryOp,
    ast.BoolOp, ast.Compare, ast.IfExp, ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Starred,
    ast.JoinedStr, ast.FormattedValue, ast.ListComp, ast.SetComp, ast.DictComp,
    ast.GeneratorExp, ast.comprehension, ast.Lambda, ast.arguments, ast.arg, ast.keyword,
    ast.Call, ast.expr_context, ast.operator, ast.unaryop, ast.boolop, ast.cmpop,
)


def _unsafe_reason(expr: ast.expr, namespace: dict, src: SourceFile) -> str:
    """'' when evaluating `expr` only builds constants and module objects, else why not."""
    for node in _walk_evaluated(expr):
        if not isinstance(node, _SAFE_NODES):
            return f"uses {type(node).__name__}"
        if isinstance(node, ast.Call):
            problem = _unsafe_call(node, namespace, src)
            if problem:
                return problem
    return ""


def call_problem(expr: ast.expr, namespace: dict, src: SourceFile) -> str:
    """'' when a call found in the source (a construction site, a factory call) only builds
    constants and modules, like a kept top-level assignment; else why it is not run."""
    return _unsafe_reason(expr, namespace, src)


def _walk_evaluated(expr: ast.AST):
    """Like ast.walk, but not into lambda bodies (they run only when called)."""
    todo = [expr]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.Lambda):
            todo.append(node.args)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _unsafe_call(call: ast.Call, namespace: dict, src: SourceFile) -> str:
    for keyword in call.keywords:
        if keyword.arg in ("pretrained", "weights", "pretrained_backbone") and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value in (None, False)):
            return "loads pretrained weights"
    func = call.func
    if isinstance(func, ast.Attribute) and not _is_dotted(func):
        if func.attr in SAFE_METHODS:
            return ""
        return f"calls .{func.attr}()"
    if not _is_dotted(func):
        return "calls a computed function"
    label = ast.unparse(func)
    if label == _DEFAULTS:
        return ""
    try:
        target = eval(compile(ast.Expression(func), src.path, "eval"), namespace)
    except (Exception, MissingPackage):
        return f"calls {label}, which is not defined here"
    if _safe_callable(target, src, namespace):
        return ""
    return f"calls {label}"


def _is_dotted(node: ast.expr) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _safe_callable(target: object, src: SourceFile, namespace: dict) -> bool:
    import torch

    if isinstance(target, type):
        if issubclass(target, (torch.nn.Module, enum.Enum, torch.dtype)):
            return True
        if dataclasses.is_dataclass(target) or target in (collections.OrderedDict,):
            return True
        if issubclass(target, tuple) and hasattr(target, "_fields"):
            return True
    if any(target is getattr(builtins, name) for name in SAFE_BUILTINS):
        return True
    if any(target is _torch_attr(torch, name) for name in SAFE_TORCH):
        return True
    if target in (functools.partial, collections.namedtuple, os.getenv, os.environ.get):
        return True
    module_name = getattr(target, "__module__", None) or ""
    if module_name in ("math", "typing", "posixpath", "ntpath", "dataclasses", "operator"):
        return True
    if module_name.startswith(FACTORY_MODULES):
        return True
    owner = getattr(target, "__self__", None)
    if target is argparse.ArgumentParser or (
            isinstance(owner, (argparse.ArgumentParser, argparse._ArgumentGroup))
            and getattr(target, "__name__", "") in PARSER_METHODS):
        return True
    if owner is not None and getattr(target, "__name__", "") in SAFE_METHODS:
        return isinstance(owner, (dict, list, tuple, str, torch.nn.Module))
    code = getattr(target, "__code__", None)
    if code is not None and code.co_filename == src.path and isinstance(owner, type):
        return _is_alternative_constructor(owner, target.__name__, src, namespace)
    if code is not None and code.co_filename == src.path:
        return _is_builder(target.__name__, src, namespace, set())
    return False


def _is_alternative_constructor(cls: type, name: str, src: SourceFile, namespace: dict) -> bool:
    """`Transformer.from_model_args(config)`: a `from_...` classmethod of a model class of the
    file whose body only builds, as a builder function's does."""
    import torch

    if not (issubclass(cls, torch.nn.Module) and name.startswith("from_")):
        return False
    definition = next((node for stmt in src.tree.body if isinstance(stmt, ast.ClassDef) and stmt.name == cls.__name__
                       for node in stmt.body if isinstance(node, ast.FunctionDef) and node.name == name), None)
    return definition is not None and _builds_only(definition, src, namespace, set())


def _torch_attr(torch_module: object, dotted: str) -> object:
    value = torch_module
    for part in dotted.split("."):
        value = getattr(value, part, None)
    return value


def _is_builder(name: str, src: SourceFile, namespace: dict, seen: set[str]) -> bool:
    """A function of the file that only builds things: no while/with, no I/O, no training
    calls, and it calls only functions of the file that are builders too."""
    if name in seen:
        return True
    seen.add(name)
    definition = _function_defs(src).get(name)
    return definition is not None and _builds_only(definition, src, namespace, seen)


def _builds_only(definition: ast.FunctionDef, src: SourceFile, namespace: dict, seen: set[str]) -> bool:
    for node in _walk_taken(definition):
        if isinstance(node, (ast.While, ast.With, ast.AsyncWith, ast.Global, ast.Nonlocal)):
            return False
        if not isinstance(node, ast.Call):
            continue
        called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
            node.func, "id", "")
        if called in UNSAFE_CALLS:
            return False
        if isinstance(node.func, ast.Name) and called in _function_defs(src):
            if not _is_builder(called, src, namespace, seen):
                return False
    return True


def _walk_taken(definition: ast.FunctionDef):
    """ast.walk, leaving out `if pretrained:` blocks: an `if` on a parameter whose default is
    False or None does not run when the function is called with its defaults."""
    args = definition.args
    positional = args.posonlyargs + args.args
    defaults = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]], args.defaults))
    defaults.update((a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None)
    off = {name for name, node in defaults.items() if isinstance(node, ast.Constant) and not node.value}
    todo: list[ast.AST] = [definition]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id in off:
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _function_defs(src: SourceFile) -> dict[str, ast.FunctionDef]:
    if "ast_function_defs" not in src.cache:
        src.cache["ast_function_defs"] = {
            stmt.name: stmt for stmt in _walk_ast_top(src.tree.body)
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return src.cache["ast_function_defs"]


# ---------------------------------------------------------------- file indexes


def _walk_ast_top(body: list[ast.stmt]):
    """Top-level statements, descending into top-level if/try blocks (not __main__)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            if any(isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(stmt.test)):
                continue
            yield from _walk_ast_top(stmt.body)
            yield from _walk_ast_top(stmt.orelse)
        elif isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            yield from _walk_ast_top(stmt.body)
            for handler in stmt.handlers:
                yield from _walk_ast_top(handler.body)
            yield from _walk_ast_top(stmt.orelse)
            yield from _walk_ast_top(stmt.finalbody)


def top_statements(src: SourceFile):
    """The file's top-level statements in source order, including those inside top-level
    `if` (except `if __name__ ...`) and `try` blocks."""
    return _walk_ast_top(src.tree.body)


def _class_lines(tree: ast.Module) -> dict[str, int]:
    lines: dict[str, int] = {}
    for stmt in _walk_ast_top(tree.body):
        if isinstance(stmt, ast.ClassDef):
            lines.setdefault(stmt.name, stmt.lineno)
    return lines


def _comment_hints(source: str, tree: ast.Module, lines: list[str]) -> dict[int, str]:
    """Line -> text after `# shapecheck:` in a comment on that line. A comment starts at the
    first `#` of a line that no string literal covers (the syntax tree knows where they are)."""
    if HINT_MARKER not in source:
        return {}
    hints: dict[int, str] = {}
    strings = None
    for number, text in enumerate(lines, 1):
        if HINT_MARKER not in text:
            continue
        strings = _string_spans(tree, lines) if strings is None else strings
        column = next((c for c, char in enumerate(text) if char == "#"
                       and not any(start <= (number, c) < end for start, end in strings)), None)
        body = text[column:].lstrip("#").strip() if column is not None else ""
        if body.startswith(HINT_MARKER):
            hints[number] = body[len(HINT_MARKER):].strip()
    return hints


def _string_spans(tree: ast.Module, lines: list[str]) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) as (line, character column) of every string literal of the file."""
    def at(line: int, offset: int) -> tuple[int, int]:
        text = lines[line - 1] if 1 <= line <= len(lines) else ""
        return line, offset if text.isascii() else char_column(text, offset)

    return [(at(n.lineno, n.col_offset), at(n.end_lineno, n.end_col_offset)) for n in all_nodes(tree)
            if isinstance(n, ast.JoinedStr) or (isinstance(n, ast.Constant) and isinstance(n.value, (str, bytes)))]


