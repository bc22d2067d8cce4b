"""Convolution as one multiplication by a dense (doubly-blocked) Toeplitz matrix.

For each group the convolution is a linear map from the flattened input (C/G channels ×
input positions) to the flattened output (O/G channels × output positions). Its matrix has
one block per (output channel, input channel) pair; in 2-D each block is itself a block
matrix of Toeplitz rows, one per kernel row: the "doubly-blocked Toeplitz" matrix. Stride
and dilation space the taps, and padding is folded in by leaving out the taps that fall
outside the input, so the matrix applies to the unpadded input.

The matrix is dense and grows with the square of the image, so it is built only when it
fits in a memory budget (:data:`MEMORY_BUDGET`, or the ``budget`` argument); otherwise
:class:`MatrixTooLarge`, a :class:`NotApplicable`, is raised before anything is allocated.
"""

from __future__ import annotations

import math

import torch

from ._args import NotApplicable, normalize
from ._entry import conv_entry

MEMORY_BUDGET = 256 * 2**20
"""Largest Toeplitz matrix, in bytes, that :func:`conv2d` and friends will build."""


class MatrixTooLarge(NotApplicable):
    """The Toeplitz matrix of a layer would exceed the memory budget."""

    def __init__(self, nbytes: int, shape: tuple[int, ...], budget: int):
        self.nbytes = nbytes
        self.shape = shape
        self.budget = budget
        super().__init__(
            f"the Toeplitz matrix would be {nbytes:,} bytes ({' x '.join(map(str, shape))}), "
            f"over the budget of {budget:,} bytes")


def matrix_shape(x_shape, weight_shape, args) -> tuple[int, int, int]:
    """(groups, rows, columns) of the Toeplitz matrix for these shapes."""
    out_size = args.out_size(tuple(x_shape[2:]))
    rows = weight_shape[0] // args.groups * math.prod(out_size)
    cols = x_shape[1] // args.groups * math.prod(x_shape[2:])
    return args.groups, rows, cols


def toeplitz_matrix(weight: torch.Tensor, in_size: tuple[int, ...], args) -> torch.Tensor:
    """The (G, O/G * out positions, C/G * in positions) matrix; differentiable in ``weight``."""
    out_size = args.out_size(in_size)
    groups = args.groups
    out_per_group, in_per_group = weight.shape[0] // groups, weight.shape[1]
    positions, taps, flat_in, valid = _tap_positions(in_size, out_size, args, weight.device)
    n_out, n_in = math.prod(out_size), math.prod(in_size)
    # Entry (g, o*P + p, c*Q + q(p, t)) holds weight[g*O/G + o, c, t] for every valid (p, t).
    g, o, c = (torch.arange(n, device=weight.device) for n in (groups, out_per_group, in_per_group))
    p, t, q = positions[valid], taps[valid], flat_in[valid]
    rows = o[:, None, None] * n_out + p
    cols = c[None, :, None] * n_in + q
    values = weight.reshape(groups, out_per_group, in_per_group, -1)[:, :, :, t]
    matrix = weight.new_zeros(groups, out_per_group * n_out, in_per_group * n_in)
    index = (g[:, None, None, None], rows[None], cols[None])
    return matrix.index_put(index, values)


def _tap_positions(in_size, out_size, args, device):
    """For every (output position p, kernel tap t): p, t, the flat input index, and whether
    that input index lies inside the unpadded input. All flattened over (p, t)."""
    grids = torch.meshgrid(
        *(torch.arange(n, device=device) for n in out_size),
        *(torch.arange(k, device=device) for k in args.kernel),
        indexing="ij")
    dims = len(out_size)
    valid = torch.ones_like(grids[0], dtype=torch.bool)
    flat_in = torch.zeros_like(grids[0])
    for i in range(dims):
        coord = grids[i] * args.stride[i] + grids[dims + i] * args.dilation[i] - args.pads[i][0]
        valid &= (coord >= 0) & (coord < in_size[i])
        flat_in = flat_in * in_size[i] + coord
    n_out, n_taps = math.prod(out_size), math.prod(args.kernel)
    positions = torch.arange(n_out, device=device)[:, None].expand(n_out, n_taps)
    taps = torch.arange(n_taps, device=device)[None, :].expand(n_out, n_taps)
    return positions.reshape(-1), taps.reshape(-1), flat_in.reshape(-1), valid.reshape(-1)


@conv_entry
def convnd(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, budget=None):
    """N-d convolution with the semantics of ``F.conv{N}d`` by one Toeplitz matmul.

    Raises :class:`MatrixTooLarge` when the matrix exceeds ``budget`` bytes
    (default :data:`MEMORY_BUDGET`).
    """
    args = normalize(x, weight, stride, padding, dilation, groups)
    budget = MEMORY_BUDGET if budget is None else budget
    shape = matrix_shape(x.shape, weight.shape, args)
    nbytes = math.prod(shape) * weight.element_size()
    if nbytes > budget:
        raise MatrixTooLarge(nbytes, shape, budget)
    in_size = tuple(x.shape[2:])
    out_size = args.out_size(in_size)
    matrix = toeplitz_matrix(weight, in_size, args)
    batch = x.shape[0]
    flat = x.reshape(batch, groups, -1).permute(1, 2, 0)  # (G, C/G * in positions, N)
    out = torch.matmul(matrix, flat).permute(2, 0, 1).reshape(batch, weight.shape[0], *out_size)
    if bias is not None:
        out = out + bias.reshape(-1, *(1,) * len(out_size))
    return out


conv1d = conv2d = conv3d = convnd
"""The convolution of each dimension count (the weight's decides)."""
