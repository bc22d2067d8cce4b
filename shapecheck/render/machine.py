"""Machine formats for a whole run: one document, however many files were checked."""

from __future__ import annotations

import json

from ..diagnostics import Report, Severity, Status
from ..source import split_lines

JSON_VERSION = 2


def json_document(reports: list[Report]) -> str:
    """One JSON document: every file, every model, every diagnostic, and the totals."""
    files = [{"path": r.path, "models": len(r.models), "exit_code": r.exit_code()} for r in reports]
    data = {
        "version": JSON_VERSION,
        "files": files,
        "models": [m.to_dict() for r in reports for m in r.models],
        "diagnostics": [d.to_dict() for r in reports for d in r.diagnostics],
        "summary": totals(reports),
    }
    return json.dumps(data, indent=2, ensure_ascii=False)


def totals(reports: list[Report]) -> dict[str, int]:
    models = [m for r in reports for m in r.models]
    diagnostics = [d for r in reports for d in r.diagnostics]
    return {
        "files": len(reports),
        "models": len(models),
        "checked": sum(m.status is Status.CHECKED for m in models),
        "partial": sum(m.status is Status.PARTIAL for m in models),
        "not_checked": sum(m.status is Status.NOT_CHECKED for m in models),
        "errors": sum(d.severity is Severity.ERROR for d in diagnostics),
        "warnings": sum(d.severity is Severity.WARNING for d in diagnostics),
        "notes": sum(d.severity is Severity.INFO for d in diagnostics),
    }


# -- SARIF 2.1.0 -------------------------------------------------------------------------
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
HELP_URI = "https://pypi.org/project/torch-shapecheck/"
_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def sarif_document(reports: list[Report], version: str, root: str = "") -> str:
    """One SARIF 2.1.0 log with one run: the rules used, and a result per diagnostic.

    Paths are relative to ``root`` (the working folder) where they lie below it; columns count
    Unicode code points (``columnKind``), as shapecheck's spans do.
    """
    diagnostics = [(r, d) for r in reports for d in r.diagnostics]
    rules = sorted({d.rule.code: d.rule for _, d in diagnostics}.values(), key=lambda rule: rule.code)
    index = {rule.code: i for i, rule in enumerate(rules)}
    run = {
        "tool": {"driver": {"name": "shapecheck", "version": version, "informationUri": HELP_URI,
                            "rules": [_sarif_rule(rule) for rule in rules]}},
        "columnKind": "unicodeCodePoints",
        "results": [_sarif_result(d, index[d.code], _lines(r), root) for r, d in diagnostics],
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2, ensure_ascii=False)


def _sarif_rule(rule) -> dict:
    return {
        "id": rule.code, "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.explanation or rule.summary},
        "help": {"text": f"{rule.summary} {rule.explanation}".strip() + f" (shapecheck explain {rule.code})"},
        "helpUri": f"{HELP_URI}#diagnostic-codes",
        "defaultConfiguration": {"level": _LEVELS[rule.severity]},
    }


def _sarif_result(d, rule_index: int, lines: list[str], root: str) -> dict:
    text = d.message + "".join(f"\n{note}" for note in d.notes)
    result = {"ruleId": d.code, "ruleIndex": rule_index, "level": _LEVELS[d.severity], "message": {"text": text}}
    if d.span is not None:
        result["locations"] = [{"physicalLocation": _physical(d.span, root)}]
        result["partialFingerprints"] = {"shapecheck/v1": _fingerprint(d, lines, root)}
    if d.related:
        result["relatedLocations"] = [{"id": i, "physicalLocation": _physical(r.span, root),
                                       "message": {"text": r.message}} for i, r in enumerate(d.related)]
    if d.fix is not None and d.fix.edits:
        result["fixes"] = [_sarif_fix(d.fix, root)]
    return result


def _physical(span, root: str) -> dict:
    region = {"startLine": span.line, "startColumn": span.column + 1,
              "endLine": span.end_line, "endColumn": span.end_column + 1}
    return {"artifactLocation": {"uri": _uri(span.path, root)}, "region": region}


def _sarif_fix(fix, root: str) -> dict:
    changes: dict[str, list] = {}
    for edit in fix.edits:
        region = _physical(edit.span, root)["region"]
        changes.setdefault(edit.span.path, []).append({"deletedRegion": region,
                                                       "insertedContent": {"text": edit.new_text}})
    return {"description": {"text": fix.title},
            "artifactChanges": [{"artifactLocation": {"uri": _uri(path, root)}, "replacements": replacements}
                                for path, replacements in changes.items()]}


def _uri(path: str, root: str) -> str:
    import os
    from urllib.parse import quote

    full = os.path.abspath(path)
    base = os.path.abspath(root or os.getcwd())
    if full == base or full.startswith(base.rstrip(os.sep) + os.sep):
        return quote(os.path.relpath(full, base).replace(os.sep, "/"))
    return "file://" + quote(full.replace(os.sep, "/"))


def _fingerprint(d, lines: list[str], root: str) -> str:
    """Stable while lines move: the rule, the file, the model and the text of the flagged line."""
    import hashlib

    text = lines[d.span.line - 1].strip() if 1 <= d.span.line <= len(lines) else ""
    key = "\0".join((d.code, _uri(d.span.path, root), d.model, text))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _lines(report: Report) -> list[str]:
    return split_lines(report.source)


# -- GitHub workflow commands ------------------------------------------------------------
_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def github_lines(reports: list[Report]) -> str:
    """`::error file=…,line=…,col=…,endLine=…,endColumn=…,title=SC101 linear-in-features::message`."""
    out = []
    for report in reports:
        for d in report.diagnostics:
            props = {"file": d.span.path if d.span else report.path}
            if d.span is not None:
                props.update(line=d.span.line, col=d.span.column + 1, endLine=d.span.end_line,
                             endColumn=d.span.end_column + 1)
            props["title"] = d.rule.label
            fields = ",".join(f"{k}={_escape_property(str(v))}" for k, v in props.items())
            out.append(f"::{_COMMANDS[d.severity]} {fields}::{_escape_data(_github_message(d))}")
    return "\n".join(out)


def _github_message(d) -> str:
    fix = f"\nfix: {d.fix.title}" if d.fix is not None else ""
    return d.message + "".join(f"\n{note}" for note in d.notes) + fix


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
