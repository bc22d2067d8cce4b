"""Pick the fastest from-scratch convolution for a layer's shape.

By default ``auto`` measures, as cuDNN's benchmark mode does: the first call with a new layer
key times each applicable implementation on random tensors of that shape and layout, and the
fastest is used for every later call with that key. The key holds what the choice depends
on: input and weight shapes, stride, padding, dilation, groups, dtype, device, memory layout
(contiguous or channels_last), the thread count, and whether gradients will be taken (a
training step times forward plus backward, inference the forward alone; the two often pick
differently).

The measurement is made to survive a busy machine. Each candidate first runs once (a warm-up:
allocations, FFT plans, threads; one that refuses the layer or is far slower than the best
so far is dropped). The rest are then timed in :data:`REPEATS` interleaved rounds whose
order rotates (forwards and backwards in turn), so that a burst of load hits every candidate alike and none always runs
after the same one (the previous call's memory traffic and freed buffers affect the next);
the candidate with the lowest time of all rounds wins, unless the rule below picked another
whose lowest time is within :data:`RULE_MARGIN` of it (a tie, as far as a loaded machine lets
the measurement tell); a winner other than the rule's choice must hold that lead over as many
rounds again of the two alone. Load on the machine only ever adds time (a thread waiting for its
core, an evicted cache line), so the minimum is the estimate it disturbs least; with two
threads on a busy machine most rounds are disturbed, and a median follows the load rather
than the implementation.

After the first call, a call with the same shapes, strides, dtype, device, arguments and
thread count finds its measured choice in one dictionary lookup (:meth:`Tuner.lookup`), and
the chosen implementation runs inside the caller's entry (:mod:`._entry`), so that ``auto``
costs next to nothing over calling its choice directly.

Choices live in :data:`TUNER` for the process, and also in a JSON file when
``SHAPECHECK_CONV_CACHE`` names one. ``SHAPECHECK_CONV_MEASURE=0`` (or ``TUNER.measure =
False``) turns measuring off; meta and fake tensors and ``torch.compile`` tracing are never
measured. Without measuring, the rule below decides.

The rule, in order (``taps = k_h * k_w``, ``C/G`` the input channels per group):

1. ``taps >= 49 * s_h * s_w``: **fft**. FFT time hardly depends on the kernel, while every
   tap-based approach grows with ``taps`` and shrinks with the stride (it computes only the
   kept outputs); the crossover lies between 25 and 81 taps, 49 (7x7) is the midpoint.
2. ``C/G == 1`` with several groups (depthwise, channel multipliers): **shift_add**, whose
   cache-blocked multiply-add has nothing to contract; im2col degenerates into a batched
   matmul of G tiny products there and Winograd into 16 x G of them.
3. One group and either ``C/G * taps <= 32`` (LeNet's ``C_in = 1``) or a stride above 1:
   **im2col**. With few input channels the column matrix is a few copies of the input, and
   with stride it holds only the kept positions; one matmul then writes the output in
   place, where shift_add pays for its phase buffer and the final crop.
4. A 3x3 kernel with stride 1: **winograd**: its transforms are a few large elementwise
   passes and one batched matmul does 2.25x fewer multiplications; a dilated layer is first
   cut into the input's phases, each an undilated convolution.
5. Otherwise **shift_add** (on 1x1 layers it is a plain batched matmul on NCHW).

The measured times behind this rule, per layer and implementation, are the tables of the
README's convolution section (``python benchmarks/conv.py``).
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._args import ConvArgs, NotApplicable, normalize
from ._entry import memory_format

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
    if args.kernel == (3, 3) and args.stride == (1, 1):
        return "winograd"
    return "shift_add"


CANDIDATES = ("im2col", "shift_add", "winograd", "fft", "toeplitz")
"""What ``auto`` measures (naive is a reference, never the fastest)."""
TOEPLITZ_MEASURED_BYTES = 16 * 2**20
"""toeplitz is measured only when its matrix is at most this large."""
REPEATS = 7
GIVE_UP = 4.0
"""A candidate whose untimed first run is this many times slower than the best is dropped."""
RULE_MARGIN = 0.05
"""The rule's choice is kept unless another candidate's best time is lower by more than this
fraction: within it the measurement tells load apart from the implementations no better."""


@dataclass
class Tuner:
    """Measured choices, one per layer key (see the module docstring)."""

    measure: bool = True
    path: str | None = None
    timer: Callable[[], float] = time.perf_counter
    choices: dict[str, str] = field(default_factory=dict)
    _loaded: bool = False
    _keys: dict[tuple, str] = field(default_factory=dict)
    """A measured call's own values (see :func:`call_key`) -> its layer key."""

    def lookup(self, x, weight, conv_args: tuple) -> str:
        """:meth:`choose`'s answer for a call with these arguments. Once a layer is measured, a
        later call finds its choice from the call's own shapes, strides and arguments, without
        normalising them or building the key string; the rest goes through :meth:`choose`."""
        grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
        call = call_key(x, weight, conv_args, grad)
        try:
            name = self.choices.get(self._keys.get(call))
        except TypeError:  # an argument that cannot be hashed (a list): no shortcut
            call = name = None
        if name is not None and self.measure and not torch.compiler.is_compiling():
            return name
        name = self.choose(x, weight, conv_args, normalize(x, weight, *conv_args))
        if call is not None and self.measure and _measurable(x):
            self._keys[call] = layer_key(x, weight, conv_args, grad)
        return name

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
        rounds, so that load on the machine hits them alike, and keep the lowest minimum;
        the rule's choice stays unless another is faster by more than :data:`RULE_MARGIN`, in
        the first rounds and in as many more of the two alone (a moment of load on the rule's
        choice alone is not enough to override it)."""
        runs, warm = _runs(x, weight, conv_args, args, grad), {}
        for name, run in runs.items():
            best = min(warm.values(), default=math.inf)
            try:
                elapsed = self._timed(run, x.device)
            except NotApplicable:
                continue
            if elapsed <= GIVE_UP * best:
                warm[name] = elapsed
        ruled = choose(tuple(x.shape), tuple(weight.shape), args, x.device)
        if not warm:
            return ruled
        times = self._minima({name: runs[name] for name in warm}, x.device)
        best = min(times, key=times.get)
        if best != ruled and ruled in times:  # overriding the rule takes a second set of rounds of the two
            again = self._minima({name: runs[name] for name in (best, ruled)}, x.device)
            times = {name: min(times[name], again[name]) for name in (best, ruled)}
            best = min(times, key=times.get)
        return ruled if times.get(ruled, math.inf) <= (1 + RULE_MARGIN) * times[best] else best

    def _minima(self, runs: dict, device) -> dict[str, float]:
        """Each run's lowest time over :data:`REPEATS` rounds, the calling order rotated."""
        names = list(runs)
        times = {name: [] for name in names}
        for round_ in range(REPEATS):
            for name in rotated(names, round_):
                times[name].append(self._timed(runs[name], device))
        return {name: min(t) for name, t in times.items()}

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


def rotated(names: list, round_: int) -> list:
    """Each round's calling order: ``names`` from index ``round_`` (modulo their number),
    forwards in even rounds and backwards in odd ones. Every name starts a round in turn, and
    each follows either of its neighbours about equally often: a plain rotation would have
    each mostly run right after the same one."""
    step = 1 if round_ % 2 == 0 else -1
    return [names[(round_ + step * i) % len(names)] for i in range(len(names))]


def call_key(x, weight, conv_args: tuple, grad: bool) -> tuple:
    """Everything :func:`layer_key` is made of, as the call holds it (the strides stand for the
    layout), plus the tensor's type."""
    return (x.shape, x.stride(), weight.shape, weight.stride(), x.dtype, x.device, type(x), grad,
            torch.get_num_threads(), *conv_args)


def layer_key(x, weight, conv_args: tuple, grad: bool) -> str:
    """What a measured choice depends on, as a string (the JSON cache's keys)."""
    stride, padding, dilation, groups = conv_args
    layout = "channels_last" if memory_format(x, weight) else "contiguous"
    return (f"{x.device}|threads={torch.get_num_threads()}|{str(x.dtype).removeprefix('torch.')}"
            f"|grad={int(grad)}|{layout}|x={list(x.shape)}|w={list(weight.shape)}|stride={stride}"
            f"|padding={padding}|dilation={dilation}|groups={groups}")


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
    xs, ws = (torch.empty_like(t).normal_(generator=gen).requires_grad_(grad) for t in (x, weight))
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
