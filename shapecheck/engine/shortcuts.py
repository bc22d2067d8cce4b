"""Shape-only answers for the few layers whose meta kernels are slow.

On the meta device, linear layers, batch norm, layer norm, group norm and the common
activations run torch's Python decompositions (milliseconds a call, most of a ResNet's or a
LeNet's trace), although their output shape is plain: the input's, or its last size replaced. `shortcut(func, args, kwargs)` gives
that tensor when the call is certainly valid: every tensor on meta, every size a plain int,
and each size the layer requires already checked equal. Anything else (a symbolic size, a
fake tensor, a size that does not fit, an argument not understood) returns None and the call
goes to torch, whose error message is the one reported. Constant padding is answered for
symbolic sizes too, where torch's kernel cannot follow; a transposed convolution's output
padding is refused as the CPU kernel refuses it, a check the meta kernel skips. `tests/test_shortcuts.py` compares
both on random shapes.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from .symbolic import own_reads
from .usercode import StandInError


def shortcut(func, args, kwargs):
    """The output of ``func(*args, **kwargs)`` made without running it, or None."""
    rule = _RULES.get(func) or _SYMBOLIC_RULES.get(func)
    if rule is None or not args or not isinstance(args[0], torch.Tensor):
        return None
    with own_reads():
        if func in _RULES and not _plain_meta(args[0]):
            rule = _SYMBOLIC_RULES.get(func)
            if rule is None:
                return None
        try:
            return rule(*args, **kwargs)
        except TypeError:  # arguments spelled in a way not read here: torch decides
            return None


def _plain_meta(t) -> bool:
    return (type(t) is torch.Tensor or type(t) is torch.nn.Parameter) and t.device.type == "meta" \
        and all(type(s) is int for s in t.shape)


def _shape_only(t) -> bool:
    """A tensor without values: on meta, or a fake tensor (never a real one)."""
    from torch._subclasses.fake_tensor import FakeTensor

    return t.device.type == "meta" or isinstance(t, FakeTensor)


def _vector(t, size: int, dtype) -> bool:
    """None, or a meta vector of `size` values of the input's dtype."""
    return t is None or (_plain_meta(t) and tuple(t.shape) == (size,) and t.dtype == dtype)


def _floating(x) -> bool:
    return x.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
                momentum=0.1, eps=1e-5):
    if input.dim() < 2 or not _floating(input):
        return None
    channels = input.shape[1]
    if channels == 0 or not all(_vector(t, channels, input.dtype) for t in (running_mean, running_var, weight, bias)):
        return None
    if training and math.prod(input.shape) // channels <= 1:  # torch's "more than 1 value" error
        return None
    if not training and (running_mean is None or running_var is None):
        return None
    return torch.empty_like(input)


def _layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not _floating(input) or not shape or not all(type(s) is int for s in shape):
        return None
    if tuple(input.shape[-len(shape):]) != shape or input.dim() < len(shape):
        return None
    if not all(t is None or (_plain_meta(t) and tuple(t.shape) == shape and t.dtype == input.dtype)
               for t in (weight, bias)):
        return None
    return torch.empty_like(input)


def _group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    if input.dim() < 2 or not _floating(input) or type(num_groups) is not int or num_groups <= 0:
        return None
    channels = input.shape[1]
    if channels % num_groups or input.shape[0] == 0:
        return None
    if input.shape[0] * channels // num_groups * math.prod(input.shape[2:]) <= 1:  # torch's "more than 1 value"
        return None
    if not all(_vector(t, channels, input.dtype) for t in (weight, bias)):
        return None
    return torch.empty_like(input)


def _linear(input, weight, bias=None):
    if not _floating(input) or input.dim() < 1 or not _plain_meta(weight) or weight.dim() != 2:
        return None
    if weight.dtype != input.dtype or input.shape[-1] != weight.shape[1] or not _vector(bias, weight.shape[0], input.dtype):
        return None
    return torch.empty(tuple(input.shape[:-1]) + (weight.shape[0],), dtype=input.dtype, device="meta")


def _activation(input, *args, **kwargs):
    """relu, gelu, silu...: an elementwise op of a floating tensor; in place gives the input."""
    if not _floating(input) or len(args) > 1:
        return None
    inplace = kwargs.get("inplace", args[0] if args and isinstance(args[0], bool) else False)
    approximate = kwargs.get("approximate", "none")
    if approximate not in ("none", "tanh") or set(kwargs) - {"inplace", "approximate"}:
        return None
    return input if inplace else torch.empty_like(input)


def _dropout(input, p=0.5, training=True, inplace=False):
    """As torch: the input itself when in place, when nothing is dropped or when not training."""
    if not _floating(input) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        return None
    return input if inplace or p == 0 or not training or input.numel() == 0 else torch.empty_like(input)


def _pad(input, pad, mode="constant", value=None):
    """Constant padding: each padded size grows by its two amounts. Also for symbolic sizes and
    amounts (`F.pad(x, [diff // 2, diff - diff // 2])` in a U-Net), which torch's own kernel
    refuses ("expected to contain only concrete integers")."""
    if mode != "constant" or not isinstance(pad, (list, tuple)) or len(pad) % 2 or len(pad) // 2 > input.dim():
        return None
    if not all(isinstance(p, (int, torch.SymInt)) and not isinstance(p, bool) for p in pad):
        return None
    if not _shape_only(input) or (value is not None and not isinstance(value, (int, float))):
        return None
    shape = list(input.shape)
    for i in range(len(pad) // 2):
        dim, left, right = input.dim() - 1 - i, pad[2 * i], pad[2 * i + 1]
        kept = shape[dim] + min(left, 0) + min(right, 0) if type(left) is int and type(right) is int else 0
        shape[dim] = shape[dim] + left + right
        if (type(shape[dim]) is int and shape[dim] <= 0) or (type(kept) is int and kept < 0):
            return None  # torch says why (negative amounts first cut the input; torch < 2.4 refuses a padded size of 0)
    return input.new_empty(shape)


_TRANSPOSED = {F.conv_transpose1d: 1, F.conv_transpose2d: 2, F.conv_transpose3d: 3}
_TRANSPOSED_ARGS = ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation")
_AXES = {1: ("width",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def _transposed(rank: int):
    def check(*args, **kwargs):
        """torch's meta kernel skips the check the CPU and CUDA kernels make: an output padding
        must be smaller than the stride or the dilation. Raised as they raise it; else torch runs."""
        bound = dict(zip(_TRANSPOSED_ARGS, args), **kwargs)
        stride, dilation, extra = (_per_axis(bound.get(k, 1 if k != "output_padding" else 0), rank)
                                   for k in ("stride", "dilation", "output_padding"))
        if None in (stride, dilation, extra) or all(o < max(s, d) for o, s, d in zip(extra, stride, dilation)):
            return None
        axes = _AXES[rank] if rank > 1 else ("height", "width")  # torch reports 1-d as 2-d
        if rank == 1:
            stride, dilation, extra = (1,) + stride, (1,) + dilation, (0,) + extra
        said = " ".join(f"{what}_{axis}: {v}" for what, values in
                        (("output_padding", extra), ("stride", stride), ("dilation", dilation))
                        for axis, v in zip(axes, values))
        raise StandInError(f"output padding must be smaller than either stride or dilation, but got {said}")
    return check


def _per_axis(value, rank: int) -> tuple[int, ...] | None:
    values = (value,) * rank if type(value) is int else tuple(value) if isinstance(value, (tuple, list)) else None
    return values if values is not None and len(values) == rank and all(type(v) is int for v in values) else None


_SYMBOLIC_RULES = {F.pad: _pad}  # rules that hold for fake tensors and symbolic sizes too
_SYMBOLIC_RULES.update({func: _transposed(rank) for func, rank in _TRANSPOSED.items()})

_RULES = {
    F.linear: _linear,
    F.batch_norm: _batch_norm,
    F.layer_norm: _layer_norm,
    F.group_norm: _group_norm,
    F.relu: _activation,
    F.gelu: _activation,
    F.silu: _activation,
    F.dropout: _dropout,
}
