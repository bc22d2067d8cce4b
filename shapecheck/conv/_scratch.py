"""Work buffers reused from one call to the next.

A convolution's intermediate tensors (a padded copy of the input, a column matrix, a product
waiting to be transposed) are as large as its input or larger, and they die when the call
returns. A fresh allocation of a few MiB comes back from the C allocator as untouched pages,
so every call pays page faults and the kernel's zeroing of them, which on a memory-bound
layer cost as much as the arithmetic. :func:`buffer` hands out views of one flat buffer per
(name, dtype, device) and thread, grown to the largest size asked for and then kept; a
buffer over :data:`LIMIT` is allocated fresh each time, so that one large layer does not pin
its memory for the life of the process. Only plain CPU tensors are kept (not the fake tensors of a
trace), made outside inference mode so that any later call may write them: CUDA's caching allocator
already hands back memory that is mapped, and a buffer shared between streams would race.

A thread keeps at most :data:`TOTAL_LIMIT` bytes in all; :func:`release` frees its buffers.

A buffer is valid until the next call for the same name on the same thread: callers use it
only within one convolution and never return it, nor save it for backward. While autograd
records (grad mode on: the differentiable forms that second-order gradients run through) a
fresh tensor is handed out instead, since a recorded operation may save its input.
"""

from __future__ import annotations

import math
import threading

import torch

from ._args import pad_input

LIMIT = 64 * 2**20
"""Bytes above which a buffer is not kept."""
TOTAL_LIMIT = 256 * 2**20
"""Bytes a thread keeps in all its buffers at most; a buffer that would go over is not kept."""

_local = threading.local()


def buffer(name: str, shape, like: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor of ``shape`` with ``like``'s dtype and device, reused by the
    next call for ``name`` on this thread."""
    numel = math.prod(shape)
    if torch.is_grad_enabled() or not _keepable(like) or numel * like.element_size() > LIMIT:
        return like.new_empty(shape)
    kept = getattr(_local, "buffers", None)
    if kept is None:
        kept = _local.buffers = {}
    key = (name, like.dtype, like.device)
    flat = kept.get(key)
    if flat is None or flat.numel() < numel:
        others = sum(t.numel() * t.element_size() for k, t in kept.items() if k != key)
        if others + numel * like.element_size() > TOTAL_LIMIT:
            return like.new_empty(shape)
        with torch.inference_mode(False):  # an inference tensor could not be written outside that mode
            flat = kept[key] = torch.empty(numel, dtype=like.dtype, device=like.device)
    return flat[:numel].view(shape)


def _keepable(like: torch.Tensor) -> bool:
    """Whether a buffer like ``like`` is kept: a plain CPU tensor, not a fake, meta or other
    tensor subclass (a trace's tensors must not outlive the trace)."""
    return type(like) is torch.Tensor and like.device.type == "cpu"


def release() -> None:
    """Free this thread's kept buffers (they are made again when next needed)."""
    getattr(_local, "buffers", {}).clear()


def zero_border(t: torch.Tensor, pads) -> torch.Tensor:
    """Zero the ``pads`` (before, after) of each of ``t``'s dimensions from the second on,
    leaving the interior as it is; ``t``."""
    for dim, (before, after) in enumerate(pads, start=1):
        if before:
            t.narrow(dim, 0, before).zero_()
        if after:
            t.narrow(dim, t.shape[dim] - after, after).zero_()
    return t


def padded(name: str, x: torch.Tensor, pads, channels_last: bool = False) -> torch.Tensor:
    """(N, C, *spatial) ``x`` zero-padded by (before, after) ``pads`` per spatial dimension, in
    the work buffer ``name``; laid out (N, *padded spatial, C) when
    ``channels_last``. Laid out as ``x``, it is ``x`` itself when there is nothing to pad, and
    ``F.pad``'s result when a pad is negative (a crop) or autograd records."""
    if not channels_last:
        if not any(map(any, pads)):
            return x
        if min(map(min, pads)) < 0 or torch.is_grad_enabled():
            return pad_input(x, pads)
    spatial = tuple(n + a + b for n, (a, b) in zip(x.shape[2:], pads))
    shape = (x.shape[0], *spatial, x.shape[1]) if channels_last else (*x.shape[:2], *spatial)
    out = buffer(name, shape, x)
    first = 1 if channels_last else 2  # the first spatial dimension
    zero_border(out, ((0, 0),) * (first - 1) + tuple(pads))
    interior = (slice(None),) * first + tuple(slice(a, a + n) for n, (a, _) in zip(x.shape[2:], pads))
    out[interior].copy_(x.movedim(1, -1) if channels_last else x)
    return out
