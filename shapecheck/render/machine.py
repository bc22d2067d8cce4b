"""Machine formats for a whole run: one document, however many files were checked."""

from __future__ import annotations

import json

from ..diagnostics import Report, Severity, Status

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
