"""Where the user's code builds its models: construction sites and factory functions.

A construction site is a call of a model class found by reading code, never by running it:
`net = ResNet18()` in `def test():`, `model = UNet(n_channels=3, n_classes=args.classes)` in a
main block, `v = ViT(image_size=256, ...)` in a README's python block. Its arguments are
written out with every value the source states (literals, constants, dict literals, argparse
defaults: see `values`), so the engine can evaluate the call in the namespace of the file that
defines the class. The first call of the built model on tensors of known shape gives the
site's example input.

`file_sites` reads one module; `doc_blocks` finds the code of documentation (```python blocks
of Markdown, `>>>` lines of docstrings); `config_sites` reads YAML and JSON configuration files
(a mapping that names a class, `model_params: {name: VanillaVAE, in_channels: 3}`, is that
class built with the mapping's other entries as keyword arguments, as `Model(**params)` code
does); `factories` finds module functions that return a model.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
from dataclasses import dataclass

from . import values
from .examples import construction_examples
from .inputs import InputSpec
from .nodes import all_nodes, walk

_FENCE = re.compile(r"^\s*```+\s*(python|py|python3|pycon)?\s*$")
_NOT_FACTORIES = frozenset({"main", "test", "train", "evaluate", "run"})


@dataclass(frozen=True)
class Site:
    """One call that builds a model: `text` is the call with the known values written in."""

    callee: str  # the class (or factory) name called
    text: str  # "UNet(n_channels=3, n_classes=2, bilinear=False)"
    path: str  # the file that holds the call (a .py file or a documentation page)
    line: int
    origin: str  # "call" in code, "docs" in documentation, "config" in a YAML or JSON file
    imported_from: str = ""  # the module the callee was imported from ("" when not imported;
    # the `;`-separated star-imported modules when it is not imported by name)
    example: tuple[InputSpec, ...] | None = None  # inputs of the first call of the built model
    unknown: tuple[str, ...] = ()  # local names of unknown value the call still reads
    imports: tuple[tuple[str, str], ...] = ()  # other names the call reads that its code imports: (name, module)

    @property
    def usable(self) -> bool:
        return not self.unknown

    def where(self, root: str = "") -> str:
        path = os.path.relpath(self.path, root) if root else os.path.basename(self.path)
        return f"{path}:{self.line}"


# ---------------------------------------------------------------- one module


def file_sites(tree: ast.Module, path: str, names: frozenset[str], origin: str = "call",
               offset: int = 0, scope: values.Scope | None = None) -> list[Site]:
    """Calls of `names` at top level and in module functions (not in class bodies), in
    source order. `offset` shifts line numbers (a code block of a documentation page)."""
    if not names:
        return []
    module = scope or values.Scope()
    found: list[tuple[ast.Call, values.Scope]] = []
    functions: list[ast.FunctionDef] = []
    _scan(tree.body, module, names, found, functions)
    for function in functions:
        inner = values.Scope(parent=module)
        for arg in _parameters(function):
            inner.bindings[arg] = values.UNKNOWN
        _scan(function.body, inner, names, found, [])
    if not found:
        return []
    examples = construction_examples(tree, names)
    imports = imported_names(tree)
    return [_site(call, scope, path, origin, offset, imports, examples) for call, scope in found]


def is_test_case(cls: ast.ClassDef) -> bool:
    """A `unittest.TestCase` class: not a model, its methods are construction sites."""
    return any((base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")).endswith("TestCase")
               for base in cls.bases)


def _parameters(function: ast.FunctionDef) -> list[str]:
    args = function.args
    every = args.posonlyargs + args.args + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]
    return [a.arg for a in every]


def _scan(body: list[ast.stmt], scope: values.Scope, names: frozenset[str], found: list,
          functions: list) -> None:
    for stmt in body:
        if isinstance(stmt, ast.ClassDef):
            if is_test_case(stmt):  # its methods build and call models as a test() function does
                functions.extend(s for s in stmt.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)))
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.append(stmt)
            values.step(stmt, scope)
            continue
        for call in _calls_in(stmt, names):
            found.append((call, _snapshot(scope)))
        values.step(stmt, scope)
        for block in values.blocks(stmt):
            _scan(block, scope, names, found, functions)
        values.leave(stmt, scope)


def _calls_in(stmt: ast.stmt, names: frozenset[str]) -> list[ast.Call]:
    own = [node for name, node in ast.iter_fields(stmt) if isinstance(node, ast.expr)]
    own += [item.context_expr for item in getattr(stmt, "items", [])]
    calls = [n for expr in own for n in walk(expr) if isinstance(n, ast.Call) and callee(n) in names]
    return sorted(calls, key=lambda call: (call.lineno, call.col_offset))


def callee(call: ast.Call) -> str | None:
    """The class a call builds: `Net(...)`, or an alternative constructor named `from_...`
    (`Transformer.from_model_args(config)`)."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.attr.startswith("from_"):
        return func.value.id
    return None


def _snapshot(scope: values.Scope) -> values.Scope:
    """The scope as it is now (later assignments must not change what a call saw)."""
    copied = values.Scope(parent=scope.parent, functions=dict(scope.functions), command_line=scope.command_line)
    copied.bindings = dict(scope.bindings)
    return copied


def _site(call: ast.Call, scope: values.Scope, path: str, origin: str, offset: int,
          imports: dict[str, str], examples: dict) -> Site:
    written, name = values.substitute(call, scope), callee(call)
    return Site(callee=name, text=ast.unparse(written), path=path, line=call.lineno + offset,
                origin=origin, imported_from=imports.get(name) or imports.get("*", ""),
                example=examples.get(call.lineno), unknown=tuple(values.unresolved(written, scope)),
                imports=imported_in(written, name, imports))


def imported_in(call: ast.expr, callee: str, imports: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The names besides `callee` that `call` reads and `imports` says where they come from
    (`MAE(encoder=ViT(...))` after `from vit_pytorch import ViT, MAE`: ("ViT", "vit_pytorch"))."""
    names = {n.id for n in ast.walk(call) if isinstance(n, ast.Name) and n.id != callee}
    return tuple(sorted((n, imports[n]) for n in names if n in imports))


def imported_names(tree: ast.Module) -> dict[str, str]:
    """Name bound by an import -> the module it comes from ("." prefixes kept): `from
    unet import UNet` -> {"UNet": "unet"}; star imports under "*", `;`-separated:
    {"*": "models;utils"}. Top-level imports first, then those of nested blocks and functions
    (`from vit_pytorch import ViT` inside `if __name__ == '__main__':`) for names not yet bound."""
    found: dict[str, str] = {}
    top = [s for s in tree.body if isinstance(s, ast.ImportFrom)]
    seen = {id(s) for s in top}
    nested = [n for n in all_nodes(tree) if isinstance(n, ast.ImportFrom) and id(n) not in seen]
    for node in top + nested:
        module = "." * node.level + (node.module or "")
        for alias in node.names:
            if alias.name == "*":
                found["*"] = f"{found['*']};{module}" if "*" in found else module
            else:
                found.setdefault(alias.asname or alias.name, module)
    return found


def member_uses(tree: ast.Module, path: str, names: frozenset[str]) -> list[Site]:
    """Calls of `names` inside the class bodies of a module (`self.down1 = Down(64, 128)` in
    `UNet.__init__`): the class is a building block of that class; and `names` among the bases
    of a class (`class VanillaVAE(BaseVAE)`, origin "base"). `text` is the owner's name."""
    imports = imported_names(tree)
    found = []
    for stmt in tree.body:
        if not isinstance(stmt, ast.ClassDef) or is_test_case(stmt):
            continue
        for node in walk(stmt):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
                found.append(Site(callee=node.func.id, text=stmt.name, path=path, line=node.lineno,
                                  origin="member", imported_from=imports.get(node.func.id) or imports.get("*", "")))
        for base in base_names(stmt) & names:
            found.append(Site(callee=base, text=stmt.name, path=path, line=stmt.lineno, origin="base",
                              imported_from=imports.get(base) or imports.get("*", "")))
    return found


def base_names(cls: ast.ClassDef) -> set[str]:
    """The names a class statement derives from: `class A(B, mod.C)` -> {"B", "C"}."""
    return {base.attr if isinstance(base, ast.Attribute) else base.id
            for base in cls.bases if isinstance(base, (ast.Name, ast.Attribute))}


# ---------------------------------------------------------------- configuration files


def config_sites(text: str, path: str, names: frozenset[str]) -> list[Site]:
    """The mappings of a YAML or JSON file (JSON is read as YAML) that name a class of `names`
    by a string value: each is a site building that class with the mapping's other entries,
    those whose values are plain literals, as keyword arguments (`name` -> `VanillaVAE(...)`).
    Which of them the class takes is for the caller to decide (`Site.text` has them all)."""
    import yaml  # installed with libcst

    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError:
        return []
    finally:
        loader.dispose()
    found = []
    for node in _mappings(root, yaml.MappingNode):
        site = _config_site(node, loader, path, names)
        if site is not None:
            found.append(site)
    return found


def _mappings(node, kind) -> list:
    out, todo = [], [node] if node is not None else []
    while todo:
        current = todo.pop()
        if isinstance(current, kind):
            out.append(current)
            todo.extend(value for _, value in current.value)
        elif isinstance(current.value, list):
            todo.extend(current.value)
    return sorted(out, key=lambda n: n.start_mark.line)


def _config_site(node, loader, path: str, names: frozenset[str]) -> Site | None:
    import yaml

    try:
        entries = [(k.value, v, loader.construct_object(v, deep=True)) for k, v in node.value
                   if isinstance(k, yaml.ScalarNode)]
    except yaml.YAMLError:
        return None
    named = [(key, value_node) for key, value_node, value in entries if isinstance(value, str) and value in names]
    if len(named) != 1:
        return None
    key, value_node = named[0]
    arguments = [f"{k}={value!r}" for k, _, value in entries
                 if k != key and isinstance(k, str) and k.isidentifier() and _plain(value)]
    callee = value_node.value
    return Site(callee=callee, text=f"{callee}({', '.join(arguments)})", path=path,
                line=value_node.start_mark.line + 1, origin="config")


def _plain(value) -> bool:
    """A value written the same way in Python (numbers, strings, booleans, None, lists and
    mappings of these)."""
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


# ---------------------------------------------------------------- factories


def factories(tree: ast.Module, classes: frozenset[str]) -> dict[str, tuple[str, int]]:
    """Module functions callable with no arguments that return a model of the file: name ->
    (the class it builds, line). `def ResNet18(): return ResNet(BasicBlock, [2, 2, 2, 2])`,
    `def resnet18(pretrained=False, **kwargs)`, and factories that call other factories."""
    functions = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)
                 and not s.name.startswith("_") and s.name.lower() not in _NOT_FACTORIES}
    found: dict[str, tuple[str, int]] = {}
    for _ in range(3):  # a factory may return another factory's result
        for name, function in functions.items():
            built = _returned_class(function, classes, found)
            if built and _no_required_arguments(function):
                found.setdefault(name, (built, function.lineno))
    return found


def _no_required_arguments(function: ast.FunctionDef) -> bool:
    args = function.args
    return (len(args.posonlyargs) + len(args.args) <= len(args.defaults)
            and all(d is not None for d in args.kw_defaults))


def _returned_class(function: ast.FunctionDef, classes: frozenset[str], known: dict) -> str | None:
    built: dict[str, str] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = _class_called(node.value, classes, known)
            if name:
                built[node.targets[0].id] = name
    for node in ast.walk(function):
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            found = built.get(value.id) if isinstance(value, ast.Name) else _class_called(value, classes, known)
            if found:
                return found
    return None


def _class_called(node: ast.expr, classes: frozenset[str], known: dict) -> str | None:
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("to", "cuda"):
        node = node.func.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in classes:
            return node.func.id
        if node.func.id in known:
            return known[node.func.id][0]
    return None


# ---------------------------------------------------------------- documentation


_RUNNERS = frozenset({"python", "python3", "torchrun", "accelerate", "deepspeed"})


def command_lines(text: str) -> list[tuple[str, dict[str, str]]]:
    """The scripts a Markdown page runs in its code blocks, each with the options its command
    line passes: `python main.py --upscale_factor 3 --lr 0.001` -> ("main.py", {"upscale_factor":
    "3", "lr": "0.001"}); in the page's order. Flags with no value are left out."""
    found, inside = [], False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if inside:
            command = _command_line(line.strip().removeprefix("$ "))
            if command is not None:
                found.append(command)
    return found


def _command_line(line: str) -> tuple[str, dict[str, str]] | None:
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    script = next((i for i, w in enumerate(words) if w.endswith(".py")), None)
    if script is None or not any(os.path.basename(w) in _RUNNERS for w in words[:script]):
        return None
    options: dict[str, str] = {}
    rest = words[script + 1:]
    for i, word in enumerate(rest):
        if not word.startswith("--") or len(word) < 3:
            continue
        name, equals, given = word[2:].partition("=")
        if not equals and i + 1 < len(rest) and not rest[i + 1].startswith("-"):
            given, equals = rest[i + 1], "="
        if equals:
            options.setdefault(name.replace("-", "_"), given)
    return words[script], options


def doc_blocks(text: str) -> list[tuple[int, str]]:
    """(line offset, code) of each ```python block of a Markdown page (unlabelled fences
    too when they parse as Python)."""
    blocks, current, start, label = [], None, 0, None
    for number, line in enumerate(text.splitlines(), 1):
        match = _FENCE.match(line)
        if current is None and line.strip().startswith("```"):
            current, start, label = [], number, match.group(1) if match else "other"
        elif current is not None and line.strip().startswith("```"):
            if label != "other":
                blocks.append((start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def docstring_blocks(tree: ast.Module) -> list[tuple[int, str]]:
    """(line offset, code) of the `>>>` examples in the docstrings of a module."""
    out = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        body = getattr(node, "body", [])
        todo.extend(s for s in body if isinstance(s, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)))
        if not body or not isinstance(body[0], ast.Expr) or not isinstance(body[0].value, ast.Constant):
            continue
        doc = body[0].value.value
        if isinstance(doc, str) and ">>>" in doc:
            out.append((body[0].lineno - 1, _doctest_code(doc)))
    return sorted(out)


def _doctest_code(doc: str) -> str:
    """The code of `>>>`/`...` lines, each kept on its own line (other lines left blank)."""
    lines = []
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.startswith((">>> ", "... ")) or stripped in (">>>", "..."):
            lines.append(stripped[4:])
        else:
            lines.append("")
    return "\n".join(lines)


def parse_block(code: str) -> ast.Module | None:
    import textwrap

    try:
        return ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return None
