"""Put a from-scratch implementation in place of a model's convolution layers.

Swapping changes the class of each ``nn.Conv1d/2d/3d`` and ``nn.ConvTranspose1d/2d/3d`` layer to its
drop-in subclass (:mod:`shapecheck.conv.modules`) and sets its ``impl``. The layer object
itself stays: its parameters, buffers, hooks, state-dict keys and every reference to it are
untouched, and nothing is copied. Subclasses of the torch layers defined by the user are
left alone, since their own ``forward`` may differ from torch's; ``shapecheck verify`` reaches
them (and ``F.conv*`` calls) through :func:`shapecheck.conv.census.redirect` instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from torch import nn

from .modules import DROP_INS

_TORCH_CLASS = {**{cls: cls for cls in DROP_INS}, **{drop: cls for cls, drop in DROP_INS.items()}}


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (qualified name, layer) pairs that :func:`swap` would replace."""
    return [(name, m) for name, m in model.named_modules() if type(m) in _TORCH_CLASS]


def swap(model: nn.Module, impl: str, only: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Make every convolution layer of ``model`` (or those named in ``only``) run ``impl``.

    Returns (qualified name, class name before the swap) for each layer replaced.
    """
    wanted = None if only is None else set(only)
    replaced = []
    for name, layer in conv_layers(model):
        if wanted is not None and name not in wanted:
            continue
        replaced.append((name, type(layer).__name__))
        layer.__class__ = DROP_INS[_TORCH_CLASS[type(layer)]]
        layer.impl = impl
    return replaced


def unswap(model: nn.Module) -> list[tuple[str, str]]:
    """Give every swapped layer its torch class back; returns (name, implementation) pairs."""
    restored = []
    for name, layer in conv_layers(model):
        if type(layer) in DROP_INS:
            continue
        restored.append((name, layer.impl))
        layer.__class__ = _TORCH_CLASS[type(layer)]
        del layer.impl
    return restored


@contextlib.contextmanager
def swapped(model: nn.Module, impl: str, only: Iterable[str] | None = None) -> Iterator[list[tuple[str, str]]]:
    """Swap ``impl`` in for the duration of a ``with`` block, then restore torch's layers."""
    replaced = swap(model, impl, only)
    try:
        yield replaced
    finally:
        unswap(model)
