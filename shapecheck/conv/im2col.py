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

The padded copy, the columns and the product are reused work buffers (:mod:`._scratch`): on
a layer whose columns take tens of MiB, fresh allocations cost as much as the GEMM.
In the forward, channels-innermost columns are made a few images at a time (:data:`CHUNK_BYTES`),
each chunk multiplied while it is still in the cache, into its rows of the product.

Only the input is saved for the backward, as torch saves it: columns kept for every layer of
a model until its backward would take taps/stride² times its activations. The backward is
written by hand: the weight gradient makes the columns again (in chunks of
:data:`WEIGHT_CHUNK_BYTES`) and multiplies them with the output gradient; the input gradient
multiplies the transposed filters into a column gradient that is added back tap by tap into
the padded input (col2im). With ``create_graph=True`` autograd differentiates
:func:`reference` instead: the columns as an autograd function whose backward is col2im (and
col2im's backward the columns), and ``matmul``, so derivatives of every order are exact.
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
"""Bytes of channels-innermost columns made at a time in the forward (whole images; one image
at a time where one image's columns are larger). Each chunk's padded
copy and columns are still in the cache when its matmul reads them; on ``benchmarks/conv.py``'s
ResNet 3x3 layer, image by image took 1.6-1.9x F.conv2d where the whole batch at once took
2.1-2.3x (2 MiB to 8 MiB chunks did alike)."""

WEIGHT_CHUNK_BYTES = _scratch.LIMIT
"""Bytes of channels-innermost columns made at a time for the weight gradient: as many as a
reused work buffer holds. Its GEMM sums over the rows of the columns, and summing chunk by
chunk cost more than one GEMM: on ``benchmarks/conv.py``'s ResNet 3x3 layer (58 MiB of
columns), image by image took 26-29 ms where the whole batch took 20-25 ms. A larger layer
makes its columns in chunks rather than all at once."""


def channels_innermost(x: torch.Tensor, args) -> bool:
    """Whether the columns of ``x`` are built with channels innermost (see the module docstring)."""
    return x.shape[1] // args.groups >= CHANNELS_INNERMOST


def columns(x: torch.Tensor, args) -> torch.Tensor:
    """The column matrix of (N, C, *spatial) ``x`` in the layout :func:`channels_innermost`
    picks, in a reused work buffer (:mod:`._scratch`): valid until the next call."""
    shape = _column_shape(x, args)
    view = _columns_last(x, args) if channels_innermost(x, args) else _columns_first(x, args)
    if view.is_contiguous():
        return view.reshape(shape)
    return _scratch.buffer("columns", view.shape, x).copy_(view).view(shape)


def _column_shape(x, args) -> tuple[int, ...]:
    depth = math.prod(args.kernel) * (x.shape[1] // args.groups)
    if channels_innermost(x, args):
        return (args.groups, -1, depth)
    return (x.shape[0], args.groups, depth, -1)


def _columns_last(x, args) -> torch.Tensor:
    """A strided view (G, N, *out, *kernel, C/G) of a padded channels-innermost copy of ``x``
    in a work buffer."""
    xp = _scratch.padded("padded", x, args.pads, channels_last=True)
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


def _forward(x, weight, bias, args):
    """The output, laid out as torch's would be. The columns sit in a reused work buffer, or
    are never made whole."""
    out_size = args.out_size(tuple(x.shape[2:]))
    fmt = memory_format(x, weight)
    if not channels_innermost(x, args):  # written into its final shape: a view could not be changed in place
        cols = columns(x, args)
        out = x.new_empty(x.shape[0], weight.shape[0], *out_size)
        torch.matmul(_filters(weight, args.groups), cols, out=out.view(*cols.shape[:2], -1, cols.shape[-1]))
    else:
        filters = _filters_last(weight, args.groups)
        shape = (args.groups, x.shape[0] * math.prod(out_size), filters.shape[2])  # (G, N * positions, O/G)
        reuse = fmt is None  # the contiguous result is a copy of the product, which can be reused
        product = _scratch.buffer("product", shape, x) if reuse else x.new_empty(shape)
        _chunked_product(x, filters, args, product)
        grid = product.unflatten(1, (x.shape[0], *out_size)).movedim(0, -2)
        out = grid.flatten(-2).movedim(-1, 1)
        if reuse:  # a copy even where the view is already contiguous (one position or one channel)
            out = out.clone(memory_format=torch.contiguous_format)
    out = out.contiguous(memory_format=fmt or torch.contiguous_format)
    if bias is not None:
        out += bias.reshape(-1, *(1,) * (x.dim() - 2))
    return out


def _chunked_product(x, filters, args, product) -> None:
    """Write the columns-by-filters product of channels-innermost ``x`` into ``product``,
    :data:`CHUNK_BYTES` of columns (whole images) at a time."""
    for start, stop, rows in _image_chunks(x, args, CHUNK_BYTES):
        torch.bmm(columns(x[start:stop], args), filters, out=product[:, rows])


def _image_chunks(x, args, chunk_bytes: int):
    """(first image, end image, rows of the product) of each chunk of whole images whose
    channels-innermost columns take about ``chunk_bytes`` (at least one image)."""
    n, positions = x.shape[0], math.prod(args.out_size(tuple(x.shape[2:])))
    per_image = positions * math.prod(args.kernel) * x.shape[1] * x.element_size()
    per = max(1, chunk_bytes // per_image)
    for start in range(0, n, per):
        stop = min(start + per, n)
        yield start, stop, slice(start * positions, stop * positions)


def _backward_first(grad, x, weight, args, needs):
    """Input and weight gradients for :func:`_columns_first`'s layout."""
    g = grad.reshape(x.shape[0], args.groups, weight.shape[0] // args.groups, -1)  # (N, G, O/G, positions)
    wg = _filters(weight, args.groups)
    gw = torch.matmul(g, columns(x, args).mT).sum(0).view(weight.shape) if needs[1] else None
    if not needs[0]:
        return None, gw
    return col2im(torch.matmul(wg.mT, g), x.shape, args), gw


def col2im(cols: torch.Tensor, x_shape, args) -> torch.Tensor:
    """The adjoint of :func:`_columns_first`: (N, G, C/G * taps, positions) ``cols`` added
    back, tap by tap, into the input positions each was read from."""
    out_size = args.out_size(tuple(x_shape[2:]))
    taps = cols.reshape(*x_shape[:2], *args.kernel, *out_size)
    image = cols.new_zeros(*x_shape[:2], *_padded_size(x_shape[2:], args))
    for tap in _kernel_taps(args):
        image[(..., *_tap_slices(tap, out_size, args))] += taps[(slice(None), slice(None), *tap)]
    return image[(slice(None), *_interior(x_shape[2:], args))]


def _backward_last(grad, x, weight, args, needs):
    """Input and weight gradients for :func:`_columns_last`'s layout."""
    groups, o = args.groups, weight.shape[0]
    wide = grad.movedim(1, -1).reshape(-1, groups, o // groups).transpose(0, 1)  # (G, N * pos, O/G)
    gw = _weight_grad_last(x, wide, weight, args) if needs[1] else None
    if not needs[0]:
        return None, gw
    out_size, per_group = args.out_size(tuple(x.shape[2:])), x.shape[1] // groups
    g = torch.bmm(wide, _filters_last(weight, groups).mT)  # (G, N * positions, taps * C/G)
    taps = g.view(groups, x.shape[0], *out_size, *args.kernel, per_group).movedim(0, -2)
    image = grad.new_zeros(x.shape[0], *_padded_size(x.shape[2:], args), groups, per_group)
    for tap in _kernel_taps(args):
        image[(slice(None), *_tap_slices(tap, out_size, args))] += taps[(..., *tap, slice(None), slice(None))]
    return image.flatten(-2)[_interior(x.shape[2:], args)].movedim(-1, 1), gw


def _weight_grad_last(x, wide, weight, args):
    """The weight gradient: the columns made again, :data:`WEIGHT_CHUNK_BYTES` at a time, times
    the matching rows of the output gradient ``wide`` (G, N * positions, O/G), summed."""
    total = None
    for start, stop, rows in _image_chunks(x, args, WEIGHT_CHUNK_BYTES):
        cols = columns(x[start:stop], args)  # (G, rows, taps * C/G)
        if total is None:
            total = torch.bmm(cols.mT, wide[:, rows])
        else:
            total.baddbmm_(cols.mT, wide[:, rows])
    per_tap = total.mT.reshape(weight.shape[0], *weight.shape[2:], weight.shape[1])
    return per_tap.movedim(-1, 1).contiguous()


class _Columns(torch.autograd.Function):
    """``x`` -> its channels-first column matrix (:func:`_columns_first`), a fresh copy. The
    map is linear and its backward is its adjoint, :func:`col2im`, as :class:`_Col2im`, whose
    backward is this again: derivatives of every order stay exact."""

    @staticmethod
    def forward(ctx, x, args):
        ctx.args, ctx.x_shape = args, x.shape
        view = _columns_first(x, args)  # (N, G, C/G, *kernel, *out)
        return x.new_empty(view.shape).copy_(view).flatten(2, 2 + len(args.kernel)).flatten(3)

    @staticmethod
    def backward(ctx, grad):
        return _Col2im.apply(grad, ctx.x_shape, ctx.args), None


class _Col2im(torch.autograd.Function):
    """:func:`col2im` with :class:`_Columns` as its backward."""

    @staticmethod
    def forward(ctx, cols, x_shape, args):
        ctx.args = args
        return col2im(cols, x_shape, args)

    @staticmethod
    def backward(ctx, grad):
        return _Columns.apply(grad, ctx.args), None, None


def reference(x, weight, bias, args):
    """The same convolution in differentiable operations: :class:`_Columns` and ``matmul``.
    Its derivatives hold no copy of the input per tap, only the columns and their gradient."""
    out_size = args.out_size(tuple(x.shape[2:]))
    out = torch.matmul(_filters(weight, args.groups), _Columns.apply(x, args))
    out = out.reshape(x.shape[0], weight.shape[0], *out_size)
    return out if bias is None else out + bias.reshape(-1, *(1,) * len(out_size))


class _Im2col(torch.autograd.Function):
    """The column GEMM with its hand-written backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, bias, args):
        ctx.args = args
        ctx.save_for_backward(x, weight, bias)
        return _forward(x, weight, bias, args)

    @staticmethod
    @without_autocast
    def backward(ctx, grad):
        if torch.is_grad_enabled():
            return graph_backward(ctx, lambda *t: reference(*t, ctx.args), ctx.saved_tensors, grad)
        x, weight, bias = ctx.saved_tensors
        args, needs = ctx.args, ctx.needs_input_grad
        backward = _backward_last if channels_innermost(x, args) else _backward_first
        gx, gw = backward(grad, x, weight, args, needs)
        gb = grad.sum([0, *range(2, grad.dim())]) if bias is not None and needs[2] else None
        return gx, gw, gb, None


@conv_entry
def convnd(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d convolution with the semantics of ``F.conv{N}d``; N is ``weight.dim() - 2``."""
    args = normalize(x, weight, stride, padding, dilation, groups)
    return _Im2col.apply(x, weight, bias, args)


conv1d = conv2d = conv3d = convnd
"""The convolution of each dimension count (the weight's decides)."""
