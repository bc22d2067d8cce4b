"""The public entry points: check a file, a source text or a model object, and get a Report.

The pipeline: load (skeleton only) -> discover models and their inputs -> build on the meta
device -> trace without data (meta or fake tensors) -> rules -> fixes (each re-checked).
This is the one place that catches exceptions from the user's code: each becomes a
diagnostic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .config import Settings
from .diagnostics import Diagnostic, ModelResult, Report, Span, Status
from .errors import UsageError
from .rules import Context, rule, run_rules


def check_file(path: str, inputs=None, init=None, settings: Settings | None = None) -> Report:
    """Check every model in a Python file. ``inputs``: shapes as strings ("16,1,32,32") or tuples."""
    settings = _settings(settings, inputs, init)
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    with open(path, encoding="utf-8", errors="replace") as handle:
        source = handle.read()
    return check_source(source, path, settings)


def check_source(source: str, path: str, settings: Settings | None = None) -> Report:
    """Check source text as if it were the file at ``path`` (which need not exist)."""
    from .fixes import attach_fixes
    from .suppress import apply_suppressions

    settings = settings or Settings()
    report = _check_once(source, path, settings)
    if settings.prove_fixes and report.diagnostics:
        def recheck(text: str, model: str) -> Report:
            only = (model,) if model else settings.models
            return _check_once(text, path, replace(settings, prove_fixes=False, models=only))
        report = attach_fixes(report, recheck)
    return apply_suppressions(report)


def check(model, *inputs) -> Report:
    """Check a model object in memory. ``inputs``: shapes (tuples) or example tensors."""
    from .engine import session

    target = session.object_target(model, inputs)
    result, diagnostics = _trace_target(target, source_file=target.src)
    return Report(path=target.path, models=(result,), diagnostics=tuple(diagnostics))


def fixed_source(report: Report) -> tuple[str, int]:
    """The report's source with every SAFE fix applied (non-overlapping), and how many edits."""
    from .fixes import apply_edits, safe_edits

    edits = safe_edits(report)
    if not edits:
        return report.source, 0
    applied = apply_edits(report.source, edits)
    if not applied.ok:
        raise UsageError(f"{report.path}: fixes not applied: {applied.error}")
    return applied.text, len(edits)


def source_diff(path: str, before: str, after: str) -> str:
    from .fixes.apply import diff

    return diff(path, before, after)


def explain(code: str) -> str:
    """The documentation of a rule, by code (SC101) or name (linear-in-features)."""
    from .rules.catalog import BY_NAME, REGISTRY

    found = REGISTRY.get(code.upper()) or BY_NAME.get(code)
    if found is None:
        raise UsageError(f"unknown code {code!r}; known: {', '.join(REGISTRY)}")
    return f"{found.code} {found.name} ({found.severity.value})\n\n{found.summary}\n\n{found.explanation}"


@dataclass
class LoadedModel:
    """A model of a file built for real (weights in memory), for ``shapecheck verify``."""

    name: str
    model: object
    inputs: tuple


def load_models(path: str, inputs=(), init=(), device: str = "cpu") -> list[LoadedModel]:
    """Build each model of a file on ``device`` with fresh random weights, with its inputs.

    Loading follows the main command's rules (no training code runs; inputs from the flag,
    hint, config or an example). A model that cannot be built is skipped with no inputs.
    """
    from .engine import session
    from .engine.build import BuildError
    from .engine.loader import LoadError

    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    with open(path, encoding="utf-8", errors="replace") as handle:
        source = handle.read()
    settings = Settings(inputs=tuple(inputs), init=tuple(init))
    try:
        prepared = session.prepare(source, path, settings)
    except LoadError as exc:
        raise UsageError(f"{path}: cannot load the file: {exc}") from None
    out = []
    for target in prepared.targets:
        if target.problem is not None:
            out.append(LoadedModel(target.name, None, ()))
            continue
        target.device = device
        try:
            out.append(LoadedModel(target.name, session.build_real(target), target.inputs))
        except BuildError as exc:
            raise UsageError(f"{path}: building {target.name} failed: {exc.message}") from None
    return out


VERIFY_SEED = 0


def verify_file(path: str, inputs=(), init=(), impls: str = "all", device: str = "auto", train: int = 0,
                optimizer: str = "sgd", lr: float = 0.01, train_dtype: str = "float64"):
    """``shapecheck verify``: every model of a file, its convolutions swapped for each from-scratch
    implementation in turn, compared with torch (forward, backward and double backward, every
    call, eval and train mode) in float64 and float32. With ``train`` > 0, each model is instead
    trained that many steps with torch's convolutions and with each implementation, and the loss
    curves and final weights are compared (one TrainReport per model and implementation).

    Returns (the reports, (name, reason) for each model that could not be verified). Models are
    built on CPU after seeding torch's generator, so their weights are reproducible. Raises
    UsageError for bad arguments, for a model torch itself cannot run, and when no model could be
    verified (a model without convolutions has nothing to verify).
    """
    import torch

    from .conv import IMPLEMENTATIONS
    from .conv.train import OPTIMIZERS, train_compare
    from .conv.verify import NothingToVerify, check_names, resolve_device, verify_model

    names = IMPLEMENTATIONS.names() if impls == "all" else [n.strip() for n in impls.split(",") if n.strip()]
    target = resolve_device(device)  # fail on a missing GPU before loading anything
    check_names(names, (train_dtype,))
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    torch.manual_seed(VERIFY_SEED)
    loaded = load_models(path, inputs, init, "cpu")
    reports, skipped = [], []
    for found in loaded:
        if not found.inputs:
            skipped.append((found.name, "no input shape known; pass --input, e.g. --input 16,1,32,32"))
            continue
        args = [_input(spec, torch) for spec in found.inputs]
        _runs_in_torch(found, args, path, torch)
        try:
            if train:
                reports += [train_compare(found.model, args, impl, train, optimizer, lr, train_dtype, str(target),
                                          VERIFY_SEED, found.name) for impl in names]
            else:
                reports.append(verify_model(found.model, args, names, device, seed=VERIFY_SEED, name=found.name))
        except NothingToVerify as nothing:
            skipped.append((found.name, str(nothing)))
    if not reports:
        raise UsageError(f"{path}: no model could be verified"
                         + "".join(f"\n  {name}: {reason}" for name, reason in skipped))
    return reports, skipped


def _runs_in_torch(found, args, path, torch) -> None:
    """The model must run in torch itself before its convolutions can be compared."""
    tensors = [torch.randn(a) if isinstance(a, tuple) else a for a in args]
    try:
        with torch.no_grad():
            found.model.eval()(*tensors)
    except Exception as exc:  # the user's model fails in torch: a shape bug, not a mismatch
        shapes = ", ".join("×".join(map(str, t.shape)) for t in tensors)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"{found.name} does not run in torch at input {shapes}: {first}\n"
                         f"  run `shapecheck {path}` to find and fix the shape bug first") from None


def _input(spec, torch):
    """A shape for floating inputs (verify makes them per dtype); zeros for integer ones, which
    are valid indices for any embedding."""
    dtype = getattr(torch, spec.dtype)
    if dtype.is_floating_point:
        return tuple(spec.shape)
    return torch.zeros(spec.shape, dtype=dtype)


# -- one pass over a source text -----------------------------------------------------------
def _check_once(source: str, path: str, settings: Settings) -> Report:
    from .engine import session
    from .engine.loader import LoadError

    try:
        prepared = session.prepare(source, path, settings)
    except LoadError as exc:
        code = "SC901" if exc.kind == "syntax" else "SC902"
        span = _point(path, exc.line, exc.column) if exc.line else None
        message = f"{'syntax error' if code == 'SC901' else 'cannot load the file'}: {exc.message}"
        diagnostic = Diagnostic(rule=rule(code), message=message, span=span)
        return Report(path=path, diagnostics=(diagnostic,), source=source)
    lines = session.Locator(prepared.src, None)
    models, diagnostics = [], [_missing_import(s, lines.line_span(s.line)) for s in prepared.missing_imports]
    for target in prepared.targets:
        result, found = _check_target(target, prepared.src)
        models.append(result)
        diagnostics.extend(found)
    return Report(path=path, models=tuple(models), diagnostics=tuple(_ordered(diagnostics)), source=source)


def _missing_import(skipped, span: Span | None) -> Diagnostic:
    message = (f"{skipped.reason}; the file's models were checked without it (a model that needs "
               f"`{skipped.missing_import}` fails to build and says so)")
    return Diagnostic(rule=rule("SC907"), message=message, span=span)


def _check_target(target, src) -> tuple[ModelResult, list[Diagnostic]]:
    from .engine import session
    from .engine.build import BuildError

    if target.problem is not None:
        return _not_checked(target, src)
    try:
        target.model = session.build_target(target)
    except BuildError as exc:
        span = session.Locator(src, target).line_span(exc.line) if exc.line else _class_span(target, src)
        diagnostic = Diagnostic(rule=rule("SC905"), message=exc.message,
                                span=span, model=target.name)
        return _result(target, Status.NOT_CHECKED, reason=exc.message), [diagnostic]
    return _trace_target(target, src)


def _trace_target(target, source_file) -> tuple[ModelResult, list[Diagnostic]]:
    from .engine import session

    trace = session.trace_target(target)
    locator = session.Locator(source_file, target)
    diagnostics = run_rules(trace.events, Context(model=target.name, locator=locator))
    if target.no_fit:
        diagnostics.insert(0, Diagnostic(rule=rule("SC130"), message=f"`{target.name}` accepts no input size: "
                                         f"{target.no_fit}", span=_class_span(target, source_file),
                                         model=target.name))
    status = Status.PARTIAL if trace.stopped else Status.CHECKED
    result = _result(target, status, records=tuple(trace.records), reason=trace.stop_reason,
                     outputs=trace.output_shapes)
    return result, diagnostics


def _not_checked(target, src) -> tuple[ModelResult, list[Diagnostic]]:
    problem = target.problem
    if problem.quiet:  # a building block of a model in the file, or a class the file builds itself
        reason = "checked as part of the models that use it"
        return _result(target, Status.NOT_CHECKED, reason=reason), []
    result = _result(target, Status.NOT_CHECKED, reason=problem.message)
    diagnostic = Diagnostic(rule=rule(problem.code), message=problem.message, span=_class_span(target, src),
                            model=target.name, notes=tuple(problem.notes))
    return result, [diagnostic]


def _result(target, status, records=(), reason="", outputs=()) -> ModelResult:
    return ModelResult(
        name=target.name, path=target.path, line=target.line,
        input_shapes=tuple(tuple(i.shape) for i in target.inputs),
        input_dtypes=tuple(i.dtype for i in target.inputs), input_source=target.input_source,
        status=status, records=records, reason=reason, output_shapes=outputs,
        accepted_inputs=target.accepted)


def _class_span(target, src) -> Span | None:
    if target.line is None:
        return None
    text = src.lines[target.line - 1] if src and target.line <= len(src.lines) else ""
    start = len(text) - len(text.lstrip())
    return Span(target.path, target.line, start, target.line, len(text.rstrip()))


def _point(path: str, line: int | None, column: int | None) -> Span:
    column = column or 0
    return Span(path, line, column, line, column + 1)


def _ordered(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Source order; each (code, span) once (a shared layer reported by two models counts once)."""
    seen, out = set(), []
    for d in sorted(diagnostics, key=lambda d: (d.line or 0, d.span.column if d.span else 0, d.code)):
        key = (d.code, d.span, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _settings(settings, inputs, init) -> Settings:
    settings = settings or Settings()
    if inputs is not None:
        if isinstance(inputs, str) or (isinstance(inputs, tuple) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        texts = tuple(i if isinstance(i, str) else ",".join(map(str, i)) for i in inputs)
        settings = replace(settings, inputs=texts)
    if init is not None:
        texts = tuple(f"{k}={v!r}" for k, v in init.items()) if isinstance(init, dict) else tuple(init)
        settings = replace(settings, init=texts)
    return settings
