"""Fixes: the edits that make a diagnostic go away, each proven by re-checking the patched source.

``propose_fix`` builds a fix from a diagnostic's facts (the numbers the tracer measured) and
the user's own text; ``attach_fixes`` re-checks every proposal on the patched source: a fix
whose problem disappears with no new one is SAFE (``--fix`` applies it); otherwise it stays
a suggestion that is shown but not applied.
"""

from __future__ import annotations

from dataclasses import replace

from ..diagnostics import Applicability, Edit, Fix, Report, Span
from . import edits as style
from .apply import apply_edits
from .sources import value_origin

__all__ = ["propose_fix", "attach_fixes", "apply_edits", "safe_edits"]

LAYER_PARAMS = {"in_features", "in_channels", "num_features", "num_channels", "normalized_shape",
                "input_size", "embed_dim"}


def propose_fix(diagnostic, source: str = "") -> Fix | None:
    event = diagnostic.fact("event")
    builder = _PROPOSERS.get(event)
    return builder(diagnostic, source) if builder else None


def _layer_input(d, source: str) -> Fix | None:
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


def _reshape(d, source: str) -> Fix | None:
    text = d.fact("call_text")
    new = style.reshape_call(text) if text else None
    if new is None or d.span is None:
        return _advice("Flatten per sample: x.view(x.size(0), -1) or torch.flatten(x, 1)")
    return Fix(f"Keep the batch dimension: `{new}`", (Edit(d.span, new),), Applicability.UNSAFE)


def _hardcoded(d, source: str) -> Fix | None:
    text = d.fact("call_text")
    new = style.reshape_call(text, batch_arg="size") if text else None
    if new is None or d.span is None:
        return _advice("Use x.size(0) for the batch size")
    return Fix(f"Use the real batch size: `{new}`", (Edit(d.span, new),), Applicability.UNSAFE)


def _kernel(d, source: str) -> Fix:
    sizes = d.fact("min_sizes")
    need = "×".join(str(s) for s in sizes) if sizes else "larger"
    padding = d.fact("padding_needed")
    also = f", or give it padding={padding}" if padding else ""
    works = d.fact("working_sizes")
    image = f"; the whole model works from a {works[0]}×{works[0]} image (checked)" if works else ""
    return _advice(f"Give `{d.fact('layer')}` an input of at least {need} here (a larger image, padding on "
                   f"the layers before it, or one downsampling step fewer){also}{image}")


def _cat(d, source: str) -> Fix:
    return _advice("Make the joined sizes equal: use input sizes that every pool divides evenly, or crop/pad "
                   "the larger tensor to the smaller one before torch.cat")


def _loss_broadcast(d, source: str) -> Fix:
    return _advice(f"Make input and target the same shape ({_shape(d.fact('input_shape'))} vs "
                   f"{_shape(d.fact('target_shape'))}): e.g. output.squeeze(-1) or target.unsqueeze(-1)")


def _shape(s) -> str:
    return "×".join(str(x) for x in s) if s else "scalar"


def _advice(title: str) -> Fix:
    return Fix(title, (), Applicability.DISPLAY_ONLY)


_PROPOSERS = {
    "layer_input": _layer_input,
    "reshape": _reshape,
    "batch_changed": _reshape,
    "batch_hardcoded": _hardcoded,
    "kernel_too_large": _kernel,
    "cat": _cat,
    "loss_broadcast": _loss_broadcast,
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
        if not keys & {_key(d) for d, _ in group} and not keys - _before(report, group[0][0]):
            proven.update(id(d) for d, _ in group)
    return proven


def _prove_or_move(fix: Fix, d, report: Report, recheck):
    """Prove ``fix``; when it does not prove out, the edit at the layer's own argument is tried,
    and the finding moves with it (its span is what to change)."""
    before = _before(report, d)
    fix = _prove(fix, d, report.source, before, recheck)
    other = _at_use(d) if fix.applicability is not Applicability.SAFE else None
    if other is not None and _prove(other, d, report.source, before, recheck).applicability \
            is Applicability.SAFE:
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


def _prove(fix: Fix, d, source: str, before: set, recheck) -> Fix:
    applied = apply_edits(source, fix.edits)
    if not applied.ok:
        return replace(fix, applicability=Applicability.DISPLAY_ONLY)
    after = recheck(applied.text, d.model)
    if after is None:
        return replace(fix, applicability=Applicability.UNSAFE)
    keys = {_key(x) for x in after.diagnostics}
    gone = _key(d) not in keys
    new = keys - before
    ok = gone and not new and after.source == applied.text
    return replace(fix, applicability=Applicability.SAFE if ok else Applicability.UNSAFE)


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
