"""The public functional API: ``conv1d``, ``conv2d``, ``conv3d`` and ``conv_transpose2d``.

``conv2d(..., impl="auto")`` asks :data:`shapecheck.conv.auto.TUNER` for the fastest
applicable approach (measured on first use, or by the documented rule); any name of :data:`shapecheck.conv.IMPLEMENTATIONS` runs that one.
Inputs may be batched ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, as in torch.
"""

from __future__ import annotations

import importlib

from . import IMPLEMENTATIONS
from ._entry import conv_entry, without_entry
from .auto import TUNER

NDIM_IMPLEMENTATIONS = ("im2col", "naive")


@conv_entry
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, impl="auto"):
    """2-D convolution with the semantics of ``torch.nn.functional.conv2d``."""
    if impl == "auto":
        impl = TUNER.lookup(x, weight, (stride, padding, dilation, groups))
    return without_entry(IMPLEMENTATIONS[impl])(x, weight, bias, stride, padding, dilation, groups)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, impl="auto"):
    """1-D convolution with the semantics of ``torch.nn.functional.conv1d``; ``"auto"`` is im2col."""
    return _ndim(1, impl)(x, weight, bias, stride, padding, dilation, groups)


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, impl="auto"):
    """3-D convolution with the semantics of ``torch.nn.functional.conv3d``; ``"auto"`` is im2col."""
    return _ndim(3, impl)(x, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution with the semantics of ``torch.nn.functional.conv_transpose2d``."""
    transposed = importlib.import_module(f"{__package__}.transposed")
    return transposed.conv_transpose2d(x, weight, bias, stride, padding, output_padding, groups, dilation)


def _ndim(dims: int, impl: str):
    name = "im2col" if impl == "auto" else impl
    if name not in NDIM_IMPLEMENTATIONS:
        raise ValueError(
            f"conv{dims}d is implemented by {' and '.join(NDIM_IMPLEMENTATIONS)}, not {impl!r}")
    return getattr(importlib.import_module(f"{__package__}.{name}"), f"conv{dims}d")
