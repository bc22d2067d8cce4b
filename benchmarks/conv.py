"""Forward and backward time of the from-scratch convolutions against F.conv2d.

    python benchmarks/conv.py            # several minutes
    python benchmarks/conv.py --quick    # fewer repetitions
    python benchmarks/conv.py --device cuda   # on the GPU (exit 2 without one)
    python benchmarks/conv.py --allocator default   # glibc's malloc left as it is

Every cell is an implementation's best time divided by F.conv2d's best time in the calls
paired with it, on the same layer (NCHW, float32 in full precision on both sides: no TF32; two
threads on the CPU, or one GPU with ``--device cuda``, every call timed to the end of its
last kernel): each call is timed right next
to an F.conv2d call, the two taking turns to go first, and the order of the implementations
rotates every round, so that load on the machine hits all of them alike and none always runs
after the same one. Load only ever adds time, so the best of the rounds is the figure it
disturbs least; both sides of a ratio are the best of the same number of calls. A layer whose
F.conv2d call takes under 3 ms is timed over five times the rounds.
``auto`` measures on its first call of each layer (outside the timed calls); it is then timed
head to head with the fastest implementation of the row, alternating which goes first. Prints markdown: the machine and its load,
the forward and backward tables, the depthwise layer's memory traffic against the machine's
measured bandwidth (in cache and from memory), achieved GFLOP/s against a large matmul, and
where the time of each approach goes.

On Linux the C allocator is first told to keep freed memory (glibc's ``mallopt``: no ``mmap``
for large blocks, no trimming), so that a call's output and work tensors reuse pages the
process already has. Left as it is, glibc hands each tensor of several MiB back to the kernel
when it is freed and every call then pays a page fault per 4 KiB of its output: on a 2-core
virtual machine that alone took F.conv2d on the depthwise layer from 0.6-1.2 ms to 3-7 ms,
varying from process to process with glibc's adaptive threshold. ``--allocator default``
measures with it left as it is.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shapecheck.conv import IMPLEMENTATIONS, NotApplicable  # noqa: E402
from shapecheck.conv import _depthwise, fft, im2col, shift_add, toeplitz, winograd  # noqa: E402
from shapecheck.conv._args import normalize, pad_input  # noqa: E402
from shapecheck.conv.auto import TUNER, choose, layer_key, rotated  # noqa: E402
from shapecheck.conv.functional import conv2d as auto_conv2d  # noqa: E402
from shapecheck.conv.tolerance import exact_arithmetic  # noqa: E402

NAIVE_MAX_POSITIONS = 1024
COLUMNS_BUDGET = 512 * 2**20


@dataclass(frozen=True)
class Layer:
    name: str
    x: tuple[int, ...]
    w: tuple[int, ...]
    kwargs: dict = field(default_factory=dict)
    target: float | None = None
    backward_target: float = 4.0


LAYERS = [
    Layer("LeNet conv1", (64, 1, 32, 32), (6, 1, 3, 3), {}, 1.5),
    Layer("ResNet stem", (8, 3, 224, 224), (64, 3, 7, 7), {"stride": 2, "padding": 3}, 5.0),
    Layer("ResNet 3x3", (8, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}, 3.0),
    Layer("1x1", (8, 256, 56, 56), (64, 256, 1, 1), {}, 2.5),
    Layer("stride-2 3x3", (8, 128, 28, 28), (256, 128, 3, 3), {"stride": 2, "padding": 1}, 1.5),
    Layer("depthwise", (8, 256, 28, 28), (256, 1, 3, 3), {"padding": 1, "groups": 256}, 3.0, 3.0),
    Layer("large kernel", (1, 3, 256, 256), (8, 3, 31, 31), {"padding": 15}, 0.5),
    Layer("dilated", (8, 64, 56, 56), (64, 64, 3, 3), {"dilation": 2, "padding": 2}, 3.0),
]
AUTO_MARGIN = 1.10
"""auto is meant to be within 10 % of the fastest implementation of every row."""
NAMES = IMPLEMENTATIONS.names()


DEVICE = torch.device("cpu")
"""Where every tensor of the run lives (``--device``)."""


def randn(*shape, requires_grad: bool = False) -> torch.Tensor:
    """A standard-normal tensor on :data:`DEVICE` (shape as a tuple or as integers)."""
    size = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
    return torch.randn(size, device=DEVICE, requires_grad=requires_grad)


def best_ms(fn, reps: int) -> float:
    return interleaved({"f": fn}, reps)["f"]


def _ms(fn) -> float:
    """Milliseconds of one call; on a GPU from an idle device to the end of its last kernel."""
    _synchronize()
    start = time.perf_counter()
    fn()
    _synchronize()
    return (time.perf_counter() - start) * 1e3


def _synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def interleaved(fns: dict, reps: int, warmup: bool = True) -> dict[str, float]:
    """Best milliseconds of each function, calling them in turn ``reps`` times, the order
    rotated every round (:func:`shapecheck.conv.auto.rotated`), each timed call right after an
    untimed call of itself (as in :func:`_after_each_other`)."""
    for fn in fns.values() if warmup else ():
        fn()
    times = {name: [] for name in fns}
    for round_ in range(reps):
        for name in rotated(list(fns), round_):
            fns[name]()
            times[name].append(_ms(fns[name]))
    return {name: min(t) for name, t in times.items()}


def _pair_ms(first, second, first_goes_first: bool) -> tuple[float, float]:
    """Milliseconds of two back-to-back calls, in the order asked, as (first's, second's)."""
    if first_goes_first:
        a = _ms(first)
        return a, _ms(second)
    b = _ms(second)
    return _ms(first), b


PAIR_SECONDS = 0.25
"""Head-to-head pairs go on until the two sides have run this many seconds per round of the
run (2.25 s in the full run), between 2 pairs per round and :data:`MAX_PAIRS`: a best time
over a few dozen pairs of a 0.3 ms call moves by 10 % from run to run on a loaded machine."""
MAX_PAIRS = 500


def head_to_head(first, second, reps: int) -> float:
    """``first``'s best time over ``second``'s in back-to-back pairs, the two taking turns to
    go first (see :data:`PAIR_SECONDS` for how many)."""
    first(), second()
    pairs, spent = [], 0.0
    while len(pairs) < _pairs(reps) or (spent < PAIR_SECONDS * reps and len(pairs) < MAX_PAIRS):
        pairs.append(_pair_ms(first, second, len(pairs) % 2 == 0))
        spent += sum(pairs[-1]) / 1e3
    return min(a for a, _ in pairs) / min(b for _, b in pairs)


SLOW = 10.0
"""An implementation over this many times the quickest one in the first round is timed only once."""


def against(fns: dict, reference: str, reps: int, warmup: bool = True) -> dict:
    """Each function of ``fns`` timed next to ``fns[reference]`` (:func:`_after_each_other`; the
    functions' order rotates every round), ``reps`` rounds (one for those over :data:`SLOW`
    times the quickest in the first). Returns ``{"ms": best milliseconds, "ratio": best time
    over the reference's best in the calls paired with it}`` per name: load only ever adds
    time, so the best of several rounds is what it disturbs least, and both sides of a ratio
    are the best of the same number of calls (the reference, called next to every function,
    would otherwise get more tries at a quiet moment)."""
    for fn in fns.values() if warmup else ():
        fn()
    others = [name for name in fns if name != reference]
    ms = {name: [] for name in fns}
    paired: dict[str, list[float]] = {name: [] for name in others}
    for round_ in range(reps):
        for name in rotated(others, round_):
            mine, theirs = _after_each_other(fns[name], fns[reference])
            ms[name].append(mine)
            ms[reference].append(theirs)
            paired[name].append(theirs)
        quickest = min(ms[name][0] for name in others)
        others = [name for name in others if ms[name][0] <= SLOW * quickest]
    best = {name: min(t) for name, t in ms.items()}
    ratio = {name: best[name] / min(paired[name]) if name in paired else 1.0 for name in best}
    return {"ms": best, "ratio": ratio}


def _after_each_other(fn, reference) -> tuple[float, float]:
    """(``fn``'s ms, ``reference``'s ms), each timed right after an untimed call of itself, one
    pair after the other: each side is timed as it runs when called again on the same layer,
    whatever ran before. A call right after another function finds that function's buffers in
    the cache instead of its own: pairs that took turns to go first gave the reference calls
    right after itself next to some functions only (on the depthwise layer two copies of one
    implementation read 1.6x and 2.3x F.conv2d in the same run), and timing each side right
    after the other charged the reference for the other's cache footprint."""
    fn()
    mine = _ms(fn)
    reference()
    return mine, _ms(reference)


def skip_reason(name: str, layer: Layer, x, w) -> str | None:
    """Why ``name`` is left out on ``layer``, or None to time it."""
    args = normalize(x, w, **_conv_args(layer))
    out = args.out_size(tuple(x.shape[2:]))
    if name == "naive" and math.prod(out) > NAIVE_MAX_POSITIONS:
        return f"too slow ({math.prod(out)} positions)"
    if name == "im2col":
        nbytes = x.shape[0] * w.shape[1] * args.groups * math.prod(args.kernel) * math.prod(out) * 4
        if nbytes > COLUMNS_BUDGET:
            return f"{nbytes / 2**20:.0f} MiB of columns"
    if name == "toeplitz":
        shape = toeplitz.matrix_shape(x.shape, w.shape, args)
        if math.prod(shape) * 4 > toeplitz.MEMORY_BUDGET:
            return f"refuses ({math.prod(shape) * 4 / 2**30:.1f} GiB matrix)"
    if name == "winograd":
        try:
            winograd.check(args)
        except NotApplicable:
            return "not 3x3/s1"
    return None


def _conv_args(layer: Layer) -> dict:
    return {"stride": layer.kwargs.get("stride", 1), "padding": layer.kwargs.get("padding", 0),
            "dilation": layer.kwargs.get("dilation", 1), "groups": layer.kwargs.get("groups", 1)}


def flops(layer: Layer) -> int:
    x, w = torch.empty(layer.x, device="meta"), torch.empty(layer.w, device="meta")
    out = normalize(x, w, **_conv_args(layer)).out_size(layer.x[2:])
    return 2 * layer.x[0] * math.prod(out) * math.prod(layer.w)


def forward_row(layer: Layer, reps: int) -> dict:
    """Times and ratios to F.conv2d of every applicable implementation and auto on one layer."""
    x, w = randn(layer.x), randn(layer.w)
    fns, skipped = _applicable({"F.conv2d": F.conv2d, **IMPLEMENTATIONS, "auto": auto_conv2d}, layer, x, w,
                               lambda conv: _bind(conv, x, w, layer.kwargs))
    fns["auto"]()  # auto's one-off measurement happens here, outside the timed calls
    row = {"layer": layer, **_timed(fns, layer, reps), "skipped": skipped,
           "choice": _choice(layer, x, w, grad=False), "rule": _rule(layer, x, w)}
    row["versus"] = head_to_head(fns["auto"], fns[fastest(row)], _pairs(reps))
    return row


SMALL_MS = 3.0
"""A layer whose F.conv2d call takes less than this is timed over 5× the rounds: its timings
vary the most from call to call, and its rounds are cheap."""


SLOW_MS = 1000.0
"""A layer whose first F.conv2d call takes longer than this is timed once, unwarmed (oneDNN
takes seconds on the 31x31 kernel on some machines and tens of milliseconds on others)."""


def _timed(fns: dict, layer: Layer, reps: int) -> dict:
    """:func:`against` F.conv2d; once and unwarmed where F.conv2d takes seconds
    (:data:`SLOW_MS`); over more rounds on a small layer (:data:`SMALL_MS`)."""
    if _ms(fns["F.conv2d"]) > SLOW_MS:
        return against(fns, "F.conv2d", 1, warmup=False)
    small = min(_ms(fns["F.conv2d"]) for _ in range(3)) < SMALL_MS
    return against(fns, "F.conv2d", reps * 5 if small else reps)


def _applicable(convs: dict, layer: Layer, x, w, make) -> tuple[dict, dict]:
    """(name -> ``make(conv)`` for each conv that runs on ``layer``, name -> why not for the rest)."""
    fns, skipped = {}, {}
    for name, conv in convs.items():
        reason = skip_reason(name, layer, x.detach(), w.detach()) if name in NAMES else None
        if reason:
            skipped[name] = reason
        else:
            fns[name] = make(conv)
    return fns, skipped


def _pairs(reps: int) -> int:
    return 2 * reps


def _choice(layer: Layer, x, w, grad: bool) -> str:
    return TUNER.choices[layer_key(x, w, tuple(_conv_args(layer).values()), grad)]


def _rule(layer: Layer, x, w) -> str:
    return choose(tuple(x.shape), tuple(w.shape), normalize(x, w, **_conv_args(layer)), x.device)


def _bind(conv, x, w, kwargs):
    return lambda: conv(x, w, **kwargs)


def backward_row(layer: Layer, forward: dict, reps: int) -> dict:
    """Best time of the backward pass alone (input and weight gradients), every applicable
    implementation; im2col's columns and naive's loop are left out where they are too big.
    Then auto head to head with the fastest backward, and a training step (forward plus
    backward, what auto's measurement minimizes with gradients on) of auto against the
    implementation whose forward and backward times add up to the least."""
    x = randn(layer.x, requires_grad=True)
    w = randn(layer.w, requires_grad=True)
    convs = {"F.conv2d": F.conv2d, **IMPLEMENTATIONS, "auto": auto_conv2d}
    fns, skipped = _applicable(convs, layer, x, w, lambda conv: _backward(conv, x, w, layer.kwargs))
    row = {"layer": layer, **_timed(fns, layer, reps), "skipped": skipped, "choice": _choice(layer, x, w, grad=True)}
    row["versus"] = head_to_head(fns["auto"], fns[fastest(row)], _pairs(reps))
    both = {n: t + row["ms"][n] for n, t in forward["ms"].items() if n in NAMES and n in row["ms"]}
    row["step_best"] = min(both, key=both.get)
    step = lambda conv: lambda: _step(conv, x, w, layer.kwargs)  # noqa: E731
    row["step_versus"] = head_to_head(step(auto_conv2d), step(convs[row["step_best"]]), _pairs(reps))
    return row


def _backward(conv, x, w, kwargs):
    out = conv(x, w, **kwargs)
    grad = torch.randn_like(out)
    return lambda: torch.autograd.grad(out, [x, w], grad, retain_graph=True)


def _step(conv, x, w, kwargs):
    out = conv(x, w, **kwargs)
    return torch.autograd.grad(out, [x, w], torch.ones_like(out))


def matmul_gflops(reps: int) -> float:
    a, b = randn(2048, 2048), randn(2048, 2048)
    return 2 * 2048**3 / best_ms(lambda: a @ b, reps) / 1e6


def breakdown(reps: int) -> list[tuple[str, str, float]]:
    """(approach, stage, ms) on the ResNet 3x3 layer."""
    x, w = randn(8, 64, 56, 56), randn(64, 64, 3, 3)
    args = normalize(x, w, 1, 1, 1, 1)
    lay = shift_add.layout(x.shape[2:], args)
    buf = shift_add.scatter(x, lay, batch_inside=True)
    wide = shift_add.tap_gemms(buf, w, None, lay, x.shape[0], 1)
    cols = im2col.columns(x, args).clone()
    wcols = im2col._filters_last(w, 1)
    product = torch.empty(1, cols.shape[1], 64)
    xp = pad_input(x, ((1, 1), (1, 1)))
    v = winograd.transform_input(xp, (28, 28))
    u = winograd.transform_filter(w)
    m = winograd.contract(u, v, 1)
    sizes = tuple(fft.fast_length(n) for n in xp.shape[2:])
    xf = torch.fft.rfft2(xp, s=sizes).flatten(2)
    kf = torch.fft.rfft2(w, s=sizes).flatten(2)
    yf = fft.contract(xf, kf, 1).view(8, 64, *sizes[:1], -1)
    stages = {
        ("im2col", "columns of the whole batch (one copy of a strided view)"):
            lambda: im2col.columns(x, args),
        ("im2col", "GEMM on them"): lambda: torch.bmm(cols, wcols),
        ("im2col", "columns and GEMM image by image (as the forward runs)"):
            lambda: im2col._chunked_product(x, wcols, args, product),
        ("im2col", "product to NCHW"): lambda: product.view(8, 56 * 56, 64).transpose(1, 2).contiguous(),
        ("shift_add", "copy into the phase buffer"): lambda: shift_add.scatter(x, lay, batch_inside=True),
        ("shift_add", "3 GEMMs of 3 stacked taps (copy + baddbmm)"): lambda: shift_add.tap_gemms(buf, w, None, lay, 8, 1),
        ("shift_add", "crop to NCHW"): lambda: shift_add.crop(wide, 8, lay),
        ("winograd", "pad + input transform"): lambda: winograd.transform_input(pad_input(x, ((1, 1), (1, 1))), (28, 28)),
        ("winograd", "16 batched GEMMs"): lambda: winograd.contract(u, v, 1),
        ("winograd", "output transform"): lambda: winograd.transform_output(m, 8, (28, 28)),
        ("fft", "rfft2 of input and kernel"): lambda: (torch.fft.rfft2(xp, s=sizes), torch.fft.rfft2(w, s=sizes)),
        ("fft", "complex channel contraction"): lambda: fft.contract(xf, kf, 1),
        ("fft", "irfft2"): lambda: torch.fft.irfft2(yf, s=sizes),
    }
    times = interleaved(stages, reps)
    return [(approach, stage, times[(approach, stage)]) for approach, stage in stages]


def ratio_cell(name: str, row: dict) -> str:
    if name in row["skipped"]:
        return f"— ({row['skipped'][name]})"
    return f"{row['ratio'][name]:.2f}×"


def fastest(row: dict) -> str:
    """The fastest implementation of a row (auto and torch aside), by its ratio to F.conv2d."""
    mine = {n: r for n, r in row["ratio"].items() if n in NAMES}
    return min(mine, key=mine.get)


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def print_forward(rows) -> None:
    print(f"## Forward time / F.conv2d (NCHW fp32, {setting()}; lower is better)\n")
    print("| layer | F.conv2d ms | " + " | ".join(NAMES) + " | auto (measured choice; rule) | target | met"
          + " | auto / fastest, head to head | within 10 % |")
    print("|---" * (len(NAMES) + 8) + "|")
    for row in rows:
        layer, auto = row["layer"], row["ratio"]["auto"]
        print(f"| {layer.name} | {row['ms']['F.conv2d']:.2f} | " + " | ".join(ratio_cell(n, row) for n in NAMES)
              + f" | **{auto:.2f}×** ({row['choice']}; {row['rule']}) | ≤ {layer.target}× | {_met(auto <= layer.target)}"
              + f" | {row['versus']:.2f} ({fastest(row)}) | {_met(row['versus'] <= AUTO_MARGIN)} |")


def print_backward(backs) -> None:
    print("\n## Backward (input + weight gradients) time / F.conv2d's backward\n")
    print("| layer | F.conv2d ms | " + " | ".join(NAMES) + " | auto (measured choice) | target | met"
          + " | auto / fastest backward | auto / fastest training step | within 10 % |")
    print("|---" * (len(NAMES) + 9) + "|")
    for row in backs:
        layer, auto = row["layer"], row["ratio"]["auto"]
        within = max(row["versus"], row["step_versus"]) <= AUTO_MARGIN
        print(f"| {layer.name} | {row['ms']['F.conv2d']:.2f} | " + " | ".join(ratio_cell(n, row) for n in NAMES)
              + f" | **{auto:.2f}×** ({row['choice']}) | ≤ {layer.backward_target}× | {_met(auto <= layer.backward_target)}"
              + f" | {row['versus']:.2f} ({fastest(row)}) | {row['step_versus']:.2f} ({row['step_best']})"
              + f" | {_met(within)} |")


def least_bytes(layer: Layer) -> int:
    """Bytes a depthwise convolution cannot avoid: the input read once, the output written once."""
    x, w = torch.empty(layer.x, device="meta"), torch.empty(layer.w, device="meta")
    out = normalize(x, w, **_conv_args(layer)).out_size(layer.x[2:])
    return 4 * (math.prod(layer.x) + layer.x[0] * layer.w[0] * math.prod(out))


def moved_bytes(layer: Layer) -> int:
    """Bytes shift_add's depthwise operations read and write in one forward pass
    (:func:`shapecheck.conv._depthwise.moved_values`)."""
    x, w = torch.empty(layer.x, device="meta"), torch.empty(layer.w, device="meta")
    lay = shift_add.layout(layer.x[2:], normalize(x, w, **_conv_args(layer)))
    return 4 * _depthwise.moved_values(layer.x, lay)


DEPTHWISE_OUT_OF_CACHE = Layer("depthwise, 16x larger", (32, 256, 56, 56), (256, 1, 3, 3), {"padding": 1, "groups": 256})


def depthwise_traffic(layer: Layer, reps: int) -> dict:
    """F.conv2d and shift_add on a depthwise layer, interleaved with an add on tensors as large
    as its input (the machine's bandwidth at that size: in cache or from memory)."""
    x, w = randn(layer.x), randn(layer.w)
    a, b = randn(layer.x), randn(layer.x)
    c = torch.empty_like(a)
    fns = {"F.conv2d": _bind(F.conv2d, x, w, layer.kwargs), "shift_add": _bind(shift_add.conv2d, x, w, layer.kwargs),
           "add": lambda: torch.add(a, b, out=c)}
    times = interleaved(fns, reps)
    return {"layer": layer, "times": times, "add": 3 * a.numel() * 4 / times.pop("add") / 1e6}


def print_bandwidth(rows) -> None:
    print("\n## Depthwise: memory-bound\n")
    print("GB/s = bytes / time. *Least*: the input read once and the output written once, all any"
          " implementation must move. *Moved*: what shift_add's operations read and write (per tap"
          " a slice of the input and of the output, and for the taps that shift sideways a copy of the"
          " input with the far-edge columns zeroed, block by block, so all but the least is cache traffic)."
          " *add*: `torch.add(a, b, out=c)` on tensors as large as the layer's input, interleaved with"
          " the convolutions: cache bandwidth when three such tensors fit the last-level cache, memory"
          " bandwidth when they are far larger.\n")
    print("| layer | input MiB | add GB/s | implementation | ms | least GB/s | % of add | moved GB/s | % of add |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        layer, add = row["layer"], row["add"]
        least, moved = least_bytes(layer), moved_bytes(layer)
        for name in ("F.conv2d", "shift_add"):
            ms = row["times"][name]
            rate = least / ms / 1e6
            cells = f"{rate:.1f} | {100 * rate / add:.0f} %"
            if name == "shift_add":
                cells += f" | {moved / ms / 1e6:.1f} | {100 * moved / ms / 1e6 / add:.0f} %"
            else:
                cells += " | | "
            print(f"| {layer.name} | {math.prod(layer.x) * 4 / 2**20:.0f} | {add:.1f} | {name} | {ms:.2f} | {cells} |")


def print_throughput(rows, peak: float) -> None:
    print(f"\n## Throughput (matmul 2048² fp32 in this run: {peak:.0f} GFLOP/s)\n")
    print("*Its GEMM*: one `torch.bmm` of the layer's column-matrix shape (positions × C/G·taps by"
          " C/G·taps × O/G per group, whole batch) on ready tensors, over F.conv2d's time: the least ratio"
          " that an approach doing every multiplication of the layer through torch's matmul can reach"
          " (Winograd and FFT do fewer).\n")
    print("| layer | GFLOP | F.conv2d GFLOP/s | auto GFLOP/s | auto % of matmul | its GEMM / F.conv2d |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        gflop = flops(row["layer"]) / 1e9
        ref, auto = gflop / row["ms"]["F.conv2d"] * 1e3, gflop / row["ms"]["auto"] * 1e3
        gemm = row.get("gemm")
        floor = "—" if gemm is None else f"{gemm:.2f}×"
        print(f"| {row['layer'].name} | {gflop:.2f} | {ref:.0f} | {auto:.0f} | {100 * auto / peak:.0f} % | {floor} |")


def gemm_ratio(layer: Layer, reps: int) -> float | None:
    """The layer's column GEMM alone over F.conv2d, timed in turn (None when its columns would
    exceed :data:`COLUMNS_BUDGET`)."""
    x, w = randn(layer.x), randn(layer.w)
    args = normalize(x, w, **_conv_args(layer))
    positions = layer.x[0] * math.prod(args.out_size(layer.x[2:]))
    depth, groups = math.prod(layer.w[1:]), args.groups
    if positions * depth * groups * 4 > COLUMNS_BUDGET:
        return None
    a, b = randn(groups, positions, depth), randn(groups, depth, layer.w[0] // groups)
    times = interleaved({"gemm": lambda: torch.bmm(a, b), "conv": lambda: F.conv2d(x, w, **layer.kwargs)}, reps * 3)
    return times["gemm"] / times["conv"]


def print_stages(stages) -> None:
    print("\n## Where the time goes (ResNet 3x3, forward)\n")
    print("| approach | stage | ms |")
    print("|---|---|---|")
    for approach, stage, ms in stages:
        print(f"| {approach} | {stage} | {ms:.2f} |")


def setting() -> str:
    """The device in a few words, for table titles."""
    return f"{torch.get_num_threads()} threads" if DEVICE.type == "cpu" else torch.cuda.get_device_name(DEVICE)


def machine() -> str:
    """Cores, CPU model, torch version and threads (and the GPU), for the report."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    text = f"{os.cpu_count()} cores ({model}), torch {torch.__version__}, {torch.get_num_threads()} threads"
    if DEVICE.type == "cuda":
        props = torch.cuda.get_device_properties(DEVICE)
        text += (f"; timed on {props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda},"
                 f" cuDNN {torch.backends.cudnn.version()})")
    return text


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
"""glibc's ``mallopt`` parameters (malloc.h)."""


def steady_allocator() -> str:
    """Tell glibc's malloc to keep freed memory in the process (see the module docstring);
    says what was done, for the report."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):
        return "the platform's allocator, unchanged (it has no glibc mallopt)"
    if mallopt(M_MMAP_MAX, 0) != 1 or mallopt(M_TRIM_THRESHOLD, 2**31 - 1) != 1:
        return "glibc malloc, unchanged (mallopt refused)"
    return "glibc malloc told to keep freed memory (mallopt: M_MMAP_MAX 0, M_TRIM_THRESHOLD 2 GiB), so that no timed call pays page faults for fresh pages"


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1, 5, 15 min)"


def main(argv=None) -> int:
    global DEVICE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--layers", help="comma-separated layer names (default: all)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where to time (default: cpu; cuda needs a GPU that torch sees)")
    parser.add_argument("--allocator", default="steady", choices=("steady", "default"),
                        help="steady (default): glibc keeps freed memory; default: leave malloc as it is")
    opts = parser.parse_args(argv)
    if opts.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: torch sees no CUDA device on this machine", file=sys.stderr)
        return 2
    DEVICE = torch.device(opts.device)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    reps = 3 if opts.quick else 9
    layers = [la for la in LAYERS if not opts.layers or la.name in opts.layers.split(",")]
    allocator = steady_allocator() if opts.allocator == "steady" else "glibc malloc as it is (--allocator default)"
    print(f"Machine: {machine()}. At the start: {load()}.\n\nAllocator: {allocator}.\n")
    with exact_arithmetic() as precision:
        changed = [f"{label} = {used}" for label, before, used in precision if before != used]
        print("Full fp32 on both sides (no TF32 or reduced precision): "
              + ("; ".join(changed) if changed else "already so") + ".\n")
        run(layers, reps)
    print(f"\nAt the end: {load()}.")
    return 0


def run(layers, reps: int) -> None:
    """Every table, in order."""
    peak = matmul_gflops(reps)
    rows = [forward_row(layer, reps) for layer in layers]
    for row in rows:
        row["gemm"] = gemm_ratio(row["layer"], reps)
    print_forward(rows)
    sys.stdout.flush()
    print_backward([backward_row(layer, row, reps) for layer, row in zip(layers, rows)])
    sys.stdout.flush()
    depthwise = [la for la in layers if la.name == "depthwise"]
    if depthwise:
        print_bandwidth([depthwise_traffic(la, reps) for la in (*depthwise, DEPTHWISE_OUT_OF_CACHE)])
    print_throughput(rows, peak)
    print_stages(breakdown(reps))


if __name__ == "__main__":
    raise SystemExit(main())
