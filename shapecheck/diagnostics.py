"""The shared vocabulary of shapecheck: spans, edits, fixes, rules, diagnostics, records, reports.

Plain frozen data. Nothing here imports torch, libcst or rich, so every room (engine, rules,
fixes, render, front ends) can speak it.

Conventions: lines are 1-based, columns 0-based, ends exclusive (libcst's convention).
Shapes are tuples of ints; a symbolic size that has no integer value is a string.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any



class Severity(str, enum.Enum):
    ERROR = "error"  # fails at run time (or silently corrupts data)
    WARNING = "warning"  # runs, but is likely wrong
    INFO = "info"  # could not be checked; says why and what is needed


class Applicability(str, enum.Enum):
    SAFE = "safe"  # re-checked clean; --fix applies it
    UNSAFE = "unsafe"  # plausible but not proven; shown, applied only on request
    DISPLAY_ONLY = "display-only"  # advice


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    severity: Severity
    summary: str
    explanation: str = ""

    @property
    def label(self) -> str:
        return f"{self.code} {self.name}"


@dataclass(frozen=True, slots=True)
class Span:
    path: str
    line: int
    column: int
    end_line: int
    end_column: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column + 1,
            "end_line": self.end_line,
            "end_column": self.end_column + 1,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Span | None":
        if data.get("line") is None:
            return None
        return cls(data["path"], data["line"], data["column"] - 1, data["end_line"], data["end_column"] - 1)


@dataclass(frozen=True, slots=True)
class Edit:
    span: Span
    new_text: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.span.to_dict(), "new_text": self.new_text}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Edit":
        return cls(Span.from_dict(data), data["new_text"])


@dataclass(frozen=True, slots=True)
class Fix:
    title: str
    edits: tuple[Edit, ...] = ()
    applicability: Applicability = Applicability.DISPLAY_ONLY
    code: str = ""  # the corrected source line(s), for display

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "applicability": self.applicability.value,
            "code": self.code,
            "edits": [e.to_dict() for e in self.edits],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Fix":
        return cls(data["title"], tuple(Edit.from_dict(e) for e in data["edits"]),
                   Applicability(data["applicability"]), data.get("code", ""))


@dataclass(frozen=True, slots=True)
class Related:
    span: Span
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.span.to_dict(), "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Related":
        return cls(Span.from_dict(data), data["message"])


@dataclass(frozen=True, slots=True)
class Diagnostic:
    rule: Rule
    message: str
    span: Span | None
    model: str = ""
    notes: tuple[str, ...] = ()
    related: tuple[Related, ...] = ()
    fix: Fix | None = None
    facts: tuple[tuple[str, Any], ...] = ()  # the numbers behind the message, for tools and tests

    @property
    def code(self) -> str:
        return self.rule.code

    @property
    def severity(self) -> Severity:
        return self.rule.severity

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def path(self) -> str | None:
        return self.span.path if self.span else None

    def fact(self, name: str, default: Any = None) -> Any:
        return dict(self.facts).get(name, default)

    def to_dict(self) -> dict[str, Any]:
        span = self.span.to_dict() if self.span else {
            "path": None, "line": None, "column": None, "end_line": None, "end_column": None}
        return {
            "code": self.rule.code,
            "name": self.rule.name,
            "severity": self.rule.severity.value,
            "message": self.message,
            **span,
            "model": self.model,
            "notes": list(self.notes),
            "related": [r.to_dict() for r in self.related],
            "fix": self.fix.to_dict() if self.fix else None,
            "facts": {name: _plain(value) for name, value in self.facts},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Diagnostic":
        from .rules.catalog import rule

        return cls(rule=rule(data["code"]), message=data["message"], span=Span.from_dict(data),
                   model=data.get("model", ""), notes=tuple(data.get("notes", ())),
                   related=tuple(Related.from_dict(r) for r in data.get("related", ())),
                   fix=Fix.from_dict(data["fix"]) if data.get("fix") else None,
                   facts=tuple((k, _tupled(v)) for k, v in data.get("facts", {}).items()))


@dataclass(frozen=True, slots=True)
class ShapeRecord:
    """One layer call, one shape-changing op or one op that merges tensors, in execution order."""

    name: str  # "conv1", "features.0", or the op ("view") for calls in forward
    kind: str  # "module", "op", or "merge" (an op on two or more tensors that keeps the shape: a residual add)
    op: str  # "Conv2d", "Linear", "view", "cat", ...
    in_shapes: tuple[tuple, ...]
    out_shapes: tuple[tuple, ...]
    line: int | None = None  # where it is called (forward)
    note: str = ""  # the formula that explains the output, one line
    steps: tuple[str, ...] = ()  # the full derivation
    error: str = ""  # raw torch text when the call failed
    sources: tuple[int, ...] = ()  # indices of the records that made its inputs; -1: the model's input
    scope: str = ""  # module path of the forward that made the call ("layer1.0"; "" at the top)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.op,
            "kind": self.kind,
            "line": self.line,
            "input_shapes": [list(s) for s in self.in_shapes],
            "output_shapes": [list(s) for s in self.out_shapes],
            "note": self.note,
            "steps": list(self.steps),
            "error": self.error,
            "sources": list(self.sources),
            "scope": self.scope,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ShapeRecord":
        return cls(name=data["name"], kind=data["kind"], op=data["type"],
                   in_shapes=_shapes(data["input_shapes"]), out_shapes=_shapes(data["output_shapes"]),
                   line=data.get("line"), note=data.get("note", ""), steps=tuple(data.get("steps", ())),
                   error=data.get("error", ""), sources=tuple(data.get("sources", ())),
                   scope=data.get("scope", ""))


class Status(str, enum.Enum):
    CHECKED = "checked"
    PARTIAL = "partial"  # the trace stopped early; what ran is reported
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True, slots=True)
class ModelResult:
    name: str
    path: str
    line: int | None
    input_shapes: tuple[tuple, ...]
    input_source: str  # "cli", "hint", "config", "example", "inferred", "" when none
    status: Status
    records: tuple[ShapeRecord, ...] = ()
    reason: str = ""
    input_dtypes: tuple[str, ...] = ()
    accepted_inputs: str = ""
    output_shapes: tuple[tuple, ...] = ()
    class_name: str = ""  # the nn.Module class (for a factory-built model too); "class" in JSON
    class_path: str = ""  # the file that defines the class
    init_source: str = ""  # "defaults", "factory", "call site train.py:41", "README.md:12", "hint", "config", "cli"
    init_call: str = ""  # how it was built: "UNet(n_channels=3, n_classes=2)"; "" for defaults
    input_names: tuple[str, ...] = ()  # per input, the name it is passed by ("" positional)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "line": self.line,
            "input_shapes": [list(s) for s in self.input_shapes],
            "input_dtypes": list(self.input_dtypes),
            "input_names": list(self.input_names) if any(self.input_names) else None,
            "input_source": self.input_source or None,
            "accepted_inputs": self.accepted_inputs or None,
            "status": self.status.value,
            "reason": self.reason or None,
            "output_shapes": [list(s) for s in self.output_shapes],
            "layers": [r.to_dict() for r in self.records],
            "class": self.class_name or None,
            "class_path": self.class_path or None,
            "init_source": self.init_source or None,
            "init": self.init_call or None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelResult":
        return cls(name=data["name"], path=data["path"], line=data.get("line"),
                   input_shapes=_shapes(data["input_shapes"]), input_dtypes=tuple(data.get("input_dtypes", ())),
                   input_source=data.get("input_source") or "", accepted_inputs=data.get("accepted_inputs") or "",
                   status=Status(data["status"]), reason=data.get("reason") or "",
                   output_shapes=_shapes(data.get("output_shapes", ())),
                   records=tuple(ShapeRecord.from_dict(r) for r in data.get("layers", ())),
                   class_name=data.get("class") or "", class_path=data.get("class_path") or "",
                   init_source=data.get("init_source") or "", init_call=data.get("init") or "",
                   input_names=tuple(data.get("input_names") or ()))


@dataclass(frozen=True, slots=True)
class Report:
    path: str
    models: tuple[ModelResult, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    source: str = field(default="", compare=False, repr=False)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def ok(self) -> bool:
        return not self.errors

    def exit_code(self, strict: bool = False) -> int:
        if self.errors:
            return 1
        if strict and any(d.severity is Severity.WARNING for d in self.diagnostics):
            return 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "path": self.path,
            "models": [m.to_dict() for m in self.models],
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "") -> "Report":
        """The inverse of ``to_dict`` (``source`` is not part of the plain data)."""
        return cls(path=data["path"], models=tuple(ModelResult.from_dict(m) for m in data["models"]),
                   diagnostics=tuple(Diagnostic.from_dict(d) for d in data["diagnostics"]), source=source)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def _plain(value: Any) -> Any:
    """Facts as JSON data: tuples become lists, anything else unknown becomes its text."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _tupled(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    if isinstance(value, dict):
        return {k: _tupled(v) for k, v in value.items()}
    return value


def _shapes(shapes) -> tuple[tuple, ...]:
    return tuple(tuple(s) for s in shapes)


def format_shape(shape: tuple) -> str:
    """(16, 1, 32, 32) -> '16×1×32×32'; () -> 'scalar'."""
    if not shape:
        return "scalar"
    return "×".join(str(d) for d in shape)


def shape_product(shape) -> int | None:
    """The number of elements of a shape; None when a size is not a known integer."""
    total = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        total *= d
    return total
