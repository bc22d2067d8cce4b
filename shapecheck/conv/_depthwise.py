"""Depthwise convolution (one input channel per group) as a per-tap multiply-add, with a
hand-written backward.

There is nothing to contract: each output is ``sum_t w[c, t] * x_padded[n, c, p + offset_t]``.
Each (image, channel) is a row of :mod:`.shift_add`'s phase buffer, so that every tap is a
slice of a row at a fixed offset, and each tap is one multiply-add over a block of rows. The
layer is memory-bound (two flops per value read), so the work goes block by block, about
:data:`BLOCK_BYTES` of rows at a time (all rows at once up to :data:`WHOLE_BYTES`): a block
of the input is copied into a reused buffer, all taps pass over it and its accumulator while
they stay in the cache, and the block of output is written once. The input is read from
memory once and the output written once; the per-tap traffic stays in the cache.

The block buffers are reused work buffers (:mod:`._scratch`): fresh ones cost page faults on
every call, as much as a third of the layer's time.

The backward is the same per-tap multiply-add, run the other way, block by block:

- input gradient: each tap adds ``w[c, t] * grad`` into a zeroed buffer at the tap's offset,
  which is then read back into the image (a transposed convolution, tap by tap);
- weight gradient: for each tap, the product of the output gradient with that tap's slice of
  the input block, summed over positions and images.

Both read the output gradient in the buffer's slot layout (zeros in the slots the forward
throws away). With ``create_graph=True`` autograd differentiates :func:`reference` instead,
so second-order gradients are exact.

Stride 1 with output rows as wide as the input's (``same`` padding across, the usual
depthwise layer) takes a shorter road in the forward (:func:`flat_forward`): every tap reads
the image itself at a fixed flat offset and adds straight into the output, with no phase
buffer to fill and nothing to crop. A tap that shifts sideways would read across the edge of
a row into the next one; it reads instead a copy of the block whose columns it must not reach
are zeroed, one copy per sideways shift, so what it adds there is an exact zero (a NaN or an
infinity at the far edge stays where torch keeps it). A 3x3 kernel then costs its 9 taps and
two plain copies per block instead of its 9 taps, the fill and the crop, strided copies of
short rows that each cost as much as several taps (on the depthwise layer of
``benchmarks/conv.py``: 1.4 ms instead of 1.8 ms, same process, taken in turn). Kernels with
more than :data:`MAX_SIDEWAYS` columns off the centre keep the phase buffer: their copies
would cost more than the fill and the crop.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from . import _scratch, shift_add
from ._autograd import graph_backward, without_autocast

BLOCK_BYTES = 4 * 2**20
"""Bytes of rows per block above :data:`WHOLE_BYTES`. A block, its output and its copies stay
in the last-level cache while the taps pass over them, and every operation costs the same
fixed time whatever its size (with two threads, a wake-up and a barrier), so blocks far
smaller than the cache lose more to that cost than they gain. Measured with two threads on a
32 MiB L3, freed memory kept by the allocator, blockings timed in turn: on the larger depthwise
layer of ``benchmarks/conv.py`` (98 MiB of input), 2 MiB blocks took 27-29 ms, 4 MiB 25-27 ms,
8 MiB 30-33 ms, 16 MiB 48-53 ms and the whole tensor 67-68 ms; F.conv2d 22-23 ms."""

WHOLE_BYTES = 8 * 2**20
"""Up to this many bytes of rows (of the image on the flat road, of phase buffer otherwise)
are taken in one block: with the output and the copies they fit in the last-level cache, and
blocks would only add operations. Measured as above on the depthwise layer of
``benchmarks/conv.py`` (6 MiB of input): whole, 1.5-1.6 ms; in blocks of 4 MiB, 2.6-3.0 ms;
in two even blocks, 2.5-2.9 ms; F.conv2d 0.6 ms. When F.conv2d slowed to 1.1 ms (another load
on the machine) all three took 2.5-2.7 ms. The same layer at stride 2 (phase buffer): 1.2 ms
whole against 1.3-1.9 ms in blocks. From about 8 MiB of input on (10 images of that layer)
blocks of :data:`BLOCK_BYTES` were as fast or faster, from 12 MiB on clearly so."""


def _block_rows(rows: int, row_bytes: int) -> int:
    """Rows per block: all of them up to :data:`WHOLE_BYTES`, else about :data:`BLOCK_BYTES`
    of them."""
    if rows * row_bytes <= WHOLE_BYTES:
        return rows
    return max(1, BLOCK_BYTES // row_bytes)


def _blocks(image: torch.Tensor, lay) -> list[slice]:
    """Slices of ``image``'s rows in blocks of :func:`_block_rows`, counted in phase buffer."""
    rows = image.shape[0]
    size = _block_rows(rows, image.element_size() * _row_length(lay))
    return [slice(r, min(r + size, rows)) for r in range(0, rows, size)]


def _row_length(lay) -> int:
    return lay.phases * lay.block + lay.tail


def _span(lay) -> int:
    """Slots of a row that one tap reads: the output rows, each ``Wq`` slots wide. The block's
    last ``Hq - Ho`` rows of slots only ever receive values that are thrown away."""
    return lay.out[0] * lay.slots[1]


def _piece(buf: torch.Tensor, lay, tap: int) -> torch.Tensor:
    """Tap ``tap``'s :func:`_span` slots of each row of ``buf``."""
    phase, offset = lay.offsets[tap]
    start = phase * lay.block + offset
    return buf[..., start:start + _span(lay)]


def _taps(weight: torch.Tensor, n: int) -> torch.Tensor:
    """(C, 1, kh, kw) -> (N * C, taps): each row's tap weights."""
    c = weight.shape[0]
    return weight.reshape(1, c, -1).expand(n, -1, -1).reshape(n * c, -1)


def _multiply_add(acc, buf, taps, first, lay) -> None:
    """``acc = first + sum_t taps[:, t] * tap_t(buf)`` for one block of rows."""
    for t in range(len(lay.offsets)):
        piece, scale = _piece(buf, lay, t), taps[:, t:t + 1]
        if t:
            acc.addcmul_(piece, scale)
        elif first is None:
            torch.mul(piece, scale, out=acc)
        else:
            torch.addcmul(first, piece, scale, out=acc)


def forward(image, taps, bias_rows, lay, result=None) -> torch.Tensor:
    """(rows, Ho, Wo) output of the (rows, H, W) ``image``, block by block, written into
    ``result`` (any tensor of ``rows * Ho * Wo`` values, returned as it is) when given."""
    rows = image.shape[0]
    blocks = _blocks(image, lay)
    buf = _scratch.buffer("depthwise rows", (blocks[0].stop, _row_length(lay)), image).zero_()
    acc = _scratch.buffer("depthwise sums", (blocks[0].stop, _span(lay)), image)
    result = image.new_empty(rows, *lay.out) if result is None else result
    out = result.view(rows, *lay.out)
    ho, wo = lay.out
    for b in blocks:
        size = b.stop - b.start
        shift_add.fill(buf[:size], image[b].unsqueeze(1), lay)
        _multiply_add(acc[:size], buf[:size], taps[b], None if bias_rows is None else bias_rows[b], lay)
        out[b].copy_(acc[:size].view(-1, ho, lay.slots[1])[:, :, :wo])
    return result


def backward(grad, image, taps, lay, needs) -> tuple:
    """((rows, H, W) input gradient or None, (taps, rows) weight gradient or None) from the
    (rows, Ho, Wo) output gradient ``grad``, block by block."""
    rows = image.shape[0]
    blocks = _blocks(image, lay)
    gx = torch.zeros_like(image) if needs[0] else None  # pixels no tap reads get no gradient
    gtaps = image.new_empty(len(lay.offsets), rows) if needs[1] else None
    rows_shape, span_shape = (blocks[0].stop, _row_length(lay)), (blocks[0].stop, _span(lay))
    buf = _scratch.buffer("depthwise rows", rows_shape, image).zero_()  # padding slots stay zero
    gbuf = _scratch.buffer("depthwise gradient rows", rows_shape, image) if needs[0] else None
    wide = _scratch.buffer("depthwise sums", span_shape, image).zero_()  # slots past the output stay zero
    product = _scratch.buffer("depthwise products", span_shape, image)
    ho, wo = lay.out
    for b in blocks:
        size = b.stop - b.start
        g = wide[:size]
        g.view(-1, ho, lay.slots[1])[:, :, :wo].copy_(grad[b])
        if gtaps is not None:
            shift_add.fill(buf[:size], image[b].unsqueeze(1), lay)
            for t in range(len(lay.offsets)):
                torch.mul(g, _piece(buf[:size], lay, t), out=product[:size])
                torch.sum(product[:size], 1, out=gtaps[t, b])
        if gbuf is not None:
            _input_grad(gbuf[:size], g, taps[b], lay)
            shift_add.read_back(gbuf[:size], gx[b].unsqueeze(1), lay)
    return gx, gtaps


def _input_grad(buf, g, taps, lay) -> None:
    """Overwrite ``buf`` with the sum over taps of ``g * taps[:, t]`` at each tap's offset."""
    buf.zero_()
    for t in range(len(lay.offsets)):
        _piece(buf, lay, t).addcmul_(g, taps[:, t:t + 1])


def reference(x, weight, bias, lay):
    """The same convolution in differentiable operations, for autograd to record."""
    n, c = x.shape[:2]
    buf = shift_add.scatter(x, lay, batch_inside=False).view(n * c, -1)
    taps = _taps(weight, n)
    out = None
    for t in range(len(lay.offsets)):
        piece, scale = shift_add._tap(buf, lay, t, lay.block), taps[:, t:t + 1]
        out = piece * scale if out is None else out + piece * scale
    ho, wo = lay.out
    out = out.view(n, c, *lay.slots)[:, :, :ho, :wo]
    return out if bias is None else out + bias.view(-1, 1, 1)


MAX_SIDEWAYS = 4
"""Sideways shifts (kernel columns off the centre) at most for :func:`flat_forward`."""


@dataclass(frozen=True)
class FlatTap:
    """One tap in :func:`flat_forward`: output positions ``start:stop`` (flat, row-major) add
    ``taps[:, index]`` times the input at ``position + shift``; outside that range the tap
    would read above or below the image."""

    index: int
    shift: int
    start: int
    stop: int


def flat_plan(in_size, lay) -> tuple[tuple[int, tuple[FlatTap, ...]], ...] | None:
    """The taps of :func:`flat_forward` grouped by sideways shift, the unshifted group first,
    each group's widest tap first; None where that road does not apply (see the module
    docstring). Made once per layer geometry (sizes a trace keeps symbolic are not cached)."""
    in_size = tuple(in_size)
    if all(type(v) is int for v in in_size):
        return _cached_plan(in_size, lay)
    return _plan(in_size, lay)


def _plan(in_size, lay):
    (h, w), (ho, wo) = in_size, lay.out
    if lay.stride != (1, 1) or wo != w:
        return None
    groups: dict[int, list[FlatTap]] = {}
    for index, (_, offset) in enumerate(lay.offsets):
        qh, qw = divmod(offset, lay.slots[1])
        dh, dw = qh - lay.first[0], qw - lay.first[1]
        shift = dh * w + dw
        start, stop = max(max(0, -dh) * w, -shift), min(min(ho, h - dh) * w, h * w - shift)
        if start < stop:
            groups.setdefault(dw, []).append(FlatTap(index, shift, start, stop))
    if sum(1 for dw in groups if dw) > MAX_SIDEWAYS:
        return None
    return tuple((dw, tuple(sorted(groups[dw], key=lambda t: t.start - t.stop))) for dw in sorted(groups, key=abs))


_cached_plan = functools.lru_cache(maxsize=256)(_plan)


def flat_forward(image, taps, bias_rows, plan, result) -> torch.Tensor:
    """(rows, Ho, W) output of the (rows, H, W) ``image`` by :func:`flat_plan`'s taps, block by
    block, written into ``result`` (any tensor of ``rows * Ho * W`` values, returned)."""
    rows, h, w = image.shape
    flat, out = image.reshape(rows, h * w), result.view(rows, -1)
    size = _block_rows(rows, image.element_size() * h * w)
    sideways = any(dw for dw, _ in plan)
    copy = _scratch.buffer("depthwise edges", (min(size, rows), h * w), image) if sideways else None
    for r in range(0, rows, size):
        b = slice(r, min(r + size, rows))
        start = 0.0 if bias_rows is None else bias_rows[b]  # what the first tap adds to
        for dw, group in plan:
            src = flat[b] if dw == 0 else _edges_zeroed(copy[: b.stop - b.start], flat[b], dw, w)
            for tap in group:
                _add_tap(out[b], src, taps[b, tap.index:tap.index + 1], tap, start)
                start = None
        if start is not None:  # no tap reads the image
            _fill(out[b], start)
    return result


def _edges_zeroed(copy, src, dw: int, w: int) -> torch.Tensor:
    """``src`` copied into ``copy`` with the columns a tap shifted ``dw`` sideways must not read
    set to zero (they are the far edge of the neighbouring row)."""
    copy.copy_(src)
    cols = slice(0, min(dw, w)) if dw > 0 else slice(max(w + dw, 0), w)
    copy.view(copy.shape[0], -1, w)[:, :, cols].zero_()
    return copy


def _add_tap(out, src, scale, tap: FlatTap, start) -> None:
    """``out += scale * src`` at the tap's shift. Given ``start`` (a number or a column of
    biases), the tap writes its range as ``start + scale * src`` and the rest of ``out`` as
    ``start`` instead."""
    target, piece = out[:, tap.start:tap.stop], src[:, tap.start + tap.shift:tap.stop + tap.shift]
    if start is None:
        target.addcmul_(piece, scale)
        return
    if isinstance(start, float):
        torch.mul(piece, scale, out=target)
    else:
        torch.addcmul(start, piece, scale, out=target)
    _fill(out[:, :tap.start], start)
    _fill(out[:, tap.stop:], start)


def _fill(out, value) -> None:
    """Set ``out`` to ``value``: a number or a column broadcast along each row."""
    if isinstance(value, float):
        out.fill_(value)
    elif out.numel():
        out.copy_(value.expand_as(out))


def moved_values(x_shape, lay) -> int:
    """Values the forward's operations read and write on an (N, C, H, W) input: on the flat
    road, per sideways shift a copy of the input, per tap a read of the input and a read and
    write of the output over the tap's range (the first tap only writes); on the phase buffer,
    its fill, per tap a read of the buffer and of the accumulator and a write of it, and the
    crop. The columns zeroed in the copies are not counted."""
    rows, in_size = x_shape[0] * x_shape[1], tuple(x_shape[2:])
    plan = flat_plan(in_size, lay)
    if plan is None:
        taps = len(lay.offsets)
        return rows * (2 * math.prod(in_size) + (3 * taps - 1) * _span(lay) + 2 * math.prod(lay.out))
    copies = 2 * math.prod(in_size) * sum(1 for dw, _ in plan if dw)
    spans = [tap.stop - tap.start for _, group in plan for tap in group]
    return rows * (copies + 3 * sum(spans) - (spans[0] if spans else 0))


class Depthwise(torch.autograd.Function):
    """The blocked multiply-add with its hand-written backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, bias, lay):
        n, c = x.shape[:2]
        bias_rows = None if bias is None else bias.view(1, c).expand(n, c).reshape(-1, 1)
        ctx.save_for_backward(x, weight, bias)
        ctx.lay = lay
        # written into its final shape: an output that is a view could not be changed in place
        result = x.new_empty(n, c, *lay.out)
        plan = flat_plan(x.shape[2:], lay)
        if plan is not None:
            return flat_forward(_rows(x), _taps(weight, n), bias_rows, plan, result)
        return forward(_rows(x), _taps(weight, n), bias_rows, lay, result)

    @staticmethod
    @without_autocast
    def backward(ctx, grad):
        x, weight, bias = ctx.saved_tensors
        lay, needs = ctx.lay, ctx.needs_input_grad
        if torch.is_grad_enabled():
            return graph_backward(ctx, lambda *t: reference(*t, lay), (x, weight, bias), grad)
        n, c = x.shape[:2]
        gx, gtaps = backward(_rows(grad), _rows(x), _taps(weight, n), lay, needs)
        gx = None if gx is None else gx.view(x.shape)
        gw = None if gtaps is None else gtaps.view(-1, n, c).sum(1).t().reshape(weight.shape)
        gb = grad.sum((0, 2, 3)) if bias is not None and needs[2] else None
        return gx, gw, gb, None


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N * C, H, W), one row per (image, channel)."""
    return t.reshape(-1, *t.shape[2:])


def conv2d(x, weight, bias, lay, groups):
    """A convolution whose groups have one input channel each; channel multipliers repeat
    each input channel first, so that every output channel reads its own copy."""
    mult = weight.shape[0] // x.shape[1]
    if mult > 1:
        x = x.repeat_interleave(mult, dim=1)
    return Depthwise.apply(x, weight, bias, lay)
