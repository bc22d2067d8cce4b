"""Replacement text in the user's style, worked out with libcst.

Where the user wrote a product (``16 * 5 * 5``) the fix writes a product (``16 * 6 * 6``) with
the same spacing; where they wrote a literal, a literal.
"""

from __future__ import annotations

from ..diagnostics import shape_product


def _product_factors(text: str) -> list[int] | None:
    """`16 * 5 * 5` -> [16, 5, 5]; None unless the text is a product of integer literals."""
    import libcst as cst

    try:
        node = cst.parse_expression(text)
    except cst.ParserSyntaxError:
        return None
    factors: list[int] = []

    def walk(n) -> bool:
        if isinstance(n, cst.Integer):
            factors.append(int(n.value))
            return True
        if isinstance(n, cst.BinaryOperation) and isinstance(n.operator, cst.Multiply):
            return walk(n.left) and walk(n.right)
        return False

    return factors if walk(node) and len(factors) > 1 else None


def _multiply_sign(text: str) -> str:
    return " * " if " * " in text else "*"


def value_text(old_text: str, value, factors: tuple | None = None) -> str:
    """How to write ``value`` where the user wrote ``old_text``.

    ``factors``: the sizes ``value`` is the product of (e.g. C, H, W of a flattened map).
    """
    if isinstance(value, tuple):
        return _sequence_text(old_text, value)
    old = _product_factors(old_text) if old_text else None
    if old is not None and factors and len(factors) > 1 and shape_product(factors) == value:
        return _multiply_sign(old_text).join(str(f) for f in factors)
    if old is not None and factors is None and len(old) > 1:
        head = shape_product(old[:-1])
        if head and value % head == 0:  # keep the leading factors the user chose
            return _multiply_sign(old_text).join(str(f) for f in old[:-1] + [value // head])
    return str(value)


def _sequence_text(old_text: str, values: tuple) -> str:
    inner = ", ".join(str(v) for v in values)
    if old_text.strip().startswith("["):
        return f"[{inner}]"
    if len(values) == 1:
        return f"({inner},)" if old_text.strip().startswith("(") else str(values[0])
    return f"({inner})"


def sized_name(call_text: str) -> str | None:
    """The one name whose sizes a reshape's arguments read (`x` in `y.view(2, x.size(2), -1)`)."""
    import re

    names = set(re.findall(r"\b([A-Za-z_]\w*)\.(?:size\(|shape\[)", call_text.split("(", 1)[-1]))
    return names.pop() if len(names) == 1 else None


def reshape_call(call_text: str, batch_arg: str | None = None, batch_of: str | None = None) -> str | None:
    """`x.view(-1, 16 * 5 * 5)` -> `x.view(x.size(0), -1)`: keep the batch, flatten the rest.

    With ``batch_arg`` given only the first argument is replaced (a hard-coded batch size).
    None when the text is not a method call on a receiver or torch.reshape/flatten call.
    """
    import libcst as cst

    try:
        node = cst.parse_expression(call_text)
    except cst.ParserSyntaxError:
        return None
    if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute):
        return None
    method = node.func.attr.value
    receiver = cst.Module([]).code_for_node(node.func.value)
    if receiver in ("torch",):  # torch.reshape(x, (...)) / torch.flatten(x)
        if not node.args:
            return None
        tensor = cst.Module([]).code_for_node(node.args[0].value)
        return f"torch.flatten({tensor}, 1)"
    if method == "flatten":
        return f"{receiver}.flatten(1)"
    computed = not is_primary(receiver) or isinstance(node.func.value, cst.Call)  # not to be computed twice
    if batch_arg is not None:
        owner = batch_of or (None if computed else receiver)
        rest = [cst.Module([]).code_for_node(a.value) for a in node.args[1:]]
        return f"{receiver}.{method}({', '.join([f'{owner}.size(0)'] + rest)})" if owner else None
    if computed:
        return f"{receiver}.flatten(1)"
    return f"{receiver}.{method}({receiver}.size(0), -1)"


def view_as_reshape(call_text: str) -> str | None:
    """`z.view(-1, 10)` -> `z.reshape(-1, 10)`; None when the text is not a `.view(...)` call."""
    import libcst as cst

    try:
        node = cst.parse_expression(call_text)
    except cst.ParserSyntaxError:
        return None
    if not isinstance(node, cst.Call) or not isinstance(node.func, cst.Attribute) or node.func.attr.value != "view":
        return None
    return cst.Module([]).code_for_node(node.with_changes(func=node.func.with_changes(attr=cst.Name("reshape"))))


def keyword_insertion(call_span, call_text: str, keyword: str, value: str):
    """The edit adding ``keyword=value`` as the last argument of the call at ``call_span``
    (after a trailing comma if there is one); None unless the text ends with ``)``."""
    from ..diagnostics import Edit, Span

    if not call_text.endswith(")"):
        return None
    head = call_text[:-1].rstrip()
    new = f"{keyword}={value}" if head.endswith("(") else (f" {keyword}={value}" if head.endswith(",")
                                                            else f", {keyword}={value}")
    lines = head.split("\n")
    line = call_span.line + len(lines) - 1
    column = (call_span.column if len(lines) == 1 else 0) + len(lines[-1])
    return Edit(Span(call_span.path, line, column, line, column), new)


def flatten_text(tensor: str, source: str) -> str:
    """`x` flattened per sample as the file writes it: `x.view(x.size(0), -1)` in a file that
    flattens with view (for a plain name), `torch.flatten(x, 1)` where torch is imported,
    else `x.flatten(1)`."""
    import re

    if tensor.isidentifier() and ".size(0), -1)" in source and "flatten(" not in source:
        return f"{tensor}.view({tensor}.size(0), -1)"
    if re.search(r"^\s*import torch\s*$", source, re.MULTILINE):
        return f"torch.flatten({tensor}, 1)"
    return f"{tensor}.flatten(1)" if is_primary(tensor) else f"({tensor}).flatten(1)"


def is_primary(text: str) -> bool:
    """A name, attribute, call or subscript: `.method()` binds to all of it."""
    import ast

    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return False
    return isinstance(node, (ast.Name, ast.Attribute, ast.Call, ast.Subscript))


def target_like(target: str, input_shape: tuple, target_shape: tuple) -> str | None:
    """The target expression reshaped to the input's shape where one size-1 dimension is all
    that differs: `y` -> `y.unsqueeze(1)` for input N×1 and target N; `y.squeeze(1)` the other
    way round. None for anything else."""
    base = target if is_primary(target) else f"({target})"
    for dim in range(len(input_shape)):
        if input_shape[dim] == 1 and input_shape[:dim] + input_shape[dim + 1:] == target_shape:
            return f"{base}.unsqueeze({dim})"
    for dim in range(len(target_shape)):
        if target_shape[dim] == 1 and target_shape[:dim] + target_shape[dim + 1:] == input_shape:
            return f"{base}.squeeze({dim})"
    return None


def list_items(text: str, span):
    """The (span, text) of each element of the list or tuple written as ``text`` at ``span``."""
    import ast

    from ..diagnostics import Span

    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return []
    if not isinstance(node, (ast.List, ast.Tuple)):
        return []
    lines = text.split("\n")
    out = []
    for item in node.elts:
        start = _place(span, lines, item.lineno, item.col_offset)
        end = _place(span, lines, item.end_lineno, item.end_col_offset)
        out.append((Span(span.path, *start, *end), ast.get_source_segment(text, item)))
    return out


def _place(span, lines: list[str], line: int, byte_column: int) -> tuple[int, int]:
    """A position in ``lines`` (1-based line, UTF-8 byte column) in the file's terms."""
    column = len(lines[line - 1].encode("utf-8")[:byte_column].decode("utf-8", "replace"))
    return span.line + line - 1, column + (span.column if line == 1 else 0)


def interpolate_name(source: str) -> str | None:
    """How the file can call torch.nn.functional.interpolate: `F.interpolate` where it imports
    the module as F, the full name where it imports torch; None otherwise."""
    import re

    if re.search(r"^\s*(import torch\.nn\.functional|from torch\.nn import functional) as F\s*$", source, re.MULTILINE):
        return "F.interpolate"
    if re.search(r"^\s*import torch\s*$", source, re.MULTILINE):
        return "torch.nn.functional.interpolate"
    return None
