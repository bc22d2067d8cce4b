"""Forward and backward time of the from-scratch convolutions against F.conv2d.

    python benchmarks/conv.py            # a few minutes
    python benchmarks/conv.py --quick    # fewer repetitions

Every cell is a median time divided by F.conv2d's median on the same layer (NCHW, float32,
two threads); the calls of one layer are interleaved, so that load on the machine hits
all of them alike. ``auto`` measures on its first call of each layer (outside the timed
calls) and is reported against the fastest implementation of the row. Prints markdown: the
forward and backward ratio tables, the depthwise layer's memory traffic against the copy
bandwidth measured in the same run, achieved GFLOP/s against a large matmul, and where the
time of each approach goes.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shapecheck.conv import IMPLEMENTATIONS, NotApplicable  # noqa: E402
from shapecheck.conv import fft, im2col, shift_add, toeplitz, winograd  # noqa: E402
from shapecheck.conv._args import normalize, pad_input  # noqa: E402
from shapecheck.conv.auto import TUNER, choose, layer_key  # noqa: E402
from shapecheck.conv.functional import conv2d as auto_conv2d  # noqa: E402

NAIVE_MAX_POSITIONS = 1024
COLUMNS_BUDGET = 512 * 2**20


@dataclass(frozen=True)
class Layer:
    name: str
    x: tuple[int, ...]
    w: tuple[int, ...]
    kwargs: dict = field(default_factory=dict)
    target: float | None = None


LAYERS = [
    Layer("LeNet conv1", (64, 1, 32, 32), (6, 1, 3, 3), {}, 1.5),
    Layer("ResNet stem", (8, 3, 224, 224), (64, 3, 7, 7), {"stride": 2, "padding": 3}, 5.0),
    Layer("ResNet 3x3", (8, 64, 56, 56), (64, 64, 3, 3), {"padding": 1}, 3.0),
    Layer("1x1", (8, 256, 56, 56), (64, 256, 1, 1), {}, 2.5),
    Layer("stride-2 3x3", (8, 128, 28, 28), (256, 128, 3, 3), {"stride": 2, "padding": 1}, 1.5),
    Layer("depthwise", (8, 256, 28, 28), (256, 1, 3, 3), {"padding": 1, "groups": 256}, 3.0),
    Layer("large kernel", (1, 3, 256, 256), (8, 3, 31, 31), {"padding": 15}, 0.5),
    Layer("dilated", (8, 64, 56, 56), (64, 64, 3, 3), {"dilation": 2, "padding": 2}, 3.0),
]
BACKWARD_TARGET = 4.0
NAMES = IMPLEMENTATIONS.names()


def median_ms(fn, reps: int) -> float:
    return interleaved({"f": fn}, reps)["f"]


def interleaved(fns: dict, reps: int, warmup: bool = True) -> dict[str, float]:
    """Median milliseconds of each function, calling them in turn ``reps`` times."""
    for fn in fns.values() if warmup else ():
        fn()
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


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
            return "not 3x3/s1/d1"
    return None


def _conv_args(layer: Layer) -> dict:
    return {"stride": layer.kwargs.get("stride", 1), "padding": layer.kwargs.get("padding", 0),
            "dilation": layer.kwargs.get("dilation", 1), "groups": layer.kwargs.get("groups", 1)}


def flops(layer: Layer) -> int:
    x, w = torch.empty(layer.x, device="meta"), torch.empty(layer.w, device="meta")
    out = normalize(x, w, **_conv_args(layer)).out_size(layer.x[2:])
    return 2 * layer.x[0] * math.prod(out) * math.prod(layer.w)


def forward_row(layer: Layer, reps: int) -> dict:
    """Ratios on one layer; the large kernel runs twice, unwarmed (F.conv2d takes seconds there)."""
    x, w = torch.randn(layer.x), torch.randn(layer.w)
    fns = {"F.conv2d": lambda: F.conv2d(x, w, **layer.kwargs)}
    skipped = {}
    for name in NAMES:
        reason = skip_reason(name, layer, x, w)
        if reason:
            skipped[name] = reason
        else:
            fns[name] = _bind(IMPLEMENTATIONS[name], x, w, layer.kwargs)
    fns["auto"] = _bind(auto_conv2d, x, w, layer.kwargs)
    fns["auto"]()  # auto's one-off measurement happens here, outside the timed calls
    slow = layer.name == "large kernel"
    times = interleaved(fns, 2 if slow else reps, warmup=not slow)
    args = normalize(x, w, **_conv_args(layer))
    return {"layer": layer, "times": times, "skipped": skipped,
            "choice": TUNER.choices[layer_key(x, w, tuple(_conv_args(layer).values()), False)],
            "rule": choose(tuple(x.shape), tuple(w.shape), args, x.device)}


def _bind(conv, x, w, kwargs):
    return lambda: conv(x, w, **kwargs)


def backward_row(layer: Layer, reps: int) -> dict:
    """Median time of the backward pass alone (input and weight gradients), every applicable
    implementation; im2col's columns and naive's loop are left out where they are too big."""
    x = torch.randn(layer.x, requires_grad=True)
    w = torch.randn(layer.w, requires_grad=True)
    fns, skipped = {}, {}
    for name, conv in [("F.conv2d", F.conv2d), *((n, IMPLEMENTATIONS[n]) for n in NAMES), ("auto", auto_conv2d)]:
        reason = skip_reason(name, layer, x.detach(), w.detach()) if name in NAMES else None
        if reason:
            skipped[name] = reason
            continue
        out = conv(x, w, **layer.kwargs)
        fns[name] = _backward(out, torch.randn_like(out), x, w)
    slow = layer.name == "large kernel"
    return {"layer": layer, "times": interleaved(fns, 1 if slow else reps, warmup=not slow), "skipped": skipped}


def _backward(out, grad, x, w):
    return lambda: torch.autograd.grad(out, [x, w], grad, retain_graph=True)


def matmul_gflops(reps: int) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return 2 * 2048**3 / median_ms(lambda: a @ b, reps) / 1e6


def breakdown(reps: int) -> list[tuple[str, str, float]]:
    """(approach, stage, ms) on the ResNet 3x3 layer."""
    x, w = torch.randn(8, 64, 56, 56), torch.randn(64, 64, 3, 3)
    args = normalize(x, w, 1, 1, 1, 1)
    lay = shift_add.layout(x.shape[2:], args)
    buf = shift_add.scatter(x, lay, batch_inside=True)
    wide = shift_add.tap_gemms(buf, w, None, lay, x.shape[0], 1)
    cols = im2col.columns(x, args)
    wcols = im2col._filters_last(w, 1)
    xp = pad_input(x, ((1, 1), (1, 1)))
    v = winograd.transform_input(xp, (28, 28))
    u = winograd.transform_filter(w)
    m = winograd.contract(u, v, 1)
    sizes = tuple(fft.fast_length(n) for n in xp.shape[2:])
    xf = torch.fft.rfft2(xp, s=sizes).flatten(2)
    kf = torch.fft.rfft2(w, s=sizes).flatten(2)
    yf = fft.contract(xf, kf, 1).view(8, 64, *sizes[:1], -1)
    stages = {
        ("im2col", "columns (one copy of a strided view)"): lambda: im2col.columns(x, args),
        ("im2col", "GEMM on the columns (whole batch)"): lambda: torch.bmm(cols, wcols),
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
    return f"{row['times'][name] / row['times']['F.conv2d']:.2f}×"


def fastest(row: dict) -> tuple[str, float]:
    """The fastest implementation of a row (auto and torch aside) and its time."""
    mine = {n: t for n, t in row["times"].items() if n in NAMES}
    name = min(mine, key=mine.get)
    return name, mine[name]


def print_forward(rows) -> None:
    print("## Forward time / F.conv2d (NCHW fp32, 2 threads; lower is better)\n")
    print("| layer | F.conv2d ms | " + " | ".join(NAMES) + " | auto (measured choice; rule) | auto / fastest | target | met |")
    print("|---" * (len(NAMES) + 7) + "|")
    for row in rows:
        layer, times = row["layer"], row["times"]
        auto = times["auto"] / times["F.conv2d"]
        best, best_ms = fastest(row)
        met = "yes" if auto <= layer.target else "**no**"
        print(f"| {layer.name} | {times['F.conv2d']:.2f} | " + " | ".join(ratio_cell(n, row) for n in NAMES)
              + f" | **{auto:.2f}×** ({row['choice']}; {row['rule']}) | {times['auto'] / best_ms:.2f} ({best})"
              + f" | ≤ {layer.target}× | {met} |")


def print_backward(backs) -> None:
    print("\n## Backward (input + weight gradients) time / F.conv2d's backward\n")
    print("| layer | F.conv2d ms | " + " | ".join(NAMES) + f" | auto | auto / fastest | ≤ {BACKWARD_TARGET}× |")
    print("|---" * (len(NAMES) + 5) + "|")
    for row in backs:
        times = row["times"]
        auto = times["auto"] / times["F.conv2d"]
        best, best_ms = fastest(row)
        print(f"| {row['layer'].name} | {times['F.conv2d']:.2f} | " + " | ".join(ratio_cell(n, row) for n in NAMES)
              + f" | **{auto:.2f}×** | {times['auto'] / best_ms:.2f} ({best}) | {'yes' if auto <= BACKWARD_TARGET else '**no**'} |")


def copy_bandwidth(reps: int) -> float:
    """GB/s of a 256 MiB tensor copy (read + write), the machine's practical memory bandwidth."""
    a = torch.randn(64 * 2**20)
    b = torch.empty_like(a)
    return 2 * a.numel() * 4 / median_ms(lambda: b.copy_(a), reps) / 1e6


def depthwise_traffic(row: dict) -> float:
    """Bytes a per-tap multiply-add over the whole output moves: each of the taps reads a
    shifted input slice and reads and writes the accumulator (3 tensor passes per tap)."""
    layer = row["layer"]
    n, c, h, w = layer.x
    taps = math.prod(layer.w[2:])
    return 3 * taps * n * c * h * w * 4


def print_bandwidth(rows, bandwidth: float) -> None:
    row = next(r for r in rows if r["layer"].name == "depthwise")
    traffic = depthwise_traffic(row)
    print(f"\n## Depthwise: memory-bound\n\nCopy bandwidth in this run: {bandwidth:.1f} GB/s (256 MiB, read + write).\n")
    print("| | ms | GB/s moved (3 passes per tap) | % of copy bandwidth |")
    print("|---|---|---|---|")
    for name in ("F.conv2d", "shift_add", "auto"):
        ms = row["times"][name]
        rate = traffic / ms / 1e6
        label = f"{name} (as if it moved as much)" if name == "F.conv2d" else name
        print(f"| {label} | {ms:.2f} | {rate:.1f} | {100 * rate / bandwidth:.0f} % |")


def print_throughput(rows, peak: float) -> None:
    print(f"\n## Throughput (matmul 2048² fp32 in this run: {peak:.0f} GFLOP/s)\n")
    print("| layer | GFLOP | F.conv2d GFLOP/s | auto GFLOP/s | auto % of matmul |")
    print("|---|---|---|---|---|")
    for row in rows:
        gflop = flops(row["layer"]) / 1e9
        ref, auto = gflop / row["times"]["F.conv2d"] * 1e3, gflop / row["times"]["auto"] * 1e3
        print(f"| {row['layer'].name} | {gflop:.2f} | {ref:.0f} | {auto:.0f} | {100 * auto / peak:.0f} % |")


def print_stages(stages) -> None:
    print("\n## Where the time goes (ResNet 3x3, forward)\n")
    print("| approach | stage | ms |")
    print("|---|---|---|")
    for approach, stage, ms in stages:
        print(f"| {approach} | {stage} | {ms:.2f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--layers", help="comma-separated layer names (default: all)")
    opts = parser.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    reps = 3 if opts.quick else 9
    layers = [la for la in LAYERS if not opts.layers or la.name in opts.layers.split(",")]
    peak = matmul_gflops(reps)
    bandwidth = copy_bandwidth(reps)
    load = os.getloadavg()[0]
    rows = [forward_row(layer, reps) for layer in layers]
    print_forward(rows)
    sys.stdout.flush()
    print_backward([backward_row(layer, reps) for layer in layers])
    if any(r["layer"].name == "depthwise" for r in rows):
        print_bandwidth(rows, bandwidth)
    print_throughput(rows, peak)
    print_stages(breakdown(reps))
    print(f"\nLoad average (1 min) at start and end: {load:.1f}, {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
