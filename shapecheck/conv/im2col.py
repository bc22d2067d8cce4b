"""Convolution as patch extraction (im2col) followed by matrix multiplication.

The column matrix holds one row per (input channel, kernel tap) of a group and one column
per output position. It is made by a single copy out of a strided view of the padded input:
the view's strides step over channels, taps, images and the kept output positions, so a
stride-2 layer reads only the positions it keeps. Two layouts, by input channels per group:

- many channels (at least :data:`CHANNELS_INNERMOST`): the input is first copied with
  channels innermost, so the columns are ``(G, N * positions, taps * C/G)`` built from
  contiguous runs of channels, and one matmul per group spans the whole batch
  (``(N * positions, taps * C/G) @ (taps * C/G, O/G)``); the product is transposed to
  ``(N, O, *out)`` in one copy (none for channels_last, torch's layout for such a result);
- few channels (LeNet's single input channel, an RGB stem): the columns are
  ``(N, G, C/G * taps, positions)``, built from runs along the image width, and a batched
  matmul writes ``(N, O, positions)`` in place.

The padded copy, and the columns and the product when no weight gradient will read them, are
reused work buffers (:mod:`._scratch`): on a layer whose columns take tens of MiB, fresh
allocations cost as much as the GEMM. When no weight gradient will read them, channels-innermost
columns are made a few images at a time (:data:`CHUNK_BYTES`), each chunk multiplied while it is
still in the cache, into its rows of the product.

The backward is written by hand: the weight gradient is a matmul of the output gradient
with the saved columns, and the input gradient multiplies the transposed filters into a
column gradient that is added back tap by tap into the padded input (col2im). With
``create_graph=True`` autograd differentiates :func:`reference` instead (slices, ``stack``
and ``matmul``), so second-order gradients are exact.
"""

from __future__ import annotations

import itertools
import math

import torch

from . import _scratch
from ._args import normalize, pad_input
from ._autograd import graph_backward, without_autocast
from ._entry import conv_entry, memory_format

CHANNELS_INNERMOST = 16
"""With at least this many input channels per group the columns keep channels innermost."""

CHUNK_BYTES = 4 * 2**20
"""Bytes of channels-innermost columns made at a time when no weight gradient needs them all
(whole images; one image at a time where one image's columns are larger). Each chunk's padded
copy and columns are still in the cache when its matmul reads them; on ``benchmarks/conv.py``'s
ResNet 3x3 layer, image by image took 1.6-1.9x F.conv2d where the whole batch at once took
2.1-2.3x (2 MiB to 8 MiB chunks did alike)."""


def channels_innermost(x: torch.Tensor, args) -> bool:
    """Whether the columns of ``x`` are built with channels innermost (see the module docstring)."""
    return x.shape[1] // args.groups >= CHANNELS_INNERMOST


def columns(x: torch.Tensor, args, keep: bool = True) -> torch.Tensor:
    """The column matrix of (N, C, *spatial) ``x`` in the layout :func:`channels_innermost`
    picks. Unless ``keep``, it may sit in a reused work buffer (:mod:`._scratch`)."""
    shape = _column_shape(x, args)
    if channels_innermost(x, args):  # kept columns may be a view of the padded copy: make it fresh
        view = _columns_last(x, args, fresh=keep)
    else:
        view = _columns_first(x, args)
    if keep or view.is_contiguous():
        return view.reshape(shape)
    return _scratch.buffer("columns", view.shape, x).copy_(view).view(shape)


def _column_shape(x, args) -> tuple[int, ...]:
    depth = math.prod(args.kernel) * (x.shape[1] // args.groups)
    if channels_innermost(x, args):
        return (args.groups, -1, depth)
    return (x.shape[0], args.groups, depth, -1)


def _columns_last(x, args, fresh: bool) -> torch.Tensor:
    """A strided view (G, N, *out, *kernel, C/G) of a padded channels-innermost copy of ``x``,
    made in a work buffer unless ``fresh``."""
    xp = _scratch.padded("padded", x, args.pads, channels_last=True, fresh=fresh)
    per_group = x.shape[1] // args.groups
    batch_stride, *spatial, channel_stride = xp.stride()
    dims = [(args.groups, per_group * channel_stride), (x.shape[0], batch_stride),
            *_outputs(x, args, spatial), *_taps(args, spatial), (per_group, channel_stride)]
    return xp.as_strided(*zip(*dims))


def _columns_first(x, args) -> torch.Tensor:
    """A strided view (N, G, C/G, *kernel, *out) of a padded copy of ``x``."""
    xp = pad_input(x, args.pads)
    per_group = x.shape[1] // args.groups
    batch_stride, channel_stride, *spatial = xp.stride()
    dims = [(x.shape[0], batch_stride), (args.groups, per_group * channel_stride),
            (per_group, channel_stride), *_taps(args, spatial), *_outputs(x, args, spatial)]
    return xp.as_strided(*zip(*dims), xp.storage_offset())


def _taps(args, spatial_strides):
    return [(k, d * s) for k, d, s in zip(args.kernel, args.dilation, spatial_strides)]


def _outputs(x, args, spatial_strides):
    return list(zip(args.out_size(tuple(x.shape[2:])), (k * s for k, s in zip(args.stride, spatial_strides))))


def _padded_size(in_size, args) -> list[int]:
    return [n + a + b for n, (a, b) in zip(in_size, args.pads)]


def _interior(in_size, args) -> tuple[slice, ...]:
    return (slice(None), *(slice(a, a + n) for n, (a, _) in zip(in_size, args.pads)))


def _filters(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """(O, C/G, *kernel) -> (G, O/G, C/G * taps)."""
    return weight.reshape(groups, weight.shape[0] // groups, -1)


def _filters_last(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """(O, C/G, *kernel) -> (G, taps * C/G, O/G), rows in :func:`_columns_last`'s order."""
    wg = weight.reshape(groups, weight.shape[0] // groups, *weight.shape[1:])
    return wg.movedim(2, -1).flatten(2).transpose(1, 2)


def _tap_slices(tap, out_size, args) -> tuple[slice, ...]:
    return tuple(
        slice(t * d, t * d + s * (o - 1) + 1, s)
        for t, o, s, d in zip(tap, out_size, args.stride, args.dilation)
    )


def _kernel_taps(args):
    return itertools.product(*(range(k) for k in args.kernel))


def _forward(x, weight, bias, args, keep: bool):
    """The output, laid out as torch's would be, and the columns (kept for the backward only
    when ``keep``; otherwise they sit in a reused work buffer, or are never made whole)."""
    out_size = args.out_size(tuple(x.shape[2:]))
    fmt = memory_format(x, weight)
    cols = None
    if not channels_innermost(x, args):  # written into its final shape: a view could not be changed in place
        cols = columns(x, args, keep)
        out = x.new_empty(x.shape[0], weight.shape[0], *out_size)
        torch.matmul(_filters(weight, args.groups), cols, out=out.view(*cols.shape[:2], -1, cols.shape[-1]))
    else:
        filters = _filters_last(weight, args.groups)
        shape = (args.groups, x.shape[0] * math.prod(out_size), filters.shape[2])  # (G, N * positions, O/G)
        reuse = fmt is None  # the contiguous result is a copy of the product, which can be reused
        product = _scratch.buffer("product", shape, x) if reuse else x.new_empty(shape)
        if keep:
            cols = columns(x, args, keep)
            torch.bmm(cols, filters, out=product)
        else:
            _chunked_product(x, filters, args, product)
        grid = product.unflatten(1, (x.shape[0], *out_size)).movedim(0, -2)
        out = grid.flatten(-2).movedim(-1, 1)
        if reuse:  # a copy even where the view is already contiguous (one position or one channel)
            out = out.clone(memory_format=torch.contiguous_format)
    out = out.contiguous(memory_format=fmt or torch.contiguous_format)
    if bias is not None:
        out += bias.reshape(-1, *(1,) * (x.dim() - 2))
    return out, cols


def _chunked_product(x, filters, args, product) -> None:
    """Write the columns-by-filters product of channels-innermost ``x`` into ``product``,
    :data:`CHUNK_BYTES` of columns (whole images) at a time."""
    n = x.shape[0]
    positions = product.shape[1] // n
    per = max(1, CHUNK_BYTES // (positions * filters.shape[1] * args.groups * x.element_size()))
    for start in range(0, n, per):
        stop = min(start + per, n)
        torch.bmm(columns(x[start:stop], args, keep=False), filters, out=product[:, start * positions:stop * positions])


def _backward_first(grad, cols, weight, x_shape, args, needs):
    """Input and weight gradients for :func:`_columns_first`'s layout."""
    g = grad.reshape(x_shape[0], args.groups, weight.shape[0] // args.groups, -1)  # (N, G, O/G, positions)
    wg = _filters(weight, args.groups)
    gw = torch.matmul(g, cols.mT).sum(0).view(weight.shape) if needs[1] else None
    if not needs[0]:
        return None, gw
    out_size = args.out_size(tuple(x_shape[2:]))
    taps = torch.matmul(wg.mT, g).view(*x_shape[:2], *args.kernel, *out_size)
    image = grad.new_zeros(*x_shape[:2], *_padded_size(x_shape[2:], args))
    for tap in _kernel_taps(args):
        image[(..., *_tap_slices(tap, out_size, args))] += taps[(slice(None), slice(None), *tap)]
    return image[(slice(None), *_interior(x_shape[2:], args))], gw


def _backward_last(grad, cols, weight, x_shape, args, needs):
    """Input and weight gradients for :func:`_columns_last`'s layout."""
    groups, o = args.groups, weight.shape[0]
    wide = grad.movedim(1, -1).reshape(-1, groups, o // groups).transpose(0, 1)  # (G, N * pos, O/G)
    gw = None
    if needs[1]:
        per_tap = torch.bmm(cols.mT, wide).mT.reshape(o, *weight.shape[2:], weight.shape[1])
        gw = per_tap.movedim(-1, 1).contiguous()
    if not needs[0]:
        return None, gw
    out_size, per_group = args.out_size(tuple(x_shape[2:])), x_shape[1] // groups
    g = torch.bmm(wide, _filters_last(weight, groups).mT)  # (G, N * positions, taps * C/G)
    taps = g.view(groups, x_shape[0], *out_size, *args.kernel, per_group).movedim(0, -2)
    image = grad.new_zeros(x_shape[0], *_padded_size(x_shape[2:], args), groups, per_group)
    for tap in _kernel_taps(args):
        image[(slice(None), *_tap_slices(tap, out_size, args))] += taps[(..., *tap, slice(None), slice(None))]
    return image.flatten(-2)[_interior(x_shape[2:], args)].movedim(-1, 1), gw


def reference(x, weight, bias, args):
    """The same convolution in differentiable operations (tap slices, ``stack``, ``matmul``)."""
    out_size = args.out_size(tuple(x.shape[2:]))
    xp = pad_input(x, args.pads)
    taps = [xp[(...,) + _tap_slices(tap, out_size, args)] for tap in _kernel_taps(args)]
    cols = torch.stack(taps, dim=2).reshape(x.shape[0], args.groups, -1, math.prod(out_size))
    out = torch.matmul(_filters(weight, args.groups), cols).reshape(x.shape[0], weight.shape[0], *out_size)
    return out if bias is None else out + bias.reshape(-1, *(1,) * len(out_size))


class _Im2col(torch.autograd.Function):
    """The column GEMM with its hand-written backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, bias, args):
        ctx.args = args
        keep = ctx.needs_input_grad[1]  # only the weight gradient reads the columns
        out, cols = _forward(x, weight, bias, args, keep)
        ctx.save_for_backward(cols if keep else None, x, weight, bias)
        return out

    @staticmethod
    @without_autocast
    def backward(ctx, grad):
        if torch.is_grad_enabled():
            return graph_backward(ctx, lambda *t: reference(*t, ctx.args), ctx.saved_tensors[1:], grad)
        cols, x, weight, bias = ctx.saved_tensors
        args, needs = ctx.args, ctx.needs_input_grad
        backward = _backward_last if channels_innermost(x, args) else _backward_first
        gx, gw = backward(grad, cols, weight, x.shape, args, needs)
        gb = grad.sum([0, *range(2, grad.dim())]) if bias is not None and needs[2] else None
        return gx, gw, gb, None


@conv_entry
def convnd(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d convolution with the semantics of ``F.conv{N}d``; N is ``weight.dim() - 2``."""
    args = normalize(x, weight, stride, padding, dilation, groups)
    return _Im2col.apply(x, weight, bias, args)


conv1d = conv2d = conv3d = convnd
"""The convolution of each dimension count (the weight's decides)."""
