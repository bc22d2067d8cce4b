"""Example inputs written in the file, found by reading it (never by running it).

Anywhere in the file, `if __name__ == "__main__":` blocks and functions included:

- a model called on tensors: `net(torch.randn(4, 1, 32, 32))`, `Net()(torch.zeros(2, 3, 64, 64))`,
  tensors passed by name (`unet(x, time=t)`: kept with their names, see `inputs.in_forward_order`),
  `model.forward(x)`, or through a variable of the same scope (or of the module):
  `x = torch.rand(8, 3, 32, 32); y = model(x)`;
- tensors from `torch.randn/rand/zeros/ones/empty/full/randint/tensor/as_tensor`, sizes given
  as ints, tuples, `*SHAPE` or constants of the file (`BATCH = 16`, `2 * BATCH`), dtypes from
  `dtype=`, `.long()`/`.float()`/..., `.to(torch.long)`; `torch.randint(0, 100, (4, 20))` is
  int64 of shape (4, 20); `torch.tensor([[1, 2, 3]])` is int64 of shape (1, 3); `.unsqueeze(k)`,
  and `.view(...)`/`.reshape(...)` with constant sizes are followed; legacy constructors take
  sizes (`torch.FloatTensor(20, 3, 256, 256)`, never a list of data); in-place fills
  (`.uniform_(0, 1)`) keep the tensor; a function of the file called with no arguments gives
  the tensor its last `return` states (`images = sample_images()`);
- model summaries. torchinfo's `summary(model, (16, 1, 28, 28))` / `input_size=` include the
  batch (with `batch_dim=k` they do not, and a batch of 2 is inserted at k), `input_data=`
  takes tensors and `dtypes=` their dtypes; torchsummary's `summary(model, (1, 28, 28))` has no
  batch: its `batch_size` is used when positive, else 2 (torchsummary's own default). Which
  `summary` it is comes from the file's imports; a `summary` of unknown origin is not used.

The model called is named after the class it was built from (`net = Net()` and
`model = Net().to(device)` give "Net"); a variable bound at module level is also recorded
under its own name (the name of a top-level model object). The first example in source
order wins for each name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from typing import Any

from shapecheck.source.inputs import DTYPES, InputSpec
from shapecheck.source.nodes import all_nodes, child_nodes

FACTORIES = frozenset({"randn", "rand", "zeros", "ones", "empty", "full", "randint",
                       "tensor", "as_tensor"})
MOVES = frozenset({"to", "cuda", "cpu", "eval", "train", "requires_grad_", "contiguous",
                   "detach", "clone", "uniform_", "normal_", "random_", "fill_", "zero_", "bernoulli_"})
LEGACY_TYPES = {"FloatTensor": "float32", "DoubleTensor": "float64", "HalfTensor": "float16",
                "LongTensor": "int64", "IntTensor": "int32", "BoolTensor": "bool", "Tensor": "float32"}
DTYPE_METHODS = {"long": "int64", "int": "int32", "float": "float32", "double": "float64",
                 "half": "float16", "bfloat16": "bfloat16", "bool": "bool"}
_UNKNOWN = object()


@dataclass
class _Scope:
    parent: _Scope | None
    is_module: bool = False
    bindings: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def lookup(self, name: str) -> tuple[str, Any] | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.bindings:
                return scope.bindings[name]
            scope = scope.parent
        return None


@dataclass
class _Context:
    classes: frozenset[str]
    torch_names: frozenset[str]  # names bound to the torch module
    factory_names: dict[str, str]  # `from torch import randn as r` -> {"r": "randn"}
    summary_names: dict[str, str]  # name -> "torchinfo" | "torchsummary"
    summary_modules: dict[str, str]  # module alias -> "torchinfo" | "torchsummary"
    # (line of the call, model names, inputs, line where the called model was built)
    found: list[tuple[int, tuple[str, ...], tuple[InputSpec, ...], int | None]] = field(default_factory=list)


def find_examples(src, names: frozenset[str] | None = None) -> dict[str, tuple[tuple[InputSpec, ...], int]]:
    """Model name -> (example input shapes, line of the example call), for the classes of
    the file (or the given names: factory functions)."""
    names = frozenset(src.class_lines) if names is None else names
    key = ("examples", names)
    if key not in src.cache:
        src.cache[key] = _find(src.tree, names)
    return src.cache[key]


def construction_examples(tree: ast.Module, names: frozenset[str]) -> dict[int, tuple[InputSpec, ...]]:
    """Line where a model is built (`net = Net(...)`) -> inputs of the first call of that model."""
    result: dict[int, tuple[InputSpec, ...]] = {}
    for _, _, specs, built in sorted(_calls(tree, names), key=lambda item: item[0]):
        if built is not None:
            result.setdefault(built, specs)
    return result


def _calls(tree: ast.Module, classes: frozenset[str]) -> list:
    """The example calls of `classes` in `tree`; kept on the tree (read-only) for later asks."""
    kept = tree.__dict__.setdefault("_shapecheck_calls", {})
    if classes not in kept:
        context = _imports(tree, classes)
        _scan_scope(tree.body, _Scope(None, is_module=True), context)
        kept[classes] = context.found
    return kept[classes]


def _find(tree: ast.Module, classes: frozenset[str]) -> dict:
    result: dict[str, tuple[tuple[InputSpec, ...], int]] = {}
    for line, names, specs, _ in sorted(_calls(tree, classes), key=lambda item: item[0]):
        for name in names:
            result.setdefault(name, (specs, line))
    return result


def _imports(tree: ast.Module, classes: frozenset[str]) -> _Context:
    torch_names, factories, summaries, summary_modules = {"torch"}, {}, {}, {}
    for node in all_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                if alias.name == "torch":
                    torch_names.add(bound)
                if alias.name in ("torchinfo", "torchsummary"):
                    summary_modules[bound] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                bound = alias.asname or alias.name
                if node.module == "torch" and alias.name in FACTORIES:
                    factories[bound] = alias.name
                if node.module in ("torchinfo", "torchsummary") and alias.name == "summary":
                    summaries[bound] = node.module
    return _Context(classes, frozenset(torch_names), factories, summaries, summary_modules)


# ---------------------------------------------------------------- scopes and statements


def _scan_scope(body: list[ast.stmt], scope: _Scope, context: _Context) -> None:
    nested: list[ast.AST] = []
    _scan_block(body, scope, context, nested)
    for definition in nested:
        if isinstance(definition, ast.ClassDef):
            _scan_scope(definition.body, _Scope(scope.parent or scope), context)
        else:
            _scan_scope(definition.body, _Scope(scope), context)


def _scan_block(body: list[ast.stmt], scope: _Scope, context: _Context, nested: list) -> None:
    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            nested.append(stmt)
            if isinstance(stmt, ast.FunctionDef):
                scope.bindings[stmt.name] = ("function", stmt)
            continue
        for expr in _expressions(stmt):
            _scan_calls(expr, scope, context)
        _bind(stmt, scope, context)
        for block in _sub_blocks(stmt):
            _scan_block(block, scope, context, nested)


def _expressions(stmt: ast.stmt) -> list[ast.expr]:
    """The expressions a statement evaluates itself (not those of its nested blocks)."""
    blocks = set(map(id, _sub_blocks(stmt)))
    found = []
    for name, value in ast.iter_fields(stmt):
        if isinstance(value, ast.expr):
            found.append(value)
        elif isinstance(value, list) and id(value) not in blocks:
            found.extend(v for v in value if isinstance(v, ast.expr))
            found.extend(item.context_expr for item in value if isinstance(item, ast.withitem))
    return found


def _sub_blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    blocks = [getattr(stmt, name) for name in ("body", "orelse", "finalbody")
              if isinstance(getattr(stmt, name, None), list)]
    blocks.extend(handler.body for handler in getattr(stmt, "handlers", []))
    blocks.extend(case.body for case in getattr(stmt, "cases", []))
    return blocks


def _bind(stmt: ast.stmt, scope: _Scope, context: _Context) -> None:
    if isinstance(stmt, ast.Assign):
        targets, value = stmt.targets, stmt.value
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        targets, value = [stmt.target], stmt.value
    else:
        for target in _assigned_names(stmt):
            scope.bindings.pop(target, None)
        return
    binding = _binding(value, target_names=[t.id for t in targets if isinstance(t, ast.Name)],
                       scope=scope, context=context)
    for target in targets:
        if isinstance(target, (ast.Tuple, ast.List)) and _unpack(target, value, scope):
            continue
        for name in _names_in(target):
            if binding is None or not isinstance(target, ast.Name):
                scope.bindings.pop(name, None)
            else:
                scope.bindings[name] = binding


def _unpack(target: ast.Tuple | ast.List, value: ast.expr, scope: _Scope) -> bool:
    """`C, H = 3, 32`: bind each name to its constant; False when it is not that simple."""
    values = _const(value, scope)
    names = target.elts
    if not isinstance(values, (tuple, list)) or len(values) != len(names) or not all(
            isinstance(name, ast.Name) for name in names):
        return False
    for name, item in zip(names, values):
        scope.bindings[name.id] = ("const", item)
    return True


def _assigned_names(stmt: ast.stmt) -> list[str]:
    targets: list[ast.expr] = []
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        targets = [stmt.target]
    elif isinstance(stmt, ast.AugAssign):
        targets = [stmt.target]
    elif isinstance(stmt, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in stmt.items if item.optional_vars]
    return [name for target in targets for name in _names_in(target)]


def _names_in(target: ast.expr) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


def _binding(value: ast.expr, target_names: list[str], scope: _Scope,
             context: _Context) -> tuple[str, Any] | None:
    model = _model_names(value, scope, context)
    if model is not None:
        names = model + tuple(target_names) if scope.is_module else model
        return ("model", tuple(dict.fromkeys(names)), _built_line(value, scope))
    spec = _tensor(value, scope, context)
    if spec is not None:
        return ("tensor", spec)
    constant = _const(value, scope)
    if constant is not _UNKNOWN:
        return ("const", constant)
    if scope.is_module and isinstance(_strip(value), ast.Call):
        return ("model", tuple(target_names), value.lineno)  # maybe a top-level model object
    return None


# ---------------------------------------------------------------- calls of models


def _scan_calls(expr: ast.expr, scope: _Scope, context: _Context) -> None:
    for node in _walk_no_lambda(expr):
        if not isinstance(node, ast.Call):
            continue
        kind = _summary_kind(node.func, context)
        if kind is not None:
            _record_summary(node, kind, scope, context)
            continue
        names = _called_model(node.func, scope, context)
        if not names or not node.args or any(k.arg is None for k in node.keywords):
            continue
        specs = [_tensor(arg, scope, context) for arg in node.args]
        for keyword in node.keywords:
            if not _flag_keyword(keyword, scope):  # `time=t`: placed by name when the model is known
                spec = _tensor(keyword.value, scope, context)
                specs.append(replace(spec, keyword=keyword.arg) if spec is not None else None)
        if all(spec is not None for spec in specs):
            context.found.append((node.lineno, names, tuple(specs), _built_line(node.func, scope)))


def _flag_keyword(keyword: ast.keyword, scope: _Scope) -> bool:
    """`mask=None`, `return_hiddens=True`: a keyword that passes no tensor, only None or a flag.
    The example is the call's tensors; such options are left at their defaults when it is
    traced. A number or a string (`num_frames=8`) may be what the forward needs: such a call is
    not an example."""
    value = _const(keyword.value, scope)
    return keyword.arg is not None and (value is None or type(value) is bool)


def _walk_no_lambda(expr: ast.AST):
    todo = [expr]
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, ast.Lambda):
            todo.extend(child_nodes(node))


def _called_model(func: ast.expr, scope: _Scope, context: _Context) -> tuple[str, ...]:
    """Names of the model `func` calls: `net(...)`, `net.forward(...)`, `Net()(...)`."""
    if isinstance(func, ast.Attribute) and func.attr == "forward":
        func = func.value
    if isinstance(func, ast.Name):
        bound = scope.lookup(func.id)
        return bound[1] if bound and bound[0] == "model" else ()
    return _model_names(func, scope, context) or ()


def _model_names(value: ast.expr, scope: _Scope, context: _Context) -> tuple[str, ...] | None:
    """`Net(...)` (after `.to(device)` and the like) -> ("Net",) for a class of the file."""
    value = _strip(value)
    if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id in context.classes):
        return (value.func.id,)
    if isinstance(value, ast.Name):
        bound = scope.lookup(value.id)
        if bound and bound[0] == "model":
            return bound[1]
    return None


def _built_line(value: ast.expr, scope: _Scope) -> int | None:
    """Where the model `value` names was built: its own line for `Net(...)`, the line of the
    assignment for a variable bound to one."""
    if isinstance(value, ast.Attribute) and value.attr == "forward":
        value = value.value
    value = _strip(value)
    if isinstance(value, ast.Name):
        bound = scope.lookup(value.id)
        return bound[2] if bound and bound[0] == "model" and len(bound) > 2 else None
    return value.lineno if isinstance(value, ast.Call) else None


def _strip(value: ast.expr) -> ast.expr:
    while (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
           and value.func.attr in MOVES):
        value = value.func.value
    return value


# ---------------------------------------------------------------- summaries


def _summary_kind(func: ast.expr, context: _Context) -> str | None:
    if isinstance(func, ast.Name):
        return context.summary_names.get(func.id)
    if (isinstance(func, ast.Attribute) and func.attr == "summary"
            and isinstance(func.value, ast.Name)):
        return context.summary_modules.get(func.value.id)
    return None


def _record_summary(call: ast.Call, kind: str, scope: _Scope, context: _Context) -> None:
    if not call.args:
        return
    names = _called_model(call.args[0], scope, context) if isinstance(
        call.args[0], ast.Name) else _model_names(call.args[0], scope, context)
    if not names:
        return
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    sizes = call.args[1] if len(call.args) > 1 else keywords.get("input_size")
    if kind == "torchinfo" and sizes is None and "input_data" in keywords:
        specs = _tensor_list(keywords["input_data"], scope, context)
    elif sizes is not None:
        specs = _summary_specs(_const(sizes, scope), kind, keywords, scope)
    else:
        specs = None
    if specs:
        context.found.append((call.lineno, names, specs, _built_line(call.args[0], scope)))


def _summary_specs(sizes: Any, kind: str, keywords: dict, scope: _Scope
                   ) -> tuple[InputSpec, ...] | None:
    shapes = _shape_list(sizes)
    if shapes is None:
        return None
    if kind == "torchsummary":
        batch = _const(keywords["batch_size"], scope) if "batch_size" in keywords else -1
        batch = batch if isinstance(batch, int) and batch > 0 else 2
        shapes = [(batch, *shape) for shape in shapes]
    elif "batch_dim" in keywords:
        dim = _const(keywords["batch_dim"], scope)
        if isinstance(dim, int):
            shapes = [shape[:dim] + (2,) + shape[dim:] for shape in shapes]
    dtypes = _dtype_list(keywords.get("dtypes"), len(shapes))
    if dtypes is None or not all(_valid(shape) for shape in shapes):
        return None
    return tuple(InputSpec(shape, dtype) for shape, dtype in zip(shapes, dtypes))


def _shape_list(sizes: Any) -> list[tuple] | None:
    if isinstance(sizes, (tuple, list)) and sizes and all(
            isinstance(s, (tuple, list)) for s in sizes):
        return [tuple(s) for s in sizes]
    if isinstance(sizes, (tuple, list)):
        return [tuple(sizes)]
    return None


def _dtype_list(node: ast.expr | None, count: int) -> list[str] | None:
    if node is None:
        return ["float32"] * count
    if not isinstance(node, (ast.List, ast.Tuple)):
        return None
    dtypes = [_dtype_name(element) for element in node.elts]
    if None in dtypes:
        return None
    return dtypes + ["float32"] * (count - len(dtypes)) if len(dtypes) <= count else None


def _tensor_list(node: ast.expr, scope: _Scope, context: _Context
                 ) -> tuple[InputSpec, ...] | None:
    items = node.elts if isinstance(node, (ast.List, ast.Tuple)) else [node]
    specs = [_tensor(item, scope, context) for item in items]
    return tuple(specs) if specs and all(s is not None for s in specs) else None


# ---------------------------------------------------------------- tensors


def _tensor(node: ast.expr, scope: _Scope, context: _Context) -> InputSpec | None:
    """The shape and dtype of a tensor expression, or None when it cannot be told."""
    if isinstance(node, ast.Name):
        bound = scope.lookup(node.id)
        return bound[1] if bound and bound[0] == "tensor" else None
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    if isinstance(func, ast.Attribute) and not _is_torch(func.value, context):
        return _tensor_method(node, scope, context)
    if isinstance(func, ast.Attribute) and func.attr in LEGACY_TYPES:
        return _legacy(node, LEGACY_TYPES[func.attr], scope)
    if isinstance(func, ast.Name) and not node.args and not node.keywords:
        bound = scope.lookup(func.id)
        if bound and bound[0] == "function":
            return _returned_tensor(bound[1], scope, context)
    factory = _factory_name(func, context)
    if factory is None:
        return None
    return _factory(factory, node, scope)


def _returned_tensor(function: ast.FunctionDef, scope: _Scope, context: _Context) -> InputSpec | None:
    """`def sample_images(): return torch.rand(20, 3, 256, 256)`: the tensor a function of the
    file returns when called with no arguments (its body read as a block, never run)."""
    args = function.args
    if args.args[len(args.defaults):] or args.posonlyargs or [a for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None]:
        return None
    if not function.body or not isinstance(function.body[-1], ast.Return) or function.body[-1].value is None:
        return None
    if scope.lookup("__returning__") is not None:  # one level only: no recursion
        return None
    inner = _Scope(scope, bindings={"__returning__": ("const", function.name)})
    named = args.args[len(args.args) - len(args.defaults):] + args.kwonlyargs
    for arg, default in zip(named, list(args.defaults) + list(args.kw_defaults)):
        value = _const(default, scope) if default is not None else _UNKNOWN
        inner.bindings[arg.arg] = ("const", value) if value is not _UNKNOWN else ("unknown", None)
    for stmt in function.body[:-1]:
        _bind(stmt, inner, context)
    return _tensor(function.body[-1].value, inner, context)


def _legacy(call: ast.Call, dtype: str, scope: _Scope) -> InputSpec | None:
    """`torch.FloatTensor(20, 3, 256, 256)`: the legacy constructors take sizes (or data, a list)."""
    sizes = [_const(a, scope) for a in call.args]
    if call.keywords or not sizes or not all(type(size) is int for size in sizes):
        return None  # data (a list, or a name bound to one), or sizes not known
    shape = tuple(sizes)
    return InputSpec(shape, dtype) if shape and _valid(shape) else None


def _is_torch(node: ast.expr, context: _Context) -> bool:
    return isinstance(node, ast.Name) and node.id in context.torch_names


def _factory_name(func: ast.expr, context: _Context) -> str | None:
    if isinstance(func, ast.Attribute) and _is_torch(func.value, context):
        return func.attr if func.attr in FACTORIES else None
    if isinstance(func, ast.Name):
        return context.factory_names.get(func.id)
    return None


def _tensor_method(call: ast.Call, scope: _Scope, context: _Context) -> InputSpec | None:
    method = call.func.attr
    base = _tensor(call.func.value, scope, context)
    if base is None:
        return None
    if method in DTYPE_METHODS and not call.args:
        return InputSpec(base.shape, DTYPE_METHODS[method])
    if method in MOVES:
        dtypes = [_dtype_name(a) for a in call.args] + [
            _dtype_name(k.value) for k in call.keywords if k.arg == "dtype"]
        dtype = next((d for d in dtypes if d), base.dtype)
        return InputSpec(base.shape, dtype)
    if method == "unsqueeze" and len(call.args) == 1:
        dim = _const(call.args[0], scope)
        if isinstance(dim, int):
            shape = list(base.shape)
            shape.insert(dim if dim >= 0 else len(shape) + dim + 1, 1)
            return InputSpec(tuple(shape), base.dtype)
    if method in ("view", "reshape"):
        shape = _reshaped(base.shape, _sizes(call.args, [], scope))
        return InputSpec(shape, base.dtype) if shape else None
    return None


def _reshaped(shape: tuple[int, ...], sizes: tuple | None) -> tuple[int, ...] | None:
    """The shape after `.view(*sizes)` (one size may be -1), or None if it cannot be."""
    if not sizes or sizes.count(-1) > 1:
        return None
    total = _product(shape)
    known = _product(s for s in sizes if s != -1)
    if known <= 0:
        return None
    if -1 in sizes:
        if total % known:
            return None
        sizes = tuple(total // known if s == -1 else s for s in sizes)
    return sizes if _valid(sizes) and _product(sizes) == total else None


def _product(sizes) -> int:
    result = 1
    for size in sizes:
        result *= size
    return result


def _factory(name: str, call: ast.Call, scope: _Scope) -> InputSpec | None:
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    dtype = _dtype_name(keywords["dtype"]) if "dtype" in keywords else None
    if "dtype" in keywords and dtype is None:
        return None
    if name in ("tensor", "as_tensor"):
        return _literal_tensor(call, dtype, scope)
    if name == "randint":
        size_node = keywords.get("size") or (call.args[-1] if len(call.args) >= 2 else None)
        shape = _sizes([size_node], [], scope) if size_node is not None else None
        default = "int64"
    elif name == "full":
        size_node = keywords.get("size") or (call.args[0] if call.args else None)
        shape = _sizes([size_node], [], scope) if size_node is not None else None
        default = "float32"
    else:
        shape = _sizes(call.args, [keywords["size"]] if "size" in keywords else [], scope)
        default = "float32"
    if not shape or not _valid(shape):
        return None
    return InputSpec(shape, dtype or default)


def _literal_tensor(call: ast.Call, dtype: str | None, scope: _Scope) -> InputSpec | None:
    if not call.args:
        return None
    data = _const(call.args[0], scope)
    shape: list[int] = []
    level = data
    while isinstance(level, (list, tuple)):
        if not level:
            return None
        shape.append(len(level))
        level = level[0]
    if isinstance(level, bool):
        default = "bool"
    elif isinstance(level, int):
        default = "int64"
    elif isinstance(level, float):
        default = "float32"
    else:
        return None
    return InputSpec(tuple(shape), dtype or default) if shape else None


def _sizes(args: list[ast.expr], extra: list[ast.expr], scope: _Scope) -> tuple | None:
    """Sizes given as `4, 1, 32, 32`, `(4, 1, 32, 32)`, `*SHAPE` or `size=(...)`."""
    sizes: list = []
    for node in list(args) + list(extra):
        if isinstance(node, ast.Starred):
            value = _const(node.value, scope)
            if not isinstance(value, (tuple, list)):
                return None
            sizes.extend(value)
            continue
        value = _const(node, scope)
        if isinstance(value, (tuple, list)):
            sizes.extend(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            sizes.append(value)
        else:
            return None
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in sizes):
        return None
    return tuple(sizes)


def _valid(shape: tuple) -> bool:
    return bool(shape) and all(isinstance(s, int) and s >= 1 for s in shape)


def _dtype_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return DTYPES.get(node.attr)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return DTYPES.get(node.value.removeprefix("torch."))
    return None


# ---------------------------------------------------------------- constants


_OPERATORS = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: a // b, ast.Div: lambda a, b: a / b,
    ast.Mod: lambda a, b: a % b, ast.Pow: lambda a, b: a ** b if abs(b) <= 64 else _UNKNOWN,
}


def _const(node: ast.expr, scope: _Scope) -> Any:
    """The value of a constant expression (literals, names of constants, arithmetic,
    tuples, lists, indexing of those), or _UNKNOWN."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        bound = scope.lookup(node.id)
        return bound[1] if bound and bound[0] == "const" else _UNKNOWN
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_const(element, scope) for element in node.elts]
        if any(item is _UNKNOWN for item in items):
            return _UNKNOWN
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _const(node.operand, scope)
        if not isinstance(operand, (int, float)):
            return _UNKNOWN
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _binary(node, scope)
    if isinstance(node, ast.Subscript):
        return _subscript(node, scope)
    return _UNKNOWN


def _binary(node: ast.BinOp, scope: _Scope) -> Any:
    left, right = _const(node.left, scope), _const(node.right, scope)
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers):
        try:
            return _OPERATORS[type(node.op)](left, right)
        except (ZeroDivisionError, OverflowError):
            return _UNKNOWN
    if isinstance(node.op, ast.Add) and type(left) is type(right) and isinstance(
            left, (tuple, list)):
        return left + right
    return _UNKNOWN


def _subscript(node: ast.Subscript, scope: _Scope) -> Any:
    base = _const(node.value, scope)
    if not isinstance(base, (tuple, list)):
        return _UNKNOWN
    if isinstance(node.slice, ast.Slice):
        parts = [_const(p, scope) if p is not None else None
                 for p in (node.slice.lower, node.slice.upper, node.slice.step)]
        if any(p is _UNKNOWN or not (p is None or isinstance(p, int)) for p in parts):
            return _UNKNOWN
        return base[slice(*parts)]
    index = _const(node.slice, scope)
    if isinstance(index, int) and -len(base) <= index < len(base):
        return base[index]
    return _UNKNOWN
