"""One file's models, from source text to traces: the engine's side of a check.

``prepare`` loads the skeleton, adds the file's factory functions as models, and decides for
every model how it is built (``construct``: flag, hint, config, call sites, defaults, the
project's sites and docs) and its inputs (flag > in-file hint > pyproject config > the example
of the call site it was built from > an example found in the file > inference), or why it
cannot be checked. ``build_target`` and ``trace_target`` then do the work; ``Locator`` maps
names and lines back to spans for the rules.
"""

from __future__ import annotations

import ast
import inspect
import os
from dataclasses import replace, dataclass, field

from ..diagnostics import Span
from ..source.examples import find_examples
from ..source.inputs import in_forward_order
from ..source.sites import base_names, factories
from . import construct, deadline, discover, loader, locate
from ..errors import MissingPackage, UsageError, UserCodeStopped
from .discover import InputSpec


@dataclass
class NotChecked:
    code: str  # SC903 needs-input-shape, SC904 needs-constructor-args
    message: str
    notes: tuple[str, ...] = ()
    quiet: bool = False  # a building block of another model: listed, not reported
    line: int | None = None  # where in the file it happened, when not at the class
    part_of: str = ""  # quiet: the model that covers it ("`UNet` (unet_model.py:20), which builds it")
    listed_as: str = ""  # quiet, covered by no model: the reason listed instead


def as_stopped(exc: BaseException, path: str) -> UserCodeStopped:
    """A blocked side effect as it is; an exit call (SystemExit) as SC911 at the user's line."""
    if isinstance(exc, UserCodeStopped):
        return exc
    line = loader.user_line(exc, path)
    code = getattr(exc, "code", None)
    message = (f"the code called sys.exit({'' if code is None else repr(code)})"
               + (f" at line {line}" if line else "") + ": the model was not checked")
    return UserCodeStopped(message, "SC911", path if line else "", line)


@dataclass
class Target:
    name: str
    path: str
    line: int | None
    spec: object = None
    inputs: tuple = ()
    input_source: str = ""
    init: dict = field(default_factory=dict)
    strict: bool = True
    problem: NotChecked | None = None
    model: object = None
    src: object = None
    device: str = "meta"
    symbolic: bool = True
    accepted: str = ""  # the input sizes inference found the model to accept
    no_fit: str = ""  # why no input size at all fits, when inference proved that none does
    guessed: str = ""  # why the inferred input is only a guess: every size tried failed
    borrowed: str = ""  # why an error proves nothing: the input or the arguments were written for another model
    construction: construct.Construction | None = None  # how it is built (None: not decided)
    context: construct.Context | None = None
    sites: dict = field(default_factory=dict)  # how each module of `model` was built (provenance.Built)
    explain: bool = True  # the formulas behind each layer and the sizes that would work (a fix proof needs neither)


@dataclass
class Prepared:
    src: object
    targets: list[Target]
    missing_imports: list = field(default_factory=list)  # loader.Skipped for each failed import
    assumed: list = field(default_factory=list)  # loader.Assumed: required options given a value


def prepare(source: str, path: str, settings) -> Prepared:
    """Parse and load the file, find its models and what each needs. Raises loader.LoadError."""
    from .provenance import recording

    src = loader.parse(source, path)
    with recording(path, module_level=True) as recorder:  # models the file builds at its top level
        loaded = loader.load_report(src)
    specs = discover.find_models(src, loaded.namespace)
    specs = _with_factories(specs, src, loaded.namespace)
    missing = loaded.missing_imports
    if missing and not specs:  # nothing to check: the failed import is the likely reason
        raise loader.LoadError(missing[0].reason, missing[0].line, None, "missing")
    if settings.models:
        chosen = [s for s in specs if s.name in settings.models]
        if specs and not chosen:
            raise UsageError(f"{path}: no model named {', '.join(settings.models)}; "
                             f"the file has {', '.join(s.name for s in specs)}")
        specs = chosen
    specs = [s for s in specs if s.name not in settings.exclude]  # the worker saw these hang or crash
    _attach_examples(src, specs)
    cli = tuple(discover.parse_input_flag(t) for t in settings.inputs)
    init = discover.parse_init_flags(list(settings.init))
    config = discover.read_config(path)
    context = construct.Context(src, loaded.namespace, lambda: _site_index(path, settings),
                                discover.read_init_config(path))
    roots = [s for s in specs if not s.is_used_by_other] or specs
    built = {type(s.obj) for s in specs if s.kind == "object"}  # classes the file builds itself
    targets = []
    for s in specs:
        deadline.phase(settings, "model", s.name, s.line)  # inference runs the model's code
        targets.append(_target(s, src, cli if s in roots else (), config, init, len(specs) > 1, settings.symbolic,
                               s.kind == "class" and s.obj in built, context))
        if s.kind == "object":
            targets[-1].sites = recorder.sites(s.obj)
    return Prepared(src, targets, missing, loaded.assumed)


def _site_index(path: str, settings):
    """The project's construction sites: the index the caller gives, else one read from the
    project root (settings.root, or the nearest folder with pyproject.toml, .git, setup.py)."""
    from ..source.project import project_root, project_sites

    if settings.sites is not None:
        return settings.sites
    if not os.path.isfile(path):
        return None
    if settings.root:
        return project_sites(settings.root)
    return project_sites(*project_root(path))


def _with_factories(specs: list, src, namespace: dict) -> list:
    """The file's factory functions (`def ResNet18(): return ResNet(...)`) as models of their
    own; the classes they build, and the blocks they pass, are checked through them."""
    classes = frozenset(s.name for s in specs if s.kind == "class")
    found = {name: where for name, where in factories(src.tree, classes).items()
             if callable(namespace.get(name)) and not loader.call_problem(_call_of(name), namespace, src)}
    if not found:
        return specs
    used = _names_in_functions(src, found)
    for spec in specs:
        if spec.kind == "class" and spec.name in used:
            spec.is_used_by_other = True
    made = [discover.ModelSpec(name, line, "factory", namespace[name], path=src.path)
            for name, (_, line) in found.items()]
    examples = find_examples(src, frozenset(found))
    for spec in made:
        if spec.name in examples:
            spec.example, spec.example_line = examples[spec.name]
    _share_examples(made, {name: built for name, (built, _) in found.items()}, find_examples(src))
    return sorted(specs + made, key=lambda spec: spec.line)


def _share_examples(made: list, builds: dict[str, str], class_examples: dict) -> None:
    """A factory with no example of its own takes the one of its class, or of a factory that
    builds the same class (`test()` runs `ResNet18()` on 1×3×32×32: ResNet34 is the same class)."""
    shared = {builds[s.name]: (s.example, s.example_line, s.name) for s in reversed(made) if s.example}
    for built, (example, line) in class_examples.items():
        shared.setdefault(built, (example, line, built))
    for spec in made:
        if spec.example is None and builds[spec.name] in shared:
            spec.example, spec.example_line, spec.example_from = shared[builds[spec.name]]


def _call_of(name: str) -> ast.expr:
    return ast.parse(f"{name}()", mode="eval").body


def _names_in_functions(src, functions) -> set[str]:
    bodies = [s for s in src.tree.body if isinstance(s, ast.FunctionDef) and s.name in functions]
    return {n.id for body in bodies for n in ast.walk(body) if isinstance(n, ast.Name)}


def _attach_examples(src, specs) -> None:
    found = find_examples(src)
    for spec in specs:
        if spec.name in found and spec.example is None:
            spec.example, spec.example_line = found[spec.name]


def _target(spec, src, cli, config, init, several: bool, symbolic: bool, built: bool, context) -> Target:
    target = Target(name=spec.name, path=src.path, line=spec.line, spec=spec, src=src, symbolic=symbolic,
                    context=context, init=init, strict=not several)
    given = [("cli", cli), ("hint", spec.hint), ("config", config.get(spec.name))]
    if spec.is_used_by_other and not any(v for _, v in given) and not spec.example:
        target.problem = needs_input(spec, quiet=True)  # a building block: checked inside its model
        return target
    if spec.kind == "class" and _no_forward(spec, src):
        target.problem = NotChecked("SC904", "", quiet=True, part_of=_covered_by(spec, context),
                                    listed_as="it has no `forward`: there is nothing to trace")
        return target
    try:
        target.construction = construct.choose(spec, init, not several, context, sites=not built)
    except discover.MissingArguments as exc:  # quiet when the file builds it with arguments itself
        target.problem = NotChecked("SC904", str(exc), quiet=spec.is_used_by_other or built)
        _block_elsewhere(target, context)
        return target
    except MissingPackage as exc:
        target.problem = NotChecked("SC907", exc.message, line=exc.line, quiet=spec.is_used_by_other)
        return target
    given += [("example", target.construction.example), ("example", spec.example)]
    target.borrowed = _borrowed_arguments(target.construction)
    for source, value in given:
        ordered = _in_order(value, target.construction.model) if source == "example" and value else value
        if ordered and (value is not spec.example or not spec.example_from or _borrowed_fits(target, ordered)):
            target.inputs, target.input_source = tuple(ordered), source
            if value is spec.example and spec.example_from and not target.borrowed:
                shapes = " and ".join("×".join(map(str, i.shape)) for i in value)
                target.borrowed = f"the example input of `{spec.example_from}` (the same class), {shapes}, does not fit it"
            return target
    failed = _infer(target, spec, init, not several)
    if failed is not None:
        target.problem = needs_input(spec, quiet=spec.is_used_by_other or built, reason=failed)
        _block_elsewhere(target, context)
    elif target.guessed and spec.kind == "class":  # no size tried runs: another model may cover it
        part_of = _covered_by(spec, context)
        if part_of:
            target.problem = replace(needs_input(spec, quiet=True, reason=target.guessed), part_of=part_of)
    return target


def _in_order(example, model):
    """An example's inputs in forward's order (some were passed by name); where they cannot all be
    given positionally, those passed by name come last and are traced by name."""
    from .provenance import parameter_names

    if not any(spec.keyword for spec in example):
        return example
    ordered = in_forward_order(example, parameter_names(model.forward))
    return ordered if ordered is not None else _named_last(example)


def _named_last(example):
    """The example's positional inputs, then those it passes by name, still named."""
    return tuple(s for s in example if not s.keyword) + tuple(s for s in example if s.keyword)


def _borrowed_arguments(construction) -> str:
    return f"{construction.borrowed}, do not fit it" if construction.borrowed else ""


def _block_elsewhere(target: Target, context) -> None:
    """A class that cannot be checked alone but that another model of the project covers is
    checked as part of it (see :func:`_covered_by`)."""
    if target.problem.quiet or target.spec.kind != "class":
        return
    part_of = _covered_by(target.spec, context)
    if part_of:
        target.problem = replace(target.problem, quiet=True, part_of=part_of)


def _covered_by(spec, context) -> str:
    """What covers a class: a class of its file that derives from it; a model class of another
    file that builds it (`self.down1 = Down(64, 128)` in `UNet`) or derives from it (`class
    VanillaVAE(BaseVAE)`); a model whose construction is given it (`WWT(task_heads=[Head()])`)."""
    here = _subclass_here(spec, context.src)
    index = context.index
    if here or index is None:
        return here
    owner = index.used_in(spec.name, spec.path)
    if owner is not None:
        where = owner.where(index.root)
        return f"its subclass `{owner.text}` ({where})" if owner.origin == "base" else \
            f"`{owner.text}` ({where}), which builds it"
    built = index.built_into(spec.name, spec.path)
    return f"`{built.callee}` ({built.where(index.root)}), which is built with it" if built is not None else ""


def _no_forward(spec, src) -> bool:
    """A class with neither a `forward` of its own nor one it inherits (only nn.Module's, which
    raises), and that its code never sets (`self.forward = ...`): not a model to call."""
    import torch

    if getattr(spec.obj, "forward", None) is not torch.nn.Module.forward:
        return False
    node = next((s for s in src.tree.body if isinstance(s, ast.ClassDef) and s.name == spec.name), None)
    return node is not None and not any(isinstance(n, ast.Attribute) and n.attr == "forward" or
                                        isinstance(n, ast.Name) and n.id == "forward" for n in ast.walk(node))


def _subclass_here(spec, src) -> str:
    """"its subclass `ResNetShard1` (line 80)" for a class another class of its file derives from."""
    for stmt in src.tree.body:
        if isinstance(stmt, ast.ClassDef) and spec.name in base_names(stmt) and stmt.name != spec.name:
            return f"its subclass `{stmt.name}` (line {stmt.lineno})"
    return ""


def _borrowed_fits(target: Target, inputs) -> bool:
    """Whether the example of another model of the same class runs through this one (else its
    input is inferred)."""
    from .build import BuildError
    from .infer import runs_at

    try:
        return runs_at(build_target(target), inputs)
    except (BuildError, discover.MissingArguments, UsageError):
        return False


def _infer(target: Target, spec, init: dict, strict: bool) -> str | None:
    """Infer the input from the first layer and the sizes the model accepts; None when it
    worked, else why not ("" when there is nothing to say).

    A forward with more required arguments than the one inferred input goes to the trace,
    which says which input is missing. Failing at every size tried is not proof that no
    size fits: errors at the size tried are not reported (``guessed``); only a size equation
    that no size solves is (SC130).
    """
    from .build import BuildError
    from .arguments import infer_arguments
    from .infer import infer_inputs
    from .tracer import missing_inputs

    if spec.is_used_by_other:  # a building block: checked as part of its model
        return ""
    try:
        model = build_target(target)
        hints, shapes = construct.stated(target.construction, spec.obj) if spec.kind != "object" else ((), ())
        if missing_inputs(model, 1):
            options = construct.option_sizes(type(model), target.context) if spec.kind != "factory" else ()
            found = (infer_arguments(model, missing_inputs(model, 0), spec.path, hints, shapes, options)
                     or _first_input(model))
        else:
            found = infer_inputs(model, spec.path, hints)
    except (BuildError, discover.MissingArguments, UsageError):
        return ""
    except deadline.OutOfTime as late:
        target.problem = NotChecked("SC912", f"inferring an input size for {spec.name} {late.message}; give "
                                    f"the input with --input or a `# shapecheck: input=...` hint")
        return None
    except (UserCodeStopped, SystemExit) as exc:  # the model's code was stopped: not checked, and why
        stopped = as_stopped(exc, spec.path)
        target.problem = NotChecked(stopped.code, stopped.message, line=stopped.line)
        return None
    if found is None or not found.inputs:
        return found.reason if found is not None else ""
    target.inputs, target.input_source, target.accepted = tuple(found.inputs), "inferred", found.accepted
    if not found.ok and found.proven:
        target.no_fit = found.reason
    elif not found.ok:
        target.guessed, target.accepted = found.reason, "not determined"
    return None


def _where(spec) -> str:
    if spec.kind == "class":
        return f"the line before `class {spec.name}`"
    if spec.kind == "factory":
        return f"the line before `def {spec.name}`"
    return f"the line before `{spec.name} =`"


def needs_input(spec, quiet: bool, reason: str = "") -> NotChecked:
    guess = "(16, 3, 32, 32)"
    message = f"`{spec.name}` was not checked: " + (reason or "no input shape is known")
    if spec.hint_error:
        message += f" (the hint cannot be read: {spec.hint_error})"
    notes = (f"add `# shapecheck: input={guess}` on {_where(spec)} (your real sizes), or pass --input 16,3,32,32",)
    return NotChecked("SC903", message, notes, quiet=quiet)


def _first_input(model):
    """For a forward of several arguments: the first one from the first layer, the rest unknown."""
    from .infer import Inference, find_layout, preferred_sizes

    layout = find_layout(model)
    if layout is None:
        return None
    return Inference((layout.spec(preferred_sizes(layout)),), "", "", True)


def build_target(target: Target):
    """The model on the meta device; raises build.BuildError with the user's line. The model
    built while choosing the construction is used once, untouched by any trace."""
    construction = target.construction
    if construction is not None and construction.model is not None and not construction.handed_out \
            and target.device == "meta":
        construction.handed_out = True
        target.sites = construction.sites
        return construction.model
    if target.spec is None or target.spec.kind == "object":  # built by the loader, sites recorded then
        return _build_on(target, target.device)
    from .provenance import recorded

    model, target.sites = recorded(target.path, lambda: _build_on(target, target.device))
    return model


def build_real(target: Target):
    """The model with real, freshly initialised weights on ``target.device``."""
    if target.spec.kind == "object":
        return with_real_weights(target.spec.obj, target.device)  # built on meta by the loader
    return _build_on(target, target.device)


def _build_on(target: Target, device: str):
    from .build import build

    if target.construction is None or target.context is None:
        return build(target.spec, target.init, device, target.strict)
    return construct.build_with(target.construction, target.spec, target.init, target.strict,
                                target.context, device)


def with_real_weights(model, device: str):
    """A meta-device module given memory on ``device`` and freshly initialised parameters."""
    model = model.to_empty(device=device)
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return model


def trace_target(target: Target):
    """Trace with shapes only; the batch dimension is made symbolic only where it matters.

    A static trace (meta tensors) comes first. If a reshape in the user's code might move the batch (a
    view/reshape whose first size could come from the batch), a second static trace at batch
    B+1 tells whether every such reshape keeps whole samples per row (its first size scales
    as k·B). If not, or if the two traces disagree, the symbolic trace (batch as a ShapeEnv
    symbol) decides exactly, and its findings are the ones reported.
    """
    from .tracer import Tracer

    inputs = [(tuple(i.shape), i.dtype) for i in target.inputs]
    result = _trace(target, inputs)
    if target.explain:
        _suggest_sizes(target, inputs, result)
    return result


def _trace(target: Target, inputs):
    from .tracer import Tracer

    static = _static_trace(target, inputs, target.explain)
    batch = inputs[0][0][0] if inputs and inputs[0][0] else 0
    if not target.symbolic or batch < 2 or _unsupported(static) or static.out_of_time:
        return static
    if not _batch_in_question(target, inputs, static, batch):
        return static
    symbolic = Tracer(target.path, "symbolic", target.device, target.explain).run(target.model, inputs, _named(target))
    if symbolic.out_of_time or (symbolic.stopped and not static.stopped and _unsupported(symbolic)):
        return static  # torch's symbolic shapes could not follow this model; the static trace stands
    if target.input_source == "inferred":  # an inferred time-major input has the batch in dim 1
        symbolic.events = [e for e in symbolic.events if e.kind != "sequence_batch"]
    else:
        symbolic.events = _stated_layout(symbolic.events, symbolic.output_shapes, _batch_shared(inputs))
    return symbolic


def _stated_layout(events, outputs, batch_shared: bool) -> list:
    """A stated input is read batch first; a time-first layer given it contradicts that when
    the output keeps dim 0 and drops the steps (``h[:, -1]``). An output that keeps both axes
    (one row per step and sample), or leads with the steps and drops dim 0 (``out[-1]`` of a
    time-major model), fits a time-major input as well: shapecheck cannot tell which axis is
    the batch, unless another layer of the model is built batch first or the inputs share
    dim 0 only. Such a finding is marked with what the output shows."""
    shape = tuple(outputs[0]) if outputs else ()
    for event in events:
        if event.kind != "sequence_batch" or not shape or batch_shared or event.facts["batch_first_elsewhere"]:
            continue
        batch, steps = event.facts["batch"], event.facts["steps"]
        if batch != steps and shape[0] == steps and batch not in shape:
            event.facts["layout_unknown"] = "steps"
        elif batch != steps and set(shape[:2]) == {batch, steps}:
            event.facts["layout_unknown"] = "both"
    return events


def _batch_shared(inputs) -> bool:
    """Two or more inputs with the same dim 0 and different dim 1 ((N, S) tokens and (N, T, E)
    memory): dim 0 is the batch, as time-major inputs would share dim 1 instead."""
    shapes = [shape for shape, _ in inputs if len(shape) >= 2]
    return len(shapes) > 1 and len({s[0] for s in shapes}) == 1 and len({s[1] for s in shapes}) > 1


def _batch_in_question(target: Target, inputs, static, batch: int) -> bool:
    """Whether only the symbolic batch can tell: a layer may read the batch as time (given an
    input that was not inferred), or a reshape's rows may not hold whole samples (a second
    static trace at B+1 settles most reshapes)."""
    if static.suspects and target.input_source != "inferred":
        return True
    if not static.reshapes:
        return False
    second = _trace_at_batch(target, inputs, batch + 1)
    return not second.out_of_time and not _scales_with_batch(static, second, batch)


def _suggest_sizes(target: Target, inputs, result) -> None:
    """Square image sizes that would work, each proven by a trace, for the errors that depend on
    the input size: a cat of tensors a floor made unequal, a window larger than the image."""
    from . import checks

    shape = inputs[0][0] if inputs else ()
    if len(shape) != 4 or shape[2] != shape[3] or not result.stages:
        return
    for event in result.events:
        if event.kind == "cat":
            near, rule, asks = checks.sizes_that_fit(result.stages, shape[2])
        elif event.kind == "kernel_too_large":
            smallest = checks.smallest_size_that_fits(result.stages, shape[2])
            near, rule, asks = ([smallest] if smallest else []), "", ""
        else:
            continue
        proven = tuple(n for n in near if _works_at(target, inputs, n))
        event.facts.update(working_sizes=proven, size_rule=rule if proven else "", size_asks=asks if proven else "")


def _works_at(target: Target, inputs, size: int) -> bool:
    moved = [((shape[:2] + (size, size)) if i == 0 else shape, dtype) for i, (shape, dtype) in enumerate(inputs)]
    trial = _static_trace(target, moved, explain=False)
    return not trial.stopped and not trial.events


def _unsupported(result) -> bool:
    return bool(result.events) and result.events[-1].kind in ("unsupported", "torch_error")


def _named(target: Target) -> tuple[str, ...]:
    """The names the last inputs are passed by (an example's keyword tensors that cannot be
    given positionally: `unet(x, t, class_labels=y)` past a `self_cond=None`)."""
    return tuple(spec.keyword for spec in target.inputs if spec.keyword)


def _trace_at_batch(target: Target, inputs, batch: int):
    from .tracer import Tracer

    moved = [((batch,) + shape[1:], dtype) if shape else (shape, dtype) for shape, dtype in inputs]
    return _static_trace(target, moved, explain=False)


def _static_trace(target: Target, inputs, explain: bool):
    """Plain meta tensors; where meta kernels cannot follow (data-dependent ops such as
    ``nonzero``), fake tensors with a ShapeEnv, which give such sizes a symbol of their own.
    ``explain``: the records carry their formulas (a trial trace, read only for whether it
    ran and how its reshapes sized their rows, needs none)."""
    from .tracer import Tracer

    result = Tracer(target.path, "meta", target.device, explain).run(target.model, inputs, _named(target))
    if result.stopped and _unsupported(result):
        return Tracer(target.path, "symbolic", target.device, explain).run(target.model, inputs, _named(target))
    return result


def _scales_with_batch(first, second, batch: int) -> bool:
    """Every reshape's first size is k·B at batch B and k·(B+1) at B+1 (rows of whole samples)."""
    if second.stopped or len(first.reshapes) != len(second.reshapes):
        return False
    for (in_a, out_a), (in_b, out_b) in zip(first.reshapes, second.reshapes):
        if in_a != (batch,):
            continue
        if in_b != (batch + 1,):  # the first size was B by coincidence, not the batch: decide exactly
            return False
        if not out_a or not out_b or out_a[0] % batch or out_b[0] != out_a[0] // batch * (batch + 1):
            return False
    return True


def object_target(model, inputs) -> Target:
    """A target for a model object given in memory (the Python API's ``check``)."""
    import torch

    cls = type(model)
    try:
        path = os.path.abspath(inspect.getsourcefile(cls) or "<model>")
        line = inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        path, line = "<model>", None
    specs = tuple(_input_spec(i) for i in inputs)
    param = next(iter(model.parameters()), None)
    device = str(param.device) if param is not None else "cpu"
    src = _source_for(path)
    return Target(name=cls.__name__, path=path, line=line, inputs=specs, input_source="cli", model=model,
                  src=src, device=device)


def _input_spec(value) -> InputSpec:
    import torch

    if isinstance(value, torch.Tensor):
        return InputSpec(tuple(value.shape), str(value.dtype).replace("torch.", ""))
    if isinstance(value, str):
        return discover.parse_input_flag(value)
    return InputSpec(tuple(int(d) for d in value))


def _source_for(path: str):
    try:
        return loader.parse_file(path)
    except (OSError, loader.LoadError):
        return None


class Locator:
    """Spans of layers and calls in the user's source, for the rules."""

    def __init__(self, src, target: Target):
        self.src = src
        self.target = target

    def layer(self, name: str):
        if self.src is None or self.target.model is None:
            return None
        from . import locate, provenance
        found = locate.layer_site(self.src, self.target.model, name, self.target.spec)
        built = self.target.sites.get(name)
        if found is not None or built is None or not built.direct:
            return found
        call = provenance.built_call(self.src, built)  # where reading the source could not tell
        layer = self.target.model.get_submodule(name)
        return locate.call_site(self.src, call, provenance.parameter_names(type(layer))) if call else None

    def origin(self, name: str, param: str):
        """Where the value of argument `param` of layer `name` was written (a provenance.Origin
        with its chain), from how the model was built; None when that was not recorded."""
        from . import provenance

        built = self.target.sites.get(name) if self.target is not None and self.src is not None else None
        if built is None or self.target.model is None:
            return None
        try:
            layer = self.target.model.get_submodule(name)
        except AttributeError:
            return None
        return provenance.follow(self.src, built, name, param, type(layer), _root(self.target, self.src))

    def op(self, line: int, names: tuple[str, ...]):
        if self.src is None:
            return None
        from . import locate
        return locate.op_site(self.src, line, names)

    def call(self, line: int, name: str):
        """The ``self.<name>(...)`` call on a line of forward (or of its parent container)."""
        if self.src is None:
            return None
        from . import locate
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            site = locate.call_site_at(self.src, line, ".".join(parts[:end]))
            if site is not None:
                return site
        return None

    def line_span(self, line: int) -> Span | None:
        if self.src is None or not (1 <= line <= len(self.src.lines)):
            return None
        text = self.src.lines[line - 1]
        start = len(text) - len(text.lstrip())
        return Span(self.src.path, line, start, line, len(text.rstrip()))

    def text(self, span: Span) -> str:
        if self.src is None or span is None:
            return ""
        return locate.span_text(self.src, span)




def _root(target: Target, src):
    """How shapecheck built the target's model, for following values back to where it was called."""
    from .provenance import Root, call_at

    spec, construction = target.spec, target.construction
    if spec is None or spec.kind == "object":
        return Root()
    init = construction.init if construction is not None and construction.init else target.init
    given = frozenset(k.rpartition(".")[2] for k in init if "." not in k or k.startswith(spec.name + "."))
    if construction is None or not construction.call or spec.kind == "factory":
        return Root(spec.name, given=given)
    call = call_at(src, construction.site_line, spec.name) if construction.site_line else None
    if call is not None:
        return Root(spec.name, call, given)
    parsed = ast.parse(construction.call, mode="eval").body
    return Root(spec.name, parsed if isinstance(parsed, ast.Call) else None, given, outside=True)


def built_as(target: Target) -> dict:
    """The model's class, the file that defines it, and how it was built, for its result."""
    construction = target.construction
    spec = target.spec
    model = construction.model if construction is not None and construction.model is not None else target.model
    if model is not None:
        cls = type(model)
    elif spec is not None:
        cls = spec.obj if spec.kind == "class" else type(spec.obj) if spec.kind == "object" else None
    else:
        cls = None
    return {"class_name": cls.__name__ if cls is not None else "", "class_path": _class_path(cls, target.path),
            "init_source": construction.source if construction is not None else "",
            "init_call": construction.call if construction is not None else ""}


def _class_path(cls, path: str) -> str:
    if cls is None:
        return ""
    if cls.__module__ == loader.USER_MODULE_NAME:
        return path
    try:
        return inspect.getsourcefile(cls) or ""
    except (OSError, TypeError):
        return ""
