"""Pin the branches of nonsmooth operations to those of a reference run.

A ReLU input that is 3e-8 in float64 may come out -1e-6 in float32, from any correct
convolution: the rounding of a sum of a thousand products is that large. The float32 run then
takes the other side of the kink, and every gradient through that element differs from the
float64 answer by a whole term, not by rounding. On a ResNet-18 with a batch of two, about one
activation in a run lands that close to zero, so whether a correct implementation passes
would be a matter of luck (torch's own float32 run misses by 4e-3 on such an input).

:func:`recording` notes, during the reference run, which side of each kink every element
took: the region of each piecewise operation (ReLU, ReLU6/hardtanh, clamp with number bounds,
leaky ReLU, hardswish, hardsigmoid) and the indices of each max pooling. :func:`following`
replays them in a checked run, and counts the elements whose own side differed. In both, each
operation is computed as the formula of the chosen piece (so first and second derivatives
are the piece's), the same formulas in the reference and in the checked runs: torch's own
float64 hardsigmoid, for one, rounds its 1/6 to float32 precision (3e-8). Values stay the checked run's own:
an implementation that computes wrong numbers still shows them; only the choice of piece is
shared. Operations outside this table (sorting, ``max`` over a dimension, user-written
comparisons) follow their own rounding.

Both are function modes (:class:`~torch.overrides.TorchFunctionMode`): they see the calls of a
model's ``forward`` by the functions it names (``F.relu``, ``torch.relu_``, ``Tensor.clamp``,
``F.max_pool2d`` …). Calls are matched in order; when the checked run's sequence departs from
the recorded one (another path through the code), the rest of the run is not pinned, and
:attr:`Pinning.lost_at` says from which call.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


@dataclass(frozen=True)
class _Piecewise:
    """An elementwise function with up to two kinks: ``low`` below ``lo``, ``high`` above
    ``hi``, ``middle`` between. ``params(args, kwargs)`` reads (x, lo, hi, extra, inplace).
    ``closed`` says which of (lo, hi) belong to the outer pieces, as torch's derivatives have
    it: ReLU's gradient at 0 is 0, clamp's at a bound is 1."""

    name: str
    params: object
    middle: object
    low: object = None
    high: object = None
    closed: tuple[bool, bool] = (True, True)


def _bounds(x, lo, hi, extra=None, inplace=False):
    return x, lo, hi, extra, inplace


def _relu_params(args, kwargs, inplace=False):
    return _bounds(args[0], 0.0, None, inplace=inplace or _flag(args, kwargs, 1, "inplace"))


def _hardtanh_params(args, kwargs):
    lo = _arg(args, kwargs, 1, "min_val", -1.0)
    hi = _arg(args, kwargs, 2, "max_val", 1.0)
    return _bounds(args[0], lo, hi, inplace=_flag(args, kwargs, 3, "inplace"))


def _relu6_params(args, kwargs):
    return _bounds(args[0], 0.0, 6.0, inplace=_flag(args, kwargs, 1, "inplace"))


def _clamp_params(args, kwargs, inplace=False, which=("min", "max")):
    values = [_arg(args, kwargs, 1 + i, name, None) for i, name in enumerate(which)]
    bounds = dict(zip(which, values))
    lo, hi = bounds.get("min"), bounds.get("max")
    if not all(b is None or isinstance(b, numbers.Real) for b in (lo, hi)):
        return None  # tensor bounds: not pinned
    return _bounds(args[0], lo, hi, inplace=inplace)


def _leaky_params(args, kwargs):
    slope = _arg(args, kwargs, 1, "negative_slope", 0.01)
    return _bounds(args[0], 0.0, None, slope, _flag(args, kwargs, 2, "inplace"))


def _hard_params(args, kwargs):
    return _bounds(args[0], -3.0, 3.0, inplace=_flag(args, kwargs, 1, "inplace"))


def _arg(args, kwargs, index, name, default):
    if len(args) > index:
        return args[index]
    return (kwargs or {}).get(name, default)


def _flag(args, kwargs, index, name) -> bool:
    return bool(_arg(args, kwargs, index, name, False))


_identity = lambda x, extra: x  # noqa: E731
_OPEN = (False, False)
_RELU = _Piecewise("relu", _relu_params, _identity, low=lambda x, extra: 0.0)
_RELU_ = _Piecewise("relu", lambda a, k: _relu_params(a, k, inplace=True), _identity, low=lambda x, extra: 0.0)
BOUND = "bound"
"""A piece that is the bound itself (clamp-like functions)."""


def _clamp(which=("min", "max"), inplace=False) -> _Piecewise:
    """``clamp`` with number bounds; torch's gradient at a bound is 1 (the bounds are open)."""
    return _Piecewise("clamp", lambda a, k: _clamp_params(a, k, inplace, which), _identity,
                      BOUND if "min" in which else None, BOUND if "max" in which else None, _OPEN)


PIECEWISE = {
    F.relu: _RELU, torch.relu: _RELU, torch.Tensor.relu: _RELU,
    F.relu_: _RELU_, torch.relu_: _RELU_, torch.Tensor.relu_: _RELU_,
    F.hardtanh: _Piecewise("hardtanh", _hardtanh_params, _identity, BOUND, BOUND),
    F.relu6: _Piecewise("relu6", _relu6_params, _identity, BOUND, BOUND),
    torch.clamp: _clamp(), torch.Tensor.clamp: _clamp(), torch.Tensor.clamp_: _clamp(inplace=True),
    torch.clamp_min: _clamp(("min",)), torch.Tensor.clamp_min: _clamp(("min",)),
    torch.clamp_max: _clamp(("max",)), torch.Tensor.clamp_max: _clamp(("max",)),
    F.leaky_relu: _Piecewise("leaky_relu", _leaky_params, _identity, low=lambda x, slope: x * slope),
    F.hardswish: _Piecewise("hardswish", _hard_params, lambda x, extra: x * (x + 3) / 6,
                            low=lambda x, extra: 0.0, high=_identity, closed=_OPEN),
    F.hardsigmoid: _Piecewise("hardsigmoid", _hard_params, lambda x, extra: x / 6 + 0.5,
                              low=lambda x, extra: 0.0, high=lambda x, extra: 1.0),
}
"""Piecewise elementwise functions by the object a forward calls."""

MAX_POOLS = {
    getattr(F, f"{kind}{d}d{suffix}"): (d, getattr(F, f"{kind}{d}d_with_indices"))
    for kind in ("max_pool", "adaptive_max_pool") for d in (1, 2, 3) for suffix in ("", "_with_indices")
}
"""Max poolings by the object a forward calls: (spatial dimensions, the variant that returns
indices)."""


def _regions(x: torch.Tensor, lo, hi, closed) -> torch.Tensor:
    """0 below ``lo``, 2 above ``hi``, 1 between (uint8, the shape of ``x``); a bound itself
    goes to the outer piece where ``closed`` says so."""
    region = torch.ones(x.shape, dtype=torch.uint8, device=x.device)
    if lo is not None:
        region[x <= lo if closed[0] else x < lo] = 0
    if hi is not None:
        region[x >= hi if closed[1] else x > hi] = 2
    return region


def _piece(fn, x, bound, extra):
    value = bound if fn == BOUND else fn(x, extra)
    return value if isinstance(value, torch.Tensor) else torch.full_like(x, value)


def _on_regions(rule: _Piecewise, x, lo, hi, extra, region) -> torch.Tensor:
    out = rule.middle(x, extra)
    if rule.low is not None and lo is not None:
        out = torch.where(region == 0, _piece(rule.low, x, lo, extra), out)
    if rule.high is not None and hi is not None:
        out = torch.where(region == 2, _piece(rule.high, x, hi, extra), out)
    return out


class _Unbound(Exception):
    """A pooling call whose arguments do not fit the signature: left to torch to judge."""


def _pool_indices(func, args, kwargs):
    """(spatial dimensions, whether the caller wants the indices, output, indices)."""
    d, with_indices = MAX_POOLS[func]
    try:
        bound = inspect.signature(with_indices).bind(*args, **kwargs)
    except TypeError as unbound:
        raise _Unbound from unbound
    wants = func is with_indices or bool(bound.arguments.get("return_indices", False))
    bound.arguments["return_indices"] = True
    out, indices = with_indices(*bound.args, **bound.kwargs)
    return d, wants, out, indices


def _gather(x: torch.Tensor, indices: torch.Tensor, d: int) -> torch.Tensor:
    flat = x.flatten(-d)
    picked = flat.gather(-1, indices.flatten(-d).expand(*flat.shape[:-1], -1))
    return picked.view(indices.shape)


@dataclass
class Pinning:
    """What a run recorded, or how a checked run followed it."""

    decisions: list = field(default_factory=list)
    lost_at: int | None = None  # the call from which the run was not pinned
    differed: list = field(default_factory=list)
    """Per followed call, a tensor counting the elements (pooling windows) whose own side
    differed, kept on the device: reading each at once would wait for the GPU at every ReLU."""

    @property
    def flipped(self) -> int:
        """Elements (pooling windows) whose own side differed, over the whole run."""
        return int(sum(int(count) for count in self.differed))

    def summary(self) -> str:
        """A note for a report row ("" when nothing needed saying)."""
        parts, flipped = [], self.flipped
        if flipped:
            parts.append(f"{flipped} value(s) within rounding of a ReLU/pooling kink took the reference's side")
        if self.lost_at is not None:
            parts.append(f"kinks not pinned after call {self.lost_at + 1} (the run took another path)")
        return "; ".join(parts)


class _Mode(TorchFunctionMode):
    def __init__(self, pinning: Pinning, follow: bool):
        super().__init__()
        self.pinning, self.follow, self.cursor = pinning, follow, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        try:
            rule = PIECEWISE.get(func)
            pool = func in MAX_POOLS
        except TypeError:  # an unhashable callable
            rule, pool = None, False
        if not (args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point()):
            return func(*args, **kwargs)  # the input by keyword, or not a floating tensor: not pinned
        if rule is not None:
            params = rule.params(args, kwargs)
            if params is not None:
                return self._piecewise(func, rule, params, args, kwargs)
        elif pool:
            try:
                return self._pool(func, args, kwargs)
            except _Unbound:
                pass
        return func(*args, **kwargs)

    def _next(self, key):
        """The recorded decision for this call, or None once the run has left the recorded path."""
        if self.pinning.lost_at is not None:
            return None
        decisions, at = self.pinning.decisions, self.cursor
        self.cursor += 1
        if at < len(decisions) and decisions[at][0] == key:
            return decisions[at][1]
        self.pinning.lost_at = at
        return None

    def _side(self, key, own: torch.Tensor) -> torch.Tensor | None:
        """The side to take: the run's ``own`` when recording, the recorded one when following
        (None once the run has left the recorded path)."""
        if not self.follow:
            self.pinning.decisions.append((key, own))
            return own
        pinned = self._next(key)
        if pinned is not None:
            self.pinning.differed.append((own != pinned).sum())
        return pinned

    def _piecewise(self, func, rule, params, args, kwargs):
        x, lo, hi, extra, inplace = params
        region = self._side((rule.name, tuple(x.shape)), _regions(x.detach(), lo, hi, rule.closed))
        if region is None:
            return func(*args, **kwargs)
        if inplace:
            return x.copy_(_on_regions(rule, x.clone(), lo, hi, extra, region))
        return _on_regions(rule, x, lo, hi, extra, region)

    def _pool(self, func, args, kwargs):
        d, wants, out, indices = _pool_indices(func, args, kwargs)
        pinned = self._side(("max_pool", tuple(out.shape)), indices)
        if pinned is not None:
            out, indices = _gather(args[0], pinned, d), pinned
        return (out, indices) if wants else out


@contextlib.contextmanager
def recording():
    """Record the side of every kink the block's run takes; yields the :class:`Pinning`."""
    pinning = Pinning()
    with _Mode(pinning, follow=False):
        yield pinning


@contextlib.contextmanager
def following(recorded: Pinning):
    """Replay ``recorded``'s sides in the block's run; yields a fresh :class:`Pinning` that
    counts the elements whose own side differed."""
    pinning = Pinning(recorded.decisions)
    with _Mode(pinning, follow=True):
        yield pinning
