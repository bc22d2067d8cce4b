"""Fixes: the edits that make a diagnostic go away, each proven by re-checking the patched source.

``propose_fix`` builds a fix from a diagnostic's facts (the numbers the tracer measured) and
the user's own text; ``attach_fixes`` re-checks every proposal on the patched source: a fix
whose problem disappears with no new one is SAFE (``--fix`` applies it); otherwise it stays
a suggestion that is shown but not applied.
"""

from __future__ import annotations

from dataclasses import replace

from ..diagnostics import Applicability, Edit, Fix, Report, Span, Status
from . import edits as style
from .apply import apply_edits
from .sources import value_origin

__all__ = ["propose_fix", "attach_fixes", "prove", "keeps_contract", "apply_edits", "safe_edits"]

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
                   Applicability.UNSAFE, code="or use input sizes that every pool divides evenly")
    return _advice("Make the joined sizes equal: use input sizes that every pool divides evenly, or crop/pad "
                   "the larger tensor to the smaller one before torch.cat")


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
    "rows_cut": _reshape,
    "batch_hardcoded": _hardcoded,
    "kernel_too_large": _kernel,
    "cat": _cat,
    "loss_broadcast": _loss_broadcast,
    "sequence_batch": _batch_first,
    "transposed_mirror": _mirror,
}


# -- proving -----------------------------------------------------------------------------
def _key(d) -> tuple:
    return (d.code, d.line)


def attach_fixes(report: Report, recheck) -> Report:
    """Propose a fix for each diagnostic and re-check it: SAFE only when proven.

    ``recheck(text, model)`` checks patched source, only ``model`` where one is named.
    """
    proposed = [(d, propose_fix(d, report.source)) for d in report.diagnostics]
    together = _proven_together(proposed, report, recheck)
    out = []
    for d, fix in proposed:
        if fix is not None and fix.edits:
            if id(d) in together:
                fix = replace(fix, applicability=Applicability.SAFE)
            else:
                d, fix = _prove_or_move(fix, d, report, recheck)
        out.append(replace(d, fix=fix) if fix is not None else d)
    return replace(report, diagnostics=tuple(out))


def _before(report: Report, d) -> set:
    return {_key(x) for x in report.diagnostics if not d.model or x.model == d.model}


def _proven_together(proposed: list, report: Report, recheck) -> set[int]:
    """The findings of one model whose fixes, applied all at once, leave none of them and
    nothing new: one re-check proves them all (else each is proven alone)."""
    by_model: dict[str, list] = {}
    for d, fix in proposed:
        if fix is not None and fix.edits and d.model:
            by_model.setdefault(d.model, []).append((d, fix))
    proven: set[int] = set()
    for model, group in by_model.items():
        if len(group) < 2:
            continue
        applied = apply_edits(report.source, [e for _, fix in group for e in fix.edits])
        if not applied.ok:
            continue
        after = recheck(applied.text, model)
        if after is None or after.source != applied.text:
            continue
        keys = {_key(x) for x in after.diagnostics}
        kept = all(keeps_contract(_model(report, m.name), m) for m in after.models if _model(report, m.name))
        if kept and not keys & {_key(d) for d, _ in group} and not keys - _before(report, group[0][0]):
            proven.update(id(d) for d, _ in group)
    return proven


def _prove_or_move(fix: Fix, d, report: Report, recheck):
    """Prove ``fix``; when it does not prove out, the edit at the layer's own argument is tried,
    and the finding moves with it (its span is what to change)."""
    fix = prove(fix, d, report, recheck)
    other = _at_use(d) if fix.applicability is not Applicability.SAFE else None
    if other is not None and prove(other, d, report, recheck).applicability is Applicability.SAFE:
        return replace(d, span=other.edits[0].span), replace(other, applicability=Applicability.SAFE)
    return d, fix


def _at_use(d) -> Fix | None:
    """For a value followed back to where it was written: the edit at the layer's own argument
    instead (tried when changing the written value does not prove out, e.g. others use it)."""
    use = d.fact("use")
    if not use or d.span is None:
        return None
    text, line, column, end_line, end_column = use
    new = style.value_text(text, d.fact("actual"))
    span = Span(d.span.path, line, column, end_line, end_column)
    return Fix(f"Change `{d.fact('param')}` to `{new}` at line {line}", (Edit(span, new),), Applicability.UNSAFE)


def prove(fix: Fix, d, report: Report, recheck, follow: bool = True) -> Fix:
    """SAFE when the patched source re-checks without ``d`` and with nothing new, and the
    model keeps its contract (:func:`keeps_contract`); UNSAFE otherwise.

    With ``follow``, a fix whose only new problem is one that its own proposal fixes (a
    batch-keeping flatten, then the Linear sized for it) is proven again as one fix of both.
    """
    applied = apply_edits(report.source, fix.edits)
    if not applied.ok:
        return replace(fix, applicability=Applicability.DISPLAY_ONLY)
    after = recheck(applied.text, d.model)
    if after is None or after.source != applied.text:
        return replace(fix, applicability=Applicability.UNSAFE)
    before = _before(report, d)
    new = [x for x in after.diagnostics if _key(x) not in before]
    kept = all(keeps_contract(_model(report, m.name), m, d) for m in after.models if _model(report, m.name))
    if _key(d) in {_key(x) for x in after.diagnostics} or (new and not follow) or (not new and not kept):
        return replace(fix, applicability=Applicability.UNSAFE)
    if not new:
        return replace(fix, applicability=Applicability.SAFE)
    both = _with_follow_up(fix, new, applied.text)
    return prove(both, d, report, recheck, follow=False) if both else replace(fix, applicability=Applicability.UNSAFE)


def _with_follow_up(fix: Fix, new: list, text: str) -> Fix | None:
    """``fix`` and the fix of the one problem it leads to, when the edits sit on lines of their
    own and ``fix`` keeps every line where it is (so the second fix's places hold before it)."""
    if len(new) != 1:
        return None
    second = propose_fix(new[0], text)
    if second is None or not second.edits:
        return None
    lines = {e.span.line for e in fix.edits}
    if any(e.span.line != e.span.end_line or "\n" in e.new_text for e in fix.edits) \
            or any(e.span.line in lines or e.span.end_line in lines for e in second.edits):
        return None
    return Fix(f"{fix.title}, then {second.title[:1].lower()}{second.title[1:]}", fix.edits + second.edits,
               Applicability.UNSAFE, code=fix.code)


def _model(report: Report, name: str):
    return next((m for m in report.models if m.name == name), None)


def keeps_contract(before, after, d=None) -> bool:
    """After a fix the model runs at its input (a stop for code that needs tensor values
    aside), its output rows still hold whole samples (k·N), and every layer receives the
    rank it had before, or the one ``d`` says it is meant for (a Linear: 2 after a flatten)."""
    if after.status is Status.NOT_CHECKED and before.status is not Status.NOT_CHECKED:
        return False
    if after.status is Status.PARTIAL and before.status is Status.CHECKED:
        return False
    if not _keeps_batch(after):
        return False
    meant = {d.fact("layer"): d.fact("meant_rank")} if d is not None and d.fact("meant_rank") else {}
    had = _layer_ranks(before)
    return all(rank == meant.get(name, had.get(name, rank)) for name, rank in _layer_ranks(after).items())


def _keeps_batch(model) -> bool:
    """The output has one row per sample, or one per token or pixel of the input (N·T, N·H·W)."""
    shape = model.input_shapes[0] if model.input_shapes else ()
    out = model.output_shapes[0] if model.output_shapes else ()
    if not shape or not isinstance(shape[0], int) or shape[0] < 2 or not out or not isinstance(out[0], int):
        return True
    batch = shape[0]
    return out[0] % batch == 0 and out[0] // batch in _sub_products(shape[1:])


def _sub_products(sizes) -> set[int]:
    """1 and the products of every selection of ``sizes``."""
    found = {1}
    for size in sizes:
        if isinstance(size, int):
            found |= {p * size for p in found}
    return found


def _layer_ranks(model) -> dict[str, int]:
    """The rank of the first input of each layer, at its first call; layers that work on any
    rank and keep their input's shape (activations, dropout) are left out, norms are not."""
    ranks: dict[str, int] = {}
    for record in model.records:
        if record.kind != "module" or not record.in_shapes:
            continue
        any_rank = record.out_shapes[:1] == record.in_shapes[:1] and "Norm" not in record.op
        if not any_rank:
            ranks.setdefault(record.name, len(record.in_shapes[0]))
    return ranks


def safe_edits(report: Report) -> list[Edit]:
    """The edits ``--fix`` applies: those of SAFE fixes, without overlaps."""
    chosen, taken = [], []
    for d in report.diagnostics:
        if d.fix is None or d.fix.applicability is not Applicability.SAFE:
            continue
        spans = [e.span for e in d.fix.edits]
        if any(_overlaps(s, t) for s in spans for t in taken):
            continue
        taken += spans
        chosen += d.fix.edits
    return chosen


def _overlaps(a, b) -> bool:
    return (a.line, a.column) < (b.end_line, b.end_column) and (b.line, b.column) < (a.end_line, a.end_column)
