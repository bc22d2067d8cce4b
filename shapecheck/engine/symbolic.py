"""Fake tensors with a symbolic batch dimension: the one place that talks to torch's ShapeEnv.

A trace runs under :class:`FakeTensorMode` with a fresh :class:`ShapeEnv`; the input's batch
dimension is a symbol (``s0``) whenever the example batch is at least 2 (torch specialises 0
and 1 to constants). Sizes are read back as their example values ("hints"), so reading a
shape never adds a guard.
"""

from __future__ import annotations

import contextlib
import logging
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

    def make_input(self, shape: tuple[int, ...], dtype: str, device: str = "meta") -> torch.Tensor:
        """An input tensor; dim 0 symbolic when the session is and the example batch is at least 2."""
        real = torch.empty(shape, dtype=dtype_of(dtype), device=device)
        if isinstance(self.mode, contextlib.nullcontext):
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
