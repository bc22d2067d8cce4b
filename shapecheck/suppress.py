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


def ignore_edit(line: str, code: str) -> tuple[int, int, str] | None:
    """The edit (start column, end column, new text) that makes ``line`` ignore ``code``.

    Extends an `ignore[...]` list already on the line, or appends the comment; None when the
    line ignores everything already or ends in a backslash (a comment cannot follow it).
    """
    body = line.rstrip("\r\n")
    match = _IGNORE.search(body)
    if match is not None:
        if match.group(1) is None:
            return None
        codes = [c.strip() for c in match.group(1).split(",") if c.strip()]
        return match.start(1), match.end(1), ", ".join(codes + [code])
    end = len(body.rstrip())
    if body[:end].endswith("\\"):
        return None
    return end, len(body), f"  # shapecheck: ignore[{code}]"


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
