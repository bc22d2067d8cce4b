"""Proposing fixes: the edits that would make a diagnostic go away, built from its facts (the
numbers the tracer measured) and the user's own text. Nothing here is proven; see ``prove``."""

from __future__ import annotations

from dataclasses import replace

from ..diagnostics import Applicability, Edit, Fix, Span
from . import edits as style
from .sources import value_origin

LAYER_PARAMS = {"in_features", "in_channels", "num_features", "num_channels", "normalized_shape",
                "input_size", "embed_dim"}


def propose_fix(diagnostic, source: str = "") -> Fix | None:
    event = diagnostic.fact("event")
    builder = _PROPOSERS.get(event)
    return builder(diagnostic, source) if builder else None


def _layer_input(d, source: str) -> Fix | None:
    if d.fact("norm_call_at") and d.span is not None:
        return _transpose_around(d)
    if d.fact("reshape_at") and d.span is not None:
        new = style.reshape_call(d.fact("reshape_text"))
        if new is not None:
            edit = Edit(Span(d.span.path, *d.fact("reshape_at")), new)
            return Fix(f"Flatten per sample, as `{d.fact('layer')}` is sized for: `{new}`", (edit,),
                       Applicability.UNSAFE)
    param, actual = d.fact("param"), d.fact("actual")
    old = d.fact("arg_text")
    if d.span is None or old is None or param not in LAYER_PARAMS:
        return _advice(f"Change `{param}` of `{d.fact('layer')}` to {actual}")
    origin = d.fact("flattened_from")
    factors = tuple(origin[1:]) if origin and len(origin) > 2 else None
    alternative = d.fact("op") == "Linear" and "or use nn.LazyLinear(out_features), which sizes itself"
    name = d.fact("holds_actual")
    if name:  # `c_in + 1` where `c_in` held the right size: right wherever the code is used
        return Fix(f"Change `{old}` to `{name}` ({actual} here)", (Edit(d.span, name),), Applicability.UNSAFE,
                   code=alternative or "")
    origin = None
    if old.isidentifier() and source:
        origin = value_origin(source, d.span.path, old, d.span.line, d.model)
    if origin is not None:  # fix the value where the name gets it
        new = style.value_text(origin.text, actual, factors)
        where = {"default": "the default of", "constant": "the constant", "argument": "the argument"}[origin.kind]
        title = f"Change {where} `{old}` (line {origin.span.line}) to `{new}`"
        return Fix(title, (Edit(origin.span, new),), Applicability.UNSAFE, code=alternative or "")
    new = style.value_text(old, actual, factors)
    return Fix(_value_title(d, old, new), (Edit(d.span, new),), Applicability.UNSAFE, code=alternative or "")


def _value_title(d, old: str, new: str) -> str:
    where = d.fact("origin")  # the value was written where the layer's argument comes from: `in_ch=1` (line 7)
    if not where:
        actual = d.fact("actual")
        return f"Change `{d.fact('param')}` to `{new}`" + (f" ({actual})" if new != str(actual) else "")
    return f"Change {where} to `{new}`" if where.startswith(f"`{old}`") else f"Change `{old}` in {where} to `{new}`"


def _transpose_around(d) -> Fix:
    """BatchNorm1d(F) on N×T×F: normalise the features, in dim 1, and transpose back."""
    arg = d.fact("norm_arg")
    base = arg if style.is_primary(arg) else f"({arg})"
    new = f"{d.fact('norm_func')}({base}.transpose(1, 2)).transpose(1, 2)"
    return Fix(f"Normalise the features in dim 1: `{new}`", (Edit(Span(d.span.path, *d.fact("norm_call_at")), new),),
               Applicability.UNSAFE, code="or use nn.LayerNorm over the last dimension")


def _flatten(d, source: str) -> Fix:
    text = d.fact("arg_text")
    if d.span is None or not text:
        return _advice(f"Flatten the input of `{d.fact('layer')}` per sample: torch.flatten(x, 1)")
    new = style.flatten_text(text, source)
    return Fix(f"Flatten per sample before `{d.fact('layer')}`: `{new}`", (Edit(d.span, new),), Applicability.UNSAFE)


def _reshape(d, source: str) -> Fix | None:
    text = d.fact("call_text")
    new = style.reshape_call(text) if text else None
    if new is None or d.span is None:
        return _advice("Flatten per sample: x.view(x.size(0), -1) or torch.flatten(x, 1)")
    return Fix(f"Keep the batch dimension: `{new}`", (Edit(d.span, new),), Applicability.UNSAFE)


def _view_to_reshape(d, source: str) -> Fix:
    text = d.fact("call_text")
    new = style.view_as_reshape(text) if text else None
    if new is None or d.span is None:
        return _advice("Use .reshape(...) or .contiguous().view(...)")
    return Fix(f"Copy when the memory is out of order: `{new}`", (Edit(d.span, new),), Applicability.UNSAFE)


def _hardcoded(d, source: str) -> Fix | None:
    text, new = d.fact("call_text"), None
    if text and d.fact("rows_per_sample"):  # rows of pixels or tokens: the batch of the tensor the sizes are read from
        owner = style.sized_name(text)
        new = style.reshape_call(text, batch_arg="size", batch_of=owner) if owner else None
    elif text:
        new = style.reshape_call(text, batch_arg="size")
    if new is None or d.span is None:
        return _advice("Use x.size(0) for the batch size")
    return Fix(f"Use the real batch size: `{new}`", (Edit(d.span, new),), Applicability.UNSAFE)


def _kernel(d, source: str) -> Fix:
    """Padding that lets the window fit (proven or not), with what else would work; else advice."""
    sizes = d.fact("min_sizes")
    need = "×".join(str(s) for s in sizes) if sizes else "larger"
    padding = d.fact("padding_needed")
    works = d.fact("working_sizes")
    image = f"; the whole model works from a {works[0]}×{works[0]} image (checked)" if works else ""
    other = (f"or give `{d.fact('layer')}` an input of at least {need} (a larger image, padding on the layers "
             f"before it, or one downsampling step fewer){image}")
    if padding:
        fix = _keyword(d, "padding", str(padding), "Give `{layer}` `padding=" + str(padding) + "`")
        if fix.edits:
            return replace(fix, code=other)
    also = f", or give it padding={padding}" if padding else ""
    return _advice(f"Give `{d.fact('layer')}` an input of at least {need} here (a larger image, padding on "
                   f"the layers before it, or one downsampling step fewer){also}{image}")


def _cat(d, source: str) -> Fix:
    edit = _resize_at_cat(d, source)
    if edit is not None:
        return Fix(f"Resize the smaller tensor to the other's size at the join: `{edit.new_text}`", (edit,),
                   Applicability.UNSAFE, code="or use input sizes that every downsampling step divides evenly")
    return _advice("Make the joined sizes equal: use input sizes that every downsampling step divides evenly, "
                   "or crop/pad the larger tensor to the smaller one before torch.cat")


def _resize_at_cat(d, source: str) -> Edit | None:
    """`torch.cat([x, skip], 1)` with x short in H, W: x becomes `F.interpolate(x, size=skip.shape[2:])`."""
    shapes, text, at = d.fact("in_shapes"), d.fact("joined_text"), d.fact("joined_at")
    resize = style.interpolate_name(source)
    if not shapes or len(shapes) != 2 or text is None or at is None or resize is None or d.span is None:
        return None
    items = style.list_items(text, Span(d.span.path, *at))
    small = _smaller(shapes)
    if len(items) != 2 or small is None or not items[1 - small][1].replace(".", "_").isidentifier():
        return None
    (span, tensor), (_, other) = items[small], items[1 - small]
    return Edit(span, f"{resize}({tensor}, size={other}.shape[2:])")


def _smaller(shapes) -> int | None:
    """Which of two N×C×… shapes is smaller in the sizes after C only (None if neither)."""
    a, b = (tuple(s) for s in shapes)
    if len(a) != len(b) or len(a) < 3 or a[0] != b[0]:
        return None
    if all(x <= y for x, y in zip(a[2:], b[2:])):
        return 0
    return 1 if all(y <= x for x, y in zip(a[2:], b[2:])) else None


def _loss_broadcast(d, source: str) -> Fix:
    inp, tgt, text = d.fact("input_shape"), d.fact("target_shape"), d.fact("target_text")
    new = style.target_like(text, tuple(inp), tuple(tgt)) if text and d.span is not None else None
    if new is not None:
        return Fix(f"Shape the target like the input ({_shape(inp)}): `{new}`", (Edit(d.span, new),),
                   Applicability.UNSAFE)
    return _advice(f"Make input and target the same shape ({_shape(d.fact('input_shape'))} vs "
                   f"{_shape(d.fact('target_shape'))}): e.g. output.squeeze(-1) or target.unsqueeze(-1)")


def _batch_first(d, source: str) -> Fix:
    if d.fact("layout_unknown"):  # right for a time-major input: advice only
        return _advice(f"If dim 0 of the input is the batch, build `{d.fact('layer')}` with `batch_first=True`")
    return _keyword(d, "batch_first", "True", "Build `{layer}` with `batch_first=True`")


def _mirror(d, source: str) -> Fix:
    keyword = "output_padding" if d.fact("output_padding") is not None else "padding"
    value = d.fact(keyword)
    text = str(value) if isinstance(value, int) else "(" + ", ".join(map(str, value)) + ")"
    return _keyword(d, keyword, text, "Give `{layer}` `" + keyword + "=" + text + "`")


def _keyword(d, keyword: str, value: str, title: str) -> Fix:
    """Set ``keyword=value`` in the layer's constructor call: the argument's value where it is
    written, else a new last argument."""
    title = title.format(layer=d.fact("layer"))
    text, call, arg = d.fact("call_text"), d.fact("call_at"), d.fact("arg_at")
    if d.span is None or text is None or call is None:
        return _advice(title)
    if arg is not None:
        edit = Edit(Span(d.span.path, *arg), value)
    else:
        edit = style.keyword_insertion(Span(d.span.path, *call), text, keyword, value)
    return Fix(title, (edit,), Applicability.UNSAFE) if edit is not None else _advice(title)


def _shape(s) -> str:
    return "×".join(str(x) for x in s) if s else "scalar"


def _advice(title: str) -> Fix:
    return Fix(title, (), Applicability.DISPLAY_ONLY)


_PROPOSERS = {
    "layer_input": _layer_input,
    "missing_flatten": _flatten,
    "reshape": _reshape,
    "batch_changed": _reshape,
    "view_strides": _view_to_reshape,
    "rows_cut": _reshape,
    "output_batch": _reshape,
    "batch_hardcoded": _hardcoded,
    "kernel_too_large": _kernel,
    "cat": _cat,
    "loss_broadcast": _loss_broadcast,
    "sequence_batch": _batch_first,
    "transposed_mirror": _mirror,
}
