"""The models of a file and where their input shapes and constructor arguments come from.

Input shapes, strongest first: the `--input` flag, an in-file hint, the project config, an
example call in the file (see `examples.py`). This module parses the first three, finds the
models (`find_models`) and checks constructor arguments against `--init` values.

Forms accepted for one input: `16,1,32,32`, `16x1x32x32`, `(16, 1, 32, 32)`, with an
optional dtype suffix `16,20:int64`. Several inputs (a forward with several arguments):
repeat the flag; in a hint `input=((8, 3, 64, 64), (8, 12, "int64"))` or
`input=8x3x64x64; 8x12:int64`; in pyproject.toml a list of lists or of strings.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
from dataclasses import dataclass
from typing import Any

from shapecheck.config import find_config, tool_table
from shapecheck.errors import ShapecheckError, UsageError
from shapecheck.source.inputs import DTYPES, InputSpec
from shapecheck.source.nodes import walk

_SIZE_SEPARATORS = re.compile(r"\s*[,x×X]\s*")


@dataclass
class ModelSpec:
    """A model found in the file: a class to build, or a module object built at top level.

    `hint`: the in-file `# shapecheck: input=...` shapes (`hint_line` its line; a hint that
    cannot be read leaves `hint` None and says why in `hint_error`). `example`: shapes of an
    example call found in the file (`example_line`). `is_used_by_other`: the class is
    referenced inside another model class of the file or in a top-level module object
    (a block of a bigger model), or the object is a submodule of another top-level object.
    `instance_of`: for an object, the name of the file's class it is an instance of
    (`model = Net()` -> "Net"), so a caller can avoid checking the same model twice.
    """

    name: str
    line: int
    kind: str  # "class" or "object"
    obj: Any
    hint: tuple[InputSpec, ...] | None = None
    example: tuple[InputSpec, ...] | None = None
    example_line: int | None = None
    example_from: str = ""  # the model whose example this one shares (a factory of the same class)
    is_used_by_other: bool = False
    hint_line: int | None = None
    hint_error: str | None = None
    path: str = ""
    instance_of: str | None = None


class MissingArguments(ShapecheckError):
    """A model's constructor has required arguments that no `--init` value gives."""

    def __init__(self, names: list[str], cls_name: str) -> None:
        self.names = list(names)
        self.cls_name = cls_name
        flags = " ".join(f"--init {name}=VALUE" for name in self.names)
        plural = "arguments" if len(self.names) > 1 else "argument"
        super().__init__(
            f"{cls_name} needs the constructor {plural} {', '.join(self.names)}: pass "
            f"{'them' if len(self.names) > 1 else 'it'} with {flags} (VALUE a Python literal, "
            f"e.g. --init {self.names[0]}=10), or give {'them' if len(self.names) > 1 else 'it'} "
            f"a default")


# ---------------------------------------------------------------- input shapes


def parse_input_flag(text: str) -> InputSpec:
    """`16,1,32,32`, `16x1x32x32`, `(16, 1, 32, 32)` or `16,20:int64` -> InputSpec."""
    raw = text.strip()
    shape_text, _, dtype_text = raw.partition(":")
    dtype = _dtype(dtype_text.strip() or "float32", raw)
    shape_text = shape_text.strip().strip("()[]").strip().rstrip(",")
    if not shape_text:
        raise UsageError(f"input shape {text!r} is empty: write the sizes, e.g. 16,1,32,32")
    sizes = []
    for part in _SIZE_SEPARATORS.split(shape_text):
        if not part.isdigit() or int(part) < 1:
            raise UsageError(
                f"input shape {text!r}: {part!r} is not a positive integer size "
                f"(write e.g. 16,1,32,32 or 16x1x32x32, optionally :int64)")
        sizes.append(int(part))
    return InputSpec(tuple(sizes), dtype)


def _dtype(name: str, context: str) -> str:
    key = name.lower().removeprefix("torch.")
    if key not in DTYPES:
        raise UsageError(f"input shape {context!r}: unknown dtype {name!r} "
                         f"(use one of {', '.join(sorted(set(DTYPES)))})")
    return DTYPES[key]


def specs_from_value(value: Any, context: str) -> tuple[InputSpec, ...]:
    """Shapes written as Python/TOML values: `[16, 1, 32, 32]`, `[16, 20, "int64"]`,
    `"16x1x32x32"`, or a list of those (several inputs)."""
    if isinstance(value, str):
        return tuple(parse_input_flag(part) for part in value.split(";") if part.strip())
    if not isinstance(value, (list, tuple)) or not value:
        raise UsageError(f"{context}: expected a shape such as [16, 1, 32, 32], got {value!r}")
    if all(isinstance(item, (list, tuple, str)) for item in value):
        return tuple(_one_spec(item, context) for item in value)
    return (_one_spec(value, context),)


def _one_spec(value: Any, context: str) -> InputSpec:
    if isinstance(value, str):
        return parse_input_flag(value)
    items = list(value)
    dtype = "float32"
    if items and isinstance(items[-1], str):
        dtype = _dtype(items.pop(), context)
    if not items or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1
                            for n in items):
        raise UsageError(f"{context}: {value!r} is not a shape of positive integer sizes")
    return InputSpec(tuple(items), dtype)


def parse_hint(text: str) -> tuple[InputSpec, ...] | None:
    """The shapes of a `# shapecheck:` comment's `input=` part; None when it has none.

    Raises UsageError when the `input=` part cannot be read.
    """
    match = re.search(r"\binputs?\s*=\s*(.+)$", text)
    if not match:
        return None
    value_text = match.group(1).strip()
    try:
        value = ast.literal_eval(value_text)
    except (ValueError, SyntaxError):
        value = value_text
    return specs_from_value(value, f"hint 'input={value_text}'")


def hint_text(specs: tuple[InputSpec, ...]) -> str:
    """The hint comment that gives these shapes, ready to paste above a class."""
    def one(spec: InputSpec) -> str:
        items = [str(size) for size in spec.shape]
        if spec.dtype != "float32":
            items.append(f'"{spec.dtype}"')
        return "(" + ", ".join(items) + ")"

    body = one(specs[0]) if len(specs) == 1 else "(" + ", ".join(map(one, specs)) + ")"
    return f"# shapecheck: input={body}"


def read_config(path: str) -> dict[str, tuple[InputSpec, ...]]:
    """`[tool.shapecheck] inputs = {...}` of the nearest pyproject.toml: model name -> shapes.

    No pyproject.toml, or none of that table: {}. An unreadable one: UsageError naming it.
    """
    config = find_config(path)
    if config is None:
        return {}
    table = tool_table(config, strict=True)
    inputs = table.get("inputs", {}) if isinstance(table, dict) else {}
    if not isinstance(inputs, dict):
        raise UsageError(f"{config}: [tool.shapecheck] inputs must be a table such as "
                         f"{{ Net = [16, 1, 32, 32] }}")
    result = {}
    for name, value in inputs.items():
        try:
            result[name] = specs_from_value(value, f"inputs.{name}")
        except UsageError as exc:
            raise UsageError(f"{config}: [tool.shapecheck] {exc}") from None
    return result


def read_init_config(path: str) -> dict[str, dict]:
    """`[tool.shapecheck] init = { UNet = { n_channels = 3 } }`: class name -> arguments."""
    config = find_config(path)
    if config is None:
        return {}
    table = tool_table(config, strict=True)
    init = table.get("init", {}) if isinstance(table, dict) else {}
    if not isinstance(init, dict) or not all(isinstance(v, dict) for v in init.values()):
        raise UsageError(f"{config}: [tool.shapecheck] init must be a table such as "
                         f"{{ UNet = {{ n_channels = 3, n_classes = 2 }} }}")
    return init


# ---------------------------------------------------------------- constructor arguments


def parse_init_flags(items: list[str]) -> dict[str, object]:
    """`--init NAME=VALUE` values -> {NAME: value}.

    VALUE is a Python literal (`10`, `(768, 4)`, `"gelu"`, `True`, `None`). A bare word that
    is not a literal (`--init act=gelu`) is kept as the string "gelu"; anything else that is
    not a literal is a UsageError. NAME may be scoped to one model: `--init Net.depth=4`.
    """
    values: dict[str, object] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        scope, _, arg = name.rpartition(".")
        if not sep or not arg.isidentifier() or (scope and not scope.isidentifier()):
            raise UsageError(f"--init {item!r}: write NAME=VALUE, e.g. --init n_classes=10")
        values[name] = _literal(text.strip(), item)
    return values


def _literal(text: str, item: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if re.fullmatch(r"[A-Za-z_][\w.\-]*", text):
            return text
        raise UsageError(f"--init {item!r}: {text!r} is not a Python literal "
                         f"(e.g. 10, 0.5, (768, 4), 'gelu', True)") from None


def constructor_kwargs(cls: type, init: dict[str, object], strict: bool = True) -> dict:
    """The keyword arguments to build `cls` with, from `--init` values.

    Keys scoped to another class (`Other.depth`) are ignored. Names the constructor does not
    take raise UsageError listing the accepted ones; with strict=False an unscoped unknown
    name is ignored instead (useful when one `--init` serves several models of a file).
    Required arguments without a value raise MissingArguments.
    """
    values = _values_for(cls.__name__, init)
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {name: value for name, value in values.items()}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    unknown = [name for name in values if name not in named]
    if unknown and not takes_any:
        scoped_unknown = [n for n in unknown if f"{cls.__name__}.{n}" in init]
        if strict or scoped_unknown:
            accepted = ", ".join(named) if named else "no arguments"
            raise UsageError(f"{cls.__name__} has no constructor argument "
                             f"{', '.join(unknown)}; it accepts: {accepted}")
        values = {n: v for n, v in values.items() if n not in unknown}
    missing = [n for n in named if params[n].default is inspect.Parameter.empty
               and n not in values]
    if missing:
        raise MissingArguments(missing, cls.__name__)
    return values


def _values_for(cls_name: str, init: dict[str, object]) -> dict[str, object]:
    values = {name: value for name, value in init.items() if "." not in name}
    for name, value in init.items():
        scope, _, arg = name.rpartition(".")
        if scope == cls_name:
            values[arg] = value
    return values


# ---------------------------------------------------------------- models of a file


def find_models(src, namespace: dict) -> list:
    """Every nn.Module subclass defined in the file and every module object assigned at top
    level, in source order (an object bound to several names is listed once), with their
    in-file hints and example inputs (`examples.find_examples`)."""
    import torch

    from shapecheck.source.examples import find_examples
    from shapecheck.engine.loader import USER_MODULE_NAME

    specs: list[ModelSpec] = []
    for name, line in src.class_lines.items():
        obj = namespace.get(name)
        if (isinstance(obj, type) and issubclass(obj, torch.nn.Module)
                and obj.__module__ == USER_MODULE_NAME and obj.__qualname__ == name):
            specs.append(ModelSpec(name, line, "class", obj, path=src.path))
    seen: set[int] = set()
    for name, line in _object_lines(src).items():
        obj = namespace.get(name)
        if isinstance(obj, torch.nn.Module) and id(obj) not in seen and not _is_helper(obj, src, line):
            seen.add(id(obj))
            specs.append(ModelSpec(name, line, "object", obj, path=src.path))
    examples = find_examples(src)
    _mark_used(specs, src)
    classes = {s.name: s.obj for s in specs if s.kind == "class"}
    for spec in specs:
        if spec.kind == "object" and classes.get(type(spec.obj).__name__) is type(spec.obj):
            spec.instance_of = type(spec.obj).__name__
    for spec in specs:
        _attach_hint(spec, src)
        _attach_example(spec, examples)
    specs.sort(key=lambda spec: spec.line)
    return specs


def _is_helper(obj, src, line: int) -> bool:
    """A loss, an activation, ``nn.Identity``...: a torch.nn module without parameters built at
    top level is a helper the code uses, not a model to check (unless a hint asks for it)."""
    return (type(obj).__module__.startswith("torch.nn.") and next(obj.parameters(), None) is None
            and src.hint_for(line) is None)


def _object_lines(src) -> dict[str, int]:
    """Top-level names -> line of their first assignment."""
    from shapecheck.engine.loader import top_statements

    lines: dict[str, int] = {}
    for stmt in top_statements(src):
        if isinstance(stmt, ast.Assign):
            targets = stmt.targets
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets = [stmt.target]
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                lines.setdefault(target.id, stmt.lineno)
    return lines


def _attach_hint(spec: ModelSpec, src) -> None:
    found = src.hint_for(spec.line)
    if found is None:
        return
    spec.hint_line, text = found
    try:
        spec.hint = parse_hint(text)
    except UsageError as exc:
        spec.hint_error = str(exc)


def _attach_example(spec: ModelSpec, examples: dict) -> None:
    found = examples.get(spec.name)
    if found is None and spec.instance_of:
        found = examples.get(spec.instance_of)
    if found is not None:
        spec.example, spec.example_line = found


def _mark_used(specs: list[ModelSpec], src) -> None:
    import torch

    class_names = {s.name for s in specs if s.kind == "class"}
    referenced: dict[str, set[str]] = _class_references(src, class_names)
    objects = [s for s in specs if s.kind == "object"]
    for spec in specs:
        if spec.kind == "class":
            spec.is_used_by_other = any(
                spec.name in names for owner, names in referenced.items() if owner != spec.name)
        else:
            spec.is_used_by_other = any(
                other is not spec and isinstance(other.obj, torch.nn.Module)
                and any(sub is spec.obj for sub in other.obj.modules() if sub is not other.obj)
                for other in objects)


def _call_arguments(value: ast.expr) -> list[ast.expr]:
    """What a top-level value passes to the model it builds: `ResNet(BasicBlock, [2, 2])`
    -> [BasicBlock, [2, 2]]; `Net().to(device)` -> [device]; a non-call value -> itself."""
    if not isinstance(value, ast.Call):
        return [value]
    parts = list(value.args) + [keyword.value for keyword in value.keywords]
    if isinstance(value.func, ast.Attribute):
        parts.extend(_call_arguments(value.func.value) if isinstance(value.func.value, ast.Call)
                     else [])
    return parts


def _class_references(src, class_names: set[str]) -> dict[str, set[str]]:
    """Owner (a model class, or "" for top-level assignments) -> model class names it uses,
    directly or through the module functions it calls (`self.stages = make_stage(...)`)."""
    from shapecheck.engine.loader import top_statements

    statements = list(top_statements(src))
    functions = {s.name: s for s in statements if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
    found: dict[str, set[str]] = {}
    for stmt in statements:
        if isinstance(stmt, ast.ClassDef) and stmt.name in class_names:
            nodes = [n for body_stmt in stmt.body for n in walk(body_stmt)]
            owner = stmt.name
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
            nodes = [n for part in _call_arguments(stmt.value) for n in walk(part)]
            owner = ""
        else:
            continue
        names = _names_reached({n.id for n in nodes if isinstance(n, ast.Name)}, functions)
        found.setdefault(owner, set()).update(names & class_names)
    return found


def _names_reached(names: set[str], functions: dict[str, ast.AST]) -> set[str]:
    """`names` and every name read by the module functions among them, transitively."""
    reached, todo = set(names), [n for n in names if n in functions]
    while todo:
        body = functions[todo.pop()]
        for node in walk(body):
            if isinstance(node, ast.Name) and node.id not in reached:
                reached.add(node.id)
                if node.id in functions:
                    todo.append(node.id)
    return reached


__all__ = [
    "DTYPES", "InputSpec", "ModelSpec", "MissingArguments", "parse_input_flag",
    "specs_from_value", "parse_hint", "hint_text", "find_config", "read_config",
    "parse_init_flags", "constructor_kwargs", "find_models",
]
