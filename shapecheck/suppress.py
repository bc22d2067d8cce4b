"""`# shapecheck: ignore` and `# shapecheck: ignore[SC101, SC201]` at the end of a line."""

from __future__ import annotations

import re
from dataclasses import replace

from .diagnostics import Report
from .source import split_lines

_IGNORE = re.compile(r"#\s*shapecheck:\s*ignore(?:\[([A-Za-z0-9_,\s-]+)\])?")


def ignored_codes(line: str) -> set[str] | None:
    """None: nothing ignored; empty set: everything; else the codes (or rule names) ignored."""
    match = _IGNORE.search(line)
    if match is None:
        return None
    if match.group(1) is None:
        return set()
    return {c.strip() for c in match.group(1).split(",") if c.strip()}


def is_suppressed(diagnostic, lines: list[str]) -> bool:
    if diagnostic.span is None:
        return False
    for line_no in range(diagnostic.span.line, diagnostic.span.end_line + 1):
        if not 1 <= line_no <= len(lines):
            continue
        codes = ignored_codes(lines[line_no - 1])
        if codes is not None and (not codes or diagnostic.code in codes or diagnostic.rule.name in codes):
            return True
    return False


def apply_suppressions(report: Report) -> Report:
    if not report.source or "shapecheck" not in report.source:
        return report
    lines = split_lines(report.source)
    kept = tuple(d for d in report.diagnostics if not is_suppressed(d, lines))
    return replace(report, diagnostics=kept) if len(kept) != len(report.diagnostics) else report
