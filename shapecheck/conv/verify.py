"""Prove that from-scratch convolutions compute what torch computes, call by call and end to end.

For each dtype the model is copied to the device. One run in eval mode records every
convolution call (:mod:`.census`): torch's layers, user subclasses of them and ``F.conv*`` calls
in a ``forward``, every call of each, with its inputs. Then, for each implementation:

- every call is checked in isolation on its recorded inputs: the output, the first-order
  gradients (input, weight, bias) for a fixed random cotangent, and the second-order ones
  (the gradient of a random combination of the first-order gradients, as ``create_graph=True``
  gives); a gradient one side has and the other lacks is a failure;
- the whole model runs with the implementation in place of every convolution call
  (:func:`.census.redirect`), in eval mode and in train mode (BatchNorm updating its running
  statistics, which are compared too; dropout off so that both runs see the same network),
  and its output, input and parameter gradients and second-order gradients are compared.

The reference is the exact answer to the same problem: torch in float64 from the same inputs
and weights (for float64 rows, torch in float64 itself). The error of one tensor is
``max|ours - ref|`` divided by the largest reference entry of its family: the outputs, the
first-order gradients taken as one vector over inputs and parameters, the second-order ones,
each buffer (so a gradient that cancels to zero, as a bias's before a BatchNorm does, is judged
at the scale of the whole gradient, not of its own rounding noise). Its tolerance comes from
its dtype and reduction length (:mod:`.tolerance`) and, for whole-model tensors, also from how
far simulated rounding moves them in float64 (:mod:`.spread`); never from torch's own error,
which is shown for information only. All of it runs under :func:`.tolerance.exact_arithmetic` (no TF32 or reduced-precision matmuls).

Attention (``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``, transformer layers)
runs its math backend, whose backward can be differentiated again. When some other operation of
the model has no second derivative in torch (``torch.cdist``, ``F.embedding_bag``), the
whole-model rows compare the output and first-order gradients only and say so; each
convolution call is still checked to second order on its own.

Times are of the forward with its first- and second-order derivatives, as a ratio to torch's
time in the same dtype: medians of up to ``repeats`` calls, fewer once :data:`TIME_BUDGET` is spent.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import CheckpointError

from ..engine._compat import math_attention
from ..errors import UsageError
from . import IMPLEMENTATIONS, branches, census, spread
from ._args import NotApplicable
from .spread import SPREAD_SAFETY
from .tolerance import exact_arithmetic, tolerance
from .tolerance import RULE as _CALL_RULE

RULE = f"{_CALL_RULE}; {spread.RULE}"

MODEL_ROW = "(model)"
"""The ``layer`` of the end-to-end rows."""
MODES = ("eval", "train")


class NothingToVerify(UsageError):
    """The model runs no convolution: there is nothing to swap."""


class NoSecondOrder(Exception):
    """torch cannot differentiate the model's first-order gradients (the message says where)."""


RECOMPUTES = "the model recomputes its forward in the backward (torch.utils.checkpoint), and that runs without the swap"
RECOMPUTED = f"not compared end to end: {RECOMPUTES}; each convolution call is checked on its own"


@dataclass(frozen=True)
class Check:
    """One row: an implementation on one convolution call (or the whole model) in one dtype.

    ``status`` is "pass", "fail", "not applicable" (the implementation refuses the call) or
    "error" (it raised); ``note`` says why for the last two. ``worst`` is the tensor furthest
    from the reference relative to its tolerance; ``max_rel``, ``tolerance`` and ``reduction``
    are that tensor's. ``torch_rel`` is torch's own error on it (float32 only). Values not
    measured are NaN and are left out of :meth:`to_dict`.
    """

    impl: str
    dtype: str
    mode: str
    layer: str
    kind: str
    reduction: int
    max_abs: float
    max_rel: float
    worst: str
    tolerance: float
    torch_rel: float
    status: str
    time_ratio: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "not applicable")

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not (isinstance(v, float) and math.isnan(v))}


@dataclass(frozen=True)
class Site:
    """A place in the model that runs convolutions, and how many calls it made."""

    name: str
    kind: str
    calls: int
    source: str     # "torch layer", "user subclass" or "function call"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class VerifyReport:
    model: str
    device: str
    seed: int
    checks: tuple[Check, ...]
    sites: tuple[Site, ...] = ()
    precision: tuple[tuple[str, str, str], ...] = ()
    rule: str = RULE
    notes: tuple[str, ...] = ()
    inputs: tuple[tuple[int, ...], ...] = ()   # the shape of each tensor the model was given

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def impls(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.impl for c in self.checks))

    def divergence(self, impl: str) -> tuple[Check, Check] | None:
        """(first failing row in execution order, row with the worst tensor), or None."""
        failed = [c for c in self.checks if c.impl == impl and not c.ok]
        if not failed:
            return None
        layers = [c for c in failed if c.layer != MODEL_ROW] or failed
        return layers[0], max(failed, key=_badness)

    def to_dict(self) -> dict:
        return {"model": self.model, "device": self.device, "seed": self.seed, "ok": self.ok,
                "inputs": [list(shape) for shape in self.inputs],
                "rule": self.rule, "notes": list(self.notes),
                "precision": [{"setting": s, "before": b, "used": u} for s, b, u in self.precision],
                "sites": [s.to_dict() for s in self.sites],
                "checks": [c.to_dict() for c in self.checks]}


def _badness(check: Check) -> float:
    if check.status == "error" or math.isnan(check.max_rel):
        return math.inf
    return check.max_rel / check.tolerance


def resolve_device(device: str) -> torch.device:
    """"cpu", "cuda" (an error without one) or "auto" (CUDA when present)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device} asked for, but torch sees no CUDA device on this machine")
    if not device.startswith(("cpu", "cuda")):
        raise UsageError(f"unknown device {device!r}: use cpu, cuda or auto")
    return torch.device(device)


def check_names(impls: Sequence[str], dtypes: Sequence[str]) -> None:
    for impl in impls:
        if impl != "auto" and impl not in IMPLEMENTATIONS.names():
            raise UsageError(f"unknown implementation {impl!r}; choose from auto, {', '.join(IMPLEMENTATIONS.names())}")
    for dtype in dtypes:
        if dtype not in ("float64", "float32"):
            raise UsageError(f"verify compares float64 and float32, not {dtype!r}")


def verify_model(model: nn.Module, inputs: Sequence, impls: Sequence[str], device: str = "auto",
                 dtypes: Sequence[str] = ("float64", "float32"), seed: int = 0, repeats: int = 3,
                 name: str | None = None, modes: Sequence[str] = MODES,
                 progress: Callable[[str], None] | None = None) -> VerifyReport:
    """Compare each implementation in ``impls`` with torch on ``model``.

    ``model`` is a real (not meta) module; it is copied, never changed. ``inputs`` are the
    forward arguments: a shape (tuple of ints) becomes a seeded standard-normal tensor, a tensor
    is used as given (floating tensors cast to each dtype). Raises :class:`NothingToVerify` when
    the model runs no convolution. ``progress`` is told, in a few words, what each step is about
    to do (a large model takes minutes).
    """
    target = resolve_device(device)
    check_names(impls, dtypes)
    checks, sites, shapes = [], (), ()
    with exact_arithmetic() as precision, math_attention(), census.plain_checkpoints():
        for dtype in dtypes:
            say = _stage_teller(progress, name or type(model).__name__, dtype)
            run = _DtypeRun(model, inputs, target, getattr(torch, dtype), seed, repeats, say)
            sites = sites or run.sites()
            shapes = tuple(tuple(a.shape) for a in run.args if isinstance(a, torch.Tensor))
            checks += run.checks(impls, modes)
    notes = ("train mode: BatchNorm updates its running statistics; dropout is off",) if "train" in modes else ()
    return VerifyReport(name or type(model).__name__, str(target), seed, tuple(checks), sites,
                        precision, RULE, notes, shapes)


def _stage_teller(progress, name: str, dtype: str) -> Callable[[str], None]:
    """What :func:`verify_model` says of each step: ``progress("Net, float64: <step>")``."""
    if progress is None:
        return lambda text: None
    return lambda text: progress(f"{name}, {dtype}: {text}")


@dataclass(frozen=True)
class _Reference:
    want: dict          # the exact derivatives an implementation must reproduce
    torch: dict         # torch's own in the checked dtype (empty in float64: torch is the reference)
    torch_time: float
    kinks: branches.Pinning | None = None   # the reference's side of every kink (whole-model runs)
    spread: dict | None = None  # how far simulated rounding moves each kind of tensor (whole-model runs)
    no_second_order: str = ""   # why the whole-model runs stop at first-order gradients, if they do
    unbounded: str = ""         # why the whole model is not compared in this mode, if it is not


class _DtypeRun:
    """Everything verify does in one dtype: the recorded calls, the references, the rows."""

    def __init__(self, model, inputs, device, dtype, seed, repeats, say):
        self.device, self.dtype, self.seed, self.repeats, self.say = device, dtype, seed, repeats, say
        self.dtype_name = str(dtype).removeprefix("torch.")
        self.model = copy_model(model).to(device=device, dtype=dtype).eval()
        self.args = _make_inputs(inputs, dtype, device, seed)
        say("finding the convolution calls")
        self.calls = census.record(self.model, self._plain_forward)
        if not self.calls:
            raise NothingToVerify(
                "nothing to verify: no convolution runs in the forward pass (no nn.Conv*/nn.ConvTranspose* "
                "layer, subclass of one, or F.conv*/torch.conv* call)")
        self.model_n = _model_reduction(self.model, self.calls)

    def _plain_forward(self):
        with torch.no_grad():
            self.model(*self.args)

    def sites(self) -> tuple[Site, ...]:
        counts = {}
        for call in self.calls:
            counts.setdefault(call.site, [call, 0])[1] += 1
        source = lambda c: "user subclass" if c.subclass else "torch layer" if c.layer else "function call"  # noqa: E731
        return tuple(Site(site, call.kind(), n, source(call)) for site, (call, n) in counts.items())

    def checks(self, impls, modes) -> list[Check]:
        """Every implementation's rows, implementation by implementation. Each reference is
        made once, checked against every implementation, and let go: on a large model the
        references of all calls and modes together take gigabytes."""
        rows = {impl: [] for impl in impls}
        for i, call in enumerate(self.calls):
            ref = self._call_reference(call, i)
            for impl in impls:
                self.say(f"{impl}, {self._which(i)}")
                rows[impl].append(self._check_call(impl, call, ref))
        for mode in modes:
            self.say(f"torch's derivatives of the whole model, {mode} mode")
            try:
                ref = self._model_reference(mode)
            except CheckpointError:
                ref = None
            for impl in impls:
                self.say(f"{impl}, the whole model, {mode} mode")
                rows[impl].append(self._check_model(impl, mode, ref))
        return [row for impl in impls for row in rows[impl]]

    def _which(self, i: int) -> str:
        return f"call {i + 1} of {len(self.calls)} ({self.calls[i].name})"

    # -- one convolution call ----------------------------------------------------------------
    def _call_reference(self, call, i: int) -> _Reference:
        self.say(f"torch's derivatives, {self._which(i)}")
        torch_run = lambda a: [call.function(**a)]  # noqa: E731
        want = _call_derivatives(torch_run, _cast(call.arguments, torch.float64), self.seed)
        run = lambda: _call_derivatives(torch_run, call.arguments, self.seed)  # noqa: E731
        return _Reference(want, *self._torch_own(run))

    def _torch_own(self, run) -> tuple[dict, float]:
        """torch's own derivatives in this dtype (none in float64: they are the reference) and
        its time, counting the call that made them."""
        if self.dtype == torch.float64:
            return {}, self._time(run)
        own, seconds = _timed(run, self.device)
        return own, self._time(run, (seconds,))

    def _check_call(self, impl, call, ref) -> Check:
        reductions = _call_reductions(call)
        make = self._row_maker(impl, "", call.name, call.kind(), reductions, ref)
        ours = lambda a: [census.call_from_scratch(impl, call.function, a)]  # noqa: E731
        run = lambda: _call_derivatives(ours, call.arguments, self.seed)  # noqa: E731
        try:
            got, seconds = _timed(run, self.device)
            ratio = self._time(run, _warm(impl, seconds)) / ref.torch_time
        except NotApplicable as refusal:
            return make(status="not applicable", note=f"not swapped, because {refusal}")
        except Exception as failure:  # an implementation's bug is a finding, not a crash
            return make(status="error", note=f"{type(failure).__name__}: {failure}")
        return make(got=got, time_ratio=ratio)

    # -- the whole model ---------------------------------------------------------------------
    def _model_reference(self, mode) -> _Reference:
        exact = lambda: _prepared(copy_model(self.model).double(), mode)  # noqa: E731
        args = _cast(self.args, torch.float64)
        try:
            want, kinks, why = *self._recorded(exact(), args, second=True), ""
        except NoSecondOrder as missing:
            want, kinks, why = *self._recorded(exact(), args, second=False), str(missing)
        noisy = exact()
        with spread.rounding_noise(self.dtype_name, self.seed) as too_few:
            moved = _pinned_run(noisy, args, self.seed, kinks, not why)[0]
        run = lambda: _pinned_run(_prepared(self.model, mode), self.args, self.seed, kinks, not why)[0]  # noqa: E731
        return _Reference(want, *self._torch_own(run), kinks, _spreads(moved, want), why, _unbounded(too_few))

    def _recorded(self, model, args, second: bool):
        """The reference's derivatives, and the side of each kink it took."""
        with branches.recording() as kinks:
            return _model_derivatives(model, args, self.seed, second), kinks

    def _check_model(self, impl, mode, ref) -> Check:
        kind = f"{len(self.calls)} convolution calls, {mode} mode"
        make = self._row_maker(impl, mode, MODEL_ROW, kind, {}, ref)
        if ref is None:
            return make(status="not applicable", note=RECOMPUTED)
        if ref.unbounded:
            return make(status="not applicable", note=ref.unbounded)
        model = _prepared(self.model, mode)
        run = lambda: _pinned_run(model, self.args, self.seed, ref.kinks, not ref.no_second_order)  # noqa: E731
        try:
            with census.redirect(model, impl) as refused:
                (got, kinks), seconds = _timed(run, self.device)
                if len(refused) == len(self.calls):
                    return make(status="not applicable", note="not swapped anywhere: " + next(iter(refused.values())))
                ratio = self._time(run, _warm(impl, seconds)) / ref.torch_time
        except Exception as failure:  # an implementation's bug is a finding, not a crash
            return make(status="error", note=f"{type(failure).__name__}: {failure}")
        notes = [f"{len(refused)} of {len(self.calls)} calls ran torch's own (refused)" if refused else "",
                 kinks.summary(), _second_order_note(ref)]
        return make(got=got, time_ratio=ratio, note="; ".join(n for n in notes if n))

    # -- shared --------------------------------------------------------------------------------
    def _row_maker(self, impl, mode, layer, kind, reductions, ref):
        def make(got=None, *, status=None, time_ratio=math.nan, note=""):
            if got is None:
                return Check(impl, self.dtype_name, mode, layer, kind, 0, math.nan, math.nan, "", math.nan,
                             math.nan, status, time_ratio, note)
            worst = _worst(got, ref.want, self._limit(reductions, ref))
            torch_rel = _torch_rel(ref, worst.key)
            status = "pass" if worst.rel <= worst.tol else "fail"
            return Check(impl, self.dtype_name, mode, layer, kind, worst.n, worst.abs, worst.rel, worst.label,
                         worst.tol, torch_rel, status, time_ratio, note)
        return make

    def _limit(self, reductions: dict, ref: _Reference):
        """key -> (n, tolerance): a call's tensor by its reduction length; an end-to-end one
        also by its spread (:mod:`.spread`), whichever allows more."""
        def limit(key):
            n = reductions.get(key, self.model_n)
            bound = tolerance(self.dtype_name, n)
            if ref.spread is not None:
                bound = max(bound, SPREAD_SAFETY * ref.spread.get(_kind(key), 0.0))
            return n, bound
        return limit

    def _time(self, run, taken=()) -> float:
        return _median_time(run, self.repeats, self.device, taken)


# -- derivatives ---------------------------------------------------------------------------------
def _unbounded(too_few: list[str]) -> str:
    """Why the whole model is not compared when a normalization averages two values only
    (:func:`.spread.rounding_noise`); "" when none does."""
    if not too_few:
        return ""
    which = (f"{too_few[0]} takes" if len(too_few) == 1
             else f"{len(too_few)} normalizations (the first: {too_few[0]}) take")
    return (f"not compared end to end: {which} its statistics over two values at this input, so "
            "rounding decides its gradients by more than verify can bound; each convolution call is "
            "checked on its own (a larger input or batch, with --input, compares the whole model)")


def _second_order_note(ref: _Reference) -> str:
    if not ref.no_second_order:
        return ""
    return f"output and first-order gradients only: torch has no second derivative here ({ref.no_second_order})"


def _derivatives(run, leaves: dict, seed: int, second: bool = True) -> dict[str, torch.Tensor]:
    """Outputs of ``run()``, the gradients of every leaf for a seeded cotangent, and (when
    ``second``) the second-order gradients: those of a seeded random combination of the
    first-order ones. Raises :class:`NoSecondOrder` when torch cannot take them.

    Each leaf's coefficient in that combination is drawn whatever its gradient turns out to
    be: a gradient that is constant (the bias of a last layer) carries a graph in one
    implementation and none in another, and drawing only for those with a graph would give
    every later leaf another coefficient, and so another second-order gradient."""
    outs = run()
    if second and (once := _once_differentiable(outs)):
        raise NoSecondOrder(f"the backward of {once} is @once_differentiable, and torch leaves out, "
                            "without an error, the second-order terms that pass through it")
    gen = torch.Generator().manual_seed(seed + 1)
    cotangents = [_randn_like(o, gen) for o in outs]
    names = list(leaves)
    coefficients = {n: _randn_like(leaves[n], gen) for n in names}
    grads = torch.autograd.grad(outs, [leaves[n] for n in names], cotangents, allow_unused=True,
                                create_graph=True)
    result = {f"output {i}": o.detach() for i, o in enumerate(outs)}
    result.update({f"grad {n}": g.detach() for n, g in zip(names, grads) if g is not None})
    graph = [(n, g) for n, g in zip(names, grads) if g is not None and g.requires_grad]
    if graph and second:
        total = sum((g * coefficients[n]).sum() for n, g in graph)
        try:
            seconds = torch.autograd.grad(total, [leaves[n] for n in names], allow_unused=True,
                                          materialize_grads=True)
        except CheckpointError:
            raise
        except RuntimeError as error:
            raise NoSecondOrder(str(error).strip().splitlines()[0].rstrip(".")) from error
        result.update({f"grad² {n}": g.detach() for n, g in zip(names, seconds)})
    return result


_ONCE_DIFFERENTIABLE = once_differentiable(lambda ctx, *grads: grads).__code__
"""The code of every ``@once_differentiable`` backward: the decorator's own wrapper."""


def _once_differentiable(outs) -> str | None:
    """The name of an autograd Function in ``outs``' graph whose backward is
    ``@once_differentiable``, or None. Such a backward runs without recording, so the
    derivatives of its own inputs' influence drop out of any second-order gradient."""
    seen, todo = set(), [o.grad_fn for o in outs if o.grad_fn is not None]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        function = getattr(node, "_forward_cls", None)
        if getattr(getattr(function, "backward", None), "__code__", None) is _ONCE_DIFFERENTIABLE:
            return function.__name__
        todo.extend(child for child, _ in node.next_functions if child is not None)
    return None


def _call_derivatives(run, arguments: dict, seed: int) -> dict:
    args = {k: v.detach().requires_grad_() if _is_float(v) else v for k, v in arguments.items()}
    leaves = {k: v for k, v in args.items() if _is_float(v)}
    return _derivatives(lambda: run(args), leaves, seed)


def _torch_rel(ref: _Reference, key: str) -> float:
    """torch's own error on ``key``, on the same scale as the row's."""
    return _errors(ref.torch, ref.want, (key,)).get(key, math.nan)


def _errors(got: dict, want: dict, keys=None) -> dict[str, float]:
    """The error of each tensor (of ``keys``, default all) that both have with one shape:
    ``max|got - want|`` over the largest entry of its family in ``want``."""
    scales = _family_scales(want)
    return {key: _ratio(_abs_error(got[key], want[key]), scales[_family(key)])
            for key in (want if keys is None else keys)
            if key in got and key in want and got[key].shape == want[key].shape}


def _prepared(model, mode: str):
    """``model`` itself in eval mode; in train mode a fresh copy (BatchNorm statistics change),
    with dropout off so that every run sees the same network."""
    if mode == "eval":
        return model
    model = copy_model(model).train()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()
    return model


def _model_derivatives(model, args, seed: int, second: bool = True) -> dict:
    """The model's derivatives (to second order when ``second``); in train mode its floating
    buffers after the run too."""
    args = [a.detach().requires_grad_() if _is_float(a) else a for a in args]
    leaves = {f"input {i}": a for i, a in enumerate(args) if _is_float(a)}
    leaves.update({n: p for n, p in model.named_parameters() if p.requires_grad})
    torch.manual_seed(seed)
    result = _derivatives(lambda: _tensors(model(*args)), leaves, seed, second)
    if model.training:
        result.update({f"buffer {n}": b.detach().clone() for n, b in model.named_buffers() if _is_float(b)})
    return result


def _pinned_run(model, args, seed: int, kinks: branches.Pinning, second: bool = True) -> tuple[dict, branches.Pinning]:
    """:func:`_model_derivatives` with every kink on the reference's side (:mod:`.branches`)."""
    with branches.following(kinks) as followed:
        return _model_derivatives(model, args, seed, second), followed


def _randn_like(t: torch.Tensor, gen) -> torch.Tensor:
    return torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.device, t.dtype)


# -- tolerances ------------------------------------------------------------------------------------
def _call_reductions(call) -> dict[str, int]:
    """Reduction length of each tensor of one call (see :mod:`.tolerance`)."""
    x, w = call.arguments["input"], call.arguments["weight"]
    taps, groups = math.prod(w.shape[2:]), call.arguments.get("groups", 1)
    batch = x.shape[0] if x.dim() == w.dim() else 1
    positions = batch * math.prod(call.out_shape[-call.dims:])
    in_positions = batch * math.prod(x.shape[-call.dims:])
    per_in, per_out = (w.shape[0] // groups, w.shape[1]) if call.transposed else (w.shape[1], w.shape[0] // groups)
    n = {"output 0": taps * per_in, "grad input": taps * per_out,
         "grad weight": in_positions if call.transposed else positions, "grad bias": positions}
    return {**n, **{f"grad² {k}": max(n.values()) for k in ("input", "weight", "bias")}}


def _model_reduction(model, calls) -> int:
    """For end-to-end tensors: the longest reduction of any convolution call or linear layer,
    times the number of them (errors of successive layers add up)."""
    linears = [m.in_features for m in model.modules() if isinstance(m, nn.Linear)]
    longest = max([max(_call_reductions(c).values()) for c in calls] + linears)
    return longest * (len(calls) + len(linears))


@dataclass(frozen=True)
class _Worst:
    key: str
    label: str
    n: int
    abs: float
    rel: float
    tol: float


def _worst(got: dict, want: dict, limit) -> _Worst:
    """The tensor furthest from ``want`` relative to its tolerance (``limit(key)`` gives its
    n and tolerance); a tensor only one side has (a dropped or an extra gradient) or of
    another shape is infinitely far."""
    scales = _family_scales(want)
    worst = None
    for key in dict.fromkeys([*want, *got]):
        n, tol = limit(key)
        if key not in got or key not in want:
            label, diff, rel = f"{key} ({'missing' if key not in got else 'extra'})", math.inf, math.inf
        elif got[key].shape != want[key].shape:
            label, diff, rel = f"{key} (shape {list(got[key].shape)} != {list(want[key].shape)})", math.inf, math.inf
        else:
            label, diff = key, _abs_error(got[key], want[key])
            rel = _ratio(diff, scales[_family(key)])
        if worst is None or rel / tol > worst.rel / worst.tol:
            worst = _Worst(key, label, n, diff, rel, tol)
    return worst


def _spreads(moved: dict, want: dict) -> dict[str, float]:
    """The largest error of each kind of tensor (:func:`_kind`) in a run with simulated rounding."""
    spreads: dict[str, float] = {}
    for key, error in _errors(moved, want).items():
        spreads[_kind(key)] = max(spreads.get(_kind(key), 0.0), error)
    return spreads


def _kind(key: str) -> str:
    """The outputs, the first-order gradients, the second-order ones, the buffers: one spread
    each, the largest over all their tensors (the spread of a single small tensor is one
    random draw, which may come out near zero)."""
    return "buffer" if key.startswith("buffer") else _family(key)


def _family(key: str) -> str:
    """Tensors measured on one scale: the outputs, the first-order gradients (one vector over
    all inputs and parameters), the second-order ones, each buffer."""
    return key if key.startswith("buffer") else key.split(" ")[0]


def _family_scales(want: dict) -> dict[str, float]:
    """Each family's largest magnitude. A BatchNorm's running mean is measured on the spread
    of what it averages, the square root of its running variance, when that is larger: the
    mean of a zero-mean input (a bias-free 1x1 convolution of a normalized tensor) is zero but
    for rounding, and against its own size any rounding would be an infinite error."""
    scales: dict[str, float] = {}
    for key, tensor in want.items():
        scales[_family(key)] = max(scales.get(_family(key), 0.0), _top(tensor))
    for key in want:
        variance = key.removesuffix("running_mean") + "running_var"
        if key.startswith("buffer") and key.endswith(".running_mean") and variance in want:
            scales[key] = max(scales[key], math.sqrt(_top(want[variance])))
    return scales


def _top(tensor: torch.Tensor) -> float:
    return tensor.abs().max().item() if tensor.numel() else 0.0


def _abs_error(have, want) -> float:
    if not want.numel():
        return 0.0
    diff = (have.double() - want.double()).abs().max().item()
    return math.inf if math.isnan(diff) else diff


def _ratio(diff: float, scale: float) -> float:
    return diff / scale if scale else (0.0 if diff == 0 else math.inf)


# -- plumbing ----------------------------------------------------------------------------------------
def copy_model(model: nn.Module) -> nn.Module:
    """A deep copy of ``model``. A tensor that a forward pre-hook computes and keeps as a plain
    attribute (the ``weight`` of ``torch.nn.utils.spectral_norm`` and of the old
    ``weight_norm`` after a forward) is not a graph leaf, and ``copy.deepcopy`` refuses it;
    the copy gets it detached (its hook computes it again on the copy's next forward)."""
    memo = {}
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(model, memo)


def _make_inputs(inputs, dtype, device, seed) -> list:
    gen = torch.Generator().manual_seed(seed)
    made = []
    for spec in inputs:
        if isinstance(spec, torch.Tensor):
            made.append(spec.to(device=device, dtype=dtype) if _is_float(spec) else spec.to(device))
        else:
            made.append(torch.randn(tuple(spec), generator=gen, dtype=torch.float64).to(device, dtype))
    return made


def _cast(values, dtype):
    """Floating tensors of a list or dict of arguments cast to ``dtype``."""
    cast = lambda v: v.to(dtype) if _is_float(v) else v  # noqa: E731
    if isinstance(values, dict):
        return {k: cast(v) for k, v in values.items()}
    return [cast(v) for v in values]


TIME_BUDGET = 0.5
"""Seconds of timed calls after which a time stops being measured again: one call of a large
layer's derivatives is already a steady figure, and timing took four of every five runs."""


def _median_time(run, repeats: int, device: torch.device, taken=()) -> float:
    """Median seconds of ``run`` over ``repeats`` calls, fewer once they have taken
    :data:`TIME_BUDGET`; ``taken``: seconds of calls already made (the one whose results are
    checked), which count. No warm-up call: every caller has just run the same computation, so
    on a large model the call that gave the results is often the only one timed."""
    times = list(taken)
    while not times or (len(times) < repeats and sum(times) < TIME_BUDGET):
        times.append(_timed(run, device)[1])
    return statistics.median(times)


def _timed(run, device: torch.device) -> tuple:
    """``run()``'s result and the seconds it took."""
    _synchronize(device)
    start = time.perf_counter()
    result = run()
    _synchronize(device)
    return result, time.perf_counter() - start


def _warm(impl: str, seconds: float) -> tuple[float, ...]:
    """The first call's time as a timing, except for ``auto``, whose first call on a layer
    measures the implementations before it picks one."""
    return () if impl == "auto" else (seconds,)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _tensors(out) -> list[torch.Tensor]:
    """The floating tensors of a (possibly nested) forward result, in order."""
    if isinstance(out, torch.Tensor):
        return [out] if _is_float(out) else []
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _tensors(item)]
    return []


def _is_float(value) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()
