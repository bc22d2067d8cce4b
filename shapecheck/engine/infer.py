"""Which input sizes a model accepts, worked out from its first layer when nobody said.

The last step of input discovery (after the flag, the hint, the config and an example in the
file). Three stages:

1. **Layout** — the first layer the forward pass reaches fixes the rank, the channels or
   features and the dtype: ``Conv2d(in_channels=1)`` → ``N×1×H×W``, ``Embedding`` → ``N×T``
   int64 tokens, ``Linear(784, …)`` → ``N×784``, ``LSTM`` → ``N×T×input_size`` (or
   ``T×N×input_size``), ``MultiheadAttention`` → ``N×T×embed_dim``. The first layer is
   found by running the model on meta tensors with forward pre-hooks (registration order in
   ``model.modules()`` is only the first guess).
2. **Constraints** — one trace on fake tensors in which the batch and the free sizes (H, W,
   T...) are symbols of a :class:`ShapeEnv`. Where a layer declares a size (``in_features``,
   ``in_channels``...) or a ``view(-1, k)`` fixes the values per sample, the symbolic size that
   arrives is recorded as an equation and the trace goes on with a fitting tensor. The guards
   torch records on the way (kernel no larger than its input, ...) are the other conditions.
3. **Solve and confirm** — every equation and guard is evaluated over all sizes from 1 to a
   limit at once (vectorised with integer tensors: ``FloorDiv``, ``Mod``, ``Max``...), which
   gives the accepted set exactly; the representative size, the corners of every accepted
   block and their neighbours just outside are then confirmed by plain meta forward passes.

The batch used is 8: sizes 0 and 1 are specialised to constants by torch's symbolic shapes,
and 8 is small and common. Guards that only ask whether a size is 1 (broadcasting paths) are
not conditions for acceptance and are left out; the confirmation step checks that reasoning.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import prod

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from . import deadline
from .checks import is_unsupported, symbolic_only, view_strides
from ._compat import symbolic_tensor
from .discover import InputSpec
from .layers import expected_input
from .loader import first_line
from .patterns import is_pattern_layer, pattern_input
from .shortcuts import shortcut
from .symbolic import onto_trace_device
from .usercode import StandInError, call_user, reraise_if_ours

BATCH = 8
LIMITS = {0: 1, 1: 2048, 2: 512, 3: 64}  # largest size tried per free dimension, by their number
PREFERRED = {1: (32, 64, 128, 16), 2: (28, 32, 64, 224), 3: (16, 32, 8)}
MAX_CHECKS = 32  # static forward passes used to confirm the solved set
_TORCH_DIR = os.path.dirname(torch.__file__)


@dataclass(frozen=True)
class Inference:
    """What inference found: the input to check with, the accepted set in words, and why.

    With ``ok`` False (no size fits) ``inputs`` is still the most promising size, so that a
    trace there shows the error where it happens; it is empty when inference itself failed.
    """

    inputs: tuple[InputSpec, ...]
    accepted: str
    reason: str
    ok: bool
    proven: bool = False  # when not ok: solved, no size up to the limit fits (not only the sizes tried)


@dataclass(frozen=True)
class Layout:
    """The input a first layer implies: ``shape`` has None where a size is free."""

    layer: str
    described: str  # "Conv2d(in_channels=1)"
    shape: tuple
    names: tuple[str, ...]  # the free sizes' letters, in order
    batch_axis: int
    dtype: str = "float32"
    steps: tuple[int, ...] = ()  # per free size: the factor it must be a multiple of (1: any)
    position: int = 0  # which forward argument this is
    others: tuple[InputSpec, ...] = ()  # the other arguments, fixed, in order
    latent: bool = False  # a transposed convolution first (a generator): 1 is tried first

    def specs(self, sizes) -> tuple[InputSpec, ...]:
        """Every forward argument: this one at ``sizes``, the others as they are."""
        rest = list(self.others)
        return tuple(rest[:self.position]) + (self.spec(sizes),) + tuple(rest[self.position:])

    def arguments(self, x: torch.Tensor, make) -> list:
        """The forward's arguments with ``x`` in this one's place; ``make(spec)`` builds the others."""
        rest = [make(spec) for spec in self.others]
        return rest[:self.position] + [x] + rest[self.position:]

    @property
    def free_axes(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.shape) if d is None)

    def concrete(self, sizes) -> tuple[int, ...]:
        it = iter(sizes)
        return tuple(next(it) if d is None else d for d in self.shape)

    def spec(self, sizes) -> InputSpec:
        return InputSpec(self.concrete(sizes), self.dtype)


@dataclass
class Constraint:
    """``expr`` (sympy, over the batch and free symbols) must equal ``required``."""

    where: str
    what: str
    expr: object
    required: int


@dataclass
class SymbolicTrace:
    sizes: tuple = ()  # the example values of the free sizes
    symbols: tuple = ()  # the free sizes' symbols, in layout order
    batch: object = None
    guards: list = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    out_axis: int | None = None  # the output dimension holding the batch
    error: str = ""
    unsupported: bool = False  # the error is torch's symbolic shapes failing where meta tensors run
    reached: int = 0  # layers entered before an error: how far this size got


# ---------------------------------------------------------------- entry point


def infer_inputs(model: nn.Module, path: str, hints: tuple[int, ...] = ()) -> Inference | None:
    """The inputs ``model`` accepts, or None when its first layer does not say (no conv,
    embedding, linear, recurrent, attention or einops pattern layer first). ``hints``: sizes the
    code that builds the model states (``image_size=256``), tried before the usual ones. The
    model's own errors are part of the answer; an error of shapecheck's is InternalError."""
    layout = find_layout(model)
    if layout is None:
        return None
    try:
        return _solve(model, layout, path, hints)
    except Unsolvable as exc:
        return Inference((), "", f"inference stopped: {exc}", False)


class Unsolvable(Exception):
    """The sizes the model accepts are beyond what the solver evaluates (an unknown function)."""


def solve(model: nn.Module, layout: Layout, path: str = "", hints: tuple[int, ...] = ()):
    """``(trace, mask)``: the symbolic trace used, and the accepted sizes as a bool tensor
    indexed by size - 1 on each free dimension (None when no trace ran to the end)."""
    return _traced(model, layout, path, *_plain_passes(model, layout, hints))


def _plain_passes(model, layout: Layout, hints: tuple[int, ...]):
    """The sizes to try, and the first of them that runs in a plain meta pass (None: none)."""
    candidates = candidate_sizes(layout, hints)
    return candidates, _first_running(model, layout, candidates)


def _traced(model, layout: Layout, path: str, candidates, working):
    """The first symbolic trace that runs to the end, and the sizes it accepts (None when
    none does)."""
    k = len(layout.free_axes)
    trace = _first_working_trace(model, layout, path, candidates, working)
    return trace, None if trace.error else _accepted_mask(trace, LIMITS[k], k)


SOLVING_SHARE = 0.3  # of the model's time budget, for the symbolic trace and the solving


def _solve(model, layout: Layout, path: str, hints: tuple[int, ...] = ()) -> Inference:
    k = len(layout.free_axes)
    candidates, working = _plain_passes(model, layout, hints)
    if working is not None and any(s > LIMITS[k] for s in working):
        return _beyond_solving(layout, working, f"sizes above {LIMITS[k]} are not solved for")
    _import_symbolic()  # a first import costs seconds: not the solving's share
    share = SOLVING_SHARE if working is not None else 1.0  # nothing to fall back to: the whole budget
    try:
        with deadline.limited(share, at_least=3.0):
            trace, mask = _traced(model, layout, path, candidates, working)
    except deadline.OutOfTime as late:
        if not late.inner:
            raise
        return _beyond_solving(layout, working, f"solving for them took over {late.seconds:g} s")
    if trace.error and trace.unsupported and working is not None:
        return _beyond_solving(layout, working, "torch's symbolic shapes cannot follow the model")
    if trace.error:
        return _failed_trace(layout, trace)
    if not bool(mask.any()):
        return _no_size(layout, trace, k)
    rep = working if working is not None and _accepts(mask, working) else _representative(mask, layout)
    wrong = _disagreements(model, layout, mask, rep, trace.out_axis)
    if wrong:
        return _unconfirmed(model, layout, rep, wrong, trace.out_axis, working)
    text = describe(mask, layout.names, rep) if k else f"{_pattern(layout)} only"
    reason = f"from {layout.layer} = {layout.described}: accepts {text}"
    if k:
        reason += f" (solved exactly for sizes 1 to {LIMITS[k]}; checking with {_sizes_text(layout, rep)})"
    return Inference(layout.specs(rep), text, reason, True)


def _import_symbolic() -> None:
    import sympy  # noqa: F401
    import torch._subclasses.fake_tensor  # noqa: F401
    import torch.fx.experimental.symbolic_shapes  # noqa: F401


def _accepts(mask: torch.Tensor, sizes) -> bool:
    return bool(mask[tuple(v - 1 for v in sizes)]) if sizes else bool(mask)


def _beyond_solving(layout: Layout, working, why: str) -> Inference:
    """A size that runs, when the full set of accepted sizes is not worked out."""
    sizes = _sizes_text(layout, working)
    text = f"{' = '.join(layout.names)} = {working[0]}" if len(set(working)) == 1 else sizes
    reason = (f"from {layout.layer} = {layout.described}: {sizes} works; other sizes were not "
              f"determined ({why})")
    return Inference(layout.specs(working), f"{text} (other sizes not determined)", reason, True)


# ---------------------------------------------------------------- 1. the first layer


def layout_of(name: str, module: nn.Module, following: nn.Module | None = None) -> Layout | None:
    """The input ``module`` implies when it is the model's first layer (``following``: the layer
    after it in its Sequential, which sizes what an einops pattern leaves open)."""
    if is_pattern_layer(module):
        return _pattern_layout(name, module, following)
    conv = _conv_rank(module)
    if conv is not None:
        channels = module.in_channels if hasattr(module, "in_channels") else module.num_features
        names = ("L",) if conv == 1 else ("H", "W") if conv == 2 else ("D", "H", "W")
        label = "in_channels" if hasattr(module, "in_channels") else "num_features"
        return Layout(name, f"{type(module).__name__}({label}={channels})",
                      (BATCH, channels) + (None,) * conv, names, 0,
                      latent=isinstance(module, nn.modules.conv._ConvTransposeNd))
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return Layout(name, f"{type(module).__name__}({module.num_embeddings}, {module.embedding_dim})",
                      (BATCH, None), ("T",), 0, "int64")
    if isinstance(module, nn.Linear) and not _is_uninitialized(module):
        return Layout(name, f"Linear(in_features={module.in_features})", (BATCH, module.in_features), (), 0)
    return _sequence_layout(name, module)


def _pattern_layout(name: str, module: nn.Module, following) -> Layout | None:
    found = pattern_input(module, following)
    if found is None:
        return None
    shape = (BATCH,) + found.shape[1:]
    steps = tuple(s for s, d in zip(found.steps[1:], found.shape[1:]) if d is None)
    return Layout(name, f"{type(module).__name__}('{module.pattern}')", shape, found.names, 0, steps=steps)


def _sequence_layout(name: str, module: nn.Module) -> Layout | None:
    if isinstance(module, nn.RNNBase):
        size, label = module.input_size, f"{type(module).__name__}(input_size={module.input_size}"
    elif isinstance(module, nn.MultiheadAttention):
        size, label = module.embed_dim, f"MultiheadAttention(embed_dim={module.embed_dim}"
    else:
        return None
    first = bool(module.batch_first)
    shape = (BATCH, None, size) if first else (None, BATCH, size)
    return Layout(name, f"{label}, batch_first={first})", shape, ("T",), 0 if first else 1)


def _conv_rank(module: nn.Module) -> int | None:
    families = ((1, (nn.Conv1d, nn.ConvTranspose1d)),
                (2, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.InstanceNorm2d)),
                (3, (nn.Conv3d, nn.ConvTranspose3d, nn.BatchNorm3d, nn.InstanceNorm3d)))
    for rank, classes in families:
        if isinstance(module, classes) and not _is_uninitialized(module):
            return rank
    return None


def _is_uninitialized(module) -> bool:
    check = getattr(module, "has_uninitialized_params", None)
    return bool(check and check())


class _Reached(Exception):
    def __init__(self, module):
        super().__init__()
        self.module = module


def find_layout(model: nn.Module) -> Layout | None:
    """The layout of the first layer the forward pass reaches (the first registered one
    when a probe cannot tell)."""
    names = {id(m): n or type(model).__name__ for n, m in model.named_modules()}
    after = _following(model)
    candidates = [m for m in model.modules() if layout_of("", m, after.get(id(m))) is not None]
    if not candidates:
        return None
    guess = candidates[0]
    for _ in range(3):
        reached = _probe(model, candidates, layout_of("", guess, after.get(id(guess))))
        if reached is None or reached is guess:
            break
        guess = reached
    return layout_of(names[id(guess)], guess, after.get(id(guess)))


def _following(model: nn.Module) -> dict[int, nn.Module]:
    """id(layer) -> the layer after it in its Sequential."""
    after = {}
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            children = list(seq)
            after.update((id(a), b) for a, b in zip(children, children[1:]))
    return after


def _probe(model, candidates, layout: Layout):
    """The candidate whose forward is called first on the guessed input (None: none was)."""
    def hook(module, args):
        raise _Reached(module)

    handles = [m.register_forward_pre_hook(hook) for m in candidates]
    try:
        _forward(model, layout, preferred_sizes(layout))
    except _Reached as hit:
        return hit.module
    except Exception as exc:
        reraise_if_ours(exc)
        return None
    finally:
        for handle in handles:
            handle.remove()
    return None


def preferred_sizes(layout: Layout) -> tuple[int, ...]:
    k = len(layout.free_axes)
    return (_preferred(layout)[0],) * k if k else ()


def _preferred(layout: Layout) -> tuple[int, ...]:
    """The square sizes to try first. A model that begins with a transposed convolution is
    usually a generator or a decoder fed a latent of 1×1 (DCGAN's ``z`` of shape N×nz×1×1):
    that size comes first, where it fits."""
    k = len(layout.free_axes)
    return ((1,) if layout.latent else ()) + PREFERRED.get(k, ())


# ---------------------------------------------------------------- 2. the symbolic trace


def candidate_sizes(layout: Layout, hints: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """The free sizes to try, in order: combinations of the stated sizes that fit each axis's
    factor (at most 16), then the usual square sizes."""
    k = len(layout.free_axes)
    if not k:
        return [()]
    steps = layout.steps or (1,) * k
    per_axis = [[h for h in dict.fromkeys(hints) if h >= step and h % step == 0] for step in steps]
    combos = itertools.islice(itertools.product(*per_axis), 64) if all(per_axis) else ()
    stated = sorted(combos, key=lambda sizes: _natural(sizes, len(set(hints))))[:16]
    usual = [(s,) * k for s in _preferred(layout) + (128, 256, 16, 8)]
    return list(dict.fromkeys(stated + usual))


def _natural(sizes: tuple[int, ...], stated: int):
    """The order to try stated sizes in: those that use as many of them as there are axes
    first, then those with a square image last (H = W), the larger first: `num_frames=8,
    img_size=224` gives D×H×W = 8×224×224, not 224×224×8."""
    square = len(sizes) >= 2 and sizes[-1] == sizes[-2]
    return (len(set(sizes)) < min(len(sizes), stated), not square, -sizes[-1])


def _first_running(model, layout: Layout, candidates) -> tuple[int, ...] | None:
    """The first candidate size at which a plain forward pass runs (a few ms each)."""
    return next((sizes for sizes in candidates if deadline.check() or _runs_plainly(model, layout, sizes)), None)


def _first_working_trace(model, layout: Layout, path: str, candidates, working) -> SymbolicTrace:
    """A trace at the first candidate size that runs to the end; else the one that got furthest.

    A symbolic trace costs about ten plain meta passes (every op goes through the ShapeEnv), and
    a large model rejects most candidate sizes only near its end (a ViT's position table fits
    one image size): so plain passes find the first size that runs (``working``), and one
    symbolic trace solves from there. Only when no candidate runs do the symbolic traces
    compare how far each got."""
    if working is not None:
        trace = symbolic_trace(model, layout, working, path)
        if not trace.error:
            return trace
    best = None
    for sizes in candidates[:7]:
        deadline.check()
        trace = symbolic_trace(model, layout, sizes, path)
        if not trace.error:
            return trace
        if best is None or trace.reached > best.reached:
            best = trace
    return best


def symbolic_trace(model, layout: Layout, sizes, path: str = "") -> SymbolicTrace:
    """Run ``model`` once on fake tensors whose batch and free sizes are symbols.

    ``path``: the model's file, to name the line of a ``view(-1, k)``."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    logging.getLogger("torch._subclasses.fake_tensor").setLevel(logging.CRITICAL)
    env = ShapeEnv(duck_shape=False, specialize_zero_one=False)
    mode = FakeTensorMode(shape_env=env, allow_non_fake_inputs=True)
    device = _device(model)
    x = _symbolic_input(mode, layout, sizes, device)
    trace = SymbolicTrace(sizes=tuple(sizes), symbols=tuple(x.shape[a].node.expr for a in layout.free_axes),
                          batch=x.shape[layout.batch_axis].node.expr)
    recorder = _Recorder(trace, model, path)
    try:
        with torch.device(device), mode, recorder, shape_only_rnns(model):
            out = call_user(model, *layout.arguments(x, lambda spec: _empty(spec, device)))
    except Exception as exc:
        reraise_if_ours(exc)
        trace.error, trace.unsupported = first_line(exc), symbolic_only(exc)
    else:
        _check_output_batch(trace, layout, out)
    finally:
        recorder.remove()
    trace.guards = [g.expr for g in env.guards]
    return trace


def _symbolic_input(mode, layout: Layout, sizes, device: str):
    dynamic = [d is None or i == layout.batch_axis for i, d in enumerate(layout.shape)]
    real = torch.empty(layout.concrete(sizes), dtype=getattr(torch, layout.dtype), device=device)
    return symbolic_tensor(mode, real, dynamic)


def _check_output_batch(trace: SymbolicTrace, layout: Layout, out) -> None:
    """The output must keep the batch: in some dimension, or (an equation) where the input had it."""
    tensors = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    if not tensors or not tensors[0].dim():
        return
    exprs = [_expr(d) for d in tensors[0].shape]
    if trace.batch in exprs:
        trace.out_axis = exprs.index(trace.batch)
        return
    trace.out_axis = min(layout.batch_axis, len(exprs) - 1)
    known = set(trace.symbols) | set(getattr(trace.batch, "free_symbols", ()))
    if not set(getattr(exprs[trace.out_axis], "free_symbols", ())) <= known:
        return  # a size made from tensor values (`nonzero`): no equation on the input's sizes
    trace.constraints.append(Constraint("the output", "samples in its batch dimension",
                                        exprs[trace.out_axis], BATCH))


class _Recorder(TorchFunctionMode):
    """Turns declared sizes and ``view(-1, k)`` calls into equations, and goes on with a fit."""

    def __init__(self, trace: SymbolicTrace, model: nn.Module, path: str):
        super().__init__()
        self.trace = trace
        self.path = path
        self.device = _device(model)
        self.handles = [m.register_forward_pre_hook(self._layer(name))
                        for name, m in model.named_modules() if expected_input(m) is not None]

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def _layer(self, name: str):
        def hook(module, args):
            self.trace.reached += 1
            if not args or not isinstance(args[0], torch.Tensor):
                return None
            fitted = self._fit(name, module, args[0])
            return None if fitted is args[0] else tuple(fitted if a is args[0] else a for a in args)
        return hook

    def _fit(self, name: str, module, x):
        expected = expected_input(module, x.dim())
        size, dims = expected["size"], expected.get("dims", (expected["dim"],))
        if dims == (None,) or not x.dim():
            return x
        sizes = size if isinstance(size, tuple) else (size,)
        if not all(isinstance(s, int) for s in sizes) or len(sizes) != len(dims):
            return x
        shape, changed = list(x.shape), False
        for dim, want in zip(dims, sizes):
            if -x.dim() <= dim < x.dim() and _expr(shape[dim]) != want:
                self.trace.constraints.append(Constraint(name, _what(expected["param"]), _expr(shape[dim]), want))
                shape[dim], changed = want, True
        return x.new_empty(shape) if changed else x

    def __torch_function__(self, func, types, args=(), kwargs=None):
        deadline.check()
        args, kwargs = onto_trace_device(args, kwargs or {}, self.device)
        frame = sys._getframe(1)
        if getattr(func, "__name__", "") in ("view", "reshape") and _from_user(frame):
            line = frame.f_lineno if frame.f_code.co_filename == self.path else None
            fitted = self._reshape(func.__name__, args, line)
            if fitted is not None:
                return fitted
        quick = shortcut(func, args, kwargs)
        return quick if quick is not None else _sized_call(func, args, kwargs)

    def _reshape(self, op: str, args, line: int | None):
        """``x.view(-1, k...)`` on a batch-first tensor: per-sample size must be ``prod(k)``."""
        if len(args) < 2 or not isinstance(args[0], torch.Tensor) or not args[0].dim():
            return None
        x, sizes = args[0], args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
        rest = tuple(sizes[1:])
        if type(sizes[0]) is not int or sizes[0] != -1 or not all(type(s) is int and s >= 0 for s in rest):
            return None
        if _expr(x.shape[0]) != self.trace.batch:
            return None
        per_sample = prod(_expr(d) for d in x.shape[1:])
        if not getattr(per_sample, "free_symbols", None):  # no input size changes it: not a size question
            return None
        if _trailing(x.shape, prod(rest)):  # rows of whole positions (N·H·W × C): the sizes stay free
            return None
        shown = ", ".join(str(s) for s in sizes)
        where = f"{op}({shown})" + (f" at line {line}" if line else "")
        self.trace.constraints.append(Constraint(where, "values per sample", per_sample, prod(rest)))
        return x.new_empty((x.shape[0],) + rest)


def _trailing(shape, length: int) -> bool:
    """Whether the last dimensions of ``shape`` hold exactly ``length`` values, in fixed sizes:
    `view(-1, 64)` of N×H×W×64 makes one row per position, not one per sample."""
    total = 1
    for size in reversed(shape[1:]):
        if type(size) is not int:
            return False
        total *= size
        if total >= length:
            return total == length
    return False


def _what(param: str) -> str:
    return {"in_features": "features", "in_channels": "channels", "num_features": "channels",
            "num_channels": "channels", "input_size": "features", "embed_dim": "features",
            "normalized_shape": "features"}.get(param, param)


def _from_user(frame) -> bool:
    return frame is not None and not frame.f_code.co_filename.startswith(_TORCH_DIR)


def _expr(d):
    import sympy

    return d.node.expr if isinstance(d, torch.SymInt) else sympy.Integer(int(d))


# ---------------------------------------------------------------- 3. solving over all sizes


def _accepted_mask(trace: SymbolicTrace, limit: int, k: int) -> torch.Tensor:
    """A k-dimensional bool tensor: entry [h-1, w-1] says whether H=h, W=w is accepted."""
    values = _grid(trace, limit, k)
    shape = (limit,) * k
    mask = torch.ones(shape, dtype=torch.bool)
    for guard in trace.guards:
        if _kept(guard) and guard.free_symbols <= set(values):
            mask &= torch.broadcast_to(torch.as_tensor(evaluate(guard, values)), shape)
    for c in trace.constraints:
        mask &= torch.broadcast_to(torch.as_tensor(_satisfied(c, values)), shape)
    return mask


def _grid(trace: SymbolicTrace, limit: int, k: int) -> dict:
    values = {trace.batch: torch.tensor(BATCH)}
    for axis, sym in enumerate(trace.symbols):
        view = [1] * k
        view[axis] = limit
        values[sym] = torch.arange(1, limit + 1).view(view)
    return values


def _satisfied(c: Constraint, values: dict):
    if not c.expr.free_symbols <= set(values):
        return torch.tensor(False)
    return torch.as_tensor(evaluate(c.expr, values)) == c.required


def _kept(guard) -> bool:
    """Whether a guard is a condition for acceptance rather than the choice of a path.

    Guards that a size is *not* some value (``Ne``), or whether it is 1 (``Eq(x, 1)``,
    ``x > 1``, ``1 < x``, ``x >= 2``), pick torch's path for empty, broadcast or
    non-divisible strides; the other path works too. Bounds and equations are kept.
    """
    import sympy

    if isinstance(guard, sympy.Ne):
        return False
    if not isinstance(guard, sympy.Rel):
        return True
    op, number = _normalised(guard)
    return (op, number) not in (("==", 1), (">", 1), ("<=", 1), (">=", 2), ("<", 2))


def _normalised(rel) -> tuple[str, object]:
    """``(op, number)`` with the number on the right: ``1 < x`` is ``(">", 1)``."""
    flipped = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "==", "!=": "!="}
    if rel.rhs.is_Number:
        return rel.rel_op, rel.rhs
    if rel.lhs.is_Number:
        return flipped[rel.rel_op], rel.lhs
    return rel.rel_op, None


def evaluate(expr, values: dict):
    """``expr`` (sympy with torch's FloorDiv/Mod...) on integer tensors, broadcasting."""
    import sympy

    if expr in values:
        return values[expr]
    if expr.is_Integer or expr in (sympy.true, sympy.false):
        return torch.tensor(int(expr) if expr.is_Integer else bool(expr))
    args = [evaluate(a, values) for a in expr.args]
    name = type(expr).__name__
    op = _OPS.get(name)
    if op is None:
        raise Unsolvable(f"cannot evaluate {name} in {expr}")
    return op(*args)


def _fold(f):
    def apply(*args):
        out = args[0]
        for a in args[1:]:
            out = f(out, a)
        return out
    return apply


def _nonzero(b):
    """Divisors that are 0 only where some size is already invalid (bounds reject those)."""
    b = torch.as_tensor(b)
    return torch.where(b == 0, torch.ones_like(b), b)


_OPS = {
    "Add": _fold(torch.add), "Mul": _fold(torch.mul),
    "Pow": lambda a, b: a ** b,
    "FloorDiv": lambda a, b: torch.div(a, _nonzero(b), rounding_mode="floor"),
    "CleanDiv": lambda a, b: torch.div(a, _nonzero(b), rounding_mode="floor"),
    "Mod": lambda a, b: torch.remainder(a, _nonzero(b)), "PythonMod": lambda a, b: torch.remainder(a, _nonzero(b)),
    "Max": _fold(torch.maximum), "Min": _fold(torch.minimum),
    "Equality": torch.eq, "Unequality": torch.ne,
    "StrictLessThan": torch.lt, "LessThan": torch.le,
    "StrictGreaterThan": torch.gt, "GreaterThan": torch.ge,
    "And": _fold(torch.logical_and), "Or": _fold(torch.logical_or), "Not": torch.logical_not,
    "Identity": lambda a: a,
}


def _representative(mask: torch.Tensor, layout: Layout) -> tuple[int, ...]:
    """A preferred square size when accepted, else the accepted point with the smallest sizes."""
    k = len(layout.free_axes)
    if k == 0:
        return ()
    for s in _preferred(layout):
        if s <= mask.shape[0] and bool(mask[(s - 1,) * k]):
            return (s,) * k
    points = mask.nonzero().tolist()
    return tuple(v + 1 for v in min(points, key=lambda p: (max(p), sum(p), p)))


# ---------------------------------------------------------------- confirmation by running


def _disagreements(model, layout: Layout, mask: torch.Tensor, rep, out_axis) -> list[tuple]:
    """Sizes where a static forward pass disagrees with the solved set."""
    wrong = []
    for point in _check_points(mask, rep):
        deadline.check()
        said = bool(mask[tuple(v - 1 for v in point)]) if point else bool(mask)
        if runs(model, layout, point, out_axis) != said:
            wrong.append(point)
    return wrong


def _check_points(mask: torch.Tensor, rep) -> list[tuple]:
    """The representative, accepted blocks' corners and their outside neighbours, a few others."""
    if mask.dim() == 0:
        return [()]
    points = [tuple(rep)]
    for lo, hi in blocks(mask):
        points += [lo, hi] + _neighbours(lo, -1, mask.shape[0]) + _neighbours(hi, +1, mask.shape[0])
    rng = random.Random(0)
    top = min(mask.shape[0], 128)
    points += [tuple(rng.randint(1, top) for _ in range(mask.dim())) for _ in range(4)]
    points.append((1,) * mask.dim())
    unique = list(dict.fromkeys(points))
    return unique[:MAX_CHECKS]


def _neighbours(point, step: int, limit: int) -> list[tuple]:
    out = []
    for axis in range(len(point)):
        moved = list(point)
        moved[axis] += step
        if 1 <= moved[axis] <= limit:
            out.append(tuple(moved))
    return out


def runs(model, layout: Layout, sizes, out_axis: int | None = 0) -> bool:
    """A plain forward pass at these sizes ends with the batch where the symbolic trace had it."""
    try:
        out = _forward(model, layout, sizes)
    except Exception as exc:
        reraise_if_ours(exc)
        return is_unsupported(exc)  # it ran to an op that needs data: the sizes fit up to there
    tensors = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
    if out_axis is None or not tensors or tensors[0].dim() <= out_axis:
        return True
    return int(tensors[0].shape[out_axis]) == BATCH


def _runs_plainly(model, layout: Layout, sizes) -> bool:
    """The model runs at these sizes on plain meta (or static fake) tensors."""
    try:
        _forward(model, layout, sizes)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model at this size: not this size,
        return is_unsupported(exc)  # unless it ran to an op that cannot run without data: sizes fit so far
    return True


def runs_at(model, inputs) -> bool:
    """A model built on meta runs on empty inputs of these shapes (`InputSpec`s), plainly."""
    xs = [torch.empty(i.shape, dtype=getattr(torch, i.dtype), device="meta") for i in inputs]
    try:
        with torch.no_grad(), torch.device("meta"), _OnTraceDevice(), shape_only_rnns(model):
            call_user(model, *xs)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model at these shapes: they do not fit,
        return is_unsupported(exc)  # unless it ran to an op that cannot run without data
    return True


def _forward(model, layout: Layout, sizes):
    """The model on an empty input of this size: meta tensors, or fake ones for a model on cpu/cuda."""
    device = _device(model)
    args = layout.arguments(_empty(layout.spec(sizes), device), lambda spec: _empty(spec, device))
    if device == "meta":
        with torch.no_grad(), torch.device(device), _OnTraceDevice(), shape_only_rnns(model):
            return call_user(model, *args)
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    with torch.no_grad(), torch.device(device), mode, shape_only_rnns(model):
        return call_user(model, *(mode.from_tensor(a, static_shapes=True) for a in args))


def _empty(spec: InputSpec, device: str) -> torch.Tensor:
    return torch.empty(spec.shape, dtype=getattr(torch, spec.dtype), device=device)


class _OnTraceDevice(TorchFunctionMode):
    """Tensors the model makes on the CPU in forward join the meta ones (see ``onto_trace_device``)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        deadline.check()
        args, kwargs = onto_trace_device(args, kwargs or {}, "meta")
        quick = shortcut(func, args, kwargs)
        return quick if quick is not None else _sized_call(func, args, kwargs)


def _sized_call(func, args, kwargs):
    """The call, where a view refused only for the tensor's memory order gives what reshape
    would: inference judges sizes; the memory order is the tracer's finding (SC208)."""
    try:
        return call_user(func, *args, **kwargs)
    except (RuntimeError, ValueError) as exc:
        if not view_strides(getattr(func, "__name__", ""), exc):
            raise
    return args[0].reshape(*args[1:], **kwargs)


@contextmanager
def shape_only_rnns(model):
    """Recurrent layers give their output shapes without stepping through time.

    On meta and fake tensors torch runs LSTM/GRU/RNN one step at a time in Python, which
    fixes T to the example's value and takes seconds for long sequences.
    """
    patched = [m for m in model.modules() if isinstance(m, nn.RNNBase) and "forward" not in vars(m)]
    for module in patched:
        module.forward = _rnn_shapes(module, module.forward)
    try:
        yield
    finally:
        for module in patched:
            del module.forward


def _rnn_shapes(module: nn.RNNBase, forward):
    def shapes(x, hx=None):
        if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3):
            return forward(x, hx)
        if x.shape[-1] != module.input_size:
            raise StandInError(f"input.size(-1) must be equal to input_size. Expected {module.input_size}, "
                               f"got {x.shape[-1]}")
        return _rnn_output(module, x)
    return shapes


def _rnn_output(module: nn.RNNBase, x):
    directions = 2 if module.bidirectional else 1
    width = module.proj_size or module.hidden_size
    if x.dim() == 3:
        steps, batch = (x.shape[1], x.shape[0]) if module.batch_first else (x.shape[0], x.shape[1])
        seq = (batch, steps) if module.batch_first else (steps, batch)
        lead = (batch,)
    else:
        seq, lead = (x.shape[0],), ()
    y = x.new_empty(seq + (directions * width,))
    h = x.new_empty((directions * module.num_layers,) + lead + (width,))
    if isinstance(module, nn.LSTM):
        return y, (h, x.new_empty((directions * module.num_layers,) + lead + (module.hidden_size,)))
    return y, h


def _device(model) -> str:
    param = next(iter(model.parameters()), None)
    return param.device.type if param is not None else "meta"


# ---------------------------------------------------------------- words


def blocks(mask: torch.Tensor) -> list[tuple[tuple, tuple]]:
    """The accepted set as boxes ``(low corner, high corner)``, 1-based, inclusive."""
    if mask.dim() == 1:
        return [((lo,), (hi,)) for lo, hi in runs_of(mask)]
    out = []
    rows = [tuple(blocks(mask[i])) for i in range(mask.shape[0])]
    i = 0
    while i < len(rows):
        j = i
        while j + 1 < len(rows) and rows[j + 1] == rows[i]:
            j += 1
        out += [((i + 1,) + lo, (j + 1,) + hi) for lo, hi in rows[i]]
        i = j + 1
    return out


def runs_of(mask: torch.Tensor) -> list[tuple[int, int]]:
    """Runs of consecutive accepted sizes, 1-based and inclusive."""
    values = (mask.nonzero().flatten() + 1).tolist()
    out = []
    for v in values:
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def describe(mask: torch.Tensor, names: tuple[str, ...], first=None) -> str:
    """The accepted set in plain words: "H and W each from 26 to 29", "any T ≥ 3"...

    ``first``: a point whose block is named first (the representative size).
    """
    limit = mask.shape[0]
    found = blocks(mask)
    if len(found) == 1:
        return _box_text(found[0], names, limit, only=True)
    diagonal = _diagonal_text(found, names, limit)
    if diagonal:
        return diagonal
    found.sort(key=lambda b: (first is None or not _inside(first, b), len(set(zip(*b))) != 1))
    main = _box_text(found[0], names, limit)
    others = [" × ".join(_range(a, b, limit) for a, b in zip(*box)) for box in found[1:9]]
    more = f" and {len(found) - 9} more" if len(found) > 9 else ""
    return f"{main}; also {' × '.join(names)} in " + ", ".join(others) + more


def _inside(point, box) -> bool:
    return all(a <= p <= b for p, a, b in zip(point, *box))


def _range(lo: int, hi: int, limit: int) -> str:
    return str(lo) if lo == hi else f"{lo}+" if hi == limit else f"{lo}–{hi}"


def _box_text(box, names, limit: int, only: bool = False) -> str:
    lo, hi = box
    if len(set(zip(lo, hi))) == 1:
        if lo[0] == 1 and hi[0] == limit:
            return f"any {', '.join(names)}"
        if lo[0] == hi[0]:
            return " = ".join(names) + f" = {lo[0]}" + (" only" if only else "")
        span = _span(lo[0], hi[0], limit)
        if span.startswith("≥"):
            return f"any {', '.join(names)} {span}"
        if len(names) == 1:
            return f"{names[0]} {span}"
        return f"{' and '.join(names)} each {span}" if len(names) == 2 else f"{', '.join(names)} each {span}"
    return " with ".join(_one(n, a, b, limit) for n, a, b in zip(names, lo, hi))


def _one(name: str, lo: int, hi: int, limit: int) -> str:
    return f"{name} = {lo}" if lo == hi else f"{name} {_span(lo, hi, limit)}"


def _span(lo: int, hi: int, limit: int) -> str:
    if hi == limit:
        return f"≥ {lo}"
    return f"= {lo}" if lo == hi else f"from {lo} to {hi}"


def _diagonal_text(found, names, limit: int) -> str:
    """Sets where all free sizes must be equal: "H = W, from 8 to 64"."""
    if len(names) < 2 or not all(lo == hi and len(set(lo)) == 1 for lo, hi in found):
        return ""
    sizes = sorted(lo[0] for lo, _ in found)
    runs = []
    for s in sizes:
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    spans = ", ".join(str(a) if a == b else f"{a} to {b}" for a, b in runs[:6])
    return f"{' = '.join(names)} only, at {spans}" + (" …" if len(runs) > 6 else "")


def _sizes_text(layout: Layout, sizes) -> str:
    return "×".join(str(d) for d in layout.concrete(sizes))


# ---------------------------------------------------------------- when nothing fits


def _failed_trace(layout: Layout, trace: SymbolicTrace) -> Inference:
    reason = (f"from {layout.layer} = {layout.described} the input would be {_pattern(layout)}, "
              f"but the model fails at every size tried: {trace.error}")
    return Inference(layout.specs(trace.sizes), "no size", reason, False)


def _no_size(layout: Layout, trace: SymbolicTrace, k: int) -> Inference:
    """Name the first equation no size satisfies, with the values some sizes give instead."""
    values = _grid(trace, LIMITS[k], k)
    valid = torch.ones((LIMITS[k],) * k, dtype=torch.bool)
    for g in trace.guards:
        if _kept(g) and g.free_symbols <= set(values):
            valid &= torch.broadcast_to(torch.as_tensor(evaluate(g, values)), valid.shape)
    for c in trace.constraints:
        ok = torch.broadcast_to(torch.as_tensor(_satisfied(c, values)), valid.shape)
        if not bool((valid & ok).any()):
            return Inference(layout.specs(trace.sizes), "no size", _unsatisfiable(layout, c, values, valid, k),
                             False, proven=True)
        valid &= ok
    reason = f"from {layout.layer} = {layout.described}: no size fits"
    return Inference(layout.specs(trace.sizes), "no size", reason, False, proven=True)


def _unsatisfiable(layout: Layout, c: Constraint, values, valid, k: int) -> str:
    head = f"{c.where} expects {c.required} {c.what}, but no input size gives {c.required}"
    if k == 0:
        got = int(evaluate(c.expr, values))
        return f"{head}: the input {_pattern(layout)} from {layout.layer} gives {got}"
    got = torch.broadcast_to(torch.as_tensor(evaluate(c.expr, values)), valid.shape)
    shown = [s for s in range(1, LIMITS[k] + 1) if bool(valid[(s - 1,) * k])][:200]
    samples = [s for s in PREFERRED[k] if s in shown] or shown[:4]
    letters = " = ".join(layout.names)
    said = ", ".join(f"{s} gives {int(got[(s - 1,) * k])}" for s in samples[:4])
    return f"{head} (input {_pattern(layout)} from {layout.layer}): {letters} = {said}"


def _pattern(layout: Layout) -> str:
    it = iter(layout.names)
    return "×".join("N" if i == layout.batch_axis else (next(it) if d is None else str(d))
                    for i, d in enumerate(layout.shape))


def _unconfirmed(model, layout: Layout, rep, wrong, out_axis, working=None) -> Inference:
    """The solved set disagrees with a real forward pass somewhere: claim only what ran."""
    sizes = ", ".join(_sizes_text(layout, p) for p in wrong[:3])
    if working is not None and tuple(working) != tuple(rep) and runs(model, layout, working, out_axis):
        rep = working
    if runs(model, layout, rep, out_axis):
        text = f"{' = '.join(layout.names)} = {rep[0]}" if len(set(rep)) == 1 else _sizes_text(layout, rep)
        reason = (f"from {layout.layer} = {layout.described}: {_sizes_text(layout, rep)} works; the full set "
                  f"of accepted sizes could not be determined (the solution disagrees with a run at {sizes})")
        return Inference(layout.specs(rep), f"{text} (other sizes not determined)", reason, True)
    reason = f"from {layout.layer} = {layout.described}: no size could be confirmed (tried {sizes})"
    return Inference((), "not determined", reason, False)
