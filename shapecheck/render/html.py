"""`--format html`: one self-contained page per checked file (inline CSS, JS and SVG; nothing
fetched), and for a folder an index page beside them.

The page is plain data (``page_data``, built from the ``Report``) plus a small script that draws
it: the forward pass as a layered graph (see :mod:`.graph`), each finding red where it lands,
with its message, chain and fix beside the graph, and the source in a code panel.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any

from ..diagnostics import Diagnostic, ModelResult, Report, ShapeRecord
from . import graph
from ._html_assets import PAGE_CSS, PAGE_JS

OPEN_ALL_BELOW = 40  # records; smaller models open every group at first


def page_data(report: Report) -> dict[str, Any]:
    """What the page's script draws: the models, the findings and the source lines."""
    return {
        "file": report.path,
        "source": report.source.splitlines(),
        "findings": [_finding(d) for d in report.diagnostics],
        "models": [_model(m, report.diagnostics) for m in report.models],
    }


def _finding(d: Diagnostic) -> dict[str, Any]:
    span = d.span
    return {
        "code": d.code, "name": d.rule.name, "severity": d.severity.value, "message": d.message,
        "model": d.model, "notes": list(d.notes),
        "span": [span.line, span.column, span.end_line, span.end_column] if span else None,
        "fix": {"title": d.fix.title, "code": d.fix.code, "edits": [e.new_text for e in d.fix.edits]} if d.fix else None,
    }


def _model(model: ModelResult, diagnostics: tuple[Diagnostic, ...]) -> dict[str, Any]:
    data = {"name": model.name, "status": model.status.value, "reason": model.reason, "line": model.line,
            "input": [graph.shape_text(s) for s in model.input_shapes]}
    marked = graph.marked_records(model, diagnostics)
    whole, failed = graph.unplaced_findings(model, diagnostics, marked)
    if not model.records and not whole + failed:
        return data
    shape = graph.build(model, set(marked), tuple(f"x{n}" for n in failed))
    nodes = {f"r{i}": _node(r, marked.get(i, [])) for i, r in enumerate(model.records) if shape.shown[i] == i}
    nodes.update({f"x{n}": _failed_node(diagnostics[n], n) for n in failed})
    nodes[graph.INPUT] = {"name": "input", "op": "input", "kind": "input", "line": model.line,
                          "outs": data["input"], "ins": [], "findings": whole}
    data["graph"] = {
        "groups": {gid: _group(g) for gid, g in shape.groups.items()},
        "parent": shape.parent, "links": shape.links, "nodes": nodes,
        "open": _opened(shape, marked, len(model.records)),
    }
    return data


def _node(record: ShapeRecord, findings: list[int]) -> dict[str, Any]:
    return {"name": record.name, "op": record.op, "kind": record.kind, "line": record.line,
            "ins": [graph.shape_text(s) for s in record.in_shapes],
            "outs": [graph.shape_text(s) for s in record.out_shapes],
            "note": record.note, "steps": list(record.steps), "error": record.error, "findings": findings}


def _failed_node(diagnostic: Diagnostic, number: int) -> dict[str, Any]:
    """A call that failed before the trace could record it: the node its finding lands on."""
    name = diagnostic.fact("layer") or diagnostic.code
    ins = [graph.shape_text(s) for s in diagnostic.fact("in_shapes") or ()]
    line = diagnostic.related[0].span.line if diagnostic.related else diagnostic.line  # the call, if known
    return {"name": name, "op": diagnostic.fact("op") or name, "kind": "failed", "line": line,
            "ins": ins, "outs": ["fails"], "note": diagnostic.message, "steps": [], "error": diagnostic.message,
            "findings": [number]}


def _group(group: graph.Group) -> dict[str, Any]:
    return {"label": group.label, "count": group.count, "span": group.span_label, "children": group.children,
            "layers": group.layers, "edges": group.edges}


def _opened(shape: graph.ModelGraph, marked: dict[int, list[int]], records: int) -> list[str]:
    """Groups open at first: all of them in a small model, else those that hold a finding."""
    if records <= OPEN_ALL_BELOW:
        return list(shape.groups)
    opened = {graph.ROOT}
    for index in marked:
        node = f"r{shape.shown[index]}"
        while node in shape.parent:
            node = shape.parent[node]
            opened.add(node)
    return sorted(opened)


def render_page(report: Report, title: str = "", back: str = "") -> str:
    """The whole page for one file, as text."""
    data = json.dumps(page_data(report), ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    crumbs = f'<a href="{html.escape(back)}">index</a> / ' if back else ""
    return _PAGE.format(title=html.escape(title or report.path), css=PAGE_CSS, js=PAGE_JS, data=data,
                        head=crumbs + html.escape(report.path), summary=html.escape(_summary([report])))


def _summary(reports: list[Report]) -> str:
    models = sum(len(r.models) for r in reports)
    errors = sum(len(r.errors) for r in reports)
    others = sum(len(r.diagnostics) for r in reports) - errors
    return f"{models} model{'s' * (models != 1)} · {errors} error{'s' * (errors != 1)} · {others} other finding" + \
        "s" * (others != 1)


def page_name(path: str) -> str:
    """The page's file name for a checked file: its path with folders joined by '__'."""
    stem = os.path.splitext(os.path.normpath(path))[0].lstrip("./\\")
    return stem.replace(os.sep, "__").replace("/", "__") + ".html"


def render_index(reports: list[Report]) -> str:
    rows = "".join(_index_row(r) for r in reports)
    return _INDEX.format(css=PAGE_CSS, rows=rows, summary=html.escape(_summary(reports)))


def _index_row(report: Report) -> str:
    state = "bad" if report.errors else "ok"
    counts = f"{len(report.models)} models · {len(report.errors)} errors · {len(report.diagnostics)} findings"
    return (f'<li class="{state}"><a href="{html.escape(page_name(report.path))}">{html.escape(report.path)}</a>'
            f'<span class="meta">{counts}</span></li>')


def write_pages(reports: list[Report], output: str, folder: bool) -> list[str]:
    """Write one page (``folder`` false) or an index plus one page per file into ``output``."""
    if not folder:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(render_page(reports[0] if reports else Report(path="(nothing checked)")))
        return [output]
    os.makedirs(output, exist_ok=True)
    written = [os.path.join(output, "index.html")]
    with open(written[0], "w", encoding="utf-8") as handle:
        handle.write(render_index(reports))
    for report in reports:
        written.append(os.path.join(output, page_name(report.path)))
        with open(written[-1], "w", encoding="utf-8") as handle:
            handle.write(render_page(report, back="index.html"))
    return written


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>shapecheck · {title}</title>
<style>{css}</style></head>
<body>
<header><b>shapecheck</b><span class="file">{head}</span><span class="meta">{summary}</span></header>
<main><section id="graphs"></section>
<aside><div id="notes"><div id="findings"></div><div id="details"></div></div><div id="code"></div></aside></main>
<div id="tip" hidden></div>
<script type="application/json" id="data">{data}</script>
<script>{js}</script>
</body></html>
"""

_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="color-scheme" content="light dark">
<title>shapecheck</title>
<style>{css}</style></head>
<body class="index">
<header><b>shapecheck</b><span class="meta">{summary}</span></header>
<ul class="files">{rows}</ul>
</body></html>
"""
