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


def reshape_call(call_text: str, batch_arg: str | None = None) -> str | None:
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
    if batch_arg is not None:
        rest = [cst.Module([]).code_for_node(a.value) for a in node.args[1:]]
        return f"{receiver}.{method}({', '.join([f'{receiver}.size(0)'] + rest)})"
    return f"{receiver}.{method}({receiver}.size(0), -1)"


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
    return f"{tensor}.flatten(1)" if _is_primary(tensor) else f"({tensor}).flatten(1)"


def _is_primary(text: str) -> bool:
    """A name, attribute, call or subscript: `.method()` binds to all of it."""
    import ast

    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return False
    return isinstance(node, (ast.Name, ast.Attribute, ast.Call, ast.Subscript))
