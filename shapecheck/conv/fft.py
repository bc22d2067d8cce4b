"""Convolution by the FFT: a product per frequency instead of a sum per kernel tap.

A convolution layer computes a cross-correlation. With ``X`` and ``K`` the real FFTs of the
padded input and of the (dilated) kernel, both at the same length ``L``, the inverse FFT of
``X * conj(K)`` is the circular cross-correlation; for ``L`` at least the padded input size,
its first ``H_p - K_h + 1`` rows are exactly the stride-1 result, with no wrap-around. Stride
is then a subsampling of that result, and dilation is a kernel with zeros between its taps.

Channels are contracted per frequency (a complex ``(N, C) x (C, O)`` product at each of the
``L_h * (L_w / 2 + 1)`` frequencies). The time is nearly independent of the kernel size,
which is why this wins for large kernels. FFT lengths are rounded up to 7-smooth numbers
(``2^a 3^b 5^c 7^d``): an awkward length such as 258 = 2 * 3 * 43 is several times slower
than 270.
"""

from __future__ import annotations

import torch

from ._args import normalize, pad_input
from ._entry import conv_entry

_PRIMES = (2, 3, 5, 7)


def fast_length(n: int) -> int:
    """The smallest integer >= ``n`` with no prime factor above 7."""
    candidate = max(n, 1)
    while not _is_smooth(candidate):
        candidate += 1
    return candidate


def _is_smooth(n: int) -> bool:
    for p in _PRIMES:
        while n % p == 0:
            n //= p
    return n == 1


def dilate(weight: torch.Tensor, dilation: tuple[int, int]) -> torch.Tensor:
    """The kernel with ``dilation - 1`` zeros between taps."""
    if dilation == (1, 1):
        return weight
    o, c, kh, kw = weight.shape
    dh, dw = dilation
    out = weight.new_zeros(o, c, (kh - 1) * dh + 1, (kw - 1) * dw + 1)
    out[:, :, ::dh, ::dw] = weight
    return out


def contract(xf: torch.Tensor, kf: torch.Tensor, groups: int) -> torch.Tensor:
    """Per frequency: (N, C, F) x (O, C/G, F) -> (N, O, F), summed over each group's channels."""
    n, c, f = xf.shape
    o, cg = kf.shape[:2]
    xg = xf.view(n, groups, cg, f).permute(1, 3, 0, 2)  # (G, F, N, C/G)
    kg = kf.view(groups, o // groups, cg, f).permute(0, 3, 2, 1)  # (G, F, C/G, O/G)
    yg = torch.matmul(xg, kg.conj())  # (G, F, N, O/G)
    return yg.permute(2, 0, 3, 1).reshape(n, o, f)


@conv_entry
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution with the semantics of ``F.conv2d``, computed with real FFTs."""
    args = normalize(x, weight, stride, padding, dilation, groups)
    xp = pad_input(x, args.pads)
    kernel = dilate(weight, args.dilation)
    sizes = tuple(fast_length(n) for n in xp.shape[2:])
    xf = torch.fft.rfft2(xp, s=sizes)
    kf = torch.fft.rfft2(kernel, s=sizes)
    yf = contract(xf.flatten(2), kf.flatten(2), groups).view(x.shape[0], -1, *xf.shape[2:])
    y = torch.fft.irfft2(yf, s=sizes)
    ho, wo = args.out_size(tuple(x.shape[2:]))
    sh, sw = args.stride
    out = y[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw].contiguous()
    if bias is not None:
        out = out + bias.view(-1, 1, 1)
    return out
