"""Inputs for a forward that takes several tensors (an image and its labels, two images, a
noise vector and a class), worked out by running the model on meta tensors.

1. **Who receives what** — each argument is given as a marked tensor; the first layer that
   receives a marked tensor itself says what that argument is: an ``Embedding`` takes labels
   (int64 ``N``, or ``N×T``), a ``Linear`` ``N×in_features``, a conv ``N×C×H×W``. Rounds repeat
   with what is known until no new argument is placed.
2. **Options for the rest** — an argument that reaches no layer by itself (it is concatenated,
   added, embedded by the model's own code) may be: like another argument (two images,
   their channels split from the first layer's ``in_channels``), an ``N`` vector of labels or
   time steps, or ``N×F`` with ``F`` left free.
3. **The first that runs** — combinations are tried with plain meta passes, at the sizes the
   construction states first; a combination with one free size is solved by the symbolic
   trace of :mod:`shapecheck.engine.infer` with the other arguments fixed. The answer claims
   only what ran; it is never a reason for an error (see ``session._infer``).
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import torch
from torch import nn

from . import deadline
from .discover import InputSpec
from .infer import (BATCH, Inference, Layout, _following, _solve, candidate_sizes, layout_of,
                    runs_at)
from .usercode import call_user, reraise_if_ours

MAX_TRIES = 48


class _Placed(Exception):
    def __init__(self, module, index: int):
        super().__init__()
        self.module, self.index = module, index


def infer_arguments(model: nn.Module, names: list[str], path: str, hints: tuple[int, ...] = (),
                    shapes: tuple[tuple[int, ...], ...] = (), vectors: tuple[int, ...] = ()) -> Inference | None:
    """Inputs for every argument in ``names`` (the forward's required ones, in order), or None
    when no combination tried runs. ``hints``: sizes the construction states; ``shapes``:
    per-sample shapes it states (``img_shape=(3, 128, 128)``), tried first for an argument no
    layer places; ``vectors``: sizes the constructor reads from command-line options, in the
    order read, tried next as N×size (argument i starting from the i-th: the order in which
    `opt.latent_dim + opt.n_classes + opt.code_dim` sums the sizes of `noise, labels, code`)."""
    layouts = _placed_layouts(model, len(names))
    stated = [InputSpec((BATCH,) + shape, "float32") for shape in shapes]
    options = [_options(model, i, layouts, len(names), hints,
                        stated + [InputSpec((BATCH, v), "float32") for v in vectors[i:] + vectors[:i]])
               for i in range(len(names))]
    free = []
    for combo in itertools.islice(itertools.product(*options), MAX_TRIES):
        deadline.check()
        fixed = [o for o in combo if isinstance(o, InputSpec)]
        if len(fixed) == len(combo) and runs_at(model, combo):
            return _ran(combo, names)
        if len(fixed) == len(combo) - 1:
            free.append(combo)
    for combo in free[:4]:
        found = _solved(model, combo, names, path, hints)
        if found is not None:
            return found
    return None


def _placed_layouts(model: nn.Module, count: int) -> list[Layout | None]:
    """Per argument, the layout of the first layer that receives it (None: none does)."""
    after = _following(model)
    layouts: list[Layout | None] = [None] * count
    for _ in range(count):
        hit = _probe(model, layouts, after)
        if hit is None:
            break
        module, index = hit
        layouts[index] = layout_of("", module, after.get(id(module)))
    return layouts


def _probe(model, layouts, after):
    marks: dict[int, int] = {}
    args = []
    for index, layout in enumerate(layouts):
        if layout is None:
            x = torch.empty((BATCH, 1), device="meta")
            marks[id(x)] = index
        else:
            spec = _fixed_options(layout, index)[0]
            x = torch.empty(spec.shape, dtype=getattr(torch, spec.dtype), device="meta")
        args.append(x)

    def hook(module, inputs):
        if inputs and id(inputs[0]) in marks and layout_of("", module, after.get(id(module))) is not None:
            raise _Placed(module, marks[id(inputs[0])])

    handles = [m.register_forward_pre_hook(hook) for m in model.modules()]
    try:
        with torch.no_grad(), torch.device("meta"):
            call_user(model, *args)
    except _Placed as placed:
        return placed.module, placed.index
    except Exception as exc:  # noqa: BLE001 - the model failed on the marks: nothing more is placed
        reraise_if_ours(exc)
    finally:
        for handle in handles:
            handle.remove()
    return None


def _options(model, index: int, layouts, count: int, hints, stated=()) -> list:
    """What argument ``index`` may be: fixed InputSpecs, or a Layout with free sizes."""
    layout = layouts[index]
    if layout is not None:
        sized = _fixed_options(layout, index, hints)
        return sized + ([layout] if layout.free_axes and not _labels(layout, index) else [])
    found = list(stated) + [InputSpec((BATCH,), "float32"), InputSpec((BATCH,), "int64")]
    found += _split_first_layer(model, count, hints)
    found += [InputSpec((BATCH, d), "float32") for d in _declared(model)]
    return found + [Layout("", f"argument {index + 1}", (BATCH, None), ("F",), 0)]


def _labels(layout: Layout, index: int) -> bool:
    """An argument after the first that reaches an Embedding: class labels or tokens."""
    return layout.dtype == "int64" and index > 0


def _fixed_options(layout: Layout, index: int, hints=()) -> list[InputSpec]:
    """The shapes tried for an argument a layer receives, most likely first: labels one per
    sample (they may meet a per-sample mask before their Embedding), then one per token."""
    if _labels(layout, index):
        return [InputSpec((BATCH,), "int64"), InputSpec((BATCH, 16), "int64")]
    return [layout.spec(s) for s in candidate_sizes(layout, hints)[:4]]


def _declared(model, most: int = 8) -> list[int]:
    """Feature sizes the model's layers declare (a noise vector multiplied by an embedding has
    the embedding's size), in the order the layers are registered."""
    sizes = []
    for module in model.modules():
        for attr in ("embedding_dim", "in_features", "out_features", "normalized_shape"):
            value = getattr(module, attr, None)
            value = value[-1] if isinstance(value, tuple) and value else value
            if isinstance(value, int) and value > 1:
                sizes.append(value)
    return list(dict.fromkeys(sizes))[:most]


def _split_first_layer(model, count: int, hints) -> list[InputSpec]:
    """Arguments concatenated on the channel axis before the first layer (two images into a
    conv of 6 channels): each with its share of the channels, or all of them."""
    layouts = [lay for lay in map(lambda m: layout_of("", m), model.modules()) if lay is not None]
    layout = next((lay for lay in layouts if len(lay.shape) > 2), layouts[0] if layouts else None)
    if layout is None or layout.dtype != "float32" or len(layout.shape) < 2 or layout.shape[1] is None:
        return []
    channels = layout.shape[1]
    shares = [channels // count] if channels % count == 0 else []
    out = []
    for sizes in candidate_sizes(layout, hints)[:3]:
        concrete = layout.concrete(sizes)
        out += [InputSpec((BATCH, c) + tuple(concrete[2:]), "float32") for c in shares + [channels]]
    return list(dict.fromkeys(out))


def _ran(combo, names) -> Inference:
    shown = ", ".join(f"{n} {'×'.join(map(str, s.shape))}" for n, s in zip(names, combo))
    accepted = f"{shown} (the first combination tried that runs; other sizes not determined)"
    return Inference(tuple(combo), accepted, f"inputs {accepted}", True)


def _solved(model, combo, names, path: str, hints) -> Inference | None:
    position = next(i for i, o in enumerate(combo) if isinstance(o, Layout))
    free = combo[position]
    others = tuple(o for o in combo if isinstance(o, InputSpec))
    layout = Layout(f"`{names[position]}`", free.described, free.shape, free.names, free.batch_axis,
                    free.dtype, free.steps, position, others)
    found = _solve(model, layout, path, hints)
    if not found.ok or not found.inputs:
        return None
    return replace(found, accepted=f"{names[position]}: {found.accepted}")
