"""Fixes: the edits that make a diagnostic go away, each proven by re-checking the patched source.

``propose_fix`` builds a fix from a diagnostic's facts (the numbers the tracer measured) and
the user's own text; ``attach_fixes`` re-checks every proposal on the patched source: a fix
whose problem disappears with no new one is SAFE (``--fix`` applies it); otherwise it stays
a suggestion that is shown but not applied.
"""

from __future__ import annotations

from ..diagnostics import Applicability, Edit, Report
from .apply import apply_edits as apply_edits
from .propose import propose_fix as propose_fix
from .prove import attach_fixes as attach_fixes, keeps_contract as keeps_contract, prove as prove

__all__ = ["propose_fix", "attach_fixes", "prove", "keeps_contract", "apply_edits", "safe_edits"]


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
