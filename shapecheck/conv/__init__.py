"""From-scratch convolutions with the semantics of ``torch.nn.functional``.

One module per approach; each exposes ``conv2d(x, weight, bias=None, stride=1, padding=0,
dilation=1, groups=1)`` and raises :class:`NotApplicable` for configurations it refuses.
"""

from __future__ import annotations

import importlib

from ._args import NotApplicable as NotApplicable

# name -> module that holds its conv2d; resolved on first use so that importing the
# package stays cheap.
_MODULES = {
    "naive": "naive",
    "shift_add": "shift_add",
    "im2col": "im2col",
    "toeplitz": "toeplitz",
    "fft": "fft",
    "winograd": "winograd",
}


class _Registry(dict):
    def __missing__(self, name):
        if name not in _MODULES:
            raise KeyError(f"unknown implementation {name!r}; choose from {', '.join(_MODULES)}")
        fn = importlib.import_module(f"{__name__}.{_MODULES[name]}").conv2d
        self[name] = fn
        return fn

    def names(self):
        return list(_MODULES)


IMPLEMENTATIONS = _Registry()

__all__ = ["IMPLEMENTATIONS", "NotApplicable"]
