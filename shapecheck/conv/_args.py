"""Normalise convolution arguments the way ``torch.nn.functional.conv*d`` reads them.

Every implementation in this package starts with :func:`normalize`, so that int-or-tuple
arguments, ``padding="same"``/``"valid"`` and group checks behave exactly like torch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ConvArgs:
    """Explicit per-dimension arguments of an N-d convolution.

    ``pads`` holds (before, after) for each spatial dimension: "same" padding with an even
    total pads one more on the after side, as torch does.
    """

    stride: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    groups: int
    kernel: tuple[int, ...]

    @property
    def symmetric_padding(self) -> tuple[int, ...] | None:
        """The torch-style padding tuple, or None when some dimension is padded unevenly."""
        if all(a == b for a, b in self.pads):
            return tuple(a for a, _ in self.pads)
        return None

    def out_size(self, in_size: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(
            (n + a + b - d * (k - 1) - 1) // s + 1
            for n, (a, b), d, k, s in zip(in_size, self.pads, self.dilation, self.kernel, self.stride)
        )


def ntuple(value, n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value}")
    return value


def normalize(x: torch.Tensor, weight: torch.Tensor, stride, padding, dilation, groups: int) -> ConvArgs:
    """Check shapes like torch and return explicit arguments. ``x`` is batched (N, C, *spatial)."""
    n = weight.dim() - 2
    if x.dim() != n + 2:
        raise RuntimeError(f"expected a {n + 2}-D (batched) input, got {x.dim()}-D input of size {list(x.shape)}")
    kernel = tuple(weight.shape[2:])
    stride = ntuple(stride, n, "stride")
    dilation = ntuple(dilation, n, "dilation")
    if groups < 1 or x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected input{list(x.shape)} "
            f"to have {weight.shape[1] * groups} channels, but got {x.shape[1]} channels instead")
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * n
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            totals = [d * (k - 1) for d, k in zip(dilation, kernel)]
            pads = tuple((t // 2, t - t // 2) for t in totals)
        else:
            raise ValueError(f"Invalid padding string {padding!r}, should be one of 'valid' or 'same'")
    else:
        pads = tuple((p, p) for p in ntuple(padding, n, "padding"))
    args = ConvArgs(stride, pads, dilation, groups, kernel)
    out = args.out_size(tuple(x.shape[2:]))
    if any(o < 1 for o in out):
        raise RuntimeError(
            f"Calculated output size {list(out)} is too small for input of spatial size "
            f"{list(x.shape[2:])}, kernel {list(kernel)}, dilation {list(dilation)}, padding {list(pads)}")
    return args


def pad_input(x: torch.Tensor, pads: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """Zero-pad the spatial dimensions of (N, C, *spatial) ``x`` by explicit (before, after) pads.

    Negative pads crop, as with ``F.pad``.
    """
    flat = [p for pair in reversed(pads) for p in pair]
    return F.pad(x, flat) if any(flat) else x


class NotApplicable(ValueError):
    """An implementation refuses a configuration it does not support (winograd on 5×5, say)."""
