"""What the tracer checks at each layer and op, and what it substitutes to go on.

Each check compares what a layer *declares* (``in_features``, ``in_channels``, the kernel...)
with the tensor that *arrives*, before torch runs it, so that the numbers are exact and the
trace can continue with an input the layer accepts. Substitutes keep the symbolic batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import formulas, layers
from ._compat import RMSNorm
from ..diagnostics import shape_product
from .symbolic import shape_of

# Event kinds produced by the tracer, in one place (the rules map each to a Rule).
EVENT_KINDS = (
    "layer_input",  # a declared input size (in_features, in_channels, ...) does not match
    "missing_flatten",  # a Linear sized for C×H×W given the unflattened N×C×H×W map
    "kernel_too_large",  # a conv/pool window larger than the (padded) input
    "input_dtype",  # an Embedding given floats, say
    "reshape",  # view/reshape/flatten to a size that cannot hold the tensor
    "view_strides",  # view of a tensor whose memory is not in that order (after permute/transpose)
    "batch_changed",  # a reshape that moved samples into the features (runs, silently wrong)
    "batch_hardcoded",  # a reshape that works for the example batch size only
    "rows_cut",  # a reshape to k·N rows whose length cuts across dimensions (runs, silently wrong)
    "output_batch",  # the output has k·N rows of planes made by a reshape of the batch (runs, silently wrong)
    "sequence_batch",  # an RNN/attention layer without batch_first=True given the batch in dim 0
    "transposed_mirror",  # a strided transposed conv that does not give back its encoder's size
    "cat",  # torch.cat/stack of tensors whose other sizes differ
    "loss_shape",  # a loss whose input and target shapes cannot work
    "loss_broadcast",  # a loss that broadcasts input against target (torch only warns)
    "layer_error",  # any other error a layer raised
    "op_error",  # any other error an op raised
    "torch_error",  # an error raised somewhere the tracer could not place more exactly
    "unsupported",  # an op the fake tensors cannot run (data-dependent control flow, no meta kernel)
    "missing_input",  # forward has required arguments that no input shape was given for
    "missing_value",  # a None default that real callers replace (a sub-block, a mask) was used
)

LOSS_SAME_SHAPE = frozenset({
    "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "SoftMarginLoss",
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "soft_margin_loss",
    "KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss", "HingeEmbeddingLoss", "MultiLabelSoftMarginLoss",
    "kl_div", "poisson_nll_loss", "gaussian_nll_loss", "hinge_embedding_loss", "multilabel_soft_margin_loss",
})
LOSS_CLASS_INDEX = frozenset({"CrossEntropyLoss", "NLLLoss", "cross_entropy", "nll_loss"})


@dataclass
class Problem:
    kind: str
    facts: dict
    chain: tuple[str, ...] = ()
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    output: object = None  # when set, the layer is not called: this is its output


NORMS = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm, RMSNorm)


# -- layers ----------------------------------------------------------------------------------
def check_layer(module, args, kwargs, origin_of) -> Problem | None:
    op = type(module).__name__
    if op in LOSS_SAME_SHAPE or op in LOSS_CLASS_INDEX:
        return _check_loss(op, args, kwargs)
    if not args or not isinstance(args[0], torch.Tensor):
        return None
    x = args[0]
    return (_check_dtype(module, x, args, kwargs)
            or _check_unflattened(module, x, args, kwargs)
            or _check_declared(module, x, args, kwargs, origin_of)
            or _check_window(module, x, args, kwargs))


def _check_declared(module, x, args, kwargs, origin_of) -> Problem | None:
    want = layers.expected_input(module, rank=x.dim())
    if want is None or want.get("dtype") or want.get("warn_only"):
        return None
    dims = tuple(want["dims"]) if want.get("dims") else (want["dim"],)
    size = want["size"]
    expected = tuple(size) if isinstance(size, (tuple, list)) else (size,)
    shape = shape_of(x)
    if len(shape) < len(dims):
        return None
    got = tuple(shape[d] for d in dims)
    if got == expected or any(isinstance(g, str) for g in got):
        return None
    facts = {"param": want["param"], "expected": _one(expected), "actual": _one(got), "dims": dims,
             "in_shape": shape}
    chain = ()
    origin = origin_of(x)
    if origin is not None:
        facts.update(flattened_from=origin["shape"], flatten_op=origin["op"], flatten_line=origin["line"])
        chain = origin["chain"]
    if isinstance(module, NORMS):  # a norm layer keeps its input's shape: pass it through
        return Problem("layer_input", facts, chain, args, kwargs, output=x)
    fixed = _resized(x, dims, expected)
    return Problem("layer_input", facts, chain, (fixed,) + tuple(args[1:]), kwargs)


def _check_unflattened(module, x, args, kwargs) -> Problem | None:
    """A Linear whose in_features is the product of all but the batch size of a ≥3-D input:
    the map was meant to be flattened per sample. The trace goes on with it flattened."""
    if not isinstance(module, torch.nn.Linear) or x.dim() < 3:
        return None
    shape = shape_of(x)
    if shape[-1] == module.in_features or shape_product(shape[1:]) != module.in_features:
        return None
    facts = {"param": "in_features", "expected": module.in_features, "actual": shape[-1], "in_shape": shape,
             "map_shape": shape[1:], "meant_rank": 2}
    return Problem("missing_flatten", facts, (), (keep_batch(x),) + tuple(args[1:]), kwargs)


def _check_window(module, x, args, kwargs) -> Problem | None:
    found = layers.layer_params(module)
    if found is None:
        return None
    op, params = found
    explained = formulas.explain_layer(op, params, shape_of(x), label=_label(module))
    if explained is None or explained.out_shape is not None or "larger than" not in explained.problem:
        return None
    mins = formulas.min_input_sizes(op, params, x.dim())
    if not mins:
        return None
    lead = x.dim() - len(mins)
    need = list(shape_of(x))
    for i, least in enumerate(mins):
        need[lead + i] = max(need[lead + i], least or 1)
    facts = {"in_shape": shape_of(x), "min_sizes": tuple(need[lead:]), "problem": explained.problem,
             "padding_needed": _padding_needed(op, params, shape_of(x)[lead:])}
    return Problem("kernel_too_large", facts, tuple(explained.steps), (x.new_empty(need),) + tuple(args[1:]),
                   kwargs)


def _label(module) -> str:
    return type(module).__name__


def _padding_needed(op: str, params: dict, sizes: tuple) -> int | None:
    """The smallest symmetric padding that would let a convolution's kernel fit (None for pools)."""
    if not op.startswith("Conv") or isinstance(params.get("padding"), str):
        return None
    n = len(sizes)
    pick = {k: _per_dim(params.get(k, 1), n) for k in ("kernel_size", "stride", "dilation")}
    return max(formulas.padding_for_min_size(size, k, s, d)
               for size, k, s, d in zip(sizes, pick["kernel_size"], pick["stride"], pick["dilation"]))


def _per_dim(value, n: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _check_dtype(module, x, args, kwargs) -> Problem | None:
    if isinstance(module, (torch.nn.Embedding, torch.nn.EmbeddingBag)) and x.is_floating_point():
        facts = {"dtype": str(x.dtype).replace("torch.", ""), "in_shape": shape_of(x)}
        return Problem("input_dtype", facts, (), (x.new_empty(x.shape, dtype=torch.long),) + tuple(args[1:]),
                       kwargs)
    return None


def _resized(x, dims, sizes):
    shape = list(x.shape)
    for d, s in zip(dims, sizes):
        shape[d] = s
    return x.new_empty(shape)


def _one(values: tuple):
    return values[0] if len(values) == 1 else values


# -- sequence layers -------------------------------------------------------------------------
SEQUENCE_LAYERS = (torch.nn.RNNBase, torch.nn.MultiheadAttention, torch.nn.TransformerEncoderLayer,
                   torch.nn.TransformerDecoderLayer, torch.nn.TransformerEncoder, torch.nn.TransformerDecoder,
                   torch.nn.Transformer)


def batch_first_of(module) -> bool:
    """The layout a sequence layer reads: its own flag, its attention's, or its first block's."""
    if hasattr(module, "batch_first"):
        return bool(module.batch_first)
    if isinstance(module, (torch.nn.TransformerEncoder, torch.nn.TransformerDecoder)):
        return not len(module.layers) or batch_first_of(module.layers[0])
    return batch_first_of(module.self_attn) if hasattr(module, "self_attn") else True


def reads_time_first(module, args) -> torch.Tensor | None:
    """The batched (3-D) input of a sequence layer that reads dim 0 as time (batch_first=False)."""
    if not isinstance(module, SEQUENCE_LAYERS) or batch_first_of(module):
        return None
    x = args[0] if args else None
    return x if isinstance(x, torch.Tensor) and x.dim() == 3 else None


# -- transposed convolutions -----------------------------------------------------------------
def strided_stage(module, x, out) -> dict | None:
    """What a strided convolution did to the spatial sizes (for its mirror in a decoder)."""
    conv = torch.nn.modules.conv
    if not isinstance(module, conv._ConvNd) or module.transposed or all(s == 1 for s in module.stride):
        return None
    n = len(module.stride)
    return {"stride": tuple(module.stride), "in": shape_of(x)[-n:], "out": shape_of(out)[-n:],
            "in_channels": module.in_channels}


def off_mirror(module, x, out, stages, args, kwargs) -> dict | None:
    """Facts when a strided transposed conv does not give back the size its mirror conv took in.

    The mirror is the latest strided conv with the same stride whose output size is this
    layer's input size and whose in_channels are this layer's out_channels. Short by less than
    the stride is what ``output_padding`` restores; too large by an even amount, what more
    ``padding`` takes back. An explicit ``output_size`` is left alone.
    """
    conv = torch.nn.modules.conv
    if not isinstance(module, conv._ConvTransposeNd) or all(s == 1 for s in module.stride) \
            or len(args) > 1 or "output_size" in kwargs:
        return None
    stride, n = tuple(module.stride), len(module.stride)
    into, got = shape_of(x)[-n:], shape_of(out)[-n:]
    for name, stage in reversed(stages):
        if stage["stride"] == stride and stage["out"] == into and stage["in_channels"] == module.out_channels:
            return _mirror_facts(module, name, stage["in"], into, got, x, out)
    return None


def _mirror_facts(module, mirror: str, want: tuple, into: tuple, got: tuple, x, out) -> dict | None:
    short = tuple(a - b for a, b in zip(want, got))
    facts = {"mirror": mirror, "mirror_in": want, "in_sizes": into, "out_sizes": got, "stride": tuple(module.stride),
             "short": short, "in_shape": shape_of(x), "out_shape": shape_of(out)}
    if any(short) and all(0 <= d < s for d, s in zip(short, module.stride)):
        return {**facts, "output_padding": _uniform(tuple(p + d for p, d in zip(module.output_padding, short)))}
    if any(short) and all(d <= 0 and d % 2 == 0 for d in short) and isinstance(module.padding, tuple):
        return {**facts, "padding": _uniform(tuple(p - d // 2 for p, d in zip(module.padding, short)))}
    return None


def _uniform(values: tuple):
    """One number for equal sizes per dimension (as `padding=1` is written), else the tuple."""
    return values[0] if len(set(values)) == 1 else values


# -- losses ----------------------------------------------------------------------------------
def check_loss_call(op: str, args, kwargs) -> Problem | None:
    if op in LOSS_SAME_SHAPE or op in LOSS_CLASS_INDEX:
        return _check_loss(op, args, kwargs)
    return None


def _check_loss(op, args, kwargs) -> Problem | None:
    inp, target = _operand(args, kwargs, 0), _operand(args, kwargs, 1)
    if not isinstance(inp, torch.Tensor) or not isinstance(target, torch.Tensor):
        return None
    i_shape, t_shape = shape_of(inp), shape_of(target)
    facts = {"input_shape": i_shape, "target_shape": t_shape, "loss": op}
    if op in LOSS_CLASS_INDEX:
        return _check_class_index(inp, target, facts, args, kwargs)
    if i_shape == t_shape:
        return None
    try:
        facts["broadcast_shape"] = tuple(torch.broadcast_shapes(tuple(i_shape), tuple(t_shape)))
    except RuntimeError:
        return Problem("loss_shape", facts, (), *_loss_args(args, kwargs, inp))
    return Problem("loss_broadcast", facts, (), *_loss_args(args, kwargs, inp))


def _check_class_index(inp, target, facts, args, kwargs) -> Problem | None:
    i_shape, t_shape = facts["input_shape"], facts["target_shape"]
    if target.is_floating_point():
        ok = i_shape == t_shape
        facts["expected_target"] = i_shape
    else:
        want = (i_shape[:1] + i_shape[2:]) if len(i_shape) >= 2 else ()
        ok = t_shape == want
        facts["expected_target"] = want
    if ok:
        return None
    fixed_target = inp.new_empty(facts["expected_target"], dtype=target.dtype)
    return Problem("loss_shape", facts, (), *_with_operand(args, kwargs, 1, fixed_target))


def _loss_args(args, kwargs, inp):
    """The call with a target shaped like the input, so that the trace goes on."""
    return _with_operand(args, kwargs, 1, inp.new_empty(inp.shape))


# Every loss in torch takes (input, target, ...), by position or by these names.
_LOSS_OPERANDS = ("input", "target")


def _operand(args, kwargs, index: int):
    return args[index] if len(args) > index else kwargs.get(_LOSS_OPERANDS[index])


def _with_operand(args, kwargs, index: int, value) -> tuple[tuple, dict]:
    """``(args, kwargs)`` with the loss's input (0) or target (1) replaced where it was given."""
    if len(args) > index:
        return tuple(args[:index]) + (value,) + tuple(args[index + 1:]), kwargs
    return tuple(args), {**kwargs, _LOSS_OPERANDS[index]: value}


# -- ops -------------------------------------------------------------------------------------
def op_event_kind(op: str, exc: BaseException | None = None) -> str:
    if view_strides(op, exc):
        return "view_strides"
    if op in ("view", "reshape", "flatten", "unflatten"):
        return "reshape"
    if op in ("cat", "concat", "concatenate", "stack"):
        return "cat"
    return "op_error"


def keeps_first_dim(op: str, args, kwargs) -> bool:
    """``flatten(x, 1)`` and ``x.flatten(1)`` keep dim 0 by construction; view/reshape may not."""
    if op != "flatten":
        return False
    start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
    return isinstance(start, int) and start >= 1


def trailing_units(shape) -> tuple[int, ...]:
    """The sizes of whole trailing blocks of one sample: W, H×W, C×H×W for N×C×H×W."""
    units, tail = [], 1
    for d in reversed(shape[1:]):
        if not isinstance(d, int):
            break
        tail *= d
        units.append(tail)
    return tuple(units)


def rows_are_units(in_shape, row: int) -> bool:
    """Rows of ``row`` values hold whole trailing blocks (a pixel's channels after a permute, a
    token's features) or a piece of the last dimension (heads split off a feature vector)."""
    units = trailing_units(in_shape)
    if len(units) < len(in_shape) - 1:
        return True  # a size with no value: nothing to tell
    return not units or row in units or (row > 0 and units[0] % row == 0)


def keep_batch(x):
    """The batch-keeping flatten the user most likely meant: (N, everything else)."""
    return x.reshape(x.shape[0], -1)


def view_strides(op: str, exc: BaseException | None) -> bool:
    """torch refused `view` for the tensor's strides, not for its sizes: the sizes fit."""
    if op != "view" or not isinstance(exc, (RuntimeError, ValueError)):
        return False
    text = str(exc)  # eager and meta kernels say the first, symbolic shapes the second
    return "compatible with input tensor's size and stride" in text or (
        text.startswith("Cannot view a tensor with shape") and "and strides" in text)


def substitute_op(op: str, args, kwargs, facts: dict, exc: BaseException | None = None):
    """The output a failing op was meant to produce, when the intent is clear; else None."""
    x = args[0] if args else None
    if view_strides(op, exc) and isinstance(x, torch.Tensor):
        return x.reshape(*args[1:], **kwargs)  # what view would give had the memory been in order
    if op in ("view", "reshape") and isinstance(x, torch.Tensor) and x.dim() >= 2:
        target = facts.get("args", ())
        if len(target) == 2:
            return keep_batch(x)
        return None
    if op in ("cat", "concat", "concatenate", "stack") and args and isinstance(args[0], (list, tuple)):
        return _cat_substitute(op, list(args[0]), args[1] if len(args) > 1 else kwargs.get("dim", 0))
    return None


def _cat_substitute(op, tensors, dim):
    tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
    if not tensors:
        return None
    first = tensors[0]
    if op == "stack":
        return first.new_empty((len(tensors),) + tuple(first.shape)) if dim == 0 else None
    d = dim % first.dim()
    shape = list(first.shape)
    shape[d] = sum(t.shape[d] for t in tensors if t.dim() == first.dim())
    return first.new_empty(shape)


def device_move(func, args, kwargs):
    """``x.to(device)``, ``x.cuda()``: fake meta tensors stay where they are; dtypes still change."""
    x = args[0]
    dtype = kwargs.get("dtype")
    for a in args[1:]:
        if isinstance(a, torch.dtype):
            dtype = a
        elif isinstance(a, torch.Tensor):
            dtype = a.dtype
    return x if dtype is None or dtype == x.dtype else x.to(dtype=dtype)


def is_unsupported(exc: BaseException) -> bool:
    """Failures of the fake-tensor machinery rather than of the model's shapes."""
    name = type(exc).__name__
    text = str(exc)
    return (name in ("GuardOnDataDependentSymNode", "DataDependentOutputException",
                     "DynamicOutputShapeException", "UnsupportedOperatorException", "NotImplementedError")
            or "data-dependent" in text or "meta tensor" in text.lower() or "does not have a meta" in text
            or "INTERNAL ASSERT FAILED" in text  # torch's own check, on tensors without data
            or symbolic_only(exc))


def symbolic_only(exc: BaseException) -> bool:
    """A kernel that takes no symbolic size: torch's symbolic shapes cannot follow the call,
    where plain meta tensors can."""
    return "expected to contain only concrete integers" in str(exc)


def unsupported_reason(op: str, exc: BaseException) -> str:
    text = str(exc)
    if "data-dependent" in text or type(exc).__name__ == "GuardOnDataDependentSymNode":
        if op == "__bool__":
            what = "a branch on tensor values"
        elif not op:
            what = "this line needs tensor values (a branch on them, or a Python number made from one)"
        elif op in ("item", "__int__", "__float__", "tolist"):
            what = f"`{op}` reads a tensor's value"
        else:
            what = f"`{op}` needs tensor values"
        return f"{what}; shapes are known here, values are not"
    if type(exc).__name__ == "DynamicOutputShapeException":
        return f"`{op or 'an operator'}` returns a size that depends on tensor values"
    if "meta" in text.lower() or isinstance(exc, NotImplementedError) or "INTERNAL ASSERT FAILED" in text:
        return f"`{op or 'an operator'}` cannot run without real data (no meta kernel)"
    return text.splitlines()[0] if text else type(exc).__name__


# -- explanations ----------------------------------------------------------------------------
def explain(module, func, args, kwargs, in_shapes, out_shapes, name):
    """The formula behind a recorded output: (one-line note, full steps, (op, params) or None)."""
    if module is not None:
        found = layers.layer_params(module)
    elif func is not None:
        found = layers.functional_params(func, args, kwargs)
    else:
        found = None
    if found is None or not in_shapes:
        return "", (), None
    op, params = found
    explained = formulas.explain_layer(op, params, in_shapes[0], label=name)
    if explained is None:
        return "", (), None
    return explained.note, tuple(explained.steps), found


def smallest_size_that_fits(stages, size: int) -> int | None:
    """The smallest input size from ``size`` up for which every window in ``stages`` fits."""
    chain = [d[0] for d in (formulas.spatial_formulas(op, params) for op, params in stages) if d]
    for n in range(size, 8 * size + 1):
        result = formulas.chain_out(n, chain)
        if result.ok and result.value >= 1:
            return n
    return None


def sizes_that_fit(stages, size: int, wanted: int = 2) -> tuple[list[int], str, str]:
    """Input sizes near ``size`` that pass ``stages`` (the spatial layers in the order they
    ran) whole, the rule they follow ("multiples of 4 (4, 8, 12, 16, …)") and what the rule
    asks ("that no floor cuts"). Where no floor cuts ``size`` itself, the floors do not
    explain the mismatch, and the sizes are those that every stride divides; where that does
    not exclude ``size`` either, there are none (the traces then name no size)."""
    dims = [formulas.spatial_formulas(op, params) for op, params in stages]
    chain = [d[0] for d in dims if d]
    if not chain:
        return [], "", ""
    for divided, asks in ((False, "that no floor cuts"), (True, "that every stride divides")):
        fitting = formulas.sizes_without_drops(chain, 1, max(64, 2 * size), divided=divided)
        if fitting and size not in fitting:
            near = sorted(fitting, key=lambda n: (abs(n - size), n))[:wanted]
            return sorted(near), formulas.describe_sizes(fitting), asks
    return [], "", ""


def changes_spatial(record) -> bool:
    """Whether a record changed the spatial (last) sizes: convs, pools, resizes."""
    if not record.in_shapes or not record.out_shapes:
        return False
    a, b = record.in_shapes[0], record.out_shapes[0]
    return len(a) == len(b) and len(a) >= 3 and a[2:] != b[2:]
