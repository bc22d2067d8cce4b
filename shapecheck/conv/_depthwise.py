"""Depthwise convolution (one input channel per group) as a per-tap multiply-add, with a
hand-written backward.

There is nothing to contract: each output is ``sum_t w[c, t] * x_padded[n, c, p + offset_t]``.
The input is copied once into :mod:`.shift_add`'s phase buffer with one row per (image,
channel), so that every tap is a slice of a row at a fixed offset, and each tap is one
multiply-add over a block of rows. The layer is memory-bound (two flops per value read), so
the rows are taken in blocks of about :data:`BLOCK_BYTES`: a block of the buffer and its
accumulator stay in the cache while all taps pass over them, instead of every tap streaming
the whole tensor from memory.

The backward is the same per-tap multiply-add, run the other way:

- input gradient: each tap adds ``w[c, t] * grad`` into a zeroed phase buffer at the tap's
  offset, which is then read back into the image (a transposed convolution, tap by tap);
- weight gradient: for each tap, the product of the output gradient with that tap's slice of
  the saved buffer, summed over positions and images.

Both read the output gradient in the buffer's slot layout (zeros in the slots the forward
throws away), block by block. With ``create_graph=True`` autograd differentiates
:func:`reference` instead, so second-order gradients are exact.
"""

from __future__ import annotations

import torch

from . import shift_add
from ._autograd import graph_backward

BLOCK_BYTES = 2**20
"""Bytes of phase buffer per block of rows. A block and its accumulator stay in the cache
while the taps pass over them; much smaller blocks lose more to the fixed cost of each
operation than they gain (measured on the depthwise layer of ``benchmarks/conv.py``: 64 KiB
blocks took twice as long as 1 MiB ones, and the unblocked pass 1.7x as long)."""


def _blocks(rows: int, row_bytes: int) -> list[slice]:
    size = max(1, BLOCK_BYTES // row_bytes)
    return [slice(r, min(r + size, rows)) for r in range(0, rows, size)]


def _taps(weight: torch.Tensor, n: int) -> torch.Tensor:
    """(C, 1, kh, kw) -> (N * C, taps): each row's tap weights."""
    c = weight.shape[0]
    return weight.reshape(1, c, -1).expand(n, -1, -1).reshape(n * c, -1)


def _multiply_add(acc, buf, taps, first, lay) -> None:
    """``acc = first + sum_t taps[:, t] * tap_t(buf)`` for one block of rows."""
    for t in range(len(lay.offsets)):
        piece, scale = shift_add._tap(buf, lay, t, lay.block), taps[:, t:t + 1]
        if t:
            acc.addcmul_(piece, scale)
        elif first is None:
            torch.mul(piece, scale, out=acc)
        else:
            torch.addcmul(first, piece, scale, out=acc)


def forward(buf, taps, bias_rows, lay) -> torch.Tensor:
    """(rows, Ho, Wo) output of the (rows, buffer) phase buffer, block by block."""
    rows = buf.shape[0]
    out = buf.new_empty(rows, *lay.out)
    blocks = _blocks(rows, buf.shape[1] * buf.element_size())
    acc = buf.new_empty(blocks[0].stop, lay.block)
    ho, wo = lay.out
    for b in blocks:
        a = acc[: b.stop - b.start]
        _multiply_add(a, buf[b], taps[b], None if bias_rows is None else bias_rows[b], lay)
        out[b].copy_(a.view(-1, *lay.slots)[:, :ho, :wo])
    return out


def backward(grad, buf, taps, lay, needs) -> tuple:
    """(buffer gradient or None, (rows, taps) weight gradient or None) from (rows, Ho, Wo) ``grad``."""
    rows = buf.shape[0]
    gbuf = torch.zeros_like(buf) if needs[0] else None
    gtaps = buf.new_empty(len(lay.offsets), rows) if needs[1] else None
    blocks = _blocks(rows, buf.shape[1] * buf.element_size())
    wide = buf.new_zeros(blocks[0].stop, lay.block)  # spare slots stay zero
    product = buf.new_empty(wide.shape) if needs[1] else None
    ho, wo = lay.out
    for b in blocks:
        g = wide[: b.stop - b.start]
        g.view(-1, *lay.slots)[:, :ho, :wo].copy_(grad[b])
        for t in range(len(lay.offsets)):
            if gbuf is not None:
                shift_add._tap(gbuf[b], lay, t, lay.block).addcmul_(g, taps[b, t:t + 1])
            if gtaps is not None:
                p = product[: g.shape[0]]
                torch.mul(g, shift_add._tap(buf[b], lay, t, lay.block), out=p)
                torch.sum(p, 1, out=gtaps[t, b])
    return gbuf, gtaps


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


class Depthwise(torch.autograd.Function):
    """The blocked multiply-add with its hand-written backward (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, weight, bias, lay):
        n, c = x.shape[:2]
        buf = shift_add.scatter(x, lay, batch_inside=False).view(n * c, -1)
        taps = _taps(weight, n)
        bias_rows = None if bias is None else bias.view(1, c).expand(n, c).reshape(-1, 1)
        ctx.save_for_backward(buf, x, weight, bias)
        ctx.lay = lay
        return forward(buf, taps, bias_rows, lay).view(n, c, *lay.out)

    @staticmethod
    def backward(ctx, grad):
        buf, x, weight, bias = ctx.saved_tensors
        lay, needs = ctx.lay, ctx.needs_input_grad
        if torch.is_grad_enabled():
            return graph_backward(ctx, lambda *t: reference(*t, lay), (x, weight, bias), grad)
        n, c = x.shape[:2]
        gbuf, gtaps = backward(grad.reshape(n * c, *lay.out), buf, _taps(weight, n), lay, needs)
        gx = None if gbuf is None else shift_add.gather(gbuf.view(n, c, -1), x.shape, lay, batch_inside=False)
        gw = None if gtaps is None else gtaps.view(-1, n, c).sum(1).t().reshape(weight.shape)
        gb = grad.sum((0, 2, 3)) if bias is not None and needs[2] else None
        return gx, gw, gb, None


def conv2d(x, weight, bias, lay, groups):
    """A convolution whose groups have one input channel each; channel multipliers repeat
    each input channel first, so that every output channel reads its own copy."""
    mult = weight.shape[0] // x.shape[1]
    if mult > 1:
        x = x.repeat_interleave(mult, dim=1)
    return Depthwise.apply(x, weight, bias, lay)
