"""Winograd F(2x2, 3x3): 3x3 kernels, stride 1, any dilation, padding and groups.

Each 2x2 block of output is computed from a 4x4 tile of input with 16 multiplications per
channel pair instead of 36. The tiles overlap by two rows and columns, so the input
transform ``B^T d B`` is written as additions of strided views of the padded input (rows
``i, i + 2, i + 4, ...`` for ``i = 0..3``), the 16 transformed planes are contracted with
the transformed filters ``G g G^T`` in one batched matmul of 16 x groups products, and the
output transform ``A^T m A`` is again additions, written into the four interleaved phases of
the output. Odd output sizes are padded up to whole tiles and cropped.

The padded input, the transformed planes and their product are reused work buffers
(:mod:`._scratch`); only the output is allocated on each call.

A dilated convolution is split into undilated ones first: with dilation ``d`` (stride 1),
output row ``o`` reads input rows ``o + d * k``, all in the same phase ``o mod d``, so the
padded input cut into its ``d_h * d_w`` phases (every ``d``-th row and column) holds
``d_h * d_w`` smaller images, each convolved with the undilated kernel. They are stacked along
the batch, convolved at once, and the outputs interleaved back.

The backward pass is a Winograd convolution too: the input gradient is the output gradient
convolved with the flipped, transposed filters (still 3x3, stride 1), and the weight
gradient is a tap-by-tap GEMM against the input (see :mod:`.shift_add`).
"""

from __future__ import annotations

import torch

from . import _scratch, shift_add
from ._args import NotApplicable, normalize
from ._autograd import vjp_with_graph, without_autocast
from ._entry import conv_entry

# G: the filter transform of F(2x2, 3x3).
_FILTER = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))


def check(args) -> None:
    """Raise :class:`NotApplicable` unless ``args`` is a 3x3, stride-1 convolution."""
    problems = []
    if args.kernel != (3, 3):
        problems.append(f"kernel {args.kernel[0]}x{args.kernel[1]}")
    if args.stride != (1, 1):
        problems.append(f"stride {args.stride}")
    if problems:
        raise NotApplicable("winograd F(2x2,3x3) needs a 3x3 kernel and stride 1; got " + ", ".join(problems))


_B_T = ((torch.sub, 0, 2), (torch.add, 1, 2), (torch.sub, 2, 1), (torch.sub, 1, 3))
"""``B^T`` of F(2x2, 3x3), one (operation, left row, right row) per transformed row."""


def _combine(d, out=None) -> torch.Tensor:
    """``B^T`` applied to the four views ``d``: written into ``out``'s four slots, or stacked
    into a new tensor when ``out`` is None (the differentiable form)."""
    if out is None:
        return torch.stack([op(d[i], d[j]) for op, i, j in _B_T])
    for slot, (op, i, j) in zip(out, _B_T):
        op(d[i], d[j], out=slot)
    return out


def _views(t: torch.Tensor, dim: int, tiles: int) -> list[torch.Tensor]:
    """Rows (or columns) ``i, i + 2, ..., i + 2 * (tiles - 1)`` of ``t`` for ``i = 0..3``."""
    step = (slice(None),) * dim + (slice(None, None, 2),)
    return [t.narrow(dim, i, 2 * tiles - 1)[step] for i in range(4)]


def transform_input(x: torch.Tensor, tiles: tuple[int, int], graph: bool = False) -> torch.Tensor:
    """(N, C, 2*th + 2, 2*tw + 2) -> (4, 4, C, N * th * tw). ``graph``: differentiable ops only."""
    xt = x.transpose(0, 1)
    th, tw = tiles
    if graph:
        rows = _combine(_views(xt, 2, th))
        v = torch.stack([_combine(_views(rows[a], 3, tw)) for a in range(4)])
    else:
        rows = _combine(_views(xt, 2, th), _scratch.buffer("winograd rows", (4, *xt.shape[:2], th, xt.shape[3]), x))
        v = _scratch.buffer("winograd input", (4, 4, *xt.shape[:2], th, tw), x)
        for a in range(4):
            _combine(_views(rows[a], 3, tw), v[a])
    return v.reshape(4, 4, x.shape[1], -1)


def transform_filter(weight: torch.Tensor) -> torch.Tensor:
    """(O, C/G, 3, 3) -> (4, 4, O, C/G)."""
    g = weight.new_tensor(_FILTER)
    return torch.einsum("ai,bj,ocij->aboc", g, g, weight)


def transform_output(m: torch.Tensor, n: int, tiles: tuple[int, int], graph: bool = False) -> torch.Tensor:
    """(4, 4, O, N * th * tw) -> (N, O, 2 * th, 2 * tw), applying ``A^T m A``."""
    o = m.shape[2]
    th, tw = tiles
    m = m.view(4, 4, o, n, th, tw)
    rows = (m[0] + m[1] + m[2], m[1] - m[2] - m[3])
    if graph:
        y = torch.stack([torch.stack((r[0] + r[1] + r[2], r[1] - r[2] - r[3]), -1) for r in rows], 3)
        return y.transpose(0, 1).reshape(n, o, 2 * th, 2 * tw)  # (O, N, th, 2, tw, 2) -> (N, O, H, W)
    y = m.new_empty(n, o, 2 * th, 2 * tw)
    phases = y.view(n, o, th, 2, tw, 2).permute(3, 5, 1, 0, 2, 4)
    for i, r in enumerate(rows):
        torch.add(r[0] + r[1], r[2], out=phases[i, 0])
        torch.sub(r[1] - r[2], r[3], out=phases[i, 1])
    return y


def contract(u: torch.Tensor, v: torch.Tensor, groups: int, graph: bool = False) -> torch.Tensor:
    """(4, 4, O, C/G) x (4, 4, C, P) -> (4, 4, O, P), group by group (in a work buffer unless
    ``graph``)."""
    og, cg = u.shape[2] // groups, u.shape[3]
    if cg == 1 and og == 1:
        return u * v
    out = None if graph else _scratch.buffer("winograd product", (16 * groups, og, v.shape[-1]), v)
    m = torch.bmm(u.reshape(16 * groups, og, cg), v.reshape(16 * groups, cg, -1), out=out)
    return m.view(4, 4, -1, m.shape[-1])


def winograd(x: torch.Tensor, weight: torch.Tensor, pads, groups: int, graph: bool = False) -> torch.Tensor:
    """Convolution of (N, C, H, W) ``x`` without bias, padding (before, after) per axis.

    ``graph``: only differentiable operations (no ``out=`` writes), for autograd to record."""
    n = x.shape[0]
    out = [size + a + b - 2 for size, (a, b) in zip(x.shape[2:], pads)]
    tiles = tuple(-(-o // 2) for o in out)
    full = tuple((a, b + 2 * t - o) for (a, b), t, o in zip(pads, tiles, out))
    v = transform_input(_scratch.padded("winograd padded", x, full), tiles, graph)
    u = transform_filter(weight)
    y = transform_output(contract(u, v, groups, graph), n, tiles, graph)
    return y if list(y.shape[2:]) == out else y[:, :, : out[0], : out[1]]  # not a view where it need not be


class _Winograd(torch.autograd.Function):
    """Fast forward and backward; with ``create_graph`` the backward is autograd's own through
    the differentiable form of :func:`winograd`."""

    @staticmethod
    def forward(ctx, x, weight, args):
        ctx.save_for_backward(x, weight)
        ctx.args = args
        return winograd(x, weight, args.pads, args.groups).contiguous()

    @staticmethod
    @without_autocast
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        args = ctx.args
        if torch.is_grad_enabled():
            forward = lambda x, w: winograd(x, w, args.pads, args.groups, graph=True)  # noqa: E731
            return vjp_with_graph(forward, (x, weight), ctx.needs_input_grad[:2], grad) + (None,)
        grad = grad.contiguous()
        gx = gw = None
        if ctx.needs_input_grad[0]:
            gx = winograd(grad, _flipped(weight, args.groups), [(2 - a, 2 - b) for a, b in args.pads], args.groups)
        if ctx.needs_input_grad[1]:
            gw = shift_add.weight_grad(x, grad, args, weight.shape)
        return gx, gw, None


def _flipped(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """The filters of the input-gradient convolution: flipped and in/out swapped per group."""
    o, cg = weight.shape[:2]
    w = weight.flip(2, 3).view(groups, o // groups, cg, 3, 3).transpose(1, 2)
    return w.reshape(groups * cg, o // groups, 3, 3)


def _dilated(x: torch.Tensor, weight: torch.Tensor, args) -> torch.Tensor:
    """A dilated convolution as one undilated convolution of the input's phases (see the
    module docstring), in differentiable operations around :class:`_Winograd`. The phases
    are a stride-``d`` phase buffer of :mod:`.shift_add` (the padding written as its zeros),
    and the outputs of the phases are read back into every ``d``-th row and column."""
    (n, c), o = x.shape[:2], weight.shape[0]
    out = args.out_size(tuple(x.shape[2:]))
    per_phase = tuple(-(-size // d) for size, d in zip(out, args.dilation))  # outputs of each phase
    first = tuple(a for a, _ in args.pads)
    cut = shift_add.Layout(args.dilation, out, tuple(q + 2 for q in per_phase), first, (), 0)
    buf = x.new_zeros(1, cut.phases * n * c * cut.block)
    shift_add.fill(buf, x.reshape(1, n * c, *x.shape[2:]), cut)
    phases = buf.view(-1, c, *cut.slots)
    y = _Winograd.apply(phases, weight, normalize(phases, weight, 1, 0, 1, args.groups))
    result = y.new_empty(n, o, *out)  # every output pixel is in exactly one phase
    joined = shift_add.Layout(args.dilation, out, per_phase, (0, 0), (), 0)
    shift_add.read_back(y.reshape(1, -1), result.view(1, n * o, *out), joined)
    return result


@conv_entry
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution with the semantics of ``F.conv2d`` for 3x3, stride-1 layers."""
    args = normalize(x, weight, stride, padding, dilation, groups)
    check(args)
    out = _Winograd.apply(x, weight, args) if args.dilation == (1, 1) else _dilated(x, weight, args)
    if bias is not None:
        out = out + bias.view(-1, 1, 1)
    return out
