"""Plain text for places without a terminal: test failures, log lines. No colour codes."""

from __future__ import annotations

from ..diagnostics import Report, format_shape


def findings_text(report: Report, diagnostics=None) -> str:
    """Each finding with its numbers and where it is: `path:line:col: SC101 message`, its notes
    indented below, then the fix."""
    out = []
    for d in report.diagnostics if diagnostics is None else diagnostics:
        where = f"{d.span.path}:{d.span.line}:{d.span.column + 1}" if d.span else report.path
        out.append(f"{where}: {d.severity.value}[{d.code}] {d.message}")
        out += [f"    = {note}" for note in d.notes]
        if d.fix is not None:
            out.append(f"    fix ({d.fix.applicability.value}): {d.fix.title}")
    return "\n".join(out)


def shapes_text(shapes) -> str:
    return ", ".join(format_shape(s) for s in shapes) or "nothing"
