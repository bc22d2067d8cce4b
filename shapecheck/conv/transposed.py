"""Transposed convolution with the semantics of ``F.conv_transpose{1,2,3}d``, from scratch.

Two constructions, both exact:

- direct (the default): every input position scatters ``weight[..., tap]`` times its value
  to output position ``i * stride + tap * dilation - padding``; one batched contraction
  gives all taps, which are then added into the output with one strided slice each.
- through a convolution (``conv=`` any ``conv{N}d`` of this package): insert ``stride - 1``
  zeros between input samples, pad by ``dilation * (kernel - 1) - padding`` (cropping when
  that is negative; ``output_padding`` extra on the after side), and correlate with the
  flipped kernel whose input and output channels are swapped within each group.
"""

from __future__ import annotations

import itertools

import torch

from ._args import ntuple, pad_input
from ._entry import conv_entry


def _check(x, weight, groups, stride, padding, output_padding, dilation) -> tuple[int, ...]:
    """Validate like torch and return the output spatial size."""
    if x.dim() != weight.dim():
        raise RuntimeError(
            f"expected a {weight.dim()}-D (batched) input, got {x.dim()}-D input of size {list(x.shape)}")
    if groups < 1 or weight.shape[0] % groups or x.shape[1] != weight.shape[0]:
        raise RuntimeError(
            f"Given transposed=1, weight of size {list(weight.shape)}, expected input{list(x.shape)} "
            f"to have {weight.shape[0]} channels, but got {x.shape[1]} channels instead")
    for op, s, d in zip(output_padding, stride, dilation):
        if op >= max(s, d):
            raise RuntimeError("output padding must be smaller than either stride or dilation, "
                               f"got output_padding={list(output_padding)}")
    out = tuple(
        (i - 1) * s - 2 * p + d * (k - 1) + op + 1
        for i, s, p, d, k, op in zip(x.shape[2:], stride, padding, dilation, weight.shape[2:], output_padding))
    if any(o < 1 for o in out):
        raise RuntimeError(f"Given input size {list(x.shape)}, calculated output size {list(out)} is too small")
    return out


@conv_entry
def conv_transposend(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     *, conv=None):
    """N-d transposed convolution; N is ``weight.dim() - 2``. ``conv`` selects the construction."""
    n = weight.dim() - 2
    stride, padding, output_padding, dilation = (
        ntuple(v, n, name) for v, name in
        ((stride, "stride"), (padding, "padding"), (output_padding, "output_padding"), (dilation, "dilation")))
    out_size = _check(x, weight, groups, stride, padding, output_padding, dilation)
    if conv is None:
        out = _scatter(x, weight, groups, stride, padding, dilation, out_size)
    else:
        out = _through_conv(x, weight, groups, stride, padding, output_padding, dilation, conv)
    if bias is not None:
        out = out + bias.reshape(-1, *(1,) * n)
    return out


def _scatter(x, weight, groups, stride, padding, dilation, out_size):
    batch, in_channels = x.shape[:2]
    in_size, kernel = x.shape[2:], weight.shape[2:]
    out_channels = weight.shape[1] * groups
    # contributions[n, o, tap, *in] = sum_c x[n, c, *in] * weight[c, o, tap] within each group
    xg = x.reshape(batch, groups, in_channels // groups, -1)
    wg = weight.reshape(groups, in_channels // groups, weight.shape[1], -1)
    contributions = torch.einsum("ngcs,gcot->ngots", xg, wg).reshape(batch, out_channels, -1, *in_size)
    # Room for every tap before cropping `padding` from both ends (and for output_padding).
    full = tuple(p + o for p, o in zip(padding, out_size))
    full = tuple(max(f, (i - 1) * s + d * (k - 1) + 1)
                 for f, i, s, d, k in zip(full, in_size, stride, dilation, kernel))
    out = x.new_zeros(batch, out_channels, *full)
    for t, tap in enumerate(itertools.product(*(range(k) for k in kernel))):
        where = tuple(slice(j * d, j * d + s * (i - 1) + 1, s)
                      for j, i, s, d in zip(tap, in_size, stride, dilation))
        out[(...,) + where] += contributions[:, :, t]
    return out[(...,) + tuple(slice(p, p + o) for p, o in zip(padding, out_size))]


def _through_conv(x, weight, groups, stride, padding, output_padding, dilation, conv):
    batch, in_channels = x.shape[:2]
    n = weight.dim() - 2
    upsampled = x.new_zeros(batch, in_channels, *((i - 1) * s + 1 for i, s in zip(x.shape[2:], stride)))
    upsampled[(...,) + tuple(slice(None, None, s) for s in stride)] = x
    pads = tuple((d * (k - 1) - p, d * (k - 1) - p + op)
                 for d, k, p, op in zip(dilation, weight.shape[2:], padding, output_padding))
    upsampled = pad_input(upsampled, pads)
    kernel = weight.shape[2:]
    flipped = (weight.reshape(groups, in_channels // groups, weight.shape[1], *kernel)
               .transpose(1, 2)
               .reshape(weight.shape[1] * groups, in_channels // groups, *kernel)
               .flip(tuple(range(2, n + 2))))
    return conv(upsampled, flipped, None, 1, 0, dilation, groups)


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     *, conv=None):
    return conv_transposend(x, weight, bias, stride, padding, output_padding, groups, dilation, conv=conv)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     *, conv=None):
    return conv_transposend(x, weight, bias, stride, padding, output_padding, groups, dilation, conv=conv)


def conv_transpose3d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                     *, conv=None):
    return conv_transposend(x, weight, bias, stride, padding, output_padding, groups, dilation, conv=conv)
