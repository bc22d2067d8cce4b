"""Drop-in replacements for ``nn.Conv1d/2d/3d`` and ``nn.ConvTranspose1d/2d/3d``.

Each is a subclass of the torch module with the same constructor (plus a keyword ``impl``),
the same parameters and the same state-dict keys; only ``forward`` differs: it runs one of
this package's from-scratch convolutions.

``impl`` is a name from :data:`shapecheck.conv.IMPLEMENTATIONS` or ``"auto"``:

- 2-D, ``"auto"``: :func:`shapecheck.conv.functional.conv2d` picks the approach per call.
- 1-D and 3-D, ``"auto"``: im2col (the N-d approach with a single GEMM).
- ``ConvTranspose1d/2d/3d``: ``"auto"`` scatters kernel taps directly; a named implementation runs
  as zero insertion followed by that implementation's convolution.

A named implementation without an N-d function for the layer raises :class:`NotApplicable`.
"""

from __future__ import annotations

import functools
import importlib

import torch.nn.functional as F
from torch import nn

from . import IMPLEMENTATIONS
from ._args import NotApplicable
from .transposed import conv_transposend


def conv_function(impl: str, dims: int):
    """The ``conv{dims}d`` function that ``impl`` names."""
    if impl == "auto" and dims == 2:
        functional = importlib.import_module(f"{__package__}.functional")
        return functools.partial(functional.conv2d, impl="auto")
    name = "im2col" if impl == "auto" else impl
    if dims == 2:
        return IMPLEMENTATIONS[name]
    module = importlib.import_module(IMPLEMENTATIONS[name].__module__)
    fn = getattr(module, f"conv{dims}d", None)
    if fn is None:
        raise NotApplicable(f"implementation {name!r} has no {dims}-D convolution")
    return fn


class _FromScratch:
    def __init__(self, *args, impl: str = "auto", **kwargs):
        super().__init__(*args, **kwargs)
        self.impl = impl

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, impl={self.impl!r}"


class _ConvNd(_FromScratch):
    def _conv_forward(self, input, weight, bias):
        conv = conv_function(self.impl, len(self.kernel_size))
        padding = self.padding
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = 0
        return conv(input, weight, bias, self.stride, padding, self.dilation, self.groups)


class Conv1d(_ConvNd, nn.Conv1d):
    """``nn.Conv1d`` computed by a from-scratch implementation."""


class Conv2d(_ConvNd, nn.Conv2d):
    """``nn.Conv2d`` computed by a from-scratch implementation."""


class Conv3d(_ConvNd, nn.Conv3d):
    """``nn.Conv3d`` computed by a from-scratch implementation."""


class _ConvTransposeNd(_FromScratch):
    def forward(self, input, output_size=None):
        dims = len(self.kernel_size)
        if self.padding_mode != "zeros":
            raise ValueError(f"Only `zeros` padding mode is supported for {type(self).__name__}")
        output_padding = self._output_padding(
            input, output_size, self.stride, self.padding, self.kernel_size, dims, self.dilation)
        conv = None if self.impl == "auto" else conv_function(self.impl, dims)
        return conv_transposend(input, self.weight, self.bias, self.stride, self.padding,
                                output_padding, self.groups, self.dilation, conv=conv)


class ConvTranspose1d(_ConvTransposeNd, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` computed from scratch."""


class ConvTranspose2d(_ConvTransposeNd, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` computed from scratch."""


class ConvTranspose3d(_ConvTransposeNd, nn.ConvTranspose3d):
    """``nn.ConvTranspose3d`` computed from scratch."""


DROP_INS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv1d: Conv1d,
    nn.Conv2d: Conv2d,
    nn.Conv3d: Conv3d,
    nn.ConvTranspose1d: ConvTranspose1d,
    nn.ConvTranspose2d: ConvTranspose2d,
    nn.ConvTranspose3d: ConvTranspose3d,
}
"""torch class -> its drop-in replacement."""
