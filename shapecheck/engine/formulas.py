"""Shape arithmetic that explains itself.

Every function here computes one output size the way torch does and returns a
:class:`Derivation`: the value, the steps a beginner can follow
(``conv2: H = ⌊(15 + 2·0 − 1·(3−1) − 1)/1⌋ + 1 = 13``), and how many input rows the floor
threw away. The inverse helpers answer the questions a fix needs: which input sizes give
a wanted output, which padding makes a layer fit.

Pure integer arithmetic: no torch import, so rules and fixes can use it freely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

UNIT_WORDS = {"H": "row", "W": "column", "L": "step", "D": "slice"}
SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def units(dim: str, count: int) -> str:
    """``units("H", 2)`` → ``"2 rows"``."""
    word = UNIT_WORDS.get(dim, "position")
    return f"{count} {word}" + ("" if count == 1 else "s")


@dataclass(frozen=True)
class Derivation:
    """One output size, how it was computed, and what the computation lost.

    ``dropped`` counts the input positions at the end that no window reaches because the
    division was floored. ``uneven`` says that a strided window's output times its stride is
    not the input size (a padded stride-2 convolution takes 33 to 17, and 17 doubles back to
    34). ``problem`` is empty when torch accepts the configuration; otherwise one sentence
    saying why torch refuses it.
    """

    value: int
    steps: tuple[str, ...]
    dropped: int = 0
    formula: str = ""
    dim: str = "H"
    problem: str = ""
    uneven: bool = False

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def note(self) -> str:
        """The compact one-liner for a shape table: ``13→6 (drops 1 row)``."""
        text = self.formula or str(self.value)
        if self.dropped:
            text += f" (drops {units(self.dim, self.dropped)})"
        if self.problem:
            text += f": {self.problem}"
        return text


# ---------------------------------------------------------------- small text helpers


def _head(label: str, dim: str) -> str:
    return f"{label}: {dim} = " if label else f"{dim} = "


def _pair(padding) -> tuple[int, int]:
    """Padding of one dimension as (before, after); an int pads both sides."""
    if isinstance(padding, int):
        return padding, padding
    before, after = padding
    return int(before), int(after)


def _pad_full(before: int, after: int) -> str:
    if before == after:
        return f"2·{before}"
    return f"{before} + {after}"


def _pad_short(before: int, after: int) -> str:
    if before == after:
        return f"+2·{before}" if before else ""
    return f"+{before}+{after}"


def _padded_text(size: int, before: int, after: int) -> str:
    if before == after == 0:
        return f"the input ({size})"
    return f"the padded input ({size} + {_pad_full(before, after)} = {size + before + after})"


def _kernel_text(kernel: int, dilation: int) -> str:
    if dilation == 1:
        return f"the kernel ({kernel})"
    effective = dilation * (kernel - 1) + 1
    return f"the kernel (effective size {dilation}·({kernel}−1)+1 = {effective})"


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    return dilation * (kernel - 1) + 1


# ---------------------------------------------------------------- sliding windows


def _window_steps(size, kernel, stride, before, after, dilation, value, dim, what):
    """Steps shared by conv, pool and unfold once ``value`` is known; returns (steps, dropped, problem)."""
    effective = effective_kernel(kernel, dilation)
    if value < 1:
        problem = f"{_kernel_text(kernel, dilation)} is larger than {_padded_text(size, before, after)}"
        return (f"{problem}: no {what} fits",), 0, problem
    steps = []
    covered = (value - 1) * stride + effective
    dropped = max(0, before + size - covered)
    if dropped:
        span = size + before + after - effective
        if before == after == 0 and effective == stride:
            steps.append(f"{size} does not divide evenly by {stride}: ⌊{size}/{stride}⌋ drops {units(dim, dropped)}")
        else:
            steps.append(
                f"{span} (padded input minus kernel) does not divide evenly by {stride}: "
                f"⌊{span}/{stride}⌋ drops the last {units(dim, dropped)}")
    if stride > effective:
        steps.append(
            f"stride {stride} is larger than the kernel ({effective}): "
            f"{units(dim, stride - effective)} between {what}s {'is' if stride - effective == 1 else 'are'} skipped")
    return tuple(steps), dropped, ""


def _sliding(size, kernel, stride, padding, dilation, dim, label, what, suffix="", max_padding=None):
    before, after = _pair(padding)
    effective = effective_kernel(kernel, dilation)
    value = (size + before + after - effective) // stride + 1
    main = (f"{_head(label, dim)}⌊({size} + {_pad_full(before, after)} − {dilation}·({kernel}−1) − 1)/{stride}⌋"
            f" + 1 = {value}{suffix}")
    extra, dropped, problem = _window_steps(size, kernel, stride, before, after, dilation, value, dim, what)
    if problem:
        extra += (_fits_text(size, kernel, stride, before, after, dilation, dim, max_padding),)
    formula = f"⌊({size}{_pad_short(before, after)}−{effective})/{stride}⌋+1 = {value}"
    uneven = stride > 1 and value * stride != size
    return Derivation(value, (main, *extra), dropped, formula, dim, problem, uneven)


def _fits_text(size, kernel, stride, before, after, dilation, dim, max_padding=None) -> str:
    """What would make a too-small input fit: a larger input, or (where allowed) more padding."""
    smallest = conv_min_input(kernel, stride, (before, after), dilation)
    text = f"it fits an input of at least {units(dim, smallest)}"
    padding = padding_for_min_size(size, kernel, stride, dilation)
    if max_padding is None or padding <= max_padding:
        text += f", or this input with padding {padding} on each side"
    return text


def conv_out(size: int, kernel: int, stride: int = 1, padding=0, dilation: int = 1,
             dim: str = "H", label: str = "") -> Derivation:
    """Output size of a convolution along one dimension.

    ``padding`` is an int (both sides) or a (before, after) pair, as "same" padding with an
    even kernel needs (torch puts the extra one after).
    """
    return _sliding(size, kernel, stride, padding, dilation, dim, label, "window")


def unfold_blocks(size: int, kernel: int, stride: int = 1, padding=0, dilation: int = 1,
                  dim: str = "H", label: str = "") -> Derivation:
    """Number of sliding blocks ``nn.Unfold`` takes along one dimension."""
    return _sliding(size, kernel, stride, padding, dilation, dim, label, "block", " blocks")


def pool_out(size: int, kernel: int, stride: int | None = None, padding=0, dilation: int = 1,
             ceil_mode: bool = False, dim: str = "H", label: str = "") -> Derivation:
    """Output size of max/avg pooling along one dimension (stride defaults to the kernel).

    With ``ceil_mode`` the division rounds up, but a last window that would start beyond the
    input and its left padding is not counted (torch's rule).
    """
    stride = kernel if stride is None else stride
    before, after = _pair(padding)
    if not ceil_mode:
        result = _sliding(size, kernel, stride, padding, dilation, dim, label, "window", max_padding=kernel // 2)
        simple = before == after == 0 and dilation == 1 and kernel == stride
        formula = f"{size}→{result.value}" if simple else result.formula
        problem = result.problem or _pool_padding_problem(kernel, before, after)
        return Derivation(result.value, result.steps, result.dropped, formula, dim, problem, result.uneven)
    return _ceil_pool(size, kernel, stride, before, after, dilation, dim, label)


def _ceil_pool(size, kernel, stride, before, after, dilation, dim, label):
    effective = effective_kernel(kernel, dilation)
    span = size + before + after - effective
    rounded = -(-span // stride) + 1
    value = rounded
    steps = [f"{_head(label, dim)}⌈({size} + {_pad_full(before, after)} − {dilation}·({kernel}−1) − 1)/{stride}⌉"
             f" + 1 = {rounded}"]
    if rounded >= 1 and (rounded - 1) * stride >= size + before:
        value = rounded - 1
        steps.append(
            f"the last window would start at position {(rounded - 1) * stride}, past the input and its left "
            f"padding ({size} + {before}), so ceil_mode does not count it: {dim} = {value}")
    extra, dropped, problem = _window_steps(size, kernel, stride, before, after, dilation, value, dim, "window")
    steps.extend(extra)
    if value < 1:
        smallest = max(1, effective - stride + 1 - before - after)
        steps.append(f"with ceil_mode it fits an input of at least {units(dim, smallest)}")
    end = (value - 1) * stride + effective
    if value >= 1 and end > size + before + after:
        steps.append(f"ceil_mode: the last window runs {units(dim, end - size - before - after)} past the end")
    formula = f"⌈({size}{_pad_short(before, after)}−{effective})/{stride}⌉+1 = {value}"
    problem = problem or _pool_padding_problem(kernel, before, after)
    return Derivation(value, tuple(steps), dropped, formula, dim, problem)


def _pool_padding_problem(kernel: int, before: int, after: int) -> str:
    if max(before, after) <= kernel // 2:
        return ""
    return f"pooling padding {max(before, after)} is more than half the kernel ({kernel}); at most {kernel // 2}"


def conv_transpose_out(size: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
                       dilation: int = 1, dim: str = "H", label: str = "") -> Derivation:
    """Output size of a transposed convolution along one dimension."""
    value = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    main = (f"{_head(label, dim)}({size}−1)·{stride} − 2·{padding} + {dilation}·({kernel}−1) "
            f"+ {output_padding} + 1 = {value}")
    effective = effective_kernel(kernel, dilation)
    formula = f"({size}−1)·{stride}" + (f"−2·{padding}" if padding else "") + f"+{effective}"
    formula += (f"+{output_padding}" if output_padding else "") + f" = {value}"
    problem = ""
    if output_padding >= max(stride, dilation):
        problem = (f"output_padding {output_padding} must be smaller than the stride ({stride}) "
                   f"or the dilation ({dilation})")
    elif value < 1:
        problem = (f"padding 2·{padding} removes more than the {value + 2 * padding} positions "
                   f"the transposed convolution produces")
    steps = (main, problem) if problem else (main,)
    return Derivation(value, steps, 0, formula, dim, problem)


def adaptive_out(size: int, output_size: int | None, dim: str = "H", label: str = "") -> Derivation:
    """Output size of adaptive pooling: the requested size (None keeps the input size)."""
    value = size if output_size is None else output_size
    source = "kept from the input" if output_size is None else "set by output_size"
    steps = [f"{_head(label, dim)}{value} ({source})"]
    if value >= 1:
        steps.append(_adaptive_windows(size, value, dim))
    problem = "" if value >= 1 else f"output_size {value} must be at least 1"
    return Derivation(value, tuple(steps), 0, f"{size}→{value}", dim, problem)


def _adaptive_windows(size: int, value: int, dim: str) -> str:
    """How many input positions each adaptive window covers (torch: ⌊i·n/o⌋ to ⌈(i+1)·n/o⌉)."""
    lengths = [-(-(i + 1) * size // value) - (i * size) // value for i in range(value)]
    low, high = min(lengths), max(lengths)
    word = UNIT_WORDS.get(dim, "position")
    each = f"each output {word} pools {units(dim, low) if low == high else f'{low} to {units(dim, high)}'}"
    if size % value == 0:
        return each
    overlap = ", and neighbouring windows overlap" if sum(lengths) > size else ""
    return f"{size} does not divide evenly into {value}: {each}{overlap}"


def upsample_out(size: int, scale_factor: float | None = None, out_size: int | None = None,
                 dim: str = "H", label: str = "") -> Derivation:
    """Output size of ``nn.Upsample`` / ``F.interpolate``: ``size`` if given, else ⌊size·scale⌋."""
    if out_size is None and scale_factor is None:
        problem = "either size or scale_factor must be given"
        return Derivation(size, (problem,), 0, f"{size}→?", dim, problem)
    if out_size is not None:
        value = int(out_size)
        steps = [f"{_head(label, dim)}{value} (set by size)"]
        formula = f"{size}→{value}"
    else:
        product = float(size) * scale_factor
        value = math.floor(product)
        steps = [f"{_head(label, dim)}⌊{size} × {scale_factor:g}⌋ = {value}"]
        if product != value:
            steps.append(f"{size} × {scale_factor:g} = {product:g} is not a whole number: the fraction is dropped")
        formula = f"{size}×{scale_factor:g} = {value}"
    problem = "" if value >= 1 else f"the output size {value} must be at least 1"
    return Derivation(value, tuple(steps), 0, formula, dim, problem)


# ---------------------------------------------------------------- inverse questions


def conv_min_input(kernel: int, stride: int = 1, padding=0, dilation: int = 1) -> int:
    """Smallest input size for which a conv (or floor-mode pool) still gives an output ≥ 1."""
    before, after = _pair(padding)
    return max(1, effective_kernel(kernel, dilation) - before - after)


def conv_input_range(target: int, kernel: int, stride: int = 1, padding=0, dilation: int = 1) -> range:
    """All input sizes whose conv output is exactly ``target`` (empty when none).

    Several inputs map to one output because of the floor: with stride 2 there are two.
    """
    before, after = _pair(padding)
    first = (target - 1) * stride + effective_kernel(kernel, dilation) - before - after
    if target < 1:
        return range(0)
    return range(max(1, first), max(1, first + stride))


def inputs_for_output(fn: Callable[[int], int | Derivation], target: int, lo: int = 1, hi: int = 1 << 16) -> range:
    """Input sizes in [lo, hi] for which ``fn`` gives ``target``; ``fn`` must not decrease.

    Works for any of the forward formulas, e.g.
    ``inputs_for_output(lambda n: pool_out(n, 2, ceil_mode=True), 7)``.
    """
    def value(n: int) -> int:
        result = fn(n)
        return result.value if isinstance(result, Derivation) else int(result)

    start = _first_at_least(value, target, lo, hi)
    stop = _first_at_least(value, target + 1, start, hi)
    if start > hi or value(start) != target:
        return range(0)
    return range(start, stop)


def _first_at_least(value: Callable[[int], int], target: int, lo: int, hi: int) -> int:
    """Smallest n in [lo, hi] with value(n) ≥ target, or hi + 1."""
    low, high = lo, hi + 1
    while low < high:
        middle = (low + high) // 2
        if value(middle) >= target:
            high = middle
        else:
            low = middle + 1
    return low


def pool_input_range(target: int, kernel: int, stride: int | None = None, padding: int = 0,
                     dilation: int = 1, ceil_mode: bool = False) -> range:
    """All input sizes whose pooled size is exactly ``target``."""
    stride = kernel if stride is None else stride
    hi = (target + 1) * stride + effective_kernel(kernel, dilation) + 1
    return inputs_for_output(lambda n: pool_out(n, kernel, stride, padding, dilation, ceil_mode), target, 1, hi)


def padding_for_min_size(size: int, kernel: int, stride: int = 1, dilation: int = 1, min_out: int = 1) -> int:
    """Smallest symmetric padding that makes a conv's output at least ``min_out``."""
    needed = (min_out - 1) * stride + effective_kernel(kernel, dilation) - size
    return max(0, -(-needed // 2))


def padding_for_output(size: int, target: int, kernel: int, stride: int = 1, dilation: int = 1,
                       max_padding: int | None = None) -> int | None:
    """Smallest symmetric padding giving a conv output of exactly ``target``, or None.

    Pass ``max_padding=kernel // 2`` for pooling layers, which refuse more.
    """
    padding = padding_for_min_size(size, kernel, stride, dilation, target)
    limit = padding + stride if max_padding is None else min(max_padding, padding + stride)
    for candidate in range(padding, limit + 1):
        if conv_out(size, kernel, stride, candidate, dilation).value == target:
            return candidate
    return None


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """Padding (before, after) that keeps the size at stride 1; the extra goes after, as in torch."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


# ---------------------------------------------------------------- whole shapes


def factor_text(shape_tail) -> str:
    """``(16, 6, 6)`` → ``16×6×6 = 576``: the product a ``view`` or ``Linear`` must match."""
    shape_tail = tuple(shape_tail)
    if not shape_tail:
        return "1"
    if len(shape_tail) == 1:
        return str(shape_tail[0])
    joined = "×".join(str(d) for d in shape_tail)
    if not all(isinstance(d, int) for d in shape_tail):
        return joined
    return f"{joined} = {math.prod(shape_tail)}"


def _product(sizes) -> int | str:
    ints = [d for d in sizes if isinstance(d, int)]
    names = [str(d) for d in sizes if not isinstance(d, int)]
    if not names:
        return math.prod(ints)
    return "*".join(names + ([str(math.prod(ints))] if math.prod(ints) != 1 else []))


@dataclass(frozen=True)
class LayerFormula:
    """How a layer maps its input shape to its output shape.

    ``out_shape`` is the shape the layer's declaration intends (even when, as ``problem``
    says, torch would refuse the input), or None when no output size exists.
    """

    out_shape: tuple | None
    note: str
    steps: tuple[str, ...]
    dropped: dict[str, int] = field(default_factory=dict)
    problem: str = ""


class _ShapeProblem(Exception):
    """An input the layer cannot take at all (wrong rank, mismatched parameter lengths)."""


def _tuple(value, n: int) -> tuple:
    """An int-or-sequence parameter as n entries; a 1-sequence is repeated like torch does."""
    if value is None or isinstance(value, (int, float, str)):
        return (value,) * n
    value = tuple(value)
    if len(value) == 1:
        return value * n
    if len(value) != n:
        raise _ShapeProblem(f"expected 1 or {n} values for {n} spatial dimensions, got {value}")
    return value


def _combine(derivations, label: str) -> tuple[str, tuple[str, ...], dict[str, int], str]:
    """Join per-dimension derivations, saying identical ones once ("W: same")."""
    notes, steps, dropped, problems = [], [], {}, []
    previous = None
    for d in derivations:
        if d.dropped:
            dropped[d.dim] = d.dropped
        if previous is not None and _same_numbers(d, previous):
            notes.append(f"{d.dim}: same")
            extra = f"; drops {units(d.dim, d.dropped)}" if d.dropped else ""
            steps.append(f"{label + ': ' if label else ''}{d.dim} = {d.value}, as for {previous.dim}{extra}")
            if d.problem:
                problems[-1] = (problems[-1][0] + (d.dim,), d.problem)
        else:
            notes.append(f"{d.dim}: {d.note}")
            steps.extend(d.steps)
            if d.problem:
                problems.append(((d.dim,), d.problem))
        previous = d
    problem = "; ".join(f"{', '.join(dims)}: {text}" for dims, text in problems)
    return ", ".join(notes), tuple(steps), dropped, problem


def _same_numbers(a: Derivation, b: Derivation) -> bool:
    return (a.formula, a.dropped, a.problem) == (b.formula, b.dropped, b.problem)


def _split(in_shape: tuple, op: str, n: int, label: str):
    """(leading dims, spatial dims) for an op taking n spatial dims, batched or not."""
    if len(in_shape) not in (n + 1, n + 2):
        names = ", ".join(SPATIAL_NAMES[n])
        raise _ShapeProblem(
            f"{label or op} expects a {n + 1}-d (C, {names}) or {n + 2}-d (N, C, {names}) input, "
            f"got {len(in_shape)}-d {tuple(in_shape)}")
    return tuple(in_shape[:-n]), tuple(in_shape[-n:])


def _check_channels(lead: tuple, params: dict, label: str) -> str:
    """The conv's in_channels against the channel dimension that arrives (the last lead dim)."""
    expected = params.get("in_channels")
    got = lead[-1]
    if expected is None or not isinstance(got, int) or got == expected:
        return ""
    return f"{label} expects {expected} input channels (in_channels) but gets {got}"


def _conv_pads(params: dict, kernels, dilations, n: int) -> tuple:
    """Per-dimension (before, after) padding; "same" puts the odd one after, as torch does."""
    padding = params.get("padding", 0)
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":
        return tuple(same_padding(k, d) for k, d in zip(kernels, dilations))
    return tuple(_pair(p) for p in _tuple(padding, n))


def _conv_dims(n, params, label):
    kernels = _tuple(params["kernel_size"], n)
    strides = _tuple(params.get("stride", 1), n)
    dilations = _tuple(params.get("dilation", 1), n)
    pads = _conv_pads(params, kernels, dilations, n)
    return tuple(partial(conv_out, kernel=k, stride=s, padding=p, dilation=d, dim=dim, label=label)
                 for k, s, p, d, dim in zip(kernels, strides, pads, dilations, SPATIAL_NAMES[n]))


def _conv_transpose_dims(n, params, label):
    columns = zip(_tuple(params["kernel_size"], n), _tuple(params.get("stride", 1), n),
                  _tuple(params.get("padding", 0), n), _tuple(params.get("output_padding", 0), n),
                  _tuple(params.get("dilation", 1), n), SPATIAL_NAMES[n])
    return tuple(partial(conv_transpose_out, kernel=k, stride=s, padding=p, output_padding=o, dilation=d,
                         dim=dim, label=label) for k, s, p, o, d, dim in columns)


def _pool_dims(n, params, label):
    kernels = _tuple(params["kernel_size"], n)
    stride = params.get("stride")
    strides = kernels if stride is None or stride == () else _tuple(stride, n)
    ceil_mode = bool(params.get("ceil_mode", False))
    columns = zip(kernels, strides, _tuple(params.get("padding", 0), n), _tuple(params.get("dilation", 1), n),
                  SPATIAL_NAMES[n])
    return tuple(partial(pool_out, kernel=k, stride=s, padding=p, dilation=d, ceil_mode=ceil_mode, dim=dim,
                         label=label) for k, s, p, d, dim in columns)


def _adaptive_dims(n, params, label):
    targets = _tuple(params.get("output_size"), n)
    return tuple(partial(adaptive_out, output_size=t, dim=dim, label=label)
                 for t, dim in zip(targets, SPATIAL_NAMES[n]))


def _upsample_dims(n, params, label):
    columns = zip(_tuple(params.get("scale_factor"), n), _tuple(params.get("size"), n), SPATIAL_NAMES[n])
    return tuple(partial(upsample_out, scale_factor=sc, out_size=out, dim=dim, label=label)
                 for sc, out, dim in columns)


def _unfold_dims(n, params, label):
    columns = zip(_tuple(params["kernel_size"], 2), _tuple(params.get("stride", 1), 2),
                  _tuple(params.get("padding", 0), 2), _tuple(params.get("dilation", 1), 2), SPATIAL_NAMES[2])
    return tuple(partial(unfold_blocks, kernel=k, stride=s, padding=p, dilation=d, dim=dim, label=label)
                 for k, s, p, d, dim in columns)


_DIM_BUILDERS = {
    "conv": _conv_dims,
    "conv_transpose": _conv_transpose_dims,
    "pool": _pool_dims,
    "adaptive": _adaptive_dims,
    "upsample": _upsample_dims,
    "unfold": _unfold_dims,
}


def spatial_formulas(op: str, params: dict, ndim: int | None = None, label: str = ""):
    """One function per spatial dimension, size → :class:`Derivation`, for a windowed layer.

    ``ndim`` (the number of spatial dimensions) is needed only for Upsample/interpolate.
    Returns None for ops without spatial formulas. Compose them with :func:`chain_out`.
    """
    family, n = OPS.get(op, (None, 0))
    if family not in _DIM_BUILDERS:
        return None
    if family == "upsample":
        n = ndim or _upsample_rank(params)
    if family == "unfold":
        n = 2
    if n not in SPATIAL_NAMES:
        return None
    return _DIM_BUILDERS[family](n, params, label or op)


def _upsample_rank(params: dict) -> int | None:
    for key in ("size", "scale_factor"):
        value = params.get(key)
        if isinstance(value, (tuple, list)) and len(value) > 1:
            return len(value)
    return None


def min_input_sizes(op: str, params: dict, ndim: int | None = None) -> tuple[int | None, ...] | None:
    """The smallest size per spatial dimension that a layer accepts (None where no size works)."""
    formulas = spatial_formulas(op, params, ndim)
    if formulas is None:
        return None
    return tuple(_smallest_working(fn) for fn in formulas)


def _smallest_working(fn, hi: int = 1 << 20) -> int | None:
    def value(n: int) -> int:
        result = fn(n)
        return result.value if result.ok else 0
    smallest = _first_at_least(value, 1, 1, hi)
    return smallest if smallest <= hi else None


def chain_out(size: int, stages) -> Derivation:
    """Run one dimension through several stages (size → Derivation functions) in order.

    The formula reads ``32→30→15→13→6``; steps are all the stages' steps; ``dropped`` adds
    up. The chain stops at the first stage torch would refuse.
    """
    steps, dropped, values, uneven = [], 0, [size], False
    dim, current = "H", size
    for stage in stages:
        result = stage(current)
        dim = result.dim
        steps.extend(result.steps)
        dropped += result.dropped
        uneven = uneven or result.uneven
        values.append(result.value)
        if not result.ok:
            return Derivation(result.value, tuple(steps), dropped, "→".join(map(str, values)), dim, result.problem,
                              uneven)
        current = result.value
    return Derivation(current, tuple(steps), dropped, "→".join(map(str, values)), dim, "", uneven)


def sizes_without_drops(stages, lo: int = 1, hi: int = 1024, divided: bool = False) -> list[int]:
    """Input sizes in [lo, hi] that pass every stage with nothing dropped by a floor, and with
    ``divided`` also every strided stage's output times its stride equal to its input.

    For a U-Net encoder with four 2×2 pools these are the multiples of 16: the sizes whose
    skip connections line up again in the decoder. An encoder of padded stride-2 convolutions
    drops nothing at any size (33 goes to 17), but only the sizes its strides divide come back
    to their own size when a decoder doubles them: those are the ``divided`` ones.
    """
    found = []
    for n in range(lo, hi + 1):
        result = chain_out(n, stages)
        if result.ok and result.value >= 1 and not result.dropped and not (divided and result.uneven):
            found.append(n)
    return found


def describe_sizes(sizes, shown: int = 4) -> str:
    """Say a set of sizes plainly: ``26 to 29``, ``multiples of 16 (16, 32, 48, …)``."""
    sizes = sorted(sizes)
    if not sizes:
        return "no size"
    if len(sizes) == 1:
        return str(sizes[0])
    steps = {b - a for a, b in zip(sizes, sizes[1:])}
    if steps == {1}:
        return f"{sizes[0]} to {sizes[-1]}"
    listed = ", ".join(map(str, sizes[:shown])) + (", …" if len(sizes) > shown else "")
    if len(steps) == 1 and len(sizes) >= 3:
        step = steps.pop()
        if sizes[0] % step == 0:
            return f"multiples of {step} ({listed})"
        return f"{sizes[0]} + multiples of {step} ({listed})"
    return listed


def _explain_windowed(n, params, in_shape, label, op):
    """Conv, transposed conv, pools, adaptive pools and resizes: channels and spatial sizes."""
    family = OPS[op][0]
    if family == "upsample":
        n = len(in_shape) - 2
        if n not in SPATIAL_NAMES:
            raise _ShapeProblem(f"{label} expects a 3-d, 4-d or 5-d (N, C, ...) input, got {len(in_shape)}-d")
        lead, spatial = tuple(in_shape[:2]), tuple(in_shape[2:])
    else:
        lead, spatial = _split(in_shape, op, n, label)
    formulas = spatial_formulas(op, params, n, label)
    derivations = [fn(size) for fn, size in zip(formulas, spatial)]
    problem = ""
    if family in ("conv", "conv_transpose"):
        problem = _same_stride_problem(params) or _check_channels(lead, params, label)
        lead = lead[:-1] + (params.get("out_channels", lead[-1]),)
    return _finish(lead, derivations, label, problem)


def _same_stride_problem(params: dict) -> str:
    stride = params.get("stride", 1)
    strides = (stride,) if isinstance(stride, int) else tuple(stride)
    if params.get("padding") == "same" and any(s != 1 for s in strides):
        return "padding='same' needs stride 1"
    return ""


def _explain_unfold(n, params, in_shape, label, op):
    lead, spatial = _split(in_shape, op, 2, label)
    kernels = _tuple(params["kernel_size"], 2)
    derivations = [fn(size) for fn, size in zip(spatial_formulas(op, params, 2, label), spatial)]
    note, steps, dropped, problem = _combine(derivations, label)
    blocks = math.prod(d.value for d in derivations)
    channels = _product((lead[-1], *kernels))
    steps += (f"{label + ': ' if label else ''}L = {derivations[0].value}×{derivations[1].value} = {blocks} blocks, "
              f"each {factor_text((lead[-1], *kernels))} values",)
    out = None if problem else lead[:-1] + (channels, blocks)
    return LayerFormula(out, f"{note}; L = {blocks}", steps, dropped, problem)


def _finish(lead: tuple, derivations, label: str, problem: str = "") -> LayerFormula:
    note, steps, dropped, size_problem = _combine(derivations, label)
    out = None if size_problem else lead + tuple(d.value for d in derivations)
    return LayerFormula(out, note, steps, dropped, size_problem or problem)


def _dim_index(dim: int, rank: int, label: str) -> int:
    """A dimension index as torch wraps it: negative counts from the end; a scalar acts 1-d."""
    rank = max(rank, 1)
    index = dim + rank if dim < 0 else dim
    if not 0 <= index < rank:
        raise _ShapeProblem(f"{label}: dimension {dim} is out of range for a {rank}-d input")
    return index


def _explain_flatten(n, params, in_shape, label, op):
    default_start = 1 if op == "Flatten" else 0
    rank = len(in_shape)
    start = _dim_index(params.get("start_dim", default_start), rank, label)
    end = _dim_index(params.get("end_dim", -1), rank, label)
    if rank == 0:
        return LayerFormula((1,), "scalar → 1", (f"{label}: a scalar flattens to (1,)",))
    if start > end:
        raise _ShapeProblem(f"{label}: start_dim {start} comes after end_dim {end}")
    merged = tuple(in_shape[start:end + 1])
    out = tuple(in_shape[:start]) + (_product(merged),) + tuple(in_shape[end + 1:])
    text = factor_text(merged) if all(isinstance(d, int) for d in merged) else f"{factor_text(merged)} = {out[start]}"
    return LayerFormula(out, text, (f"{label}: dims {start}..{end} flatten to {text}",))


def _explain_linear(n, params, in_shape, label, op):
    if not in_shape:
        raise _ShapeProblem(f"{label or op} needs at least a 1-d input, got a scalar")
    features = in_shape[-1]
    expected = params.get("in_features")
    out_features = params["out_features"]
    problem = ""
    if expected is not None and isinstance(features, int) and features != expected:
        problem = f"{label} expects {expected} input features (in_features) but the last dimension is {features}"
    out = tuple(in_shape[:-1]) + (out_features,)
    return LayerFormula(out, f"{features}→{out_features}", (f"{label}: features {features} → {out_features}",),
                        {}, problem)


def _explain_embedding(n, params, in_shape, label, op):
    out = tuple(in_shape) + (params["embedding_dim"],)
    return LayerFormula(out, f"+{params['embedding_dim']}",
                        (f"{label}: each index becomes a vector of {params['embedding_dim']}",))


def _explain_rnn(n, params, in_shape, label, op):
    if len(in_shape) not in (2, 3):
        raise _ShapeProblem(f"{label or op} expects a 2-d (L, H_in) or 3-d input, got {len(in_shape)}-d")
    directions = 2 if params.get("bidirectional") else 1
    hidden = params.get("proj_size") or params["hidden_size"]
    features = in_shape[-1]
    problem = ""
    if isinstance(features, int) and features != params.get("input_size", features):
        problem = f"{label} expects {params['input_size']} input features (input_size) but gets {features}"
    out = tuple(in_shape[:-1]) + (directions * hidden,)
    text = f"{features}→{directions}×{hidden}" if directions == 2 else f"{features}→{hidden}"
    return LayerFormula(out, text, (f"{label}: features {features} → {directions * hidden} (output)",), {}, problem)


def _explain_same(n, params, in_shape, label, op):
    checks = (("num_features", 1), ("num_channels", 1))
    if params.get("affine") is False:  # a non-affine InstanceNorm only warns on a mismatch
        checks = (("num_channels", 1),)
    for name, dim in checks:
        expected = params.get(name)
        if expected is not None and len(in_shape) > dim and isinstance(in_shape[dim], int) \
                and in_shape[dim] != expected:
            problem = f"{label} expects {expected} channels ({name}) but dimension {dim} is {in_shape[dim]}"
            return LayerFormula(tuple(in_shape), "same shape", (), {}, problem)
    normalized = params.get("normalized_shape")
    if normalized is not None:
        normalized = tuple(_tuple(normalized, 1)) if isinstance(normalized, int) else tuple(normalized)
        tail = tuple(in_shape[len(in_shape) - len(normalized):]) if len(in_shape) >= len(normalized) else ()
        if tail != normalized:
            problem = f"{label} normalizes over {normalized} (normalized_shape) but the input ends in {tail}"
            return LayerFormula(tuple(in_shape), "same shape", (), {}, problem)
    return LayerFormula(tuple(in_shape), "same shape", ())


_EXPLAINERS = {
    "conv": _explain_windowed,
    "conv_transpose": _explain_windowed,
    "pool": _explain_windowed,
    "adaptive": _explain_windowed,
    "upsample": _explain_windowed,
    "unfold": _explain_unfold,
    "flatten": _explain_flatten,
    "linear": _explain_linear,
    "embedding": _explain_embedding,
    "rnn": _explain_rnn,
    "same": _explain_same,
}

SAME_SHAPE_OPS = frozenset({
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
    "GroupNorm", "LayerNorm", "RMSNorm", "LocalResponseNorm", "Identity", "Dropout", "Dropout1d", "Dropout2d",
    "Dropout3d", "AlphaDropout", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU",
    "Mish", "Sigmoid", "Tanh", "Hardtanh", "Hardswish", "Hardsigmoid", "Softplus", "Softsign", "Softmax",
    "LogSoftmax", "relu", "gelu", "silu", "sigmoid", "tanh", "dropout", "batch_norm", "layer_norm", "group_norm",
    "softmax", "log_softmax", "leaky_relu",
})


def _op_table() -> dict[str, tuple[str, int]]:
    table = {}
    for n in (1, 2, 3):
        for names, family in (
            ((f"Conv{n}d", f"conv{n}d", f"LazyConv{n}d"), "conv"),
            ((f"ConvTranspose{n}d", f"conv_transpose{n}d", f"LazyConvTranspose{n}d"), "conv_transpose"),
            ((f"MaxPool{n}d", f"max_pool{n}d", f"AvgPool{n}d", f"avg_pool{n}d"), "pool"),
            ((f"AdaptiveAvgPool{n}d", f"AdaptiveMaxPool{n}d", f"adaptive_avg_pool{n}d",
              f"adaptive_max_pool{n}d"), "adaptive"),
        ):
            table.update({name: (family, n) for name in names})
    families = {
        "upsample": ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "interpolate", "upsample"),
        "unfold": ("Unfold", "unfold"),
        "flatten": ("Flatten", "flatten"),
        "linear": ("Linear", "linear", "LazyLinear"),
        "embedding": ("Embedding", "embedding"),
        "rnn": ("RNN", "LSTM", "GRU"),
    }
    for family, names in families.items():
        table.update({name: (family, 0) for name in names})
    table.update({name: ("same", 0) for name in SAME_SHAPE_OPS})
    return table


OPS = _op_table()


def explain_layer(op: str, params: dict, in_shape: tuple, label: str = "") -> LayerFormula | None:
    """The output shape of one layer with its explanation, or None for ops not covered here.

    ``in_shape`` holds ints, and strings for symbolic sizes such as the batch ``"N"``; the
    dimensions a formula needs must be ints.
    """
    family, n = OPS.get(op, ("same", 0) if params.get("same_shape") else (None, 0))
    if family is None:
        return None
    in_shape = tuple(in_shape)
    needed = in_shape[-n:] if n else ()
    if family == "upsample":
        needed = in_shape[2:]
    if not all(isinstance(d, int) for d in needed):
        return None
    try:
        return _EXPLAINERS[family](n, params, in_shape, label or op, op)
    except _ShapeProblem as problem:
        return LayerFormula(None, str(problem), (str(problem),), {}, str(problem))
    except KeyError:  # params lack a size the formula needs (a lazy layer before its first call)
        return None
