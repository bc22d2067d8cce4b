"""Prove that from-scratch convolutions compute what torch computes, layer by layer and end to end.

For each dtype the model is copied, moved to the device and put in eval mode (dropout off).
One reference run with torch's own layers records each convolution layer's input. Then, for
each implementation:

- every convolution layer is checked in isolation on its recorded input: output, input
  gradient and parameter gradients for a fixed random cotangent, torch's layer against the
  same layer swapped to the implementation;
- the whole model runs with the implementation swapped into every layer that accepts it, and
  its output, input gradients and every parameter gradient are compared with the reference.

The error of one tensor is ``max|ours - ref| / max|ref|`` (relative to the largest entry of
the reference, so that entries near zero do not blow it up); a row reports the largest over
the tensors it compares and names that tensor.

- float64: the reference is torch in float64, and the row passes when the error is at most
  :data:`FP64_TOLERANCE`.
- float32: the reference is the exact answer to the same float32 problem, computed by torch in
  float64 from the float32 inputs and weights. torch's own float32 result is measured against
  it too (``torch_rel``): its gradients are off by up to about 1e-5 on ordinary layers, so
  comparing with torch's float32 would measure torch's rounding, not ours. The row passes when
  the error is at most the tolerance for the kernel size (:data:`FP32_TOLERANCES`) or within
  :data:`TORCH_MARGIN` times torch's own error: as accurate as the stated bound, or as accurate
  as torch up to a different order of summation (two correct float32 results differ from the
  exact one by errors of the same size, either of which can be the larger; through a whole
  model, with gradients flowing through several layers, they land within 2× of each other).

Times are medians of forward + backward, as a ratio to torch's time in the same dtype.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import UsageError
from . import IMPLEMENTATIONS
from ._args import NotApplicable
from .swap import conv_layers, swapped

MODEL_ROW = "(model)"
"""The ``layer`` of the end-to-end row."""

FP64_TOLERANCE = 1e-13
FP32_TOLERANCES = ((7, 1e-6), (31, 1e-5), (math.inf, 1e-4))
"""(largest kernel side, relative tolerance) for float32, first match wins."""


TORCH_MARGIN = 2.0
"""A float32 row also passes when its error is at most this many times torch's own error."""


def tolerance(dtype: str, kernel: int) -> float:
    """The relative tolerance for a convolution of largest kernel side ``kernel``."""
    if dtype == "float64":
        return FP64_TOLERANCE
    return next(tol for side, tol in FP32_TOLERANCES if kernel <= side)


@dataclass(frozen=True)
class Check:
    """One row: an implementation on one layer (or the whole model) in one dtype.

    ``status`` is "pass", "fail", "not applicable" (the implementation refuses the layer) or
    "error" (it raised); ``note`` says why for the last two. ``torch_rel`` is torch's own
    float32 error against the exact answer. Values that were not measured (errors of a refused
    layer, ``torch_rel`` in float64) are NaN and are left out of :meth:`to_dict`.
    """

    impl: str
    dtype: str
    layer: str
    kind: str
    kernel: int
    max_abs: float
    max_rel: float
    worst: str
    tolerance: float
    torch_rel: float
    status: str
    time_ratio: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "not applicable")

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not (isinstance(v, float) and math.isnan(v))}


@dataclass(frozen=True)
class VerifyReport:
    model: str
    device: str
    seed: int
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def impls(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.impl for c in self.checks))

    def to_dict(self) -> dict:
        return {"model": self.model, "device": self.device, "seed": self.seed, "ok": self.ok,
                "checks": [c.to_dict() for c in self.checks]}


def resolve_device(device: str) -> torch.device:
    """"cpu", "cuda" (an error without one) or "auto" (CUDA when present)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device} asked for, but torch sees no CUDA device on this machine")
    if not device.startswith(("cpu", "cuda")):
        raise UsageError(f"unknown device {device!r}: use cpu, cuda or auto")
    return torch.device(device)


def verify_model(model: nn.Module, inputs: Sequence, impls: Sequence[str], device: str = "auto",
                 dtypes: Sequence[str] = ("float64", "float32"), seed: int = 0, repeats: int = 3,
                 name: str | None = None) -> VerifyReport:
    """Compare each implementation in ``impls`` with torch on ``model``.

    ``model`` is a real (not meta) module; it is copied, never changed. ``inputs`` are the
    forward arguments: a shape (tuple of ints) becomes a seeded standard-normal tensor, a tensor
    is used as given (floating tensors cast to each dtype).
    """
    target = resolve_device(device)
    for impl in impls:
        if impl != "auto" and impl not in IMPLEMENTATIONS.names():
            raise UsageError(f"unknown implementation {impl!r}; choose from auto, {', '.join(IMPLEMENTATIONS.names())}")
    for dtype in dtypes:
        if dtype not in ("float64", "float32"):
            raise UsageError(f"verify compares float64 and float32, not {dtype!r}")
    checks = []
    for dtype in dtypes:
        checks += _verify_dtype(model, inputs, impls, target, getattr(torch, dtype), seed, repeats)
    return VerifyReport(name or type(model).__name__, str(target), seed, tuple(checks))


def _verify_dtype(model, inputs, impls, device, dtype, seed, repeats) -> list[Check]:
    ref = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
    exact = None if dtype == torch.float64 else copy.deepcopy(ref).double()
    args = _make_inputs(inputs, dtype, device, seed)
    layers = conv_layers(ref)
    layer_inputs = _record_layer_inputs(ref, layers, args)
    model_ref = _reference(ref, exact, args, {}, seed, repeats)
    layer_refs = {name: _reference(layer, None if exact is None else exact.get_submodule(name),
                                   *layer_inputs[name], seed, repeats)
                  for name, layer in layers if name in layer_inputs}
    checks = []
    for impl in impls:
        rows = [_check_layer(impl, name, layer, layer_inputs[name], layer_refs[name], seed, repeats, device)
                for name, layer in layers if name in layer_inputs]
        checks += rows
        checks.append(_check_model(impl, ref, args, rows, model_ref, seed, repeats, device))
    return checks


@dataclass(frozen=True)
class _Reference:
    want: dict          # what an implementation must reproduce
    torch_rel: float    # torch's own error against `want` (NaN when `want` is torch's result)
    torch_time: float


def _reference(module, exact, args, kwargs, seed, repeats) -> _Reference:
    """torch's results in the module's dtype, or the exact answer when ``exact`` (a float64
    copy of ``module``) is given."""
    device = next(module.parameters()).device
    run = lambda: _forward_backward(module, args, seed, kwargs)  # noqa: E731
    got = run()
    torch_time = _median_time(run, repeats, device)
    if exact is None:
        return _Reference(got, math.nan, torch_time)
    want = _forward_backward(exact, [a.double() if _is_float(a) else a for a in args], seed, kwargs)
    return _Reference(want, _compare(got, want)[1], torch_time)


def _check_layer(impl, name, layer, recorded, ref, seed, repeats, device) -> Check:
    args, kwargs = recorded
    kernel = max(layer.kernel_size)
    make = _row_maker(impl, _dtype_name(layer.weight.dtype), name, _describe(layer), kernel, ref.torch_rel)
    run = lambda: _forward_backward(layer, args, seed, kwargs)  # noqa: E731
    try:
        with swapped(layer, impl):
            got = run()
            ratio = _median_time(run, repeats, device) / ref.torch_time
    except NotApplicable as refusal:
        return make(status="not applicable", note=str(refusal))
    except Exception as failure:  # an implementation's bug is a finding, not a crash
        return make(status="error", note=f"{type(failure).__name__}: {failure}")
    return make(*_compare(got, ref.want), time_ratio=ratio)


def _check_model(impl, model, args, rows, ref, seed, repeats, device) -> Check:
    applicable = [r.layer for r in rows if r.status != "not applicable"]
    kernel = max((r.kernel for r in rows if r.layer in applicable), default=0)
    make = _row_maker(impl, _dtype_name(next(model.parameters()).dtype), MODEL_ROW,
                      f"{len(applicable)} of {len(rows)} conv layers swapped", kernel, ref.torch_rel)
    if not applicable:
        return make(status="not applicable", note="no layer of this model accepts this implementation")
    try:
        with swapped(model, impl, only=applicable):
            run = lambda: _forward_backward(model, args, seed)  # noqa: E731
            got = run()
            ratio = _median_time(run, repeats, device) / ref.torch_time
    except Exception as failure:  # an implementation's bug is a finding, not a crash
        return make(status="error", note=f"{type(failure).__name__}: {failure}")
    return make(*_compare(got, ref.want), time_ratio=ratio)


def _row_maker(impl, dtype, layer, kind, kernel, torch_rel):
    tol = tolerance(dtype, kernel)
    bound = tol if math.isnan(torch_rel) else max(tol, TORCH_MARGIN * torch_rel)

    def make(max_abs=math.nan, max_rel=math.nan, worst="", *, status=None, time_ratio=math.nan, note=""):
        if status is None:
            status = "pass" if max_rel <= bound else "fail"
        return Check(impl, dtype, layer, kind, kernel, max_abs, max_rel, worst, tol, torch_rel, status,
                     time_ratio, note)

    return make


def _compare(got: dict, expected: dict) -> tuple[float, float, str]:
    """(max absolute error, max relative error, the tensor with the largest relative error)."""
    worst, max_abs, max_rel = "", 0.0, 0.0
    for key, want in expected.items():
        have = got[key]
        if have.shape != want.shape:
            return math.inf, math.inf, f"{key} (shape {list(have.shape)} != {list(want.shape)})"
        diff = (have - want).abs().max().item() if want.numel() else 0.0
        scale = want.abs().max().item() if want.numel() else 0.0
        rel = diff / scale if scale else (0.0 if diff == 0 else math.inf)
        if math.isnan(diff):
            rel = diff = math.inf
        max_abs = max(max_abs, diff)
        if rel >= max_rel:
            worst, max_rel = key, rel
    return max_abs, max_rel, worst


def _forward_backward(module: nn.Module, args, seed: int, kwargs=None) -> dict[str, torch.Tensor]:
    """The outputs and the gradients of the floating inputs and of every parameter."""
    args = [a.detach().requires_grad_() if _is_float(a) else a for a in args]
    out = _tensors(module(*args, **(kwargs or {})))
    gen = torch.Generator().manual_seed(seed + 1)
    cotangents = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.device, o.dtype) for o in out]
    leaves = {f"grad input {i}": a for i, a in enumerate(args) if _is_float(a)}
    leaves.update({f"grad {n}": p for n, p in module.named_parameters() if p.requires_grad})
    grads = torch.autograd.grad(out, list(leaves.values()), cotangents, allow_unused=True)
    result = {f"output {i}": o.detach() for i, o in enumerate(out)}
    result.update({key: g for key, g in zip(leaves, grads) if g is not None})
    return result


def _record_layer_inputs(model, layers, args) -> dict[str, tuple]:
    """Each layer's (args, kwargs) at its first call during one forward pass."""
    recorded = {}

    def recorder(name):
        def hook(module, hook_args, hook_kwargs):
            recorded.setdefault(name, (tuple(_detached(a) for a in hook_args), hook_kwargs))
        return hook

    handles = [layer.register_forward_pre_hook(recorder(name), with_kwargs=True) for name, layer in layers]
    try:
        with torch.no_grad():
            model(*args)
    finally:
        for handle in handles:
            handle.remove()
    return recorded


def _make_inputs(inputs, dtype, device, seed) -> list:
    gen = torch.Generator().manual_seed(seed)
    made = []
    for spec in inputs:
        if isinstance(spec, torch.Tensor):
            made.append(spec.to(device=device, dtype=dtype) if _is_float(spec) else spec.to(device))
        else:
            made.append(torch.randn(tuple(spec), generator=gen, dtype=torch.float64).to(device, dtype))
    return made


def _median_time(run, repeats: int, device: torch.device) -> float:
    """Median seconds of ``run`` over ``repeats`` calls, after one untimed warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        run()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _tensors(out) -> list[torch.Tensor]:
    """The floating tensors of a (possibly nested) forward result, in order."""
    if isinstance(out, torch.Tensor):
        return [out] if _is_float(out) else []
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for item in out for t in _tensors(item)]
    return []


def _detached(value):
    return value.detach() if isinstance(value, torch.Tensor) else value


def _is_float(value) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _describe(layer: nn.Module) -> str:
    """"Conv2d 3x3 s2 d1 g4"-style summary of a convolution layer."""
    parts = [type(layer).__name__, "x".join(map(str, layer.kernel_size))]
    for label, value, default in (("s", layer.stride, 1), ("d", layer.dilation, 1)):
        if any(v != default for v in value):
            parts.append(label + "x".join(map(str, value)))
    if layer.groups != 1:
        parts.append(f"g{layer.groups}")
    return " ".join(parts)
