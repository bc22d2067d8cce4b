"""Fixes: the edits that make a diagnostic go away, each proven by re-checking the patched source.

``propose_fix`` builds a fix from a diagnostic's facts (the numbers the tracer measured) and
the user's own text; ``attach_fixes`` re-checks every proposal on the patched source: a fix
whose problem disappears with no new one is SAFE (``--fix`` applies it); otherwise it stays
a suggestion that is shown but not applied.
"""

from __future__ import annotations

from dataclasses import replace

from ..diagnostics import Applicability, Edit, Fix, Report, Status
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
    param, actual = d.fact("param"), d.fact("actual")
    old = d.fact("arg_text")
    if d.span is None or old is None or param not in LAYER_PARAMS:
        return _advice(f"Change `{param}` of `{d.fact('layer')}` to {actual}")
    origin = d.fact("flattened_from")
    factors = tuple(origin[1:]) if origin and len(origin) > 2 else None
    alternative = d.fact("op") == "Linear" and "or use nn.LazyLinear(out_features), which sizes itself"
    origin = None
    if old.isidentifier() and source:
        origin = value_origin(source, d.span.path, old, d.span.line, d.model)
    if origin is not None:  # fix the value where the name gets it
        new = style.value_text(origin.text, actual, factors)
        where = {"default": "the default of", "constant": "the constant", "argument": "the argument"}[origin.kind]
        title = f"Change {where} `{old}` (line {origin.span.line}) to `{new}`"
        return Fix(title, (Edit(origin.span, new),), Applicability.UNSAFE, code=alternative or "")
    new = style.value_text(old, actual, factors)
    title = f"Change `{param}` to `{new}`" + (f" ({actual})" if new != str(actual) else "")
    return Fix(title, (Edit(d.span, new),), Applicability.UNSAFE, code=alternative or "")


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


def _batch_first(d, source: str) -> Fix:
    return _keyword(d, "batch_first", "True", "Build `{layer}` with `batch_first=True`")


def _output_padding(d, source: str) -> Fix:
    value = d.fact("output_padding")
    text = str(value) if isinstance(value, int) else "(" + ", ".join(map(str, value)) + ")"
    return _keyword(d, "output_padding", text, "Give `{layer}` `output_padding=" + text + "`")


def _keyword(d, keyword: str, value: str, title: str) -> Fix:
    """Set ``keyword=value`` in the layer's constructor call: the argument's value where it is
    written, else a new last argument. The span is the argument, or the whole call."""
    title = title.format(layer=d.fact("layer"))
    text = d.fact("call_text")
    if d.span is None or text is None:
        return _advice(title)
    edit = Edit(d.span, value) if d.fact("has_arg") else style.keyword_insertion(d.span, text, keyword, value)
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
    "transposed_short": _output_padding,
}


# -- proving -----------------------------------------------------------------------------
def _key(d) -> tuple:
    return (d.code, d.line)


def attach_fixes(report: Report, recheck) -> Report:
    """Propose a fix for each diagnostic and re-check it: SAFE only when proven.

    ``recheck(text, model)`` checks patched source, only ``model`` where one is named.
    """
    out = []
    for d in report.diagnostics:
        fix = propose_fix(d, report.source)
        if fix is not None and fix.edits:
            fix = prove(fix, d, report, recheck)
        out.append(replace(d, fix=fix) if fix is not None else d)
    return replace(report, diagnostics=tuple(out))


def prove(fix: Fix, d, report: Report, recheck) -> Fix:
    """SAFE when the patched source re-checks without ``d`` and with nothing new, and the
    model keeps its contract (:func:`keeps_contract`); UNSAFE otherwise."""
    applied = apply_edits(report.source, fix.edits)
    if not applied.ok:
        return replace(fix, applicability=Applicability.DISPLAY_ONLY)
    after = recheck(applied.text, d.model)
    if after is None:
        return replace(fix, applicability=Applicability.UNSAFE)
    before = {_key(x) for x in report.diagnostics if not d.model or x.model == d.model}
    keys = {_key(x) for x in after.diagnostics}
    ok = _key(d) not in keys and not keys - before and after.source == applied.text
    ok = ok and all(keeps_contract(_model(report, m.name), m, d) for m in after.models if _model(report, m.name))
    return replace(fix, applicability=Applicability.SAFE if ok else Applicability.UNSAFE)


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
    batch = model.input_shapes[0][0] if model.input_shapes and model.input_shapes[0] else None
    out = model.output_shapes[0] if model.output_shapes else ()
    if not isinstance(batch, int) or not out or not isinstance(out[0], int) or batch < 2:
        return True
    return out[0] % batch == 0


def _layer_ranks(model) -> dict[str, int]:
    """The rank of the first input of each layer, at its first call."""
    ranks: dict[str, int] = {}
    for record in model.records:
        if record.kind == "module" and record.in_shapes:
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
