"""Convolution as patch extraction (im2col) followed by one matrix multiplication.

The patches are gathered with one strided slice of the padded input per kernel tap and
stacked into a column matrix of shape (N, G, C/G * taps, output positions); each group's
filters, flattened to (O/G, C/G * taps), then multiply it in a single batched matmul. Slices
and ``stack`` keep autograd cheap (no ``as_strided`` backward).
"""

from __future__ import annotations

import itertools

import torch

from ._args import normalize, pad_input
from ._entry import conv_entry


def columns(x: torch.Tensor, args) -> torch.Tensor:
    """The im2col matrix of padded (N, C, *spatial) ``x``: (N, C * taps, *out_size)."""
    out_size = args.out_size(tuple(x.shape[2:]))
    xp = pad_input(x, args.pads)
    taps = [xp[(...,) + _tap_slices(tap, out_size, args)]
            for tap in itertools.product(*(range(k) for k in args.kernel))]
    stacked = torch.stack(taps, dim=2)  # (N, C, taps, *out_size)
    return stacked.reshape(x.shape[0], -1, *out_size)


def _tap_slices(tap, out_size, args) -> tuple[slice, ...]:
    return tuple(
        slice(t * d, t * d + s * (o - 1) + 1, s)
        for t, o, s, d in zip(tap, out_size, args.stride, args.dilation)
    )


@conv_entry
def convnd(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d convolution with the semantics of ``F.conv{N}d``; N is ``weight.dim() - 2``."""
    args = normalize(x, weight, stride, padding, dilation, groups)
    cols = columns(x, args)
    batch, out_channels = x.shape[0], weight.shape[0]
    out_size = cols.shape[2:]
    cols = cols.reshape(batch, groups, -1, out_size.numel())
    wg = weight.reshape(groups, out_channels // groups, -1)
    out = torch.matmul(wg, cols).reshape(batch, out_channels, *out_size)
    if bias is not None:
        out = out + bias.reshape(-1, *(1,) * len(out_size))
    return out


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return convnd(x, weight, bias, stride, padding, dilation, groups)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return convnd(x, weight, bias, stride, padding, dilation, groups)


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return convnd(x, weight, bias, stride, padding, dilation, groups)
