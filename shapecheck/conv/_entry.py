"""What every public convolution of this package does around its arithmetic, as torch does.

:func:`conv_entry` wraps an implementation's ``conv(x, weight, bias, ...)`` so that:

- an unbatched ``(C, *spatial)`` input gives an unbatched output;
- the result has the dtype torch's would have: under ``torch.autocast`` for the input's device
  the inputs are first rounded to the autocast dtype (as autocast does for a convolution) and
  the result is in that dtype; float16 and bfloat16 inputs give a result in their dtype;
- half-precision work is done in float32: the rounded inputs are widened (exactly), the
  implementation runs in float32 with autocast off, and the result is rounded once at the
  end, so every sum of products accumulates in float32 as torch's kernels do;
- a channels_last input or weight gives a channels_last result, as torch's does.

The casts are ordinary differentiable ops, so gradients come back in each input's dtype.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from ..engine._compat import autocast_dtype, autocast_enabled

HALF = (torch.float16, torch.bfloat16)
_CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def result_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype of torch's convolution of ``x`` in the current autocast state."""
    device = x.device.type
    if x.is_floating_point() and x.dtype != torch.float64 and autocast_enabled(device):
        return autocast_dtype(device)
    return x.dtype


def memory_format(*tensors: torch.Tensor) -> torch.memory_format | None:
    """channels_last (or channels_last_3d) when any of ``tensors`` is laid out that way."""
    for t in tensors:
        fmt = _CHANNELS_LAST.get(t.dim())
        if fmt is not None and t.is_contiguous(memory_format=fmt) and not t.is_contiguous():
            return fmt
    return None


def autocast_off(device_type: str):
    """A context without autocast for ``device_type`` (a no-op when it is off)."""
    if autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def conv_entry(conv):
    """Give ``conv(x, weight, bias=None, ...)`` torch's batching, dtype and layout behaviour."""

    @functools.wraps(conv)
    def wrapper(x, weight, bias=None, *args, **kwargs):
        if x.dim() == weight.dim() - 1:
            return wrapper(x.unsqueeze(0), weight, bias, *args, **kwargs).squeeze(0)
        dtype = result_dtype(x)
        fmt = memory_format(x, weight)
        if dtype in HALF:
            x, weight, bias = (_widened(t, dtype) for t in (x, weight, bias))
        with autocast_off(x.device.type):
            out = conv(x, weight, bias, *args, **kwargs)
        out = out.to(dtype)
        return out if fmt is None else out.contiguous(memory_format=fmt)

    _WRAPPED[wrapper] = conv
    return wrapper


_WRAPPED: dict = {}
"""Each wrapper made by :func:`conv_entry` -> the function it wraps (filled at import)."""


def without_entry(conv):
    """The function that :func:`conv_entry` wrapped into ``conv``, for a caller already inside
    an entry (whose work it would only repeat); ``conv`` itself when it is no such wrapper."""
    return _WRAPPED.get(conv, conv)


def _widened(t, dtype):
    """``t`` rounded to ``dtype`` (a no-op when it already is) and widened to float32."""
    return None if t is None else t.to(dtype).float()
