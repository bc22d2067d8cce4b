"""Where each submodule's constructor arguments came from, recorded while the model is built.

Recording (`recording`): while a model is built, `nn.Module.__init__` is wrapped. For every
module it notes the frames of the checked file that built it, innermost first: the function
(name and first line), the exact call that frame was making (its position, from the
bytecode), and its small local values (numbers, strings). This is plain data (`Frame`,
`Built`): no torch objects, and it crosses the worker boundary as dicts.

Following (`follow`): the argument of the innermost call is followed back, statically, to
where the user wrote the value: a parameter to the argument of the call one frame out (or its
default, or the argument of the call that built the model), a local or module constant to
its single assignment, `xs[i]` and a loop variable `for x in xs` to the element of a list
literal (the recorded values pick which), `config.size` to a keyword of the config's call or
its class field default. The result, an `Origin`, is the chain of steps and the span of the
literal at its end; nothing is guessed: any step that is not certain ends the chain.
"""

from __future__ import annotations

import ast
import contextlib
import dis
import itertools
import os
import sys
from dataclasses import dataclass, replace

from ..diagnostics import Span
from ..source.nodes import child_nodes

SMALL = frozenset((int, float, bool, str))
COMPREHENSIONS = {"<listcomp>": ast.ListComp, "<genexpr>": ast.GeneratorExp, "<setcomp>": ast.SetComp,
                  "<dictcomp>": ast.DictComp}
MAX_STEPS = 24
_SUBSCRIPT = "BINARY_SUBSCR" if "BINARY_SUBSCR" in dis.opmap else "BINARY_OP"
_LOOP_OPS = frozenset(dis.opmap[name] for name in ("FOR_ITER", _SUBSCRIPT))
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


# ---------------------------------------------------------------- recorded data


@dataclass(frozen=True)
class Frame:
    """One frame of the checked file while a module was built: which function, the call it
    was making (1-based lines, `ast` columns) and its small local values."""

    function: str
    first_line: int
    call: tuple[int, int, int, int]  # line, end line, column, end column
    values: tuple[tuple[str, object], ...] = ()

    def value(self, name: str):
        return dict(self.values).get(name)

    def to_dict(self) -> dict:
        return {"function": self.function, "first_line": self.first_line, "call": list(self.call),
                "values": [list(v) for v in self.values]}

    @classmethod
    def from_dict(cls, data: dict) -> "Frame":
        values = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in data.get("values", ()))
        return cls(data["function"], data["first_line"], tuple(data["call"]), values)


@dataclass(frozen=True)
class Built:
    """How one module was built: the file's frames, innermost first. `direct`: the innermost
    frame called the module's class itself (not through other code)."""

    frames: tuple[Frame, ...]
    direct: bool = True

    def to_dict(self) -> dict:
        return {"frames": [f.to_dict() for f in self.frames], "direct": self.direct}

    @classmethod
    def from_dict(cls, data: dict) -> "Built":
        return cls(tuple(Frame.from_dict(f) for f in data["frames"]), data.get("direct", True))


# ---------------------------------------------------------------- recording


class Recorder:
    """The modules built while recording, each with how it was built."""

    def __init__(self, path: str, module_level: bool) -> None:
        self.path = os.path.abspath(path)
        self.module_level = module_level  # the file's top level is the file itself (not an eval'd call)
        self.built: dict[int, tuple[object, Built]] = {}  # id -> (module kept alive, how)
        self._inits: dict[type, frozenset] = {}
        self._files: dict[str, str] = {}
        self._code_positions: dict = {}
        self._looping: dict = {}
        self._seen: dict = {}

    def note(self, module, frame) -> None:
        own = self._own_inits(type(module))
        while frame is not None and frame.f_code in own:
            frame = frame.f_back
        frames, direct = [], frame is not None and self._where(frame.f_code) == "user"
        while frame is not None and len(frames) < 12:
            code = frame.f_code
            where = self._where(code)
            if where == "shapecheck":  # what called the user's code: nothing of theirs below
                break
            if where == "user" and (self.module_level or code.co_name != "<module>"):
                frames.append(self._frame(frame, values=not frames or self._loops(code)))
            frame = frame.f_back
        if frames:
            self.built[id(module)] = (module, Built(tuple(frames), direct))

    def _own_inits(self, cls: type) -> frozenset:
        if cls not in self._inits:
            codes = (getattr(k.__dict__.get("__init__"), "__code__", None) for k in cls.__mro__)
            self._inits[cls] = frozenset(c for c in codes if c is not None)
        return self._inits[cls]

    def _where(self, code) -> str:
        """"user" for the checked file, "shapecheck" for shapecheck's own code, else ""."""
        name = code.co_filename
        if name not in self._files:
            path = "" if name.startswith("<") else os.path.abspath(name)
            self._files[name] = "user" if path == self.path else "shapecheck" if path.startswith(_PACKAGE) else ""
        return self._files[name]

    def _frame(self, frame, values: bool) -> Frame:
        """The frame as plain data; the values only where asked (the innermost frame, loops).
        Without values, one Frame serves every module built from the same call."""
        key = (frame.f_code, frame.f_lasti)
        if values or key not in self._seen:
            found = _frame(frame, self._positions(frame.f_code), values)
            if values:
                return found
            self._seen[key] = found
        return self._seen[key]

    def _loops(self, code) -> bool:
        """Whether the code loops or indexes: only then are an outer frame's values needed."""
        if code not in self._looping:
            self._looping[code] = not _LOOP_OPS.isdisjoint(code.co_code[::2])
        return self._looping[code]

    def _positions(self, code) -> list:
        if code not in self._code_positions:
            self._code_positions[code] = list(code.co_positions())
        return self._code_positions[code]

    def sites(self, model) -> dict[str, Built]:
        """How each submodule of `model` ("" the model itself) was built, where recorded."""
        found = {}
        for name, module in model.named_modules():
            entry = self.built.get(id(module))
            if entry is not None and entry[0] is module:
                found[name] = entry[1]
        return found


def _frame(frame, positions: list, values: bool) -> Frame:
    code = frame.f_code
    index = frame.f_lasti // 2
    position = positions[index] if index < len(positions) else None
    call = tuple(position) if position and None not in position else (frame.f_lineno, frame.f_lineno, -1, -1)
    values = () if not values or code.co_name == "<module>" else tuple(
        (k, v) for k, v in frame.f_locals.items() if type(v) in SMALL or (type(v) is tuple and _small(v)))
    return Frame(code.co_name, code.co_firstlineno, call, values)


def _small(values: tuple) -> bool:
    return len(values) <= 16 and all(type(v) in SMALL for v in values)


@contextlib.contextmanager
def recording(path: str, module_level: bool = False):
    """Record how every nn.Module is built inside the block (see `Recorder`)."""
    import torch

    from .usercode import call_user

    recorder = Recorder(path, module_level)
    original = torch.nn.Module.__init__

    def init(module, *args, **kwargs):
        call_user(original, module, *args, **kwargs)
        recorder.note(module, sys._getframe(1))

    torch.nn.Module.__init__ = init
    try:
        yield recorder
    finally:
        torch.nn.Module.__init__ = original


def recorded(path: str, make):
    """The model `make()` builds, and how each of its modules was built (name -> Built)."""
    with recording(path) as recorder:
        model = make()
    return model, recorder.sites(model)


# ---------------------------------------------------------------- the chain


@dataclass(frozen=True)
class Link:
    text: str  # what the user wrote at this step: `cin`, `Block(in_ch, 32)`, `in_ch=1`
    line: int | None
    note: str = ""  # which item of a list: "item 2"

    def __str__(self) -> str:
        where = ", ".join(([f"line {self.line}"] if self.line else []) + ([self.note] if self.note else []))
        return f"`{self.text}`" + (f" ({where})" if where else "")


@dataclass(frozen=True)
class Origin:
    """Where one constructor argument's value was written: the steps back from the constructor
    call, and `span`, `text`, `value` of the literal at the chain's end (None when the chain
    does not end at a literal of the file)."""

    layer: str
    param: str
    links: tuple[Link, ...]
    span: Span | None = None
    text: str = ""
    value: object = None
    names: tuple[tuple[str, object], ...] = ()  # names in the argument and their values when it ran

    def chain(self, value) -> str:
        """"`stem.conv` in_channels=1 ← `cin` (line 4) ← `Block(in_ch, 32)` (line 9) ← ..."""
        return " ← ".join([f"`{self.layer}` {self.param}={value}"] + [str(link) for link in self.links])


@dataclass(frozen=True)
class Root:
    """How the model was built: `name`, the class or factory function shapecheck called;
    `call`, the call it evaluated when the model comes from a call site (in the file's tree
    when the file holds it, else parsed on its own); `given`, parameters given from elsewhere
    (--init, a hint, pyproject)."""

    name: str = ""
    call: ast.Call | None = None
    given: frozenset = frozenset()
    outside: bool = False  # `call` is not in the file: its literals cannot be edited here


@dataclass(frozen=True)
class _Place:
    """An expression and where its names are looked up: the recorded frame (None: no frame
    is known, only the static scope) and the scope node."""

    node: ast.AST
    frame: int | None
    scope: ast.AST


def follow(src, built: Built, layer: str, param: str, layer_class: type, root: Root) -> Origin | None:
    """The origin of argument `param` of the call that built `layer`, an instance of
    `layer_class`. None when that call cannot be found in the file."""
    index = _index(src)
    call = built_call(src, built)
    if call is None or (not built.direct and _callee(call) != layer_class.__name__):
        return None  # called through other code: its arguments are not the layer's
    arg = _argument(call, param, parameter_names(layer_class))
    if arg is None:
        return None
    walker = _Walker(src, index, built.frames, root)
    return walker.run(layer, param, _Place(arg, 0, _scope(index, built.frames[0])))


def built_call(src, built: Built) -> ast.Call | None:
    """The call that built the module, in the file's tree (None when it is not known)."""
    index = _index(src)
    frame = built.frames[0]
    call = index.calls.get(frame.call)
    return call if call is not None and _scope(index, frame) is not None else None


def call_at(src, line: int, callee: str) -> ast.Call | None:
    """The one call of `callee` (by its last name) that starts on `line` of the file."""
    found = [call for key, call in _index(src).calls.items() if key[0] == line and _callee(call) == callee]
    return found[0] if len(found) == 1 else None


def parameter_names(cls) -> list[str]:
    """The positional parameter names of a class's constructor, in order."""
    import inspect

    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in itertools.takewhile(lambda p: p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD),
                                                params)]


def _argument(call: ast.Call, param: str, names: list[str]):
    """The expression passed for `param` (by keyword, or at its position)."""
    for keyword in call.keywords:
        if keyword.arg == param:
            return keyword.value
    if param not in names:
        return None
    position = names.index(param)
    positional = list(itertools.takewhile(lambda a: not isinstance(a, ast.Starred), call.args))
    return positional[position] if position < len(positional) else None


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


class _Walker:
    def __init__(self, src, index, frames, root: Root) -> None:
        self.src, self.index, self.frames, self.root = src, index, frames, root
        self.links: list[Link] = []

    def run(self, layer: str, param: str, place: _Place) -> Origin:
        self._link(place.node)
        names = _recorded_names(place.node, self.frames[0])
        for _ in range(MAX_STEPS):
            if _literal(place.node) is not _NOT:
                return replace(self._origin(layer, param, place), names=names)
            place = self._step(place)
            if place is None:
                break
        return Origin(layer, param, tuple(self.links), names=names)

    def _origin(self, layer, param, place: _Place) -> Origin:
        if place.frame is None and place.scope is _ROOT_SCOPE:  # written in a call outside the file
            return Origin(layer, param, tuple(self.links))
        from .locate import span_of, text_of

        return Origin(layer, param, tuple(self.links), span_of(self.src, place.node), text_of(self.src, place.node),
                      _literal(place.node))

    def _link(self, node, text: str | None = None, note: str = "") -> None:
        line = None if self.root.outside and _within(node, self.root.call) else getattr(node, "lineno", None)
        self.links.append(Link(text if text is not None else self._text(node), line, note))

    def _text(self, node) -> str:
        """The node as written (one line, shortened); a call written outside the file as parsed."""
        from .locate import text_of

        written = ast.unparse(node) if self.root.outside and _within(node, self.root.call) else text_of(self.src, node)
        text = " ".join(written.split())
        return text if len(text) <= 48 else text[:45] + "..."

    # -- one step back
    def _step(self, place: _Place):
        node = place.node
        if isinstance(node, ast.Name):
            return self._name(place, node.id)
        if isinstance(node, ast.Subscript):
            return self._subscript(place)
        if isinstance(node, ast.Attribute):
            return self._attribute(place)
        return None

    def _name(self, place: _Place, name: str):
        scope = place.scope
        if isinstance(scope, tuple(COMPREHENSIONS.values())):
            return self._in_comprehension(place, name)
        if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            bound = _bindings(scope, name)
            if name in _parameters(scope):
                return None if bound else self._parameter(place, name)  # a parameter rebound: which value?
            if bound:
                return self._bound(place, name, bound)
        if scope is _ROOT_SCOPE:
            return None
        return self._module_constant(name)

    def _module_constant(self, name: str):
        values = self.index.constants.get(name)
        if values is None or len(values) != 1:
            return None
        value = values[0]
        self._link(value, f"{name} = {self._text(value)}")
        return _Place(value, None, self.src.tree)

    def _parameter(self, place: _Place, name: str):
        function = place.scope
        outer = self._outer_call(place, name)
        if outer is _NOT:
            return None
        if outer is not None:
            call, outer_place = outer
            names = _parameters(function, positional=True, skip_self=_is_method(self.index, function))
            arg = _argument(call, name, names)
            if arg is not None:
                self._link(call)
                return _Place(arg, outer_place.frame, outer_place.scope)
            if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
                return None  # *args or **kwargs may carry it
        default = _default(function, name)
        if default is None:
            return None
        self._link(default, f"{name}={self._text(default)}")
        return _Place(default, place.frame, place.scope)

    def _outer_call(self, place: _Place, name: str):
        """The call that called this function and the place of its arguments; None when
        shapecheck called it with its defaults; _NOT when that is not certain."""
        if place.frame is None:
            return _NOT
        outer = place.frame + 1
        if outer < len(self.frames):
            frame = self.frames[outer]
            call, scope = self.index.calls.get(frame.call), _scope(self.index, frame)
            if call is None or scope is None or not self._calls(call, place.scope):
                return _NOT
            return call, _Place(call, outer, scope)
        if not self._is_root(place.scope) or name in self.root.given:
            return _NOT
        root = self.root.call
        if root is None:
            return None
        if not self._calls(root, place.scope):
            return _NOT
        scope = _ROOT_SCOPE if self.root.outside else self.index.enclosing.get(root) or self.src.tree
        return root, _Place(root, None, scope)

    def _is_root(self, function) -> bool:
        """Whether `function` is what shapecheck called: the model class's __init__ or the factory."""
        owner = self.index.owner.get(function)
        if owner is not None:
            return function.name == "__init__" and owner.name == self.root.name
        return getattr(function, "name", "") == self.root.name and self.index.functions.get(function.name) is function

    def _calls(self, call: ast.Call, function) -> bool:
        """Whether `call` (by its name) calls `function` (a method: its class)."""
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return False
        owner = self.index.owner.get(function)
        name = _callee(call)
        if owner is not None and function.name == "__init__":
            return name == owner.name or _super_init(call) or (
                isinstance(call.func, ast.Name) and name not in self.index.functions and name not in self.index.classes)
        return name == function.name

    def _bound(self, place: _Place, name: str, bound: list):
        if len(bound) != 1:
            return None
        kind, node = bound[0]
        if kind == "assign":
            self._link(node, f"{name} = {self._text(node)}")
            return _Place(node, place.frame, place.scope)
        return self._loop_element(place, name, node)

    def _loop_element(self, place: _Place, name: str, loop):
        """`for name in xs`: the element of xs the recorded value picks (it must be unique)."""
        if place.frame is None or not isinstance(loop.target, ast.Name):
            return None
        value = self.frames[place.frame].value(name)
        items = self._items(_Place(loop.iter, place.frame, place.scope))
        if value is None or items is None:
            return None
        matches = [(k, item) for k, item in enumerate(items) if _literal(item.node) == value]
        if len(matches) != 1:
            return None
        position, item = matches[0]
        self._link(loop.iter, f"for {name} in {self._text(loop.iter)}")
        self._link(item.node, note=f"item {position}")
        return item

    def _in_comprehension(self, place: _Place, name: str):
        comp = place.scope
        for generator in comp.generators:
            if isinstance(generator.target, ast.Name) and generator.target.id == name:
                return self._loop_element(place, name, generator)
            if name in {n.id for n in ast.walk(generator.target) if isinstance(n, ast.Name)}:
                return None
        outer = self.index.enclosing.get(comp)  # a free name: the enclosing function's frame
        nxt = place.frame + 1 if place.frame is not None else None
        if outer is None or nxt is None or nxt >= len(self.frames) or _scope(self.index, self.frames[nxt]) is not outer:
            return None
        return self._name(_Place(place.node, nxt, outer), name)

    def _items(self, place: _Place) -> list[_Place] | None:
        """The elements of the list or tuple literal an expression comes from."""
        found = self._resolved(place)
        if found is None or not isinstance(found.node, (ast.List, ast.Tuple)) \
                or any(isinstance(e, ast.Starred) for e in found.node.elts):
            return None
        return [_Place(e, found.frame, found.scope) for e in found.node.elts]

    def _subscript(self, place: _Place):
        node = place.node
        index = _evaluate(node.slice, self.frames[place.frame] if place.frame is not None else None)
        if not isinstance(index, int):
            return None
        items = self._items(_Place(node.value, place.frame, place.scope))
        if items is None or not -len(items) <= index < len(items):
            return None
        chosen = items[index]
        self._link(chosen.node, note=f"item {index % len(items)}")
        return chosen

    def _attribute(self, place: _Place):
        node = place.node
        if isinstance(node.value, ast.Name) and node.value.id == "self":
            return self._self_attribute(place, node.attr)
        base = self._resolved(_Place(node.value, place.frame, place.scope))
        if base is None or not isinstance(base.node, ast.Call):
            return None
        for keyword in base.node.keywords:
            if keyword.arg == node.attr:
                self._link(keyword.value, f"{node.attr}={self._text(keyword.value)}")
                return _Place(keyword.value, base.frame, base.scope)
        klass = self.index.classes.get(_callee(base.node))
        if klass is None or base.node.args or any(k.arg is None for k in base.node.keywords):
            return None
        field = _class_field(klass, node.attr)
        if field is None:
            return None
        self._link(field, self._text(field))
        return _Place(field.value, None, self.src.tree)

    def _self_attribute(self, place: _Place, attr: str):
        """`self.x`: its one assignment, in the same method before the use."""
        function = place.scope
        owner = self.index.owner.get(function) if isinstance(function, ast.FunctionDef) else None
        if owner is None:
            return None
        assigned = [v for f in ast.walk(owner) if isinstance(f, ast.Assign)
                    for t in f.targets if _is_self_attr(t, attr) for v in [f.value]]
        mine = [v for v in assigned if self.index.enclosing.get(v) is function]
        if len(assigned) != 1 or len(mine) != 1:
            return None
        self._link(mine[0], f"self.{attr} = {self._text(mine[0])}")
        return _Place(mine[0], place.frame, place.scope)

    def _resolved(self, place: _Place) -> _Place | None:
        """Follow names until something that is not a name (a call, a literal)."""
        for _ in range(MAX_STEPS):
            if not isinstance(place.node, (ast.Name, ast.Attribute, ast.Subscript)):
                return place
            step = self._step(place)
            if step is None:
                return None
            place = step
        return None


def _recorded_names(node, frame: Frame) -> tuple[tuple[str, object], ...]:
    """The names in an expression and the values the frame had for them (where recorded)."""
    found = {n.id: frame.value(n.id) for n in ast.walk(node) if isinstance(n, ast.Name)}
    return tuple((name, value) for name, value in found.items() if value is not None)


def _super_init(call: ast.Call) -> bool:
    """`super().__init__(...)`: a subclass passing its values to its base class."""
    func = call.func
    return (isinstance(func, ast.Attribute) and func.attr == "__init__" and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name) and func.value.func.id == "super")


def _within(node, call) -> bool:
    return call is not None and any(n is node for n in ast.walk(call))


def _is_self_attr(target, attr: str) -> bool:
    return (isinstance(target, ast.Attribute) and target.attr == attr and isinstance(target.value, ast.Name)
            and target.value.id == "self")


def _class_field(klass: ast.ClassDef, name: str):
    """The statement that gives field `name` its default in a class body (`n_embd: int = 768`)."""
    for stmt in klass.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.target.id == name:
            return stmt if stmt.value is not None else None
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in stmt.targets):
            return stmt
    return None


# ---------------------------------------------------------------- values


class _Missing:
    pass


_NOT = _Missing()
_ROOT_SCOPE = ast.Module(body=[], type_ignores=[])  # a call written outside the file (--init, a site elsewhere)


def _literal(node):
    """The value of a literal the user wrote (numbers, their sums and products, tuples and
    lists of them); _NOT for anything else."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        values = tuple(_literal(e) for e in node.elts)
        return _NOT if any(v is _NOT for v in values) else values
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _literal(node.operand)
        return _NOT if value is _NOT or isinstance(value, tuple) else -value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)):
        left, right = _literal(node.left), _literal(node.right)
        if any(v is _NOT or isinstance(v, tuple) for v in (left, right)):
            return _NOT
        return _arith(node.op, left, right)
    return _NOT


def _arith(op, left, right):
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return left * right
    return left // right if right else _NOT


def _evaluate(node, frame: Frame | None):
    """An integer index: literals and the frame's recorded integers, + - * //."""
    if isinstance(node, ast.Name):
        value = frame.value(node.id) if frame is not None else None
        return value if type(value) is int else _NOT
    if isinstance(node, ast.Constant):
        return node.value if type(node.value) is int else _NOT
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _evaluate(node.operand, frame)
        return _NOT if value is _NOT else -value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)):
        left, right = _evaluate(node.left, frame), _evaluate(node.right, frame)
        return _NOT if _NOT in (left, right) else _arith(node.op, left, right)
    return _NOT


# ---------------------------------------------------------------- the file's index


class _Index:
    def __init__(self) -> None:
        self.calls: dict[tuple, ast.Call] = {}  # (line, end line, column, end column) -> call
        self.scopes: dict[tuple, list] = {}  # (code name, first line) -> function/comprehension nodes
        self.owner: dict[ast.AST, ast.ClassDef] = {}  # method -> its class
        self.enclosing: dict[ast.AST, ast.AST] = {}  # node -> the function or comprehension around it
        self.classes: dict[str, ast.ClassDef] = {}
        self.functions: dict[str, ast.FunctionDef] = {}
        self.constants: dict[str, list] = {}  # top-level name -> assigned values
        self.tree: ast.Module | None = None


def _index(src) -> _Index:
    if "provenance" not in src.cache:
        src.cache["provenance"] = _build_index(src.tree)
    return src.cache["provenance"]


def _build_index(tree: ast.Module) -> _Index:
    index = _Index()
    index.tree = tree
    _visit(index, tree, None, None)
    return index


def _visit(index: _Index, node, scope, klass) -> None:
    for child in child_nodes(node):
        index.enclosing[child] = scope
        inner, inner_class = scope, None if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else klass
        if isinstance(child, ast.Call):
            index.calls[(child.lineno, child.end_lineno, child.col_offset, child.end_col_offset)] = child
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([child.lineno] + [d.lineno for d in child.decorator_list])
            index.scopes.setdefault((child.name, first), []).append(child)
            if klass is not None:
                index.owner[child] = klass
            if scope is None:
                index.functions.setdefault(child.name, child)
            inner = child
        elif isinstance(child, ast.Lambda):
            index.scopes.setdefault(("<lambda>", child.lineno), []).append(child)
            inner = child
        elif isinstance(child, tuple(COMPREHENSIONS.values())):
            name = next(k for k, v in COMPREHENSIONS.items() if isinstance(child, v))
            index.scopes.setdefault((name, child.lineno), []).append(child)
            inner = child
        elif isinstance(child, ast.ClassDef):
            index.classes.setdefault(child.name, child)
            inner_class = child
        elif isinstance(child, (ast.Assign, ast.AnnAssign)) and scope is None and klass is None:
            _constant(index, child)
        _visit(index, child, inner, inner_class)


def _constant(index: _Index, stmt) -> None:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    for target in targets:
        if isinstance(target, ast.Name) and stmt.value is not None:
            index.constants.setdefault(target.id, []).append(stmt.value)
        for name in ast.walk(target) if not isinstance(target, ast.Name) else ():
            if isinstance(name, ast.Name):  # unpacked: not a single value
                index.constants.setdefault(name.id, []).extend([None, None])


def _scope(index: _Index, frame: Frame):
    """The function, lambda or comprehension node that ran as `frame` (None when unsure)."""
    if frame.function == "<module>":
        return index.tree
    candidates = index.scopes.get((frame.function, frame.first_line), [])
    line, end_line, column, end_column = frame.call
    inside = [c for c in candidates if (c.lineno, c.col_offset) <= (line, column)
              and (end_line, end_column) <= (c.end_lineno, c.end_col_offset)]
    return inside[0] if len(inside) == 1 else None


def _parameters(function, positional: bool = False, skip_self: bool = False) -> list[str]:
    args = function.args
    names = [a.arg for a in args.posonlyargs + args.args]
    if skip_self and names:
        names = names[1:]
    if positional:
        return names
    return names + [a.arg for a in args.kwonlyargs]


def _is_method(index: _Index, function) -> bool:
    if function not in index.owner:
        return False
    return not any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in function.decorator_list)


def _default(function, name: str):
    args = function.args
    positional = args.posonlyargs + args.args
    defaults = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]], args.defaults))
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    return defaults.get(name)


def _bindings(function, name: str) -> list:
    """How `name` is bound in the function's own body: ("assign", value) or ("loop", for)."""
    found = []
    for node in _own_nodes(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    found.append(("assign", node.value))
                elif any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target)):
                    found.append(("other", None))
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name) \
                and node.target.id == name:
            found.append(("assign", node.value) if isinstance(node, ast.AnnAssign) and node.value else ("other", None))
        elif isinstance(node, (ast.For, ast.AsyncFor)) and any(
                isinstance(n, ast.Name) and n.id == name for n in ast.walk(node.target)):
            found.append(("loop", node))
        elif name in _other_bindings(node):
            found.append(("other", None))
    return [("other", None)] if any(k == "other" for k, _ in found) else found


def _other_bindings(node) -> set[str]:
    """Names bound by `with ... as`, `:=`, imports, `global`/`nonlocal`, `except ... as`."""
    if isinstance(node, ast.withitem) and node.optional_vars is not None:
        return {n.id for n in ast.walk(node.optional_vars) if isinstance(n, ast.Name)}
    if isinstance(node, ast.NamedExpr):
        return {node.target.id}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).partition(".")[0] for a in node.names}
    if isinstance(node, (ast.Global, ast.Nonlocal)):
        return set(node.names)
    if isinstance(node, ast.ExceptHandler) and node.name:
        return {node.name}
    return set()


def _own_nodes(function):
    """Nodes of the function's body, not inside nested functions, classes or comprehensions."""
    todo = list(function.body) if isinstance(function.body, list) else [function.body]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(c for c in ast.iter_child_nodes(node) if not isinstance(
            c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda) + tuple(COMPREHENSIONS.values())))
