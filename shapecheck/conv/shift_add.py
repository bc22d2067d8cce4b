"""Shift-and-add convolution: small GEMMs over kernel taps, accumulated in place.

The padded input is copied once into a *phase buffer*. For stride ``s`` the padded image is
split into ``s_h * s_w`` phases (rows ``r, r + s, r + 2s, ...``), so every kernel tap of a
strided or dilated convolution reads one phase at a constant offset. Within a phase the
positions of all images are laid out contiguously, with ``Hq x Wq`` slots per image, where
``Hq``/``Wq`` are the output size plus the largest tap shift. A tap is then a plain slice
of that buffer at a fixed offset, with no copy: the slots past ``Ho x Wo`` receive values
that are thrown away, and in exchange every tap is a matrix on contiguous memory.

Two layouts of the buffer:

- channels first, batch inside the row ``(C, phases, N, Hq, Wq)``: a tap is a
  ``(C, positions)`` matrix and the output accumulates ``(O, C) @ (C, positions)`` with
  ``baddbmm_``. Consecutive taps are stacked along the reduction dimension until a GEMM is
  :data:`MIN_DEPTH` deep (three taps at 64 channels, all 49 of a 7x7 kernel on RGB): fewer,
  deeper GEMMs ran faster than one per tap, for a copy of the stacked slices.
- per image and channel ``(N, C, phases, Hq, Wq)`` when several groups have a single input
  channel each (depthwise, channel multipliers): there is nothing to contract, and each tap
  is a broadcast multiply-add over the output.

The stacked taps and the wide output are reused work buffers (:mod:`._scratch`), and so is
the phase buffer when no gradient will read it.

The GEMM path has a hand-written backward: the weight gradient is one GEMM per tap against
the same buffer slices, and the input gradient accumulates ``W_tap^T @ grad`` into a phase
buffer that is then gathered back to the image: a transposed convolution done tap by tap.
It records no graph; when the caller wants one (``create_graph=True``), autograd differentiates
the forward's own operations instead, so second-order gradients are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import _depthwise, _scratch
from ._args import normalize
from ._autograd import graph_backward, without_autocast
from ._entry import conv_entry

# Stack taps until the reduction depth of a GEMM reaches this many rows.
MIN_DEPTH = 192


@dataclass(frozen=True)
class Layout:
    """Where each kernel tap of a convolution reads the phase buffer."""

    stride: tuple[int, int]
    out: tuple[int, int]
    slots: tuple[int, int]
    first: tuple[int, int]
    offsets: tuple[tuple[int, int], ...]
    tail: int

    @property
    def phases(self) -> int:
        return self.stride[0] * self.stride[1]

    @property
    def block(self) -> int:
        return self.slots[0] * self.slots[1]


def layout(in_size, args) -> Layout:
    """The phase-buffer geometry of ``args`` on an input of spatial size ``in_size``."""
    out = args.out_size(tuple(in_size))
    shifts = [[divmod(t * d, s) for t in range(k)] for k, d, s in zip(args.kernel, args.dilation, args.stride)]
    slots = tuple(o + max(q for q, _ in taps) for o, taps in zip(out, shifts))
    sw = args.stride[1]
    offsets = tuple(
        (rh * sw + rw, qh * slots[1] + qw)
        for qh, rh in shifts[0] for qw, rw in shifts[1]
    )
    tail = max(off for _, off in offsets)
    first = tuple(p for p, _ in args.pads)
    return Layout(tuple(args.stride), out, slots, first, offsets, tail)


def scatter(x: torch.Tensor, lay: Layout, batch_inside: bool, scratch: bool = False) -> torch.Tensor:
    """Copy (N, C, H, W) ``x`` into a zeroed phase buffer (a reused work buffer when
    ``scratch``, see :mod:`._scratch`).

    ``batch_inside``: rows are channels, each ``(phases, N, Hq, Wq)`` long; otherwise rows are
    (N, C) and each is ``(phases, Hq, Wq)`` long. Every row has ``lay.tail`` spare slots.
    """
    src = x.transpose(0, 1) if batch_inside else x.reshape(1, -1, *x.shape[2:]).transpose(0, 1)
    rows, inner = src.shape[0], src.shape[1]
    shape = (rows, lay.phases * inner * lay.block + lay.tail)
    buf = _scratch.buffer("phases", shape, x).zero_() if scratch else x.new_zeros(shape)
    fill(buf, src, lay)
    return buf if batch_inside else buf.view(*x.shape[:2], -1)


def fill(buf: torch.Tensor, image: torch.Tensor, lay: Layout) -> None:
    """Copy (rows, inner, H, W) ``image`` into the phases of the (rows, ...) buffer ``buf``;
    the slots no image value lands in keep what they held (zeros in a fresh buffer)."""
    for target, source in _phase_pairs(buf, image, lay):
        target.copy_(source)


def read_back(buf: torch.Tensor, image: torch.Tensor, lay: Layout) -> None:
    """The inverse of :func:`fill`: copy the phases of ``buf`` into the image pixels they hold."""
    for source, target in _phase_pairs(buf, image, lay):
        target.copy_(source)


def gather(buf: torch.Tensor, shape, lay: Layout, batch_inside: bool) -> torch.Tensor:
    """The inverse of :func:`scatter`: read the image back out of a phase buffer."""
    n, c = shape[:2]
    out = buf.new_zeros(shape)
    dst = out.transpose(0, 1) if batch_inside else out.view(1, n * c, *shape[2:]).transpose(0, 1)
    read_back(buf.view(dst.shape[0], -1), dst, lay)
    return out


def _phase_pairs(buf, image, lay: Layout):
    """(buffer view, image view) pairs for each phase, image being (rows, inner, H, W)."""
    rows, inner = image.shape[:2]
    sh, sw = lay.stride
    phases = buf[:, : lay.phases * inner * lay.block].view(rows, sh, sw, inner, *lay.slots)
    for rh in range(sh):
        hs, hd = _phase_rows(rh, sh, lay.first[0], image.shape[2], lay.slots[0])
        for rw in range(sw):
            ws, wd = _phase_rows(rw, sw, lay.first[1], image.shape[3], lay.slots[1])
            if hs is not None and ws is not None:
                yield phases[:, rh, rw, :, hd, wd], image[:, :, hs, ws]


def _phase_rows(phase, stride, pad, size, slots):
    """Source slice in the image and target slice in the phase for one phase of one axis."""
    start = (phase - pad) % stride
    dest = (start + pad) // stride
    count = min(-(-(size - start) // stride), slots - dest)
    if count <= 0:
        return None, None
    return slice(start, start + stride * (count - 1) + 1, stride), slice(dest, dest + count)


def tap_chunks(lay: Layout, depth: int) -> list[list[int]]:
    """Consecutive runs of tap indices, each long enough for a GEMM of ``depth`` rows per tap."""
    size = max(1, MIN_DEPTH // depth)
    taps = list(range(len(lay.offsets)))
    return [taps[i:i + size] for i in range(0, len(taps), size)]


def _tap(buf, lay: Layout, tap: int, length: int) -> torch.Tensor:
    phase, offset = lay.offsets[tap]
    start = phase * length + offset
    return buf[..., start:start + length]


def _tap_matrix(buf, lay, chunk, length, groups):
    """(G, C/G * len(chunk), positions): the chunk's taps stacked along the reduction dim."""
    parts = [_tap(buf, lay, t, length).view(groups, -1, length) for t in chunk]
    if len(parts) == 1:
        return parts[0]
    depth = parts[0].shape[1]
    shape = (groups, depth * len(parts), length)
    cols = _scratch.buffer("stacked taps", shape, buf)
    for i, part in enumerate(parts):
        cols[:, i * depth:(i + 1) * depth].copy_(part)
    return cols


def _chunk_weight(weight, chunk, groups):
    """(G, O/G, C/G * len(chunk)) matching :func:`_tap_matrix`'s row order."""
    o, cg = weight.shape[:2]
    taps = weight.reshape(groups, o // groups, cg, -1)[..., chunk]
    return taps.permute(0, 1, 3, 2).reshape(groups, o // groups, -1)


def crop(wide: torch.Tensor, n: int, lay: Layout) -> torch.Tensor:
    """(O, N*Hq*Wq) wide output -> a new contiguous (N, O, Ho, Wo) tensor (never a view of
    ``wide``, which may be a work buffer, even where the transpose is already contiguous)."""
    ho, wo = lay.out
    grid = wide.reshape(-1, n, *lay.slots)[:, :, :ho, :wo]
    return grid.transpose(0, 1).clone(memory_format=torch.contiguous_format)


def _widen(grad: torch.Tensor, lay: Layout) -> torch.Tensor:
    """Contiguous (N, O, Ho, Wo) gradient -> (O, N*Hq*Wq) with zeros in the spare slots."""
    n, o = grad.shape[:2]
    wide = grad.new_zeros(o, n, *lay.slots)
    wide[:, :, : lay.out[0], : lay.out[1]] = grad.transpose(0, 1)
    return wide.view(o, -1)


def tap_gemms(buf, weight, bias, lay, n, groups):
    """The (O, N * Hq * Wq) wide output; in a work buffer unless autograd records (the caller
    crops it into a fresh tensor)."""
    length = n * lay.block
    out = None
    for chunk in tap_chunks(lay, weight.shape[1]):
        cols = _tap_matrix(buf, lay, chunk, length, groups)
        w = _chunk_weight(weight, chunk, groups)
        if out is None:
            wide = None if torch.is_grad_enabled() else _scratch.buffer("wide", (groups, w.shape[1], length), buf)
            out = torch.bmm(w, cols, out=wide)
        else:
            out.baddbmm_(w, cols)
    out = out.view(weight.shape[0], length)
    if bias is not None:
        out += bias.view(-1, 1)
    return out


def _gemm_forward(x, weight, bias, lay, groups, keep=True):
    """The output and the phase buffer (a reused work buffer unless ``keep``)."""
    buf = scatter(x, lay, batch_inside=True, scratch=not keep)
    return crop(tap_gemms(buf, weight, bias, lay, x.shape[0], groups), x.shape[0], lay), buf


class _ShiftAdd(torch.autograd.Function):
    """The GEMM path with its hand-written backward; with ``create_graph`` the backward is
    autograd's own through :func:`_gemm_forward`, so second-order gradients are exact."""

    @staticmethod
    def forward(ctx, x, weight, bias, lay, groups):
        keep = any(ctx.needs_input_grad[:2])  # the backward reads the phase buffer
        out, buf = _gemm_forward(x, weight, bias, lay, groups, keep)
        ctx.save_for_backward(buf if keep else None, x, weight, bias)
        ctx.lay, ctx.groups, ctx.x_shape, ctx.has_bias = lay, groups, x.shape, bias is not None
        return out

    @staticmethod
    @without_autocast
    def backward(ctx, grad):
        buf, x, weight, bias = ctx.saved_tensors
        lay, groups = ctx.lay, ctx.groups
        if torch.is_grad_enabled():
            forward = lambda *t: _gemm_forward(*t, lay, groups)[0]  # noqa: E731
            return graph_backward(ctx, forward, (x, weight, bias), grad)
        wide = _widen(grad.contiguous(), lay).view(groups, -1, ctx.x_shape[0] * lay.block)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = _input_grad(wide, weight, buf, lay, groups, ctx.x_shape)
        if ctx.needs_input_grad[1]:
            gw = _weight_grad(wide, buf, lay, groups, weight.shape)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad.sum((0, 2, 3))
        return gx, gw, gb, None, None


def _input_grad(wide, weight, buf, lay, groups, x_shape):
    length = x_shape[0] * lay.block
    gbuf = torch.zeros_like(buf)
    w = weight.reshape(groups, weight.shape[0] // groups, weight.shape[1], -1)
    for t in range(len(lay.offsets)):
        target = _tap(gbuf, lay, t, length).view(groups, -1, length)
        target.baddbmm_(w[..., t].transpose(1, 2), wide)
    return gather(gbuf, x_shape, lay, batch_inside=True)


def _weight_grad(wide, buf, lay, groups, w_shape):
    length = wide.shape[-1]
    taps = [torch.bmm(wide, _tap(buf, lay, t, length).view(groups, -1, length).transpose(1, 2))
            for t in range(len(lay.offsets))]
    return torch.stack(taps, dim=-1).view(w_shape)


def weight_grad(x, grad, args, w_shape):
    """Gradient of a convolution's weight from its (N, C, H, W) input and output gradient."""
    lay = layout(x.shape[2:], args)
    buf = scatter(x, lay, batch_inside=True)
    wide = _widen(grad, lay).view(args.groups, -1, x.shape[0] * lay.block)
    return _weight_grad(wide, buf, lay, args.groups, w_shape)


def _pointwise(x, weight, bias):
    """1x1 kernel, stride 1, no padding, one group: a batched matmul straight on NCHW."""
    n, c, h, w = x.shape
    out = torch.matmul(weight.view(weight.shape[0], c), x.reshape(n, c, h * w))
    if bias is not None:
        out = out + bias.view(-1, 1)
    return out.view(n, -1, h, w)


@conv_entry
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution with the semantics of ``F.conv2d``, by shift-and-add."""
    args = normalize(x, weight, stride, padding, dilation, groups)
    plain = args.stride == (1, 1) and all(p == (0, 0) for p in args.pads)
    if args.kernel == (1, 1) and plain and groups == 1:
        return _pointwise(x, weight, bias)
    lay = layout(x.shape[2:], args)
    if weight.shape[1] == 1 and groups > 1:
        return _depthwise.conv2d(x, weight, bias, lay, groups)
    return _ShiftAdd.apply(x, weight, bias, lay, groups)

