"""What torch layers declare, as plain data for :mod:`shapecheck.engine.formulas` and the rules.

``layer_params(module)`` and ``functional_params(func, args, kwargs)`` turn a module or a
functional call into an op name and a dict of ints, tuples and strings;
``expected_input(module)`` says what a layer requires of its input (``Linear`` wants
``in_features`` in the last dimension, a conv ``in_channels`` in dimension 1, ...).
All three are table lookups: adding a layer means adding a row.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import activation, batchnorm, conv, dropout, instancenorm, pooling

from ._compat import RMSNorm

# ---------------------------------------------------------------- modules


_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups")

# Module family → the attributes copied into params. The first matching row wins, so
# subclasses come before their bases.
MODULE_ATTRS: tuple[tuple[type, tuple[str, ...]], ...] = (
    (conv._ConvTransposeNd, _CONV + ("output_padding",)),
    (conv._ConvNd, _CONV),
    (pooling._MaxPoolNd, ("kernel_size", "stride", "padding", "dilation", "ceil_mode")),
    (pooling._AvgPoolNd, ("kernel_size", "stride", "padding", "ceil_mode")),
    (pooling._AdaptiveAvgPoolNd, ("output_size",)),
    (pooling._AdaptiveMaxPoolNd, ("output_size",)),
    (nn.Upsample, ("size", "scale_factor")),
    (nn.Unfold, ("kernel_size", "dilation", "padding", "stride")),
    (nn.Flatten, ("start_dim", "end_dim")),
    (nn.Linear, ("in_features", "out_features")),
    (nn.Bilinear, ("in1_features", "in2_features", "out_features")),
    (batchnorm._BatchNorm, ("num_features",)),
    (instancenorm._InstanceNorm, ("num_features", "affine")),
    (nn.GroupNorm, ("num_groups", "num_channels")),
    (nn.LayerNorm, ("normalized_shape",)),
    (RMSNorm, ("normalized_shape",)),
    (nn.Embedding, ("num_embeddings", "embedding_dim")),
    (nn.EmbeddingBag, ("num_embeddings", "embedding_dim")),
    (nn.RNNBase, ("input_size", "hidden_size", "num_layers", "bidirectional", "batch_first", "proj_size")),
    (nn.MultiheadAttention, ("embed_dim", "num_heads", "batch_first", "kdim", "vdim")),
)

# Modules whose output has the input's shape.
SAME_SHAPE_MODULES: tuple[type, ...] = (nn.Identity, dropout._DropoutNd) + tuple(
    cls for cls in vars(activation).values()
    if isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__module__ == activation.__name__
    and cls not in (nn.GLU, nn.MultiheadAttention) and not cls.__name__.startswith("NonDynamically"))


def _plain(value):
    """torch values as plain Python: Size/list → tuple, SymInt → int where it has a value."""
    if isinstance(value, (list, tuple, torch.Size)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, torch.SymInt):
        return int(value) if value.node.has_hint() else str(value)
    return value


def _op_name(module: nn.Module) -> str:
    """The torch class a module is (or derives from): a user's ``MyConv(nn.Conv2d)`` is Conv2d."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn.modules"):
            return cls.__name__
    return type(module).__name__


def _is_uninitialized(module: nn.Module) -> bool:
    check = getattr(module, "has_uninitialized_params", None)
    return bool(check and check())


def layer_params(module: nn.Module) -> tuple[str, dict] | None:
    """``(op, params)`` for a torch layer, e.g. ``("Conv2d", {"kernel_size": (3, 3), ...})``.

    Shape-preserving layers (activations, dropout, Identity) give ``{"same_shape": True}``.
    Lazy layers that have not seen an input leave out the sizes they do not know yet.
    Returns None for modules this table does not describe (containers, user blocks).
    """
    for cls, names in MODULE_ATTRS:
        if isinstance(module, cls):
            params = {name: _plain(getattr(module, name)) for name in names if hasattr(module, name)}
            if _is_uninitialized(module):
                params = {k: v for k, v in params.items() if k not in ("in_channels", "in_features")}
            return _op_name(module), params
    if isinstance(module, SAME_SHAPE_MODULES):
        return _op_name(module), {"same_shape": True}
    return None


# ---------------------------------------------------------------- functional calls


@dataclass(frozen=True)
class FunctionSpec:
    """How to read one functional call: its op name and its signature as (name, default) pairs."""

    op: str
    parameters: tuple[tuple[str, object], ...]

    @property
    def signature(self) -> inspect.Signature:
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Signature([
            inspect.Parameter(name, kind, default=default) if default is not _REQUIRED
            else inspect.Parameter(name, kind)
            for name, default in self.parameters])


_REQUIRED = object()
_INPUT = (("input", _REQUIRED),)
_CONV_ARGS = _INPUT + (("weight", _REQUIRED), ("bias", None), ("stride", 1), ("padding", 0), ("dilation", 1),
                       ("groups", 1))
_CONV_T_ARGS = _INPUT + (("weight", _REQUIRED), ("bias", None), ("stride", 1), ("padding", 0),
                         ("output_padding", 0), ("groups", 1), ("dilation", 1))
_MAX_POOL_ARGS = _INPUT + (("kernel_size", _REQUIRED), ("stride", None), ("padding", 0), ("dilation", 1),
                           ("ceil_mode", False), ("return_indices", False))
_AVG_POOL_ARGS = _INPUT + (("kernel_size", _REQUIRED), ("stride", None), ("padding", 0), ("ceil_mode", False),
                           ("count_include_pad", True), ("divisor_override", None))
_ADAPTIVE_ARGS = _INPUT + (("output_size", _REQUIRED), ("return_indices", False))
_INTERPOLATE_ARGS = _INPUT + (("size", None), ("scale_factor", None), ("mode", "nearest"), ("align_corners", None),
                              ("recompute_scale_factor", None), ("antialias", False))
_UNFOLD_ARGS = _INPUT + (("kernel_size", _REQUIRED), ("dilation", 1), ("padding", 0), ("stride", 1))
_FLATTEN_ARGS = _INPUT + (("start_dim", 0), ("end_dim", -1))
_LINEAR_ARGS = _INPUT + (("weight", _REQUIRED), ("bias", None))
_EMBEDDING_ARGS = _INPUT + (("weight", _REQUIRED), ("padding_idx", None), ("max_norm", None), ("norm_type", 2.0),
                            ("scale_grad_by_freq", False), ("sparse", False))
_LAYER_NORM_ARGS = _INPUT + (("normalized_shape", _REQUIRED), ("weight", None), ("bias", None), ("eps", 1e-5))


def _function_table() -> dict[object, FunctionSpec]:
    table: dict[object, FunctionSpec] = {}
    for n in (1, 2, 3):
        rows = (
            ((getattr(F, f"conv{n}d"),), FunctionSpec(f"conv{n}d", _CONV_ARGS)),
            ((getattr(F, f"conv_transpose{n}d"),), FunctionSpec(f"conv_transpose{n}d", _CONV_T_ARGS)),
            ((getattr(F, f"max_pool{n}d"), getattr(F, f"max_pool{n}d_with_indices"), getattr(torch, f"max_pool{n}d")),
             FunctionSpec(f"max_pool{n}d", _MAX_POOL_ARGS)),
            ((getattr(F, f"avg_pool{n}d"),), FunctionSpec(f"avg_pool{n}d", _AVG_POOL_ARGS)),
            ((getattr(F, f"adaptive_avg_pool{n}d"),), FunctionSpec(f"adaptive_avg_pool{n}d", _ADAPTIVE_ARGS)),
            ((getattr(F, f"adaptive_max_pool{n}d"), getattr(F, f"adaptive_max_pool{n}d_with_indices")),
             FunctionSpec(f"adaptive_max_pool{n}d", _ADAPTIVE_ARGS)),
        )
        for functions, spec in rows:
            table.update({f: spec for f in functions})
    table.update({
        F.interpolate: FunctionSpec("interpolate", _INTERPOLATE_ARGS),
        F.unfold: FunctionSpec("unfold", _UNFOLD_ARGS),
        torch.flatten: FunctionSpec("flatten", _FLATTEN_ARGS),
        torch.Tensor.flatten: FunctionSpec("flatten", _FLATTEN_ARGS),
        "flatten": FunctionSpec("flatten", _FLATTEN_ARGS),
        F.linear: FunctionSpec("linear", _LINEAR_ARGS),
        F.embedding: FunctionSpec("embedding", _EMBEDDING_ARGS),
        F.layer_norm: FunctionSpec("layer_norm", _LAYER_NORM_ARGS),
    })
    return table


FUNCTIONS = _function_table()


def _weight_sizes(op: str, weight, groups: int) -> dict:
    """What a functional call's weight tensor says: kernel and channel counts, or features."""
    shape = tuple(int(d) for d in weight.shape)
    if op.startswith("conv_transpose"):
        return {"kernel_size": shape[2:], "in_channels": shape[0], "out_channels": shape[1] * groups}
    if op.startswith("conv"):
        return {"kernel_size": shape[2:], "in_channels": shape[1] * groups, "out_channels": shape[0]}
    if op == "linear":
        return {"in_features": shape[-1], "out_features": shape[0] if len(shape) == 2 else 1}
    return {"num_embeddings": shape[0], "embedding_dim": shape[1]}


_DROPPED_ARGS = frozenset({"input", "weight", "bias", "return_indices", "count_include_pad", "divisor_override",
                           "mode", "align_corners", "recompute_scale_factor", "antialias", "padding_idx", "max_norm",
                           "norm_type", "scale_grad_by_freq", "sparse", "eps"})


def functional_params(func, args: tuple, kwargs: dict | None = None) -> tuple[str, dict] | None:
    """``(op, params)`` for a functional call such as ``F.conv2d(x, w, stride=2)``.

    ``func`` is the callable (``F.max_pool2d``, ``torch.flatten``, ``torch.Tensor.flatten``)
    or a method name as torch.fx records it (``"flatten"``). ``args`` include the input
    tensor. Returns None for calls not in the table or whose arguments do not bind.
    """
    try:
        spec = FUNCTIONS.get(func)
    except TypeError:  # unhashable callable
        return None
    if spec is None:
        return None
    try:
        bound = spec.signature.bind(*args, **(kwargs or {}))
    except TypeError:
        return None
    bound.apply_defaults()
    values = bound.arguments
    params = {name: _plain(value) for name, value in values.items() if name not in _DROPPED_ARGS}
    if "weight" in values and isinstance(values["weight"], torch.Tensor) and spec.op != "layer_norm":
        params.update(_weight_sizes(spec.op, values["weight"], values.get("groups", 1)))
    if params.get("stride") == ():
        params["stride"] = None
    return spec.op, params


# ---------------------------------------------------------------- what a layer expects


@dataclass(frozen=True)
class Expectation:
    """One row: a layer family requires ``param``'s value at input dimension ``dim``.

    ``ranks`` lists the accepted input ranks (None: any rank ≥ 1); when the first rank is the
    unbatched form, ``unbatched_dim`` is where the dimension sits there.
    """

    cls: type
    param: str
    dim: int | None
    ranks: tuple[int, ...] | None = None
    unbatched_dim: int | None = None


EXPECTATIONS: tuple[Expectation, ...] = (
    Expectation(nn.Linear, "in_features", -1),
    Expectation(nn.Bilinear, "in1_features", -1),
    Expectation(nn.Conv1d, "in_channels", 1, (2, 3), 0),
    Expectation(nn.Conv2d, "in_channels", 1, (3, 4), 0),
    Expectation(nn.Conv3d, "in_channels", 1, (4, 5), 0),
    Expectation(nn.ConvTranspose1d, "in_channels", 1, (2, 3), 0),
    Expectation(nn.ConvTranspose2d, "in_channels", 1, (3, 4), 0),
    Expectation(nn.ConvTranspose3d, "in_channels", 1, (4, 5), 0),
    Expectation(nn.BatchNorm1d, "num_features", 1, (2, 3)),
    Expectation(nn.BatchNorm2d, "num_features", 1, (4,)),
    Expectation(nn.BatchNorm3d, "num_features", 1, (5,)),
    Expectation(nn.InstanceNorm1d, "num_features", 1, (2, 3), 0),
    Expectation(nn.InstanceNorm2d, "num_features", 1, (3, 4), 0),
    Expectation(nn.InstanceNorm3d, "num_features", 1, (4, 5), 0),
    Expectation(nn.GroupNorm, "num_channels", 1),
    Expectation(nn.LayerNorm, "normalized_shape", None),
    Expectation(RMSNorm, "normalized_shape", None),
    Expectation(nn.RNNBase, "input_size", -1, (2, 3)),
    Expectation(nn.MultiheadAttention, "embed_dim", -1, (2, 3)),
    Expectation(nn.Embedding, "num_embeddings", None),
    Expectation(nn.EmbeddingBag, "num_embeddings", None, (1, 2)),
)

_INDEX_LAYERS = (nn.Embedding, nn.EmbeddingBag)


def expected_input(module: nn.Module, rank: int | None = None) -> dict | None:
    """What ``module`` requires of its (first) input, or None when it declares nothing.

    Keys: ``param`` (the constructor argument), ``size`` (its value), ``dim`` (the input
    dimension that must equal it; with ``rank`` given, resolved for unbatched inputs),
    ``ranks`` (accepted input ranks), and where they apply ``dims`` (LayerNorm's trailing
    dimensions), ``dtype`` ("integer" for embeddings), ``batch_first``, ``groups``
    (GroupNorm's num_groups), ``warn_only`` (torch only warns on a mismatch).
    """
    if _is_uninitialized(module):
        return None
    row = next((r for r in EXPECTATIONS if isinstance(module, r.cls)), None)
    if row is None:
        return None
    size = _plain(getattr(module, row.param))
    if _weight_disagrees(module, size):
        return None  # the weight was replaced (tied to an embedding, say): torch goes by the weight
    found = {"param": row.param, "size": size, "dim": row.dim, "ranks": row.ranks}
    if rank is not None and row.ranks and rank == row.ranks[0] and row.unbatched_dim is not None \
            and len(row.ranks) > 1:
        found["dim"] = row.unbatched_dim
    found.update(_extras(module, size))
    return found


def _weight_disagrees(module: nn.Module, size) -> bool:
    """A Linear whose weight no longer has `in_features` columns."""
    weight = getattr(module, "weight", None)
    return isinstance(module, nn.Linear) and isinstance(weight, torch.Tensor) and weight.dim() == 2 \
        and weight.shape[1] != size


def _extras(module: nn.Module, size) -> dict:
    """The few facts beyond one size that some layers declare."""
    if isinstance(module, _INDEX_LAYERS):
        return {"dtype": "integer"}
    if isinstance(module, (nn.LayerNorm, RMSNorm)):
        return {"dims": tuple(range(-len(size), 0))}
    if isinstance(module, (nn.RNNBase, nn.MultiheadAttention)):
        return {"batch_first": bool(module.batch_first)}
    if isinstance(module, nn.GroupNorm):
        return {"groups": module.num_groups}
    if isinstance(module, instancenorm._InstanceNorm) and not module.affine:
        return {"warn_only": True}
    return {}
