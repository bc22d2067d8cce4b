"""Where layers were built and where ops are called: libcst spans for findings and fixes.

- `layer_site`: the constructor call that built a submodule (`self.fc1 = nn.Linear(...)`, the
  n-th argument of `nn.Sequential(...)`, a list element or comprehension of a ModuleList,
  an `OrderedDict` entry, an `add_module` call, an `append` to a list, or what a helper such
  as `self._make_layer(...)` or `make_layers(cfg)` returns).
- `op_site`: a call such as `x.view(-1, 16 * 5 * 5)` or `torch.cat([a, b], 1)` on a line.
- `call_site_at`: the `self.<attr>(...)` call on a line of `forward`.

Spans of arguments cover the value only (not `name=` or `*`), so an edit replaces the value.
One libcst pass per file builds the index; it is cached on the SourceFile.
"""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from shapecheck.diagnostics import Span

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
    node: Any = field(default=None, compare=False, repr=False)  # the libcst Call

    def arg(self, name: str) -> Arg | None:
        """The argument bound to parameter or keyword `name`."""
        return next((a for a in self.args if a.name == name), None)


# ---------------------------------------------------------------- the per-file index


class _Index:
    def __init__(self) -> None:
        self.calls: list = []  # (cst.Call, start line, end line, function name) in source order
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
    import libcst as cst

    index = _Index()

    class Visitor(cst.CSTVisitor):
        def __init__(self) -> None:
            self.classes: list[str] = []
            self.functions: list = []

        def visit_ClassDef(self, node) -> None:
            self.classes.append(node.name.value)
            index.attrs.setdefault(node.name.value, {})
            index.appends.setdefault(node.name.value, {})
            index.methods.setdefault(node.name.value, {})

        def leave_ClassDef(self, node) -> None:
            self.classes.pop()

        def visit_FunctionDef(self, node) -> None:
            if not self.functions:
                if self.classes:
                    index.methods[self.classes[-1]].setdefault(node.name.value, node)
                else:
                    index.functions.setdefault(node.name.value, node)
            self.functions.append(node)
            index.locals[id(node)] = {}
            index.local_values[id(node)] = {}

        def leave_FunctionDef(self, node) -> None:
            self.functions.pop()

        def visit_Assign(self, node) -> None:
            for target in node.targets:
                self._assigned(target.target, node.value)

        def visit_AnnAssign(self, node) -> None:
            if node.value is not None:
                self._assigned(node.target, node.value)

        def visit_AugAssign(self, node) -> None:
            if self.functions and isinstance(node.target, cst.Name):
                items = _list_items(node.value, cst)
                if items is not None:
                    self._local(node.target.value).extend(items)

        def _assigned(self, target, value) -> None:
            owner = _self_attr(target, cst)
            if owner and self.classes and self.functions:
                index.attrs[self.classes[-1]].setdefault(owner, []).append(value)
            elif isinstance(target, cst.Name):
                if not self.classes and not self.functions:
                    index.top_values.setdefault(target.value, value)
                elif self.functions:
                    index.local_values[id(self.functions[-1])].setdefault(target.value, value)
                    items = _list_items(value, cst)
                    if items is not None:
                        self._local(target.value).extend(items)

        def _local(self, name: str) -> list:
            return index.locals[id(self.functions[-1])].setdefault(name, [])

        def visit_Call(self, node) -> None:
            rng = src.position(node)
            index.calls.append((node, rng.start.line, rng.end.line, _func_name(node.func, cst)))
            if self.functions:
                index.enclosing[id(node)] = self.functions[-1]
                self._module_registration(node)

        def _module_registration(self, node) -> None:
            func = node.func
            if not isinstance(func, cst.Attribute):
                return
            values = [a.value for a in node.args]
            receiver_attr = _self_attr(func.value, cst)
            if receiver_attr and self.classes and func.attr.value in ("append", "extend"):
                items = values if func.attr.value == "append" else (
                    _list_items(values[0], cst) or [] if values else [])
                index.appends[self.classes[-1]].setdefault(receiver_attr, []).extend(items)
            elif (isinstance(func.value, cst.Name) and func.value.value == "self"
                  and func.attr.value in ("add_module", "register_module") and self.classes
                  and len(values) == 2 and isinstance(values[0], cst.SimpleString)):
                name = values[0].evaluated_value
                index.attrs[self.classes[-1]].setdefault(name, []).append(values[1])
            elif isinstance(func.value, cst.Name) and func.attr.value in ("append", "extend"):
                items = values if func.attr.value == "append" else (
                    _list_items(values[0], cst) or [] if values else [])
                self._local(func.value.value).extend(items)

    src.module.visit(Visitor())
    return index


def _self_attr(node, cst) -> str | None:
    if (isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name)
            and node.value.value == "self"):
        return node.attr.value
    return None


def _list_items(value, cst) -> list | None:
    """Elements of a list/tuple literal, or [element] of a comprehension; None otherwise."""
    if isinstance(value, (cst.List, cst.Tuple)):
        return [element.value for element in value.elements]
    if isinstance(value, (cst.ListComp, cst.GeneratorExp)):
        return [value.elt]
    return None


def _func_name(func, cst) -> str:
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return ""


# ---------------------------------------------------------------- layer sites


def layer_site(src, model, qualname: str, root_spec) -> CallSite | None:
    """The constructor call that built `model.get_submodule(qualname)`, or None when it
    cannot be found in this file."""
    import libcst as cst

    try:
        sub = model.get_submodule(qualname)
    except AttributeError:
        return None
    expr, _ = _construction(src, model, qualname, root_spec, cst)
    if expr is None:
        return None
    call = _pick_call(expr, type(sub).__name__, cst)
    if call is None:
        return None
    names = _parameter_names(call, sub, _globals_of(model, qualname), cst)
    return _call_site(src, call, names, cst)


def _construction(src, model, qualname: str, root_spec, cst):
    """The expression written where the module at `qualname` ("" is the root) was built,
    and the class of the file whose method holds it (None at top level)."""
    index = _index(src)
    if not qualname:
        if getattr(root_spec, "kind", "") != "object":
            return None, None
        return _strip_moves(index.top_values.get(root_spec.name), cst), None
    parent_name, _, key = qualname.rpartition(".")
    parent = model.get_submodule(parent_name)
    found, owner = _class_attribute(src, type(parent), key, cst)
    if found is not None:
        return found, owner
    if type(parent).__name__ not in CONTAINERS:
        return None, None
    built, owner = _construction(src, model, parent_name, root_spec, cst)
    if built is None:
        return None, None
    built = _resolve(src, built, owner, cst)
    return _container_element(src, built, key, parent, cst), owner


def _class_attribute(src, cls: type, key: str, cst):
    """`self.<key> = ...` (or add_module) in a class of this file, or one it inherits from."""
    from shapecheck.engine.loader import USER_MODULE_NAME

    index = _index(src)
    for klass in cls.__mro__:
        if not _defined_in(klass, src, USER_MODULE_NAME) or klass.__name__ not in index.attrs:
            continue
        values = index.attrs[klass.__name__].get(key)
        if values:
            return _strip_moves(values[0], cst), klass.__name__
    return None, None


def _defined_in(klass: type, src, user_module: str) -> bool:
    """A class of the checked file: loaded by shapecheck, or imported from that file (the API)."""
    if klass.__module__ == user_module:
        return True
    module = sys.modules.get(klass.__module__)
    path = getattr(module, "__file__", None)
    return path is not None and os.path.abspath(path) == os.path.abspath(src.path)


def _resolve(src, expr, class_name: str | None, cst, depth: int = 0):
    """Follow `self.helper(...)` and `file_function(...)` to the expression they return."""
    index = _index(src)
    expr = _strip_moves(expr, cst)
    if depth > 4 or not isinstance(expr, cst.Call):
        return expr
    func = expr.func
    definition = None
    if class_name and _self_attr(func, cst):
        definition = index.methods.get(class_name, {}).get(func.attr.value)
    elif isinstance(func, cst.Name):
        definition = index.functions.get(func.value)
    returned = _returned_value(definition, cst) if definition is not None else None
    if returned is None:
        return expr
    return _resolve(src, returned, class_name, cst, depth + 1)


def _returned_value(definition, cst):
    for node in _walk(definition.body, cst):
        if isinstance(node, cst.Return) and node.value is not None:
            return node.value
    return None


def _walk(node, cst):
    """Nodes under `node` in source order (not into nested functions or classes)."""
    todo = [node]
    while todo:
        current = todo.pop(0)
        yield current
        children = [c for c in current.children
                    if not isinstance(c, (cst.FunctionDef, cst.ClassDef, cst.Lambda))]
        todo[0:0] = children


def _strip_moves(expr, cst):
    while (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute)
           and expr.func.attr.value in MOVE_METHODS):
        expr = expr.func.value
    return expr


def _container_element(src, built, key: str, parent, cst):
    """The element `key` of the Sequential/ModuleList/ModuleDict built by `built`."""
    if not isinstance(built, cst.Call):
        return None
    items = _container_items(src, built, cst)
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
    matching = [v for v in values if _pick_call(v, wanted, cst, strict=True) is not None]
    if matching:
        return matching[0]
    return values[min(position, len(values) - 1)] if values and position >= 0 else None


def _container_items(src, call, cst) -> list | None:
    """(key or None, expression) for each element a container call receives."""
    args = list(call.args)
    if len(args) == 1 and args[0].star == "" and args[0].keyword is None:
        value = _strip_moves(args[0].value, cst)
        if isinstance(value, cst.Call) and _func_name(value.func, cst) == "OrderedDict":
            inner = value.args[0].value if value.args else None
            return _keyed_pairs(_list_items(inner, cst) or [], cst)
        if isinstance(value, cst.Dict):
            return [(_string(e.key, cst), e.value) for e in value.elements
                    if isinstance(e, cst.DictElement)]
        items = _list_items(value, cst)
        if items is not None:
            return [(None, item) for item in items]
        if isinstance(value, cst.Name):
            return _local_items(src, call, value.value, cst)
    result = []
    for arg in args:
        if arg.star == "*" and isinstance(arg.value, cst.Name):
            result.extend(_local_items(src, call, arg.value.value, cst) or [])
        elif arg.star == "*":
            result.extend((None, item) for item in _list_items(arg.value, cst) or [])
        elif arg.keyword is None:
            result.append((None, arg.value))
    return result


def _local_items(src, call, name: str, cst) -> list | None:
    """What was put into the local list `name` in the function that makes `call`."""
    index = _index(src)
    function = index.enclosing.get(id(call))
    if function is None:
        return None
    items = index.locals.get(id(function), {}).get(name)
    if items is None:
        return None
    values = index.local_values.get(id(function), {})
    return [(None, values.get(item.value, item) if isinstance(item, cst.Name) else item)
            for item in items]


def _keyed_pairs(items: list, cst) -> list:
    pairs = []
    for item in items:
        if isinstance(item, cst.Tuple) and len(item.elements) == 2:
            pairs.append((_string(item.elements[0].value, cst), item.elements[1].value))
    return pairs


def _string(node, cst) -> str | None:
    if isinstance(node, cst.SimpleString):
        return node.evaluated_value
    return None


def _pick_call(expr, type_name: str, cst, strict: bool = False):
    """The call in `expr` that builds a `type_name`: its callee's last name matches; else (not
    strict) `expr` itself when it is a call, or its first call."""
    calls = [n for n in _walk(expr, cst) if isinstance(n, cst.Call)]
    for call in calls:
        if _func_name(call.func, cst) == type_name:
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


def _parameter_names(call, sub, namespace: dict, cst) -> list[str]:
    """Names of the positional parameters of what `call` calls, in order."""
    target: Any = None
    if _func_name(call.func, cst) != type(sub).__name__:
        target = _lookup(call.func, namespace, cst)
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


def _lookup(func, namespace: dict, cst) -> Any:
    """A dotted callee (`conv3x3`, `nn.Conv2d`) looked up in the user's namespace."""
    parts = []
    while isinstance(func, cst.Attribute):
        parts.append(func.attr.value)
        func = func.value
    if not isinstance(func, cst.Name) or func.value not in namespace:
        return None
    value = namespace[func.value]
    for part in reversed(parts):
        value = getattr(value, part, None)
    return value if callable(value) else None


# ---------------------------------------------------------------- call sites


def _call_site(src, call, names: list[str], cst) -> CallSite:
    args = []
    position: int | None = 0
    for arg in call.args:
        value_span = src.span_of(arg.value)
        text = src.text_of(arg.value)
        if arg.keyword is not None:
            args.append(Arg(arg.keyword.value, None, value_span, text))
            continue
        if arg.star:
            args.append(Arg(None, None, value_span, text))
            position = None
            continue
        name = names[position] if position is not None and position < len(names) else None
        args.append(Arg(name, position, value_span, text))
        if position is not None:
            position += 1
    return CallSite(src.span_of(call), src.span_of(call.func), tuple(args),
                    src.text_of(call.func), call)


def op_site(src, line: int, names: tuple[str, ...]) -> CallSite | None:
    """The first call on `line` whose function (`x.view`, `torch.cat`, `flatten`) has one of
    `names`; a call spanning the line is used when none starts on it."""
    import libcst as cst

    matches = [entry for entry in _index(src).calls
               if entry[3] in names and entry[1] <= line <= entry[2]]
    if not matches:
        return None
    starting = [entry for entry in matches if entry[1] == line]
    chosen = starting[0] if starting else matches[-1]
    return _call_site(src, chosen[0], [], cst)


def call_site_at(src, line: int, attr_name: str) -> CallSite | None:
    """The `self.<attr_name>(...)` call on `line` (`attr_name` may be dotted: "block.conv";
    a numeric part matches an index: "layers.0" is `self.layers[0]`)."""
    import libcst as cst

    wanted = {"self." + attr_name, _indexed("self." + attr_name)}
    for call, start, end, _ in _index(src).calls:
        if start <= line <= end and "".join(src.text_of(call.func).split()) in wanted:
            return _call_site(src, call, [], cst)
    return None


def _indexed(dotted: str) -> str:
    parts = dotted.split(".")
    text = parts[0]
    for part in parts[1:]:
        text += f"[{part}]" if part.isdigit() else f".{part}"
    return text
