"""The reference convolution: one explicit loop over output positions.

At each output position the receptive field (every input channel of a group, every kernel
tap) is sliced out of the padded input and contracted with the group's filters. Batch and
channels are vectorised; positions are not. Slow, short, and easy to check by eye.
"""

from __future__ import annotations

import itertools

import torch

from ._args import normalize, pad_input
from ._entry import conv_entry


@conv_entry
def convnd(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d convolution with the semantics of ``F.conv{N}d``; N is ``weight.dim() - 2``."""
    args = normalize(x, weight, stride, padding, dilation, groups)
    xp = pad_input(x, args.pads)
    batch, channels = x.shape[:2]
    out_channels = weight.shape[0]
    out_size = args.out_size(tuple(x.shape[2:]))
    # (N, G, C/G, *spatial) against (G, O/G, C/G * taps)
    xg = xp.reshape(batch, groups, channels // groups, *xp.shape[2:])
    wg = weight.reshape(groups, out_channels // groups, -1)
    columns = []
    for position in itertools.product(*(range(o) for o in out_size)):
        window = xg[(...,) + _receptive_field(position, args)]
        columns.append(torch.einsum("ngk,gok->ngo", window.reshape(batch, groups, -1), wg))
    out = torch.stack(columns, dim=-1).reshape(batch, out_channels, *out_size)
    if bias is not None:
        out = out + bias.reshape(-1, *(1,) * len(out_size))
    return out


def _receptive_field(position, args) -> tuple[slice, ...]:
    return tuple(
        slice(p * s, p * s + d * (k - 1) + 1, d)
        for p, s, d, k in zip(position, args.stride, args.dilation, args.kernel)
    )


conv1d = conv2d = conv3d = convnd
"""The convolution of each dimension count (the weight's decides)."""
