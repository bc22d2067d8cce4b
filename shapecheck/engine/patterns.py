"""The input an einops ``Rearrange``/``Reduce`` layer spells out in its pattern.

Vision transformers often start with ``Rearrange('b c (h p1) (w p2) -> b (h w) (p1 p2 c)',
p1=16, p2=16)`` followed by ``LayerNorm(patch_dim)`` or ``Linear(patch_dim, dim)``. The left
side of the pattern gives the input's rank, the batch (its first axis) and, for each axis, the
known factor (``(h p1)`` is a multiple of 16). An axis that is not given (``c``) is worked out
from the layer that follows: it must make the group it lands in (``(p1 p2 c)``) as large as
that layer's features. Only plain patterns are read: no ellipsis, no anonymous axes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import prod

_TOKEN = re.compile(r"\(|\)|[A-Za-z_][A-Za-z0-9_]*|\S+")


@dataclass(frozen=True)
class PatternInput:
    """The input of a pattern layer: per axis a fixed size (int) or None (free, a multiple of
    ``steps[axis]``); the batch is axis 0."""

    shape: tuple
    steps: tuple[int, ...]
    names: tuple[str, ...]  # letters of the free axes, in order


def is_pattern_layer(module) -> bool:
    return (type(module).__module__.startswith("einops.") and isinstance(getattr(module, "pattern", None), str)
            and isinstance(getattr(module, "axes_lengths", None), dict))


def pattern_input(module, following=None) -> PatternInput | None:
    """What ``module`` (an einops pattern layer) needs as input; ``following`` is the layer
    after it (to size an axis the pattern leaves open). None when the pattern says too little."""
    sides = module.pattern.split("->")
    if len(sides) != 2:
        return None
    left, right = (_groups(side) for side in sides)
    if left is None or right is None or not left or len(left[0]) != 1:
        return None
    known = {k: v for k, v in module.axes_lengths.items() if isinstance(v, int)}
    open_axes = [g[0] for g in left[1:] if len(g) == 1 and g[0] not in known]
    if len(open_axes) > 1:
        return None
    if open_axes:
        size = _from_following(open_axes[0], right, known, following)
        if size is None:
            return None
        known[open_axes[0]] = size
    return _shape(left, known)


def _groups(side: str) -> list[tuple[str, ...]] | None:
    """``'b c (h p1) (w p2)'`` -> [("b",), ("c",), ("h", "p1"), ("w", "p2")]; None for what is
    not read (ellipsis, numbers, nested groups)."""
    groups, current = [], None
    for token in _TOKEN.findall(side):
        if token == "(":
            if current is not None:
                return None
            current = []
        elif token == ")":
            if current is None:
                return None
            groups.append(tuple(current))
            current = None
        elif token.isidentifier():
            (current.append(token) if current is not None else groups.append((token,)))
        else:
            return None
    return groups if current is None else None


def _from_following(axis: str, right, known: dict, following) -> int | None:
    group = next((g for g in right if axis in g), None)
    features = _features(following)
    if group is None or group is not right[-1] or features is None:
        return None
    others = [a for a in group if a != axis]
    if not all(a in known for a in others):
        return None
    factor = prod(known[a] for a in others)
    return features // factor if factor and features % factor == 0 else None


def _features(module) -> int | None:
    if module is None:
        return None
    for attr in ("in_features", "normalized_shape", "in_channels"):
        value = getattr(module, attr, None)
        if isinstance(value, (tuple, list)) and value:
            value = value[-1]
        if isinstance(value, int):
            return value
    return None


def _shape(left, known: dict) -> PatternInput | None:
    shape, steps, names = [None], [1], []
    for group in left[1:]:
        given = [a for a in group if a in known]
        step = prod(known[a] for a in given)
        if len(given) == len(group):
            shape.append(step)
            steps.append(1)
        elif len(group) - len(given) == 1:
            shape.append(None)
            steps.append(step)
            names.append(next(a for a in group if a not in known).upper())
        else:
            return None
    return PatternInput(tuple(shape), tuple(steps), tuple(names))
