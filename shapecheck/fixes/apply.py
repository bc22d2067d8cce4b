"""Apply edits to source text. Never raises: a bad edit set gives a result with an error."""

from __future__ import annotations

from dataclasses import dataclass

from ..source import split_lines


@dataclass(frozen=True)
class Applied:
    text: str
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def _offsets(text: str) -> list[int]:
    starts, total = [0], 0
    for line in split_lines(text, keepends=True):
        total += len(line)
        starts.append(total)
    return starts


def _offset(starts: list[int], line: int, column: int) -> int:
    return starts[line - 1] + column


def apply_edits(text: str, edits) -> Applied:
    """Replace each edit's span (1-based lines, 0-based columns) with its text."""
    edits = sorted(set(edits), key=lambda e: (e.span.line, e.span.column))
    starts = _offsets(text)
    pieces, cursor = [], 0
    for edit in edits:
        if edit.span.line > len(starts) or edit.span.end_line > len(starts):
            return Applied(text, f"edit outside the file at line {edit.span.line}")
        begin = _offset(starts, edit.span.line, edit.span.column)
        end = _offset(starts, edit.span.end_line, edit.span.end_column)
        if begin < cursor:
            return Applied(text, f"overlapping edits at line {edit.span.line}")
        pieces += [text[cursor:begin], edit.new_text]
        cursor = end
    pieces.append(text[cursor:])
    return Applied("".join(pieces))


def diff(path: str, before: str, after: str) -> str:
    """A unified diff; a last line with no line break is marked as git marks it."""
    import difflib

    lines = difflib.unified_diff(split_lines(before, keepends=True), split_lines(after, keepends=True),
                                 fromfile=f"a/{path.lstrip('/')}", tofile=f"b/{path.lstrip('/')}")
    return "".join(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n"
                   for line in lines)

