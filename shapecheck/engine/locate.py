"""Where layers were built and where ops are called: exact spans for findings and fixes.

- `layer_site`: the constructor call that built a submodule (`self.fc1 = nn.Linear(...)`, the
  n-th argument of `nn.Sequential(...)`, a list element or comprehension of a ModuleList,
  an `OrderedDict` entry, an `add_module` call, an `append` to a list, or what a helper such
  as `self._make_layer(...)` or `make_layers(cfg)` returns).
- `op_site`: a call such as `x.view(-1, 16 * 5 * 5)` or `torch.cat([a, b], 1)` on a line.
- `call_site_at`: the `self.<attr>(...)` call on a line of `forward`.

Spans of arguments cover the value only (not `name=` or `*`), so an edit replaces the value.
One pass over the file's `ast` builds the index (cached on the SourceFile); columns are
characters, as editors and libcst count them (`ast` counts UTF-8 bytes).
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from shapecheck.diagnostics import Span
from shapecheck.source.nodes import child_nodes

CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")
MOVE_METHODS = ("to", "cuda", "cpu", "eval", "train", "float", "double", "half")


@dataclass(frozen=True)
class Arg:
    """One argument of a call: keyword name or parameter name (None when unknown), its
    position among positional arguments (None for keywords and after a `*args`), the span
    and text of its value."""

    name: str | None
    position: int | None
    span: Span
    text: str


@dataclass(frozen=True)
class CallSite:
    span: Span  # the whole call expression
    func_span: Span
    args: tuple[Arg, ...]
    func: str = ""  # the text of the called expression: "nn.Linear", "x.view"
    node: Any = field(default=None, compare=False, repr=False)  # the ast.Call

    def arg(self, name: str) -> Arg | None:
        """The argument bound to parameter or keyword `name`."""
        return next((a for a in self.args if a.name == name), None)


# ---------------------------------------------------------------- the per-file index


class _Index:
    def __init__(self) -> None:
        self.calls: list = []  # (ast.Call, start line, end line, function name) in source order
        self.attrs: dict[str, dict[str, list]] = {}  # class -> attr -> assigned values
        self.appends: dict[str, dict[str, list]] = {}  # class -> attr -> appended values
        self.methods: dict[str, dict[str, Any]] = {}  # class -> method name -> FunctionDef
        self.functions: dict[str, Any] = {}  # top-level function name -> FunctionDef
        self.top_values: dict[str, Any] = {}  # top-level name -> first assigned value
        self.enclosing: dict[int, Any] = {}  # id(call) -> enclosing FunctionDef
        self.locals: dict[int, dict[str, list]] = {}  # id(FunctionDef) -> list name -> items
        self.local_values: dict[int, dict[str, Any]] = {}  # id(FunctionDef) -> name -> value


def _index(src) -> _Index:
    if "locate" not in src.cache:
        src.cache["locate"] = _build_index(src)
    return src.cache["locate"]


def _build_index(src) -> _Index:
    index = _Index()
    _Visitor(index).visit(ast.parse(src.source))  # a tree of its own: the loader's may be edited
    index.calls.sort(key=lambda entry: (entry[1], entry[0].col_offset))
    return index


class _Visitor(ast.NodeVisitor):
    def __init__(self, index: _Index) -> None:
        self.index = index
        self.classes: list[str] = []
        self.functions: list = []

    def generic_visit(self, node) -> None:
        """As ``ast.NodeVisitor``'s: each child in field order, with the faster child walk."""
        for child in child_nodes(node):
            self.visit(child)

    def visit_ClassDef(self, node) -> None:
        for table in (self.index.attrs, self.index.appends, self.index.methods):
            table.setdefault(node.name, {})
        self.classes.append(node.name)
        self.generic_visit(node)
        self.classes.pop()

    def visit_FunctionDef(self, node) -> None:
        if not self.functions:
            if self.classes:
                self.index.methods[self.classes[-1]].setdefault(node.name, node)
            else:
                self.index.functions.setdefault(node.name, node)
        self.functions.append(node)
        self.index.locals[id(node)] = {}
        self.index.local_values[id(node)] = {}
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Assign(self, node) -> None:
        for target in node.targets:
            self._assigned(target, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node) -> None:
        if node.value is not None:
            self._assigned(node.target, node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node) -> None:
        if self.functions and isinstance(node.target, ast.Name):
            items = _list_items(node.value)
            if items is not None:
                self._local(node.target.id).extend(items)
        self.generic_visit(node)

    def _assigned(self, target, value) -> None:
        owner = _self_attr(target)
        if owner and self.classes and self.functions:
            self.index.attrs[self.classes[-1]].setdefault(owner, []).append(value)
        elif isinstance(target, ast.Name):
            if not self.classes and not self.functions:
                self.index.top_values.setdefault(target.id, value)
            elif self.functions:
                self.index.local_values[id(self.functions[-1])].setdefault(target.id, value)
                items = _list_items(value)
                if items is not None:
                    self._local(target.id).extend(items)

    def _local(self, name: str) -> list:
        return self.index.locals[id(self.functions[-1])].setdefault(name, [])

    def visit_Call(self, node) -> None:
        self.index.calls.append((node, node.lineno, node.end_lineno, _func_name(node.func)))
        if self.functions:
            self.index.enclosing[id(node)] = self.functions[-1]
            self._module_registration(node)
        self.generic_visit(node)

    def _module_registration(self, node) -> None:
        func = node.func
        if not isinstance(func, ast.Attribute):
            return
        values = [_unstarred(a) for a in node.args] + [k.value for k in node.keywords]
        receiver_attr = _self_attr(func.value)
        if receiver_attr and self.classes and func.attr in ("append", "extend"):
            items = values if func.attr == "append" else (_list_items(values[0]) or [] if values else [])
            self.index.appends[self.classes[-1]].setdefault(receiver_attr, []).extend(items)
        elif (isinstance(func.value, ast.Name) and func.value.id == "self"
              and func.attr in ("add_module", "register_module") and self.classes
              and len(values) == 2 and _string(values[0]) is not None):
            self.index.attrs[self.classes[-1]].setdefault(_string(values[0]), []).append(values[1])
        elif isinstance(func.value, ast.Name) and func.attr in ("append", "extend"):
            items = values if func.attr == "append" else (_list_items(values[0]) or [] if values else [])
            self._local(func.value.id).extend(items)


def _unstarred(node):
    return node.value if isinstance(node, ast.Starred) else node


def _self_attr(node) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _list_items(value) -> list | None:
    """Elements of a list/tuple literal, or [element] of a comprehension; None otherwise."""
    if isinstance(value, (ast.List, ast.Tuple)):
        return [_unstarred(element) for element in value.elts]
    if isinstance(value, (ast.ListComp, ast.GeneratorExp)):
        return [value.elt]
    return None


def _func_name(func) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


# ---------------------------------------------------------------- spans


def span_of(src, node) -> Span:
    """The span of an `ast` node of `src` (1-based lines, 0-based character columns, end exclusive)."""
    return Span(src.path, node.lineno, _column(src, node.lineno, node.col_offset),
                node.end_lineno, _column(src, node.end_lineno, node.end_col_offset))


def _column(src, line: int, byte_offset: int) -> int:
    from shapecheck.source.text import char_column

    text = src.lines[line - 1] if 1 <= line <= len(src.lines) else ""
    return byte_offset if text.isascii() else char_column(text, byte_offset)


def text_of(src, node) -> str:
    """The exact source text of an `ast` node of `src`."""
    return span_text(src, span_of(src, node))


def span_text(src, span: Span) -> str:
    """The text of `src` that `span` covers ("" when it covers no line)."""
    lines = src.lines[span.line - 1:span.end_line]
    if not lines:
        return ""
    if len(lines) == 1:
        return lines[0][span.column:span.end_column]
    return "\n".join([lines[0][span.column:]] + lines[1:-1] + [lines[-1][:span.end_column]])


# ---------------------------------------------------------------- layer sites


def layer_site(src, model, qualname: str, root_spec) -> CallSite | None:
    """The constructor call that built `model.get_submodule(qualname)`, or None when it
    cannot be found in this file."""
    try:
        sub = model.get_submodule(qualname)
    except AttributeError:
        return None
    expr, _ = _construction(src, model, qualname, root_spec)
    if expr is None:
        return None
    call = _pick_call(expr, type(sub).__name__)
    if call is None:
        return None
    names = _parameter_names(call, sub, _globals_of(model, qualname))
    return _call_site(src, call, names)


def _construction(src, model, qualname: str, root_spec):
    """The expression written where the module at `qualname` ("" is the root) was built,
    and the class of the file whose method holds it (None at top level)."""
    index = _index(src)
    if not qualname:
        if getattr(root_spec, "kind", "") != "object":
            return None, None
        return _strip_moves(index.top_values.get(root_spec.name)), None
    parent_name, _, key = qualname.rpartition(".")
    parent = model.get_submodule(parent_name)
    found, owner = _class_attribute(src, type(parent), key)
    if found is not None:
        return found, owner
    if type(parent).__name__ not in CONTAINERS:
        return None, None
    built, owner = _construction(src, model, parent_name, root_spec)
    if built is None:
        return None, None
    built = _resolve(src, built, owner)
    return _container_element(src, built, key, parent), owner


def _class_attribute(src, cls: type, key: str):
    """`self.<key> = ...` (or add_module) in a class of this file, or one it inherits from."""
    from shapecheck.engine.loader import USER_MODULE_NAME

    index = _index(src)
    for klass in cls.__mro__:
        if not _defined_in(klass, src, USER_MODULE_NAME) or klass.__name__ not in index.attrs:
            continue
        values = index.attrs[klass.__name__].get(key)
        if values:
            return _strip_moves(values[0]), klass.__name__
    return None, None


def _defined_in(klass: type, src, user_module: str) -> bool:
    """A class of the checked file: loaded by shapecheck, or imported from that file (the API)."""
    if klass.__module__ == user_module:
        return True
    module = sys.modules.get(klass.__module__)
    path = getattr(module, "__file__", None)
    return path is not None and os.path.abspath(path) == os.path.abspath(src.path)


def _resolve(src, expr, class_name: str | None, depth: int = 0):
    """Follow `self.helper(...)` and `file_function(...)` to the expression they return."""
    index = _index(src)
    expr = _strip_moves(expr)
    if depth > 4 or not isinstance(expr, ast.Call):
        return expr
    func = expr.func
    definition = None
    if class_name and _self_attr(func):
        definition = index.methods.get(class_name, {}).get(func.attr)
    elif isinstance(func, ast.Name):
        definition = index.functions.get(func.id)
    returned = _returned_value(definition) if definition is not None else None
    if returned is None:
        return expr
    return _resolve(src, returned, class_name, depth + 1)


def _returned_value(definition):
    for node in _walk(definition.body):
        if isinstance(node, ast.Return) and node.value is not None:
            return node.value
    return None


def _walk(node):
    """Nodes under `node` (or a list of statements) in source order, not into nested
    functions, classes or lambdas."""
    todo = list(node) if isinstance(node, list) else [node]
    while todo:
        current = todo.pop(0)
        yield current
        children = [c for c in ast.iter_child_nodes(current)
                    if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))]
        todo[0:0] = sorted(children, key=_position)


def _position(node) -> tuple[int, int]:
    return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)


def _strip_moves(expr):
    while (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
           and expr.func.attr in MOVE_METHODS):
        expr = expr.func.value
    return expr


def _container_element(src, built, key: str, parent):
    """The element `key` of the Sequential/ModuleList/ModuleDict built by `built`."""
    if not isinstance(built, ast.Call):
        return None
    items = _container_items(src, built)
    if items is None:
        return None
    keyed = [(k, v) for k, v in items if k is not None]
    if keyed:
        return next((v for k, v in keyed if k == key), None)
    values = [v for _, v in items]
    position = list(parent._modules).index(key) if key in parent._modules else -1
    if len(values) == len(parent._modules) and position >= 0:
        return values[position]
    wanted = type(parent._modules.get(key)).__name__
    matching = [v for v in values if _pick_call(v, wanted, strict=True) is not None]
    if matching:
        return matching[0]
    return values[min(position, len(values) - 1)] if values and position >= 0 else None


def _container_items(src, call) -> list | None:
    """(key or None, expression) for each element a container call receives."""
    if len(call.args) == 1 and not call.keywords and not isinstance(call.args[0], ast.Starred):
        value = _strip_moves(call.args[0])
        if isinstance(value, ast.Call) and _func_name(value.func) == "OrderedDict":
            inner = _unstarred(value.args[0]) if value.args else None
            return _keyed_pairs(_list_items(inner) or [])
        if isinstance(value, ast.Dict):
            return [(_string(k), v) for k, v in zip(value.keys, value.values) if k is not None]
        items = _list_items(value)
        if items is not None:
            return [(None, item) for item in items]
        if isinstance(value, ast.Name):
            return _local_items(src, call, value.id)
    result = []
    for arg in call.args:
        if isinstance(arg, ast.Starred) and isinstance(arg.value, ast.Name):
            result.extend(_local_items(src, call, arg.value.id) or [])
        elif isinstance(arg, ast.Starred):
            result.extend((None, item) for item in _list_items(arg.value) or [])
        else:
            result.append((None, arg))
    return result


def _local_items(src, call, name: str) -> list | None:
    """What was put into the local list `name` in the function that makes `call`."""
    index = _index(src)
    function = index.enclosing.get(id(call))
    if function is None:
        return None
    items = index.locals.get(id(function), {}).get(name)
    if items is None:
        return None
    values = index.local_values.get(id(function), {})
    return [(None, values.get(item.id, item) if isinstance(item, ast.Name) else item) for item in items]


def _keyed_pairs(items: list) -> list:
    return [(_string(item.elts[0]), item.elts[1]) for item in items
            if isinstance(item, ast.Tuple) and len(item.elts) == 2]


def _string(node) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _pick_call(expr, type_name: str, strict: bool = False):
    """The call in `expr` that builds a `type_name`: its callee's last name matches; else (not
    strict) `expr` itself when it is a call, or its first call."""
    calls = [n for n in _walk(expr) if isinstance(n, ast.Call)]
    for call in calls:
        if _func_name(call.func) == type_name:
            return call
    if strict or not calls:
        return None
    return calls[0]


def _globals_of(model, qualname: str) -> dict:
    """The user's module namespace, reached through a method of a class of the file."""
    from shapecheck.engine.loader import USER_MODULE_NAME

    parts = qualname.split(".")
    for depth in range(len(parts), -1, -1):
        try:
            owner = model.get_submodule(".".join(parts[:depth]))
        except AttributeError:
            continue
        for klass in type(owner).__mro__:
            init = klass.__dict__.get("__init__")
            if klass.__module__ == USER_MODULE_NAME and hasattr(init, "__globals__"):
                return init.__globals__
    return {}


def _parameter_names(call, sub, namespace: dict) -> list[str]:
    """Names of the positional parameters of what `call` calls, in order."""
    target: Any = None
    if _func_name(call.func) != type(sub).__name__:
        target = _lookup(call.func, namespace)
    if target is None:
        target = type(sub)
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    names = []
    for param in params:
        if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            break
        names.append(param.name)
    return names


def _lookup(func, namespace: dict) -> Any:
    """A dotted callee (`conv3x3`, `nn.Conv2d`) looked up in the user's namespace."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name) or func.id not in namespace:
        return None
    value = namespace[func.id]
    for part in reversed(parts):
        value = getattr(value, part, None)
    return value if callable(value) else None


# ---------------------------------------------------------------- call sites


def call_site(src, call, names: list[str]) -> CallSite:
    """The CallSite of an `ast.Call` of `src`; `names`: the callee's positional parameter names."""
    return _call_site(src, call, names)


def _call_site(src, call, names: list[str]) -> CallSite:
    args = []
    position: int | None = 0
    for arg in sorted(call.args + call.keywords, key=_position):
        value = arg.value if isinstance(arg, (ast.Starred, ast.keyword)) else arg
        value_span, text = span_of(src, value), text_of(src, value)
        if isinstance(arg, ast.keyword) and arg.arg is not None:
            args.append(Arg(arg.arg, None, value_span, text))
            continue
        if isinstance(arg, (ast.Starred, ast.keyword)):  # *args, **kwargs
            args.append(Arg(None, None, value_span, text))
            position = None
            continue
        name = names[position] if position is not None and position < len(names) else None
        args.append(Arg(name, position, value_span, text))
        if position is not None:
            position += 1
    return CallSite(span_of(src, call), span_of(src, call.func), tuple(args), text_of(src, call.func), call)


def op_site(src, line: int, names: tuple[str, ...]) -> CallSite | None:
    """The first call on `line` whose function (`x.view`, `torch.cat`, `flatten`) has one of
    `names`; a call spanning the line is used when none starts on it."""
    matches = [entry for entry in _index(src).calls
               if entry[3] in names and entry[1] <= line <= entry[2]]
    if not matches:
        return None
    starting = [entry for entry in matches if entry[1] == line]
    chosen = starting[0] if starting else matches[-1]
    return _call_site(src, chosen[0], [])


def call_site_at(src, line: int, attr_name: str) -> CallSite | None:
    """The `self.<attr_name>(...)` call on `line` (`attr_name` may be dotted: "block.conv";
    a numeric part matches an index: "layers.0" is `self.layers[0]`)."""
    wanted = {"self." + attr_name, _indexed("self." + attr_name)}
    for call, start, end, _ in _index(src).calls:
        if start <= line <= end and "".join(text_of(src, call.func).split()) in wanted:
            return _call_site(src, call, [])
    return None


def _indexed(dotted: str) -> str:
    parts = dotted.split(".")
    text = parts[0]
    for part in parts[1:]:
        text += f"[{part}]" if part.isdigit() else f".{part}"
    return text
