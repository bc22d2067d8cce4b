"""Proving fixes: each proposal is applied in memory and the patched source re-checked; a fix
whose problem disappears with no new one, and that keeps the model's contract, is SAFE."""

from __future__ import annotations

from dataclasses import replace

from ..diagnostics import Applicability, Edit, Fix, Report, Span, Status
from . import edits as style
from .apply import apply_edits
from .propose import propose_fix


def _key(d) -> tuple:
    """What tells a finding apart across re-checks of patched source: its code, model and line,
    and the layer or call it is about (two findings on one line, each with its own fix). Not its
    columns: a fix earlier on the line moves them."""
    return (d.code, d.model, d.line, d.fact("layer"), d.fact("call_text"))


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
