"""The terminal report: per model a shape-flow table, then each diagnostic with a code frame.

Works on a plain :class:`Report` (no torch); renders with rich.
"""

from __future__ import annotations

import os
import unicodedata

from rich.cells import cell_len
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..diagnostics import Applicability, Report, Severity, Status, format_shape
from ..source import SourceError, read_source, split_lines

STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}
SOURCES = {"cli": "--input", "hint": "the in-file hint", "config": "pyproject.toml", "example": "an example in the file",
           "inferred": "inference"}


def render_report(report: Report, console: Console, quiet: bool = False) -> None:
    lines = split_lines(report.source) if report.source else _read_lines(report.path)
    if not quiet:
        for model in report.models:
            console.print(model_header(model))
            if model.records:
                console.print(shape_table(model))
            console.print()
    for diagnostic in report.diagnostics:
        console.print(diagnostic_block(diagnostic, lines))
        console.print()
    console.print(summary(report))


def model_header(model) -> Text:
    text = Text()
    text.append(model.name, style="bold")
    if model.input_shapes:
        names = model.input_names or ("",) * len(model.input_shapes)
        shapes = ", ".join(f"{name}={format_shape(s)}" if name else format_shape(s)
                           for name, s in zip(names, model.input_shapes))
        dtypes = [d for d in model.input_dtypes if d != "float32"]
        text.append(f"  input {shapes}" + (f" ({', '.join(dtypes)})" if dtypes else ""))
        if model.input_source:
            text.append(f" from {_input_source(model)}", style="dim")
    if model.init_source and (model.init_source != "defaults" or model.init_call):  # plain defaults go unsaid
        text.append(f"\n  built {_built(model)}", style="dim")
    if model.accepted_inputs:
        text.append(f"\n  accepts {model.accepted_inputs}", style="dim")
    status = {Status.CHECKED: "", Status.PARTIAL: "  [stopped early]", Status.NOT_CHECKED: "  [not checked]"}
    text.append(status[model.status], style="yellow")
    if model.status is not Status.CHECKED and model.reason:
        text.append(f"\n  {model.reason}", style="dim")
    return text


def _input_source(model) -> str:
    """Where the input came from; an example that follows a call in another file (a README
    block, a test) names that file."""
    elsewhere = _site_file(model.init_source) if model.input_source == "example" else ""
    if elsewhere and not os.path.abspath(model.path).endswith(os.sep + os.path.normpath(elsewhere)):
        return f"an example in {elsewhere}"
    return SOURCES.get(model.input_source, model.input_source)


def _site_file(init_source: str) -> str:
    """"call site train.py:41" and "README.md:12" -> the file; "" for other sources."""
    where = init_source.removeprefix("call site ")
    file, colon, line = where.rpartition(":")
    return file if colon and line.isdigit() and not where.startswith("config ") else ""


def _built(model) -> str:
    """`as UNet(n_channels=3, n_classes=2) from call site train.py:41`."""
    if model.init_source == "factory":
        return f"by its factory function, called with its defaults: {model.init_call}"
    how = f"as {model.init_call} " if model.init_call else ""
    where = {"cli": "--init", "hint": "the in-file hint", "config": "pyproject.toml",
             "defaults": "the defaults of its config class"}.get(model.init_source, model.init_source)
    return f"{how}from {where}"


def shape_table(model) -> Table:
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("line", justify="right", no_wrap=True)
    table.add_column("layer", no_wrap=True)
    table.add_column("op", no_wrap=True)
    table.add_column("input → output", no_wrap=True)
    table.add_column("how", min_width=24)
    for record in model.records:
        if record.kind == "merge":
            continue  # same-shape merges (a residual add) are drawn in the html graph, not listed here
        ins = ", ".join(format_shape(s) for s in record.in_shapes)
        outs = ", ".join(format_shape(s) for s in record.out_shapes)
        how = Text(record.note)
        if record.error:
            how = Text(f"fails; checked on as if it gave {outs}", style="red")
        name = record.name if record.kind == "module" else ""
        table.add_row(str(record.line or ""), name, record.op, f"{ins} → {outs}", how)
    return table


def diagnostic_block(d, lines: list[str]) -> Group:
    head = Text()
    head.append(f"{d.severity.value}[{d.code}]", style=STYLES[d.severity])
    head.append(f" {d.rule.name}: ", style="bold")
    head.append(d.message)
    parts = [head]
    if d.span is not None:
        parts.append(Text(f"  --> {d.span.path}:{d.span.line}:{d.span.column + 1}", style="blue"))
        parts += code_frame(lines, d.span.line, d.span.column, _end_column(d.span, lines), STYLES[d.severity])
    for related in d.related:
        parts.append(Text(f"  --> {related.span.path}:{related.span.line}: {related.message}", style="dim"))
        parts += code_frame(lines, related.span.line, related.span.column, related.span.end_column, "dim")
    for note in d.notes:
        parts.append(Text(f"   = {note}", style="dim"))
    if d.fix is not None:
        parts.append(_fix_text(d.fix))
    return Group(*parts)


def _end_column(span, lines) -> int:
    if span.end_line == span.line:
        return span.end_column
    return len(lines[span.line - 1].rstrip()) if span.line <= len(lines) else span.column + 1


def code_frame(lines: list[str], line: int, start: int, end: int, style: str) -> list[Text]:
    """The line and a caret under columns [start, end): tabs and wide characters are copied
    into the caret's indent, so both lines expand alike."""
    if not 1 <= line <= len(lines):
        return []
    shown = _printable(lines[line - 1])
    source = Text(f"{line:>5} | ", style="blue")
    source.append(shown.rstrip())
    caret = Text(" " * 5 + " | ", style="blue")
    indent = "".join(c if c == "\t" else " " * cell_len(c) for c in shown[:start])
    caret.append(indent + "^" * max(1, cell_len(shown[start:end])), style=style)
    return [source, caret]


def _printable(line: str) -> str:
    """Control characters and Unicode line separators (a form feed, \u2028) shown as spaces."""
    return "".join(" " if c != "\t" and unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in line)


def _fix_text(fix) -> Text:
    labels = {Applicability.SAFE: ("fix (safe, --fix applies it)", "green"),
              Applicability.UNSAFE: ("suggested fix", "yellow"),
              Applicability.DISPLAY_ONLY: ("help", "cyan")}
    label, style = labels[fix.applicability]
    text = Text("   ")
    text.append(f"{label}: ", style=f"bold {style}")
    text.append(fix.title)
    if fix.code:
        text.append(f"; {fix.code}")
    return text


def summary(report: Report) -> Text:
    counts = {s: sum(1 for d in report.diagnostics if d.severity is s) for s in Severity}
    checked = sum(1 for m in report.models if m.status is not Status.NOT_CHECKED)
    parts = [f"{counts[Severity.ERROR]} error{'s' * (counts[Severity.ERROR] != 1)}",
             f"{counts[Severity.WARNING]} warning{'s' * (counts[Severity.WARNING] != 1)}"]
    if counts[Severity.INFO]:
        parts.append(f"{counts[Severity.INFO]} note{'s' * (counts[Severity.INFO] != 1)}")
    partial = sum(1 for m in report.models if m.status is Status.PARTIAL)
    reported = {d.model for d in report.diagnostics}
    unchecked = sum(1 for m in report.models if m.status is Status.NOT_CHECKED and m.name in reported)
    text = Text(f"{report.path}: " + ", ".join(parts) + f" in {checked} model{'s' * (checked != 1)} checked"
                + (f" ({partial} only in part)" if partial else "")
                + (f", {unchecked} not checked" if unchecked else ""), style="bold")
    safe = sum(1 for d in report.diagnostics if d.fix and d.fix.applicability is Applicability.SAFE)
    if safe:
        text.append(f"; {safe} fix{'es' * (safe != 1)} available with --fix", style="green")
    return text


def concise(report: Report) -> str:
    out = []
    for d in report.diagnostics:
        where = f"{d.span.path}:{d.span.line}:{d.span.column + 1}" if d.span else f"{report.path}:1:1"
        out.append(f"{where}: {d.code} {d.message}")
    return "\n".join(out)


def _read_lines(path: str) -> list[str]:
    try:
        return split_lines(read_source(path).text)
    except (OSError, SourceError):
        return []
