"""Fake tensors with a symbolic batch dimension: the one place that talks to torch's ShapeEnv.

A trace runs under :class:`FakeTensorMode` with a fresh :class:`ShapeEnv`; the input's batch
dimension is a symbol (``s0``) whenever the example batch is at least 2 (torch specialises 0
and 1 to constants). Sizes are read back as their example values ("hints"), so reading a
shape never adds a guard.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import torch

_DTYPES = {
    "float32": torch.float32, "float": torch.float32, "float16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "float64": torch.float64, "double": torch.float64,
    "int64": torch.int64, "long": torch.int64, "int32": torch.int32, "int": torch.int32,
    "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}


def dtype_of(name: str) -> torch.dtype:
    return _DTYPES[name]


def quiet_fake_tensor_logs() -> None:
    """FakeTensorMode logs a traceback at ERROR level before re-raising a failing meta kernel."""
    logging.getLogger("torch._subclasses.fake_tensor").setLevel(logging.CRITICAL)


@dataclass
class FakeSession:
    """One tensor world for a trace.

    ``meta``: plain meta tensors (fastest; needs a meta-device model); ``fake``: torch's
    FakeTensorMode with static shapes (runs ops meta cannot, and models with real weights);
    ``symbolic``: FakeTensorMode with a ShapeEnv, the batch dimension a symbol.
    """

    mode: object
    env: object | None

    @classmethod
    def create(cls, mode: str = "symbolic") -> "FakeSession":
        if mode == "meta":
            return cls(contextlib.nullcontext(), None)
        from torch._subclasses.fake_tensor import FakeTensorMode

        quiet_fake_tensor_logs()
        env = None
        if mode == "symbolic":
            from torch.fx.experimental.symbolic_shapes import ShapeEnv
            env = ShapeEnv()
        return cls(FakeTensorMode(shape_env=env, allow_non_fake_inputs=True), env)

    @property
    def plain(self) -> bool:
        """Plain meta tensors, no FakeTensorMode."""
        return isinstance(self.mode, contextlib.nullcontext)

    def make_input(self, shape: tuple[int, ...], dtype: str, device: str = "meta") -> torch.Tensor:
        """An input tensor; dim 0 symbolic when the session is and the example batch is at least 2."""
        real = torch.empty(shape, dtype=dtype_of(dtype), device=device)
        if self.plain:
            return real
        if not (self.env is not None and len(shape) >= 1 and shape[0] >= 2):
            return self.mode.from_tensor(real, static_shapes=True)
        from torch.fx.experimental.symbolic_shapes import DimDynamic, StatelessSymbolicContext

        dims = [DimDynamic.DYNAMIC] + [DimDynamic.STATIC] * (len(shape) - 1)
        return self.mode.from_tensor(real, symbolic_context=StatelessSymbolicContext(dynamic_sizes=dims))


def size_value(d) -> int | str:
    """The example value of one size; a string only for sizes with no example (unbacked)."""
    if isinstance(d, int):
        return d
    hint = d.node.hint
    return int(hint) if hint is not None else str(d.node.expr)


def shape_of(t) -> tuple:
    if not t._has_symbolic_sizes_strides:  # plain integer sizes (every size of a meta trace)
        return tuple(t.shape)
    return tuple(size_value(d) for d in t.shape)


def size_expr(d) -> str:
    """The symbolic form of one size ('s0', '((9*s0)//16)', or the integer)."""
    if isinstance(d, int):
        return str(d)
    return str(d.node.expr)


def is_symbolic(d) -> bool:
    return isinstance(d, torch.SymInt) and not isinstance(d.node.expr, int) and not d.node.expr.is_number


def batch_multiple(size, batch_symbol) -> bool:
    """Whether a symbolic size is k·batch for a positive integer k (rows of whole samples)."""
    ratio = (size.node.expr / batch_symbol).simplify() if hasattr(size.node.expr, "simplify") else None
    return ratio is not None and ratio.is_Integer and ratio > 0


def own_reads():
    """shapecheck's own reads of a trace's tensors (sizes, ranks, dtypes; stand-ins made with
    ``new_empty``, ``empty_like`` or an explicit device) bypass the trace's torch-function modes:
    they are not the user's calls, and each would cost a dispatch through the recorder or the
    device mode only to be passed through unchanged."""
    return torch._C.DisableTorchFunction()


def onto_trace_device(args, kwargs, device: str):
    """``(args, kwargs)`` with real tensors from another device moved onto the meta ``device``
    of a trace, when a call mixes the two.

    A model may make tensors on the CPU in forward (a module-level constant,
    ``torch.from_numpy``, ``device="cpu"``); for real they share the CPU with everything else,
    and only their shapes matter here. A ``device=`` argument (a factory call) becomes the
    trace's device too. A call with no trace tensor is left alone (it may read
    values: ``torch.tensor([1, 2]).tolist()``).
    """
    if device != "meta":
        return args, kwargs
    if kwargs.get("device") is not None:  # torch.zeros(..., device="cuda"): made where the trace runs
        kwargs = {**kwargs, "device": device}
    if not _any_off_meta(args) and not _any_off_meta(kwargs.values()):
        return args, kwargs
    from torch.utils._pytree import tree_flatten, tree_unflatten

    flat, spec = tree_flatten((args, kwargs))
    stray = [isinstance(t, torch.Tensor) and t.device.type != "meta" for t in flat]
    tensors = sum(isinstance(t, torch.Tensor) for t in flat)
    if not any(stray) or sum(stray) == tensors:
        return args, kwargs
    return tree_unflatten([t.to("meta") if moved else t for t, moved in zip(flat, stray)], spec)


SMALL = 1 << 16
"""Elements up to which a tensor that forward makes from nothing is made for real."""


def made_for_real(func, args, kwargs):
    """``(args, kwargs)`` asking for a real CPU tensor when a plain meta trace (the caller's to
    know) calls a factory with no tensor argument, no device and a small size (`torch.zeros(num_layers).uniform_()`
    for a random layer drop, `torch.arange(n)`): its values are then known, so code that reads
    them (a branch, `all(to_drop)`) runs as it does for real. Where it meets the trace's
    tensors it is moved onto the meta device (:func:`onto_trace_device`). None otherwise."""
    if kwargs.get("device") is not None or func not in _FACTORY_SIZES:
        return None
    if _any_tensor(args) or _any_tensor(kwargs.values()):
        return None
    try:
        count = _FACTORY_SIZES[func](*args, **kwargs)
    except (TypeError, ValueError, ArithmeticError):
        return None
    if type(count) is not int or not 0 <= count <= SMALL:
        return None
    return args, {**kwargs, "device": "cpu"}


def _any_tensor(values) -> bool:
    return any(isinstance(v, _TENSOR) or isinstance(v, (list, tuple)) and _any_tensor(v) for v in values)


def _count(*sizes, size=None, **_):
    """Elements of a tensor of ``sizes`` (ints, or one tuple, list or torch.Size)."""
    if size is not None:
        sizes = size
    elif len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = sizes[0]
    if not all(type(d) is int for d in sizes):
        raise TypeError("sizes not plain ints")
    return math.prod(sizes)


def _count_arange(*bounds, step=1, **kwargs):
    """Elements of `torch.arange(end)`, `(start, end)` or `(start, end, step)`."""
    if kwargs.get("start") is not None or kwargs.get("end") is not None or not 1 <= len(bounds) <= 3:
        raise TypeError("bounds given by name")
    lo, hi, step = (0, bounds[0], step) if len(bounds) == 1 else (*bounds, step)[:3]
    if not all(type(b) in (int, float) for b in (lo, hi, step)) or not step:
        raise TypeError("bounds not plain numbers")
    return max(0, math.ceil((hi - lo) / step))


_FACTORY_SIZES = {
    torch.zeros: _count, torch.ones: _count, torch.empty: _count, torch.rand: _count, torch.randn: _count,
    torch.full: lambda size, *a, **k: _count(size),
    torch.randint: lambda *a, size=None, **k: _count(size if size is not None else a[-1]),
    torch.arange: _count_arange,
    torch.linspace: lambda start, end, steps, **k: steps,
    torch.eye: lambda n, m=None, **k: n * (n if m is None else m),
    torch.randperm: lambda n, **k: n,
}


def _any_off_meta(values) -> bool:
    """A tensor not on the meta device among ``values`` or in a list or tuple of them (cheap:
    this runs on every torch call of a trace)."""
    for value in values:
        kind = type(value)
        if kind in _SCALARS:
            continue
        if kind is _TENSOR or kind is _PARAMETER:  # the device is the tensor's own
            if not value.is_meta:
                return True
        elif isinstance(value, _TENSOR):  # a subclass (a fake tensor) may state another device
            if value.device.type != "meta":
                return True
        elif isinstance(value, (list, tuple)) and _any_off_meta(value):
            return True
    return False


_TENSOR, _PARAMETER = torch.Tensor, torch.nn.Parameter
_SCALARS = frozenset({int, float, bool, str, type(None)})
