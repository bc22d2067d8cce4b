"""From-scratch convolutions with the semantics of ``torch.nn.functional``.

One module per approach; each exposes ``conv2d(x, weight, bias=None, stride=1, padding=0,
dilation=1, groups=1)`` and raises :class:`NotApplicable` for configurations it refuses.
"""

from __future__ import annotations

import importlib
from collections.abc import MutableMapping

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


class _Registry(MutableMapping):
    """name -> conv2d function. Every name is listed from the start; a module is imported the
    first time its function is looked up. Assigning a name replaces its function (tests plant
    wrong implementations this way)."""

    def __init__(self):
        self._functions = {}

    def __getitem__(self, name):
        if name not in self._functions:
            if name not in _MODULES:
                raise KeyError(f"unknown implementation {name!r}; choose from {', '.join(_MODULES)}")
            self._functions[name] = importlib.import_module(f"{__name__}.{_MODULES[name]}").conv2d
        return self._functions[name]

    def __setitem__(self, name, function):
        self._functions[name] = function

    def __delitem__(self, name):
        del self._functions[name]

    def __iter__(self):
        return iter(dict.fromkeys([*_MODULES, *self._functions]))

    def __len__(self):
        return len(dict.fromkeys([*_MODULES, *self._functions]))

    def __contains__(self, name):
        return name in _MODULES or name in self._functions

    def names(self):
        return list(self)


IMPLEMENTATIONS = _Registry()


def release_work_buffers() -> None:
    """Free the work buffers that the convolutions keep between calls on this thread (see
    :mod:`._scratch`)."""
    from . import _scratch

    _scratch.release()


__all__ = ["IMPLEMENTATIONS", "NotApplicable", "release_work_buffers"]
