"""Values the source states without running it: literals, constants, dict literals and the
defaults of argparse parsers (`args.classes` is the `default=` of `--classes`).

`Scope` follows the assignments of one block of code in order; `value(node, scope)` is the
Python value of an expression or `UNKNOWN`; `substitute(node, scope)` rewrites an expression
with every part of known value written as a literal, so `UNet(n_classes=args.classes)` becomes
`UNet(n_classes=2)`. Names of unknown value are left as they are.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field
from typing import Any

from .nodes import all_nodes

UNKNOWN: Any = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN"})()
_CONVERTERS = {"int": int, "float": float, "str": str}
_OPERATORS = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b, ast.Div: lambda a, b: a / b, ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: _power(a, b),
}


def _power(base, exponent):
    """`2 ** opt.n_downsample`; a power too large to be a size is not worked out."""
    if isinstance(exponent, (int, float)) and abs(exponent) <= 64 and isinstance(base, (int, float)) and abs(base) <= 1 << 16:
        return base ** exponent
    raise OverflowError("power too large")


class Namespace(dict):
    """What `parser.parse_args()` returns with an empty command line: dest -> default."""


class Parser(dict):
    """An `argparse.ArgumentParser` (or argument group) being filled: dest -> default."""


@dataclass(frozen=True)
class Expression:
    """A name bound to a call whose value is not known here but that can be written out and
    evaluated later: `gptconf = GPTConfig(**model_args)`, `model = Unet(dim=64)`."""

    node: ast.expr


@dataclass
class Scope:
    parent: Scope | None = None
    bindings: dict[str, Any] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)  # parser-returning helpers
    command_line: dict[str, str] = field(default_factory=dict)  # options the docs run this script with

    def _find(self, table: str, key: str, missing: Any) -> Any:
        """`key` in the named table of this scope or the nearest enclosing one that has it."""
        scope = self
        while scope is not None:
            found = getattr(scope, table)
            if key in found:
                return found[key]
            scope = scope.parent
        return missing

    def stated_option(self, dest: str) -> str | None:
        """The value the project's documentation passes for option `dest` on the command line."""
        return self._find("command_line", dest, None)

    def lookup(self, name: str) -> Any:
        return self._find("bindings", name, UNKNOWN)

    def function(self, name: str) -> ast.FunctionDef | None:
        return self._find("functions", name, None)


def value(node: ast.expr, scope: Scope) -> Any:
    """The value of `node`, or UNKNOWN."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return scope.lookup(node.id)
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [value(element, scope) for element in node.elts]
        if any(item is UNKNOWN for item in items):
            return UNKNOWN
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        return _dict(node, scope)
    if isinstance(node, ast.Attribute):
        base = value(node.value, scope)
        return base.get(node.attr, UNKNOWN) if isinstance(base, Namespace) else UNKNOWN
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = value(node.operand, scope)
        if isinstance(operand, (int, float)) and not isinstance(operand, bool):
            return -operand if isinstance(node.op, ast.USub) else operand
        return UNKNOWN
    if isinstance(node, ast.BinOp):
        return _binary(node, scope)
    if isinstance(node, ast.Subscript):
        return _subscript(node, scope)
    if isinstance(node, ast.Call):
        return _call(node, scope)
    return UNKNOWN


def _dict(node: ast.Dict, scope: Scope) -> Any:
    out = {}
    for key, item in zip(node.keys, node.values):
        if key is None:
            merged = value(item, scope)
            if not isinstance(merged, dict):
                return UNKNOWN
            out.update(merged)
            continue
        key_value, item_value = value(key, scope), value(item, scope)
        if key_value is UNKNOWN or item_value is UNKNOWN:
            return UNKNOWN
        out[key_value] = item_value
    return out


def _binary(node: ast.BinOp, scope: Scope) -> Any:
    left, right = value(node.left, scope), value(node.right, scope)
    operator = _OPERATORS.get(type(node.op))
    if operator is None or left is UNKNOWN or right is UNKNOWN:
        return UNKNOWN
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers) or (
            isinstance(node.op, ast.Add) and type(left) is type(right) and isinstance(left, (tuple, list, str))):
        try:
            return operator(left, right)
        except (ArithmeticError, TypeError):
            return UNKNOWN
    return UNKNOWN


def _subscript(node: ast.Subscript, scope: Scope) -> Any:
    base, index = value(node.value, scope), value(node.slice, scope)
    try:
        return base[index] if isinstance(base, (tuple, list, dict, str)) and index is not UNKNOWN else UNKNOWN
    except (IndexError, KeyError, TypeError):
        return UNKNOWN


def _call(node: ast.Call, scope: Scope) -> Any:
    """`dict(a=1)`, `parser.parse_args()`, `get_args()` (a helper that returns parsed args)."""
    func = node.func
    if isinstance(func, ast.Name) and func.id == "dict" and not node.args:
        items = {k.arg: value(k.value, scope) for k in node.keywords if k.arg}
        return UNKNOWN if UNKNOWN in items.values() or len(items) != len(node.keywords) else items
    if isinstance(func, ast.Attribute) and func.attr in ("parse_args", "parse_known_args"):
        parser = value(func.value, scope)
        if isinstance(parser, Parser) and not node.args:
            parsed = Namespace(parser)
            return (parsed, []) if func.attr == "parse_known_args" else parsed
        return UNKNOWN
    if isinstance(func, ast.Name) and func.id in _PURE and _builtin(func.id, scope):
        return _pure_call(_PURE[func.id], node, scope)
    if isinstance(func, ast.Name) and not node.args and not node.keywords:
        helper = scope.function(func.id)
        return _helper_result(helper, scope) if helper is not None else UNKNOWN
    return UNKNOWN


_PURE = {f.__name__: f for f in (int, float, bool, str, abs, round, min, max, len, tuple, list, sum)}


def _builtin(name: str, scope: Scope) -> bool:
    """`name` still means the builtin: the code binds nothing under that name."""
    while scope is not None:
        if name in scope.bindings or name in scope.functions:
            return False
        scope = scope.parent
    return True


def _pure_call(func, node: ast.Call, scope: Scope) -> Any:
    """`int(opt.ngpu)`, `max(8, width // 4)`: a builtin of known arguments, computed."""
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        return UNKNOWN
    args = [value(a, scope) for a in node.args]
    if any(a is UNKNOWN or not _literal(a) for a in args):
        return UNKNOWN
    try:
        return func(*args)
    except (TypeError, ValueError, ArithmeticError, OverflowError):
        return UNKNOWN


def _helper_result(helper: ast.FunctionDef, scope: Scope) -> Any:
    """What a module function like `def get_args(): ...; return parser.parse_args()` returns."""
    if len(helper.args.args) > len(helper.args.defaults) or helper.args.kwonlyargs:
        return UNKNOWN
    inner = Scope(parent=scope)
    follow(helper.body, inner)
    returns = [s for s in helper.body if isinstance(s, ast.Return) and s.value is not None]
    return value(returns[-1].value, inner) if returns else UNKNOWN


# ---------------------------------------------------------------- following a block


def follow(body: list[ast.stmt], scope: Scope) -> None:
    """Record the bindings of a block, in order (nested if/for/with/try blocks included)."""
    for stmt in body:
        step(stmt, scope)
        for block in blocks(stmt):
            follow(block, scope)
        leave(stmt, scope)


def blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    """The nested blocks a statement runs in place (not those of functions and classes)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    found = [getattr(stmt, name) for name in ("body", "orelse", "finalbody")
             if isinstance(getattr(stmt, name, None), list)]
    found.extend(handler.body for handler in getattr(stmt, "handlers", []))
    found.extend(case.body for case in getattr(stmt, "cases", []))
    return found


def step(stmt: ast.stmt, scope: Scope) -> None:
    """Record what one statement binds (not its nested blocks); an unknown value unbinds."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        scope.functions[stmt.name] = stmt
        scope.bindings.pop(stmt.name, None)
    elif isinstance(stmt, ast.Assign):
        _assign(stmt.targets, stmt.value, scope)
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        _assign([stmt.target], stmt.value, scope)
    elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        _add_argument(stmt.value, scope)
    elif isinstance(stmt, ast.For) and (items := _items(stmt.iter, scope)):
        _bind(stmt.target, items[0], scope)
    else:
        targets = [getattr(stmt, "target", None)] + [i.optional_vars for i in getattr(stmt, "items", [])]
        for target in targets:
            if isinstance(target, ast.expr):
                _unbind(target, scope)


def leave(stmt: ast.stmt, scope: Scope) -> None:
    """After a loop over known items its variable holds the last one."""
    if isinstance(stmt, ast.For) and (items := _items(stmt.iter, scope)):
        _bind(stmt.target, items[-1], scope)


def _items(node: ast.expr, scope: Scope) -> list:
    """The items a `for` loop goes through when the source states them: a tuple or list of
    known values (`for bins in (0, 2, 10):`), or `range` of known numbers. The loop body is read
    once, as its first pass runs it."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" \
            and _builtin("range", scope) and not node.keywords and 1 <= len(node.args) <= 3:
        bounds = [value(a, scope) for a in node.args]
        if all(type(b) is int for b in bounds) and (len(bounds) < 3 or bounds[2]):
            numbers = range(*bounds)
            return [numbers[0], numbers[-1]] if numbers else []
        return []
    found = value(node, scope)
    return list(found) if isinstance(found, (tuple, list)) and not isinstance(found, Namespace) else []


def _assign(targets: list[ast.expr], node: ast.expr, scope: Scope) -> None:
    found = _parser_value(node, scope)
    if found is UNKNOWN:
        found = value(node, scope)
    if found is UNKNOWN and isinstance(node, ast.Call):
        written = substitute(node, scope)
        found = UNKNOWN if unresolved(written, scope) else Expression(written)
    for target in targets:
        if isinstance(target, ast.Subscript):
            _assign_item(target, node, scope)
        else:
            _bind(target, found, scope)


def _bind(target: ast.expr, found: Any, scope: Scope) -> None:
    if isinstance(target, ast.Name):
        scope.bindings[target.id] = found
    elif (isinstance(target, (ast.Tuple, ast.List)) and isinstance(found, (tuple, list))
          and len(found) == len(target.elts)):
        for element, item in zip(target.elts, found):
            _bind(element, item, scope)
    elif isinstance(target, ast.Attribute) and isinstance(value(target.value, scope), Namespace):
        value(target.value, scope)[target.attr] = found  # `opt.seed = random.randint(...)`: that field only
    else:
        _unbind(target, scope)


def _assign_item(target: ast.Subscript, node: ast.expr, scope: Scope) -> None:
    """`model_args['vocab_size'] = 50304` updates a known dict."""
    base = value(target.value, scope)
    key, item = value(target.slice, scope), value(node, scope)
    if isinstance(base, dict) and key is not UNKNOWN:
        if item is UNKNOWN:
            _unbind(target.value, scope)
        else:
            base[key] = item


def _unbind(target: ast.expr, scope: Scope) -> None:
    for node in ast.walk(target):
        if isinstance(node, ast.Name):
            scope.bindings[node.id] = UNKNOWN


def _parser_value(node: ast.expr, scope: Scope) -> Any:
    """A new parser (`argparse.ArgumentParser(...)`) or a group of a known one."""
    if not isinstance(node, ast.Call):
        return UNKNOWN
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name == "ArgumentParser":
        return Parser()
    if name in ("add_argument_group", "add_mutually_exclusive_group") and isinstance(func, ast.Attribute):
        parser = value(func.value, scope)
        return parser if isinstance(parser, Parser) else UNKNOWN
    return UNKNOWN


def _add_argument(call: ast.Call, scope: Scope) -> None:
    func = call.func
    if not (isinstance(func, ast.Attribute) and func.attr == "add_argument"):
        return
    parser = value(func.value, scope)
    if not isinstance(parser, Parser):
        return
    dest = argument_dest(call)
    if dest:
        parser[dest] = argument_default(call, scope)
        stated = scope.stated_option(dest)
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        if parser[dest] is None and stated is not None and _required(keywords, scope):
            parser[dest] = _converted(stated, keywords.get("type"))


def argument_dest(call: ast.Call) -> str | None:
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    if isinstance(keywords.get("dest"), ast.Constant):
        return keywords["dest"].value
    flags = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if not flags:
        return None
    longs = [f for f in flags if f.startswith("--")]
    name = (longs or flags)[0].lstrip("-")
    return name.replace("-", "_") if name else None


def _required(keywords: dict[str, ast.expr], scope: Scope) -> bool:
    """`required=True` and no default: the script cannot run without a value on its command line."""
    return "default" not in keywords and "required" in keywords and value(keywords["required"], scope) is True


def _converted(text: str, converter: ast.expr | None) -> Any:
    """A command-line value as `type=` makes it (a string without one)."""
    if isinstance(converter, ast.Name) and converter.id in _CONVERTERS:
        try:
            return _CONVERTERS[converter.id](text)
        except ValueError:
            return UNKNOWN
    return text if converter is None else UNKNOWN


def argument_default(call: ast.Call, scope: Scope) -> Any:
    """argparse's value for an empty command line: `default=` (converted by `type=` when it
    is a string), False for store_true, True for store_false, None otherwise."""
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    action = value(keywords["action"], scope) if "action" in keywords else None
    if "default" not in keywords:
        return {"store_true": False, "store_false": True}.get(action)
    default = value(keywords["default"], scope)
    converter = keywords.get("type")
    if isinstance(default, str) and isinstance(converter, ast.Name) and converter.id in _CONVERTERS:
        return _converted(default, converter)
    return default


def compared_options(tree: ast.Module) -> dict[str, Any]:
    """Option -> the first value the code compares it with, for the results of `parse_args()`:
    `if opt.dataset in ['imagenet', 'folder']:` then `elif opt.dataset == 'mnist':` give
    {"dataset": "imagenet"}. The values a required option with no default is tested for."""
    nodes = all_nodes(tree)
    parsed = {target.id for node in nodes if isinstance(node, ast.Assign)
              and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute)
              and node.value.func.attr in ("parse_args", "parse_known_args")
              for target in _first_names(node.targets)}
    found: dict[str, Any] = {}
    compares = sorted((n for n in nodes if isinstance(n, ast.Compare) and len(n.ops) == 1),
                      key=lambda n: (n.lineno, n.col_offset))
    for node in compares:
        left = node.left
        if isinstance(left, ast.Attribute) and isinstance(left.value, ast.Name) and left.value.id in parsed:
            stated = _compared_value(node.ops[0], node.comparators[0])
            if stated is not UNKNOWN:
                found.setdefault(left.attr, stated)
    return found


def _first_names(targets: list[ast.expr]) -> list[ast.Name]:
    """`opt = ...` -> opt; `args, rest = parser.parse_known_args()` -> args."""
    names = []
    for target in targets:
        if isinstance(target, (ast.Tuple, ast.List)) and target.elts:
            target = target.elts[0]
        if isinstance(target, ast.Name):
            names.append(target)
    return names


def _compared_value(op: ast.cmpop, node: ast.expr) -> Any:
    if isinstance(op, ast.Eq) and isinstance(node, ast.Constant) and node.value is not None:
        return node.value
    if isinstance(op, ast.In) and isinstance(node, (ast.List, ast.Tuple, ast.Set)) and node.elts:
        first = node.elts[0]
        return first.value if isinstance(first, ast.Constant) and first.value is not None else UNKNOWN
    return UNKNOWN


# ---------------------------------------------------------------- writing values back


def _literal(item: Any) -> bool:
    if item is None or isinstance(item, (bool, int, float, str)):
        return not isinstance(item, Namespace)
    if isinstance(item, (tuple, list)) and not isinstance(item, Namespace):
        return all(_literal(i) for i in item)
    if type(item) is dict:
        return all(_literal(k) and _literal(v) for k, v in item.items())
    return False


def as_literal(item: Any) -> ast.expr | None:
    """An expression that writes `item`, or None when it is not a plain literal."""
    if not _literal(item):
        return None
    return ast.parse(repr(item), mode="eval").body


class _Substitute(ast.NodeTransformer):
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.Name) and isinstance(self.scope.lookup(node.id), Expression):
            return ast.copy_location(copy.deepcopy(self.scope.lookup(node.id).node), node)
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.BinOp, ast.Dict, ast.Call)) and not isinstance(
                getattr(node, "ctx", ast.Load()), (ast.Store, ast.Del)):
            literal = as_literal(value(node, self.scope))
            if literal is not None:
                return ast.copy_location(literal, node)
        return self.generic_visit(node)


def substitute(node: ast.expr, scope: Scope) -> ast.expr:
    """`node` with every sub-expression of known value written as a literal, and names bound
    to an `Expression` written as that expression."""
    return _Substitute(scope).visit(copy.deepcopy(node))


def unresolved(node: ast.expr, scope: Scope) -> list[str]:
    """Names `node` still reads after `substitute` that the scope knows to be unknown values
    (locals such as `device` or `dataset`): such a site cannot be evaluated."""
    return sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                   and _bound_unknown(n.id, scope)})


def _bound_unknown(name: str, scope: Scope) -> bool:
    while scope is not None:
        if name in scope.bindings:
            return scope.bindings[name] is UNKNOWN
        scope = scope.parent
    return False
