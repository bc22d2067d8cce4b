"""Pick the fastest from-scratch convolution for a layer's shape.

By default ``auto`` measures, as cuDNN's benchmark mode does: the first call with a new layer
shape (input and weight shapes, stride, padding, dilation, groups, dtype, device, thread count,
and whether gradients will be taken) times each applicable implementation on random tensors
of that shape (forward, plus backward when gradients are wanted), and the fastest is used for
every later call with that key. Each candidate is first run once untimed for the choice (a
warm-up: allocations, FFT plans; one far slower than the best so far is dropped), then the
candidates are timed in turn for :data:`REPEATS` rounds and the lowest median wins: a burst
of load on the machine hits every candidate alike instead of the one that happened to run
during it. Choices live in :data:`TUNER` for the process, and also in a
JSON file when ``SHAPECHECK_CONV_CACHE`` names one. ``SHAPECHECK_CONV_MEASURE=0`` (or
``TUNER.measure = False``) turns measuring off; meta and fake tensors and ``torch.compile``
tracing are never measured. Without measuring, the rule below decides.

The rule, in order (``taps = k_h * k_w``, ``C/G`` the input channels per group):

1. ``taps >= 49 * s_h * s_w``: **fft**. FFT time hardly depends on the kernel, while every
   tap-based approach grows with ``taps`` and shrinks with the stride (it computes only the
   kept outputs). Measured against shift_add, stride 1, one thread: FFT was 1.3-2.4x slower
   at k=5 and 1.7-3.5x faster at k=9, for 3->8 channels at 256^2 (43.7 vs 34.3 ms at k=5,
   37.2 vs 65.1 ms at k=9), 64->64 at 56^2 (568 vs 240 ms; 659 vs 1084 ms) and 16->16 at
   56^2 (69 vs 55 ms; 68 vs 237 ms). The crossover lies between 25 and 81 taps; 49 (7x7)
   is the midpoint.
2. ``C/G == 1`` with several groups (depthwise, channel multipliers): **shift_add**, whose
   broadcast multiply-add path has nothing to contract. im2col degenerates into a batched
   matmul of G tiny products there (17x F.conv2d on the depthwise layer, against 2.4x) and
   Winograd into 16 x G of them (14x).
3. One group and either ``C/G * taps <= 32`` (LeNet's ``C_in = 1``) or a stride above 1:
   **im2col**. With few input channels the column matrix is a few copies of the input, and
   with stride it holds only the kept positions; one matmul then writes the output in
   place, where shift_add pays for its phase buffer and the final crop. LeNet conv1: 1.06x
   vs 1.43x (one thread), 1.13x vs 2.04x (two); stride-2 3x3: 1.22x vs 1.27x (one thread),
   0.78-1.46x vs 1.33-2.17x in three two-thread runs.
4. A 3x3 kernel with stride 1 and dilation 1: **winograd**. With two threads it was the
   fastest on the ResNet 3x3 layer (1.50x, 1.61x and 1.85x F.conv2d in three runs, against
   2.43-2.54x for shift_add and 3.4-3.8x for im2col): its transforms are a few large
   elementwise passes and one batched matmul does 2.25x fewer multiplications. (With one
   thread the order flips: 2.3-2.9x against shift_add's 1.5-1.9x.) Its backward is 1.4-2.2x.
5. Otherwise **shift_add**: on the dilated 3x3 layer 2.4x against im2col's 3.7x (two
   threads; 2.1x vs 3.9x with one). On 1x1 layers it is a plain batched matmul on NCHW
   (0.9-1x F.conv2d).

The numbers are ratios to ``F.conv2d`` on the layers of ``benchmarks/conv.py`` measured on
CPU (2-core AMD EPYC, AVX2) while other work shared the machine; the same rule is used on every device.
"""

from __future__ import annotations

import functools
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._args import ConvArgs, NotApplicable

FFT_TAPS = 49
IM2COL_DEPTH = 32


def choose(x_shape, weight_shape, args: ConvArgs, device) -> str:
    """The name of the implementation to run for this layer (see the module docstring)."""
    taps = math.prod(args.kernel)
    per_group = weight_shape[1]
    if taps >= FFT_TAPS * math.prod(args.stride):
        return "fft"
    if per_group == 1 and args.groups > 1:
        return "shift_add"
    if args.groups == 1 and (per_group * taps <= IM2COL_DEPTH or args.stride != (1, 1)):
        return "im2col"
    if args.kernel == (3, 3) and args.stride == (1, 1) and args.dilation == (1, 1):
        return "winograd"
    return "shift_add"


CANDIDATES = ("im2col", "shift_add", "winograd", "fft", "toeplitz")
"""What ``auto`` measures (naive is a reference, never the fastest)."""
TOEPLITZ_MEASURED_BYTES = 16 * 2**20
"""toeplitz is measured only when its matrix is at most this large."""
REPEATS = 7
GIVE_UP = 4.0
"""A candidate whose untimed first run is this many times slower than the best is dropped."""


@dataclass
class Tuner:
    """Measured choices, one per layer key (see the module docstring)."""

    measure: bool = True
    path: str | None = None
    timer: Callable[[], float] = time.perf_counter
    choices: dict[str, str] = field(default_factory=dict)
    _loaded: bool = False

    def choose(self, x, weight, conv_args: tuple, args: ConvArgs) -> str:
        """The implementation for this call: measured (once per key) or by the rule."""
        if not self.measure or not _measurable(x):
            return choose(tuple(x.shape), tuple(weight.shape), args, x.device)
        grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
        key = layer_key(x, weight, conv_args, grad)
        self._load()
        if key not in self.choices:
            self.choices[key] = self.fastest(x, weight, conv_args, args, grad)
            self._save()
        return self.choices[key]

    def fastest(self, x, weight, conv_args, args, grad) -> str:
        """Warm each candidate up once (dropping those that refuse the layer or are far
        slower than the best so far), then time the rest in :data:`REPEATS` interleaved
        rounds, so that load on the machine hits them alike, and keep the lowest median."""
        runs, warm = _runs(x, weight, conv_args, args, grad), {}
        for name, run in runs.items():
            best = min(warm.values(), default=math.inf)
            try:
                elapsed = self._timed(run, x.device)
            except NotApplicable:
                continue
            if elapsed <= GIVE_UP * best:
                warm[name] = elapsed
        if not warm:
            return choose(tuple(x.shape), tuple(weight.shape), args, x.device)
        return self._fastest_of({name: runs[name] for name in warm}, x.device)

    def _fastest_of(self, runs: dict, device) -> str:
        times = {name: [] for name in runs}
        for _ in range(REPEATS):
            for name, run in runs.items():
                times[name].append(self._timed(run, device))
        return min(times, key=lambda name: statistics.median(times[name]))

    def _timed(self, run, device) -> float:
        _synchronize(device)
        start = self.timer()
        run()
        _synchronize(device)
        return self.timer() - start

    def _load(self) -> None:
        if self._loaded or not self.path:
            return
        self._loaded = True
        try:
            with open(self.path, encoding="utf-8") as handle:
                self.choices = {**json.load(handle), **self.choices}
        except (OSError, ValueError):
            pass  # no cache yet, or an unreadable one: measure again

    def _save(self) -> None:
        if not self.path:
            return
        temporary = f"{self.path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(self.choices, handle, indent=0, sort_keys=True)
        os.replace(temporary, self.path)


def layer_key(x, weight, conv_args: tuple, grad: bool) -> str:
    """What a measured choice depends on, as a string (the JSON cache's keys)."""
    stride, padding, dilation, groups = conv_args
    return (f"{x.device.type}|threads={torch.get_num_threads()}|{str(x.dtype).removeprefix('torch.')}"
            f"|grad={int(grad)}|x={list(x.shape)}|w={list(weight.shape)}|stride={stride}|padding={padding}"
            f"|dilation={dilation}|groups={groups}")


def _candidates(x, weight, args) -> list[str]:
    from .toeplitz import matrix_shape

    names = list(CANDIDATES)
    if math.prod(matrix_shape(x.shape, weight.shape, args)) * x.element_size() > TOEPLITZ_MEASURED_BYTES:
        names.remove("toeplitz")
    return names


def _runs(x, weight, conv_args, args, grad) -> dict:
    """name -> a call of that candidate on random tensors shaped like ``x`` and ``weight``."""
    from . import IMPLEMENTATIONS

    gen = torch.Generator(x.device).manual_seed(0)  # the caller's random stream is left alone
    xs, ws = (torch.randn(t.shape, dtype=t.dtype, device=t.device, generator=gen).requires_grad_(grad)
              for t in (x, weight))
    return {name: functools.partial(_run, IMPLEMENTATIONS[name], xs, ws, conv_args, grad)
            for name in _candidates(x, weight, args)}


def _run(conv, x, weight, conv_args, grad) -> None:
    out = conv(x, weight, None, *conv_args)
    if grad:
        torch.autograd.grad(out, (x, weight), torch.ones_like(out))


def _measurable(x) -> bool:
    """Real tensors outside compilation: not meta, not a fake or other tensor subclass."""
    if x.device.type == "meta" or type(x) not in (torch.Tensor, torch.nn.Parameter):
        return False
    return not torch.compiler.is_compiling()


def _synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


TUNER = Tuner(measure=os.environ.get("SHAPECHECK_CONV_MEASURE", "1") != "0",
              path=os.environ.get("SHAPECHECK_CONV_CACHE") or None)
"""The process's choices (the one piece of module state: a cache, like cuDNN's)."""
