"""The public entry points: check a file, a source text or a model object, and get a Report.

The pipeline: load (skeleton only) -> discover models and their inputs -> build on the meta
device -> trace without data (meta or fake tensors) -> rules -> fixes (each re-checked).
This is the one place that catches exceptions from the user's code: each becomes a
diagnostic.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .engine import deadline
from .config import Settings
from .diagnostics import Diagnostic, ModelResult, Report, Severity, Span, Status
from .errors import UsageError, UserCodeStopped, WriteError, internal_errors
from .rules import Context, rule, run_rules


def check_file(path: str, inputs=None, init=None, settings: Settings | None = None) -> Report:
    """Check every model in a Python file. ``inputs``: shapes as strings ("16,1,32,32") or tuples."""
    from .source import SourceError

    settings = _settings(settings, inputs, init)
    try:
        source = read_source(path)
    except SourceError as exc:
        return undecodable_report(path, exc)
    return check_source(source, path, settings)


def read_source(path: str) -> str:
    """The text of a Python file as Python decodes it (coding line, BOM; its line breaks kept).

    UsageError if it is not a readable file; `shapecheck.source.SourceError` for bytes Python
    refuses (:func:`undecodable_report` makes that a syntax error).
    """
    from .source import read_source as read_text

    if os.path.isdir(path):
        raise UsageError(f"{path}: is a folder; pass it without --fix/--diff or name the files")
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    try:
        return read_text(path).text
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the file: {exc.strerror or exc}") from None


def undecodable_report(path: str, exc) -> Report:
    """The report of a file Python refuses to decode: SC901 at the first bad byte."""
    return _syntax_report(path, "SC901", exc.message, exc.line, exc.column)


def check_source(source: str, path: str, settings: Settings | None = None) -> Report:
    """Check source text as if it were the file at ``path`` (which need not exist)."""
    from .fixes import attach_fixes
    from .suppress import apply_suppressions

    from .worker.isolation import isolated

    settings = settings or Settings()
    with internal_errors(), isolated():
        try:
            report = _check_once(source, path, settings)
            if settings.prove_fixes and report.diagnostics:
                report = attach_fixes(report, _rechecker(path, settings))
        finally:
            deadline.start(None)  # no budget left running after the check
        return apply_suppressions(report)


def _rechecker(path: str, settings: Settings):
    def recheck(text: str, model: str) -> Report | None:
        if model and model in settings.unproven:
            return None  # re-checking this model crashed the worker before: the fix stays unproven
        deadline.phase(settings, "fix", model)
        only = (model,) if model else settings.models
        return _check_once(text, path, replace(settings, prove_fixes=False, models=only), explain=False)
    return recheck


def check(model, *inputs) -> Report:
    """Check a model object in memory. ``inputs``: shapes (tuples) or example tensors."""
    from .engine import session
    from .worker.isolation import isolated

    with internal_errors(), isolated():
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


def write_fixes(path: str, before: str, after: str) -> None:
    """Write ``after`` over the file ``path`` whose text was ``before``, in the file's own
    encoding and BOM (its line breaks are in the text). WriteError, with the file unchanged,
    when it cannot be written or no longer holds ``before``."""
    from .source import SourceError, read_source as read_text, write_fixed

    try:
        original = read_text(path)
        if original.text != before:
            raise WriteError(f"{path}: changed while it was checked; fixes not written")
        write_fixed(path, original, after)
    except OSError as exc:
        raise WriteError(f"{path}: fixes not written: {exc.strerror or exc}") from None
    except SourceError as exc:
        raise WriteError(f"{path}: fixes not written: {exc.message}") from None


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
    reason: str = ""    # why it was not built (model None), as the main command says it
    input_source: str = ""  # where its inputs came from: "cli", "hint", "config", "example", "inferred"


def load_models(path: str, inputs=(), init=(), device: str = "cpu") -> list[LoadedModel]:
    """Build each model of a file on ``device`` with fresh random weights, with its inputs.

    Loading follows the main command's rules (no training code runs; inputs from the flag,
    hint, config or an example). A model that cannot be built is skipped with no inputs.
    """
    from .engine import session
    from .engine.build import BuildError
    from .engine.loader import LoadError
    from .source import SourceError

    settings = Settings(inputs=tuple(inputs), init=tuple(init))
    try:
        prepared = session.prepare(read_source(path), path, settings)
    except SourceError as exc:
        raise UsageError(f"{path}: cannot load the file: line {exc.line}: {exc.message}") from None
    except LoadError as exc:
        raise UsageError(f"{path}: cannot load the file: {exc}") from None
    out = []
    for target in prepared.targets:
        if target.problem is not None:
            out.append(LoadedModel(target.name, None, (), _not_built(target.problem)))
            continue
        target.device = device
        try:
            out.append(LoadedModel(target.name, session.build_real(target), target.inputs, "", target.input_source))
        except BuildError as exc:
            raise UsageError(f"{path}: building {target.name} failed: {exc.message}") from None
    return out


def _not_built(problem) -> str:
    """Why verify skips a model the main command does not check, in the main command's words."""
    if problem.part_of:
        return f"a building block of {problem.part_of}: verify that model's file"
    return "; ".join([problem.listed_as or problem.message, *problem.notes[:1]])


VERIFY_SEED = 0


def verify_file(path: str, inputs=(), init=(), impls: str = "all", device: str = "auto", train: int = 0,
                optimizer: str = "sgd", lr: float = 0.01, train_dtype: str = "float64", progress=None):
    """``shapecheck verify``: every model of a file, its convolutions swapped for each from-scratch
    implementation in turn, compared with torch (forward, backward and double backward, every
    call, eval and train mode) in float64 and float32. With ``train`` > 0, each model is instead
    trained that many steps with torch's convolutions and with each implementation, and the loss
    curves and final weights are compared (one TrainReport per model and implementation).

    Returns (the reports, (name, reason) for each model that could not be verified). Models are
    built on CPU after seeding torch's generator, so their weights are reproducible. Raises
    UsageError for bad arguments, for a model torch itself cannot run, and when no model could be
    verified (a model without convolutions has nothing to verify). ``progress``, a function of
    one string, is told what each step is about to do.
    """
    import torch

    from .conv import IMPLEMENTATIONS
    from .conv.train import OPTIMIZERS, train_compare_all
    from .conv.verify import NothingToVerify, check_names, resolve_device, verify_model

    names = IMPLEMENTATIONS.names() if impls == "all" else [n.strip() for n in impls.split(",") if n.strip()]
    target = resolve_device(device)  # fail on a missing GPU before loading anything
    check_names(names, (train_dtype,))
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"unknown optimizer {optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    torch.manual_seed(VERIFY_SEED)
    if progress is not None:
        progress(f"loading {path} and building its models")
    loaded = load_models(path, inputs, init, "cpu")
    reports, skipped = [], []
    for found in loaded:
        if not found.inputs:
            skipped.append((found.name, found.reason or "no input shape known; pass --input, e.g. --input 16,1,32,32"))
            continue
        args = _verify_arguments(found, path, torch)
        try:
            if train:
                reports += train_compare_all(found.model, args, names, train, optimizer, lr, train_dtype, str(target),
                                             VERIFY_SEED, found.name, progress)
            else:
                reports.append(verify_model(found.model, args, names, device, seed=VERIFY_SEED, name=found.name,
                                            progress=progress))
        except NothingToVerify as nothing:
            skipped.append((found.name, str(nothing)))
    if not reports:
        raise UsageError(f"{path}: no model could be verified"
                         + "".join(f"\n  {name}: {reason}" for name, reason in skipped))
    return reports, skipped


VERIFY_BATCH = 2
"""verify's batch where shapecheck inferred the input: inference takes 8 for its symbolic sizes,
comparing numbers needs two samples (BatchNorm in train mode) and takes a quarter of the time."""


def _verify_arguments(found, path, torch) -> list:
    """The model's arguments for verify, after checking that torch runs the model on them; an
    inferred input at a batch of :data:`VERIFY_BATCH` when the model runs at that batch."""
    from .engine.infer import BATCH

    args = [_input(spec, torch) for spec in found.inputs]
    if found.input_source == "inferred" and any(_batch_of(a) == BATCH for a in args):
        smaller = [_with_batch(a, VERIFY_BATCH) if _batch_of(a) == BATCH else a for a in args]
        try:
            _runs_in_torch(found, smaller, path, torch)
            return smaller
        except UsageError:
            pass  # the model wants the batch it was inferred with
    _runs_in_torch(found, args, path, torch)
    return args


def _batch_of(arg) -> int | None:
    """The leading size of a shape (floating input) or of a tensor (integer input)."""
    shape = arg if isinstance(arg, tuple) else tuple(arg.shape)
    return shape[0] if shape else None


def _with_batch(arg, batch: int):
    return (batch, *arg[1:]) if isinstance(arg, tuple) else arg[:batch]


def _runs_in_torch(found, args, path, torch) -> None:
    """The model must run in torch itself before its convolutions can be compared."""
    from .engine.usercode import call_user, reraise_if_ours

    tensors = [torch.randn(a) if isinstance(a, tuple) else a for a in args]
    try:
        with torch.no_grad():
            call_user(found.model.eval(), *tensors)
    except Exception as exc:  # the user's model fails in torch: a shape bug, not a mismatch
        reraise_if_ours(exc)
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
def _check_once(source: str, path: str, settings: Settings, explain: bool = True) -> Report:
    """One pass: load, find, build, trace, rules. ``explain`` False (a fix proof, which reads only
    which findings remain and what each layer receives): no formulas on the records and no
    input sizes suggested."""
    from .engine import session
    from .engine.loader import LoadError

    deadline.phase(settings, "load")
    try:
        prepared = session.prepare(source, path, settings)
    except LoadError as exc:
        code = {"syntax": "SC901", "missing": "SC907"}.get(exc.kind, "SC902")
        return _syntax_report(path, code, exc.message, exc.line, exc.column, source)
    except (UserCodeStopped, SystemExit) as exc:  # the file's top level, not one model
        return Report(path=path, diagnostics=(stopped_diagnostic(exc, path, source),), source=source)
    lines = session.Locator(prepared.src, None)
    models, diagnostics = [], [_missing_import(s, lines.line_span(s.line)) for s in prepared.missing_imports]
    diagnostics += [_assumed_option(a, lines.line_span(a.line) if a.line else None) for a in prepared.assumed]
    for target in prepared.targets:
        deadline.phase(settings, "model", target.name, target.line)
        target.explain = explain
        result, found = _check_target(target, prepared.src)
        models.append(result)
        diagnostics.extend(found)
    if not models and not diagnostics:
        message = "no nn.Module model is defined or built in this file; nothing to check"
        diagnostics.append(Diagnostic(rule=rule("SC908"), message=message, span=Span(path, 1, 0, 1, 0)))
    return Report(path=path, models=tuple(models), diagnostics=tuple(ordered_diagnostics(diagnostics)), source=source)


def _syntax_report(path: str, code: str, message: str, line: int | None, column: int | None,
                   source: str = "") -> Report:
    """The report of a file that cannot be read or loaded: one SC901 or SC902 diagnostic."""
    span = _point(path, line, column) if line else None
    if code == "SC907":
        message = (f"{message}: a package this file needs is not installed where shapecheck runs, so its "
                   f"models were not checked; install it, or run shapecheck in the model's environment")
    else:
        message = f"{'syntax error' if code == 'SC901' else 'cannot load the file'}: {message}"
    return Report(path=path, diagnostics=(Diagnostic(rule=rule(code), message=message, span=span),), source=source)


def _missing_import(skipped, span: Span | None) -> Diagnostic:
    message = (f"{skipped.reason}; the file's models were checked without it (a model that needs "
               f"`{skipped.missing_import}` fails to build and says so)")
    return Diagnostic(rule=rule("SC907"), message=message, span=span)


def _assumed_option(assumed, span: Span | None) -> Diagnostic:
    message = (f"`{assumed.option}` is required and has no default: the models were built as "
               f"`{assumed.option} {assumed.value}` would build them ({assumed.why}); "
               f"other values may build them differently")
    return Diagnostic(rule=rule("SC915"), message=message, span=span)


def _check_target(target, src) -> tuple[ModelResult, list[Diagnostic]]:
    from .engine import session
    from .engine.build import BuildError

    if target.problem is not None:
        return _not_checked(target, src)
    try:
        target.model = session.build_target(target)
        return _trace_target(target, src)
    except BuildError as exc:
        span = session.Locator(src, target).line_span(exc.line) if exc.line else _class_span(target, src)
        code = "SC914" if _out_of_memory(exc.exception) else "SC905"
        diagnostic = Diagnostic(rule=rule(code), message=exc.message, span=span, model=target.name)
        return _result(target, Status.NOT_CHECKED, reason=exc.message), [diagnostic]
    except (UserCodeStopped, SystemExit) as exc:
        diagnostic = replace(stopped_diagnostic(exc, target.path, src.source if src else ""), model=target.name)
        if diagnostic.span is None:
            diagnostic = replace(diagnostic, span=_class_span(target, src))
        return _result(target, Status.NOT_CHECKED, reason=diagnostic.message), [diagnostic]


def _out_of_memory(exc: BaseException | None) -> bool:
    """A MemoryError, or torch's own words for an allocation the memory limit refused."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "can't allocate memory" in text or "not enough memory" in text


def stopped_diagnostic(exc: BaseException, path: str, source: str) -> Diagnostic:
    """SC910/SC911 for user code that was stopped (a blocked side effect, an exit call)."""
    from .engine.session import as_stopped

    stopped = as_stopped(exc, path)
    where = stopped.path or path
    span = line_span(where, source if where == path else "", stopped.line) if stopped.line else None
    return Diagnostic(rule=rule(stopped.code), message=stopped.message, span=span)


def line_span(path: str, source: str, line: int) -> Span:
    """The span of a line's text without its indentation (empty when the line is not known)."""
    from .source import split_lines

    lines = split_lines(source)
    text = lines[line - 1] if 1 <= line <= len(lines) else ""
    start = len(text) - len(text.lstrip())
    return Span(path, line, start, line, len(text.rstrip()))


def _trace_target(target, source_file) -> tuple[ModelResult, list[Diagnostic]]:
    from .engine import session

    trace = session.trace_target(target)
    locator = session.Locator(source_file, target)
    diagnostics = run_rules(trace.events, Context(model=target.name, locator=locator))
    if target.no_fit:
        diagnostics.insert(0, Diagnostic(rule=rule("SC130"), message=f"`{target.name}` accepts no input size: "
                                         f"{target.no_fit}", span=_class_span(target, source_file),
                                         model=target.name))
    if trace.out_of_time:
        diagnostics.append(Diagnostic(rule=rule("SC912"), message=f"`{target.name}`: {trace.stop_reason}",
                                      span=_class_span(target, source_file), model=target.name))
    status = Status.PARTIAL if trace.stopped else Status.CHECKED
    if trace.stopped and not trace.records:
        status = Status.NOT_CHECKED
    if target.guessed:
        diagnostics, status = _at_guessed_size(target, diagnostics, source_file), Status.NOT_CHECKED
    elif target.borrowed and any(d.severity is Severity.ERROR for d in diagnostics):
        target.guessed = target.borrowed
        diagnostics, status = _at_guessed_size(target, diagnostics, source_file), Status.NOT_CHECKED
    result = _result(target, status, records=tuple(trace.records), reason=trace.stop_reason or target.guessed,
                     outputs=trace.output_shapes)
    return result, diagnostics


def _at_guessed_size(target, diagnostics, source_file) -> list[Diagnostic]:
    """Errors at an inferred size that no size tried ran at prove nothing: one note instead."""
    kept = [d for d in diagnostics if d.severity is not Severity.ERROR]
    if len(kept) == len(diagnostics):
        return kept
    from .engine.session import needs_input

    problem = needs_input(target.spec, quiet=False, reason=target.guessed)
    return [Diagnostic(rule=rule("SC903"), message=problem.message, span=_class_span(target, source_file),
                       model=target.name, notes=problem.notes)] + kept


def _not_checked(target, src) -> tuple[ModelResult, list[Diagnostic]]:
    problem = target.problem
    if problem.quiet:  # a building block of a model in the file, or a class the file builds itself
        reason = "checked as part of the models that use it"
        if problem.part_of:
            reason = f"checked as part of {problem.part_of}"
        elif problem.listed_as:
            reason = problem.listed_as
        return _result(target, Status.NOT_CHECKED, reason=reason), []
    result = _result(target, Status.NOT_CHECKED, reason=problem.message)
    span = line_span(target.path, src.source, problem.line) if problem.line and src else _class_span(target, src)
    diagnostic = Diagnostic(rule=rule(problem.code), message=problem.message, span=span,
                            model=target.name, notes=tuple(problem.notes))
    return result, [diagnostic]


def _names(inputs) -> tuple[str, ...]:
    """The names the inputs are passed by; () when all go by position."""
    names = tuple(i.keyword for i in inputs)
    return names if any(names) else ()


def _result(target, status, records=(), reason="", outputs=()) -> ModelResult:
    from .engine import session

    return ModelResult(
        name=target.name, path=target.path, line=target.line,
        input_shapes=tuple(tuple(i.shape) for i in target.inputs),
        input_dtypes=tuple(i.dtype for i in target.inputs), input_names=_names(target.inputs),
        input_source=target.input_source,
        status=status, records=records, reason=reason, output_shapes=outputs,
        accepted_inputs=target.accepted, **session.built_as(target))


def _class_span(target, src) -> Span | None:
    if target.line is None:
        return None
    text = src.lines[target.line - 1] if src and target.line <= len(src.lines) else ""
    start = len(text) - len(text.lstrip())
    return Span(target.path, target.line, start, target.line, len(text.rstrip()))


def _point(path: str, line: int | None, column: int | None) -> Span:
    column = column or 0
    return Span(path, line, column, line, column + 1)


def ordered_diagnostics(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
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
