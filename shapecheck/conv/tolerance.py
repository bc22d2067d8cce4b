"""How close a from-scratch convolution must come to the exact answer, and exact arithmetic.

A tensor computed in floating point with unit roundoff ``u`` (2^-53 for float64, 2^-24 for
float32) as sums of ``n`` products carries rounding errors that, summed with random signs,
grow like ``u * sqrt(n)``. Errors are measured as ``max|ours - exact| / max|exact|`` and a
tensor passes when that is at most

    tolerance(dtype, n) = SAFETY * u * sqrt(n)

where ``n`` is the reduction length of that tensor: ``k_h * k_w * C_in / groups`` for a
convolution's output, ``k_h * k_w * C_out / groups`` for its input gradient and
``N * output positions`` for its weight and bias gradients. Nothing in the bound depends on
torch's own error in the same run, so a GPU that rounds more (TF32) cannot widen it: the
comparison runs under :func:`exact_arithmetic`, which switches reduced-precision matmul and
convolution modes off and reports what it changed.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

SAFETY = 8.0
"""Multiple of ``u * sqrt(n)`` a tensor may be off by (measured errors stay below 1.5)."""

UNIT_ROUNDOFF = {"float64": 2.0 ** -53, "float32": 2.0 ** -24, "bfloat16": 2.0 ** -8, "float16": 2.0 ** -11}


def tolerance(dtype: str, reduction: int) -> float:
    """The relative tolerance for a tensor made of sums of ``reduction`` products in ``dtype``."""
    return SAFETY * UNIT_ROUNDOFF[dtype] * math.sqrt(max(reduction, 1))


RULE = "tolerance = 8 · u · √n; u = 2^-53 (float64), 2^-24 (float32); n = the tensor's reduction length"
"""The rule in one line, for reports."""


@dataclass(frozen=True)
class Setting:
    label: str
    read: object
    write: object


def _backend(path: str, attr: str) -> Setting:
    def find():
        obj = torch.backends
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj

    return Setting(f"torch.backends.{path}.{attr}", lambda: getattr(find(), attr),
                   lambda value: setattr(find(), attr, value))


def _precision_flags() -> tuple[Setting, ...]:
    """Each backend's ``fp32_precision``; torch releases before it have only the TF32 switches."""
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        return tuple(_backend(p, "fp32_precision") for p in ("cuda.matmul", "cudnn.conv", "mkldnn.matmul", "mkldnn.conv"))
    return _backend("cuda.matmul", "allow_tf32"), _backend("cudnn", "allow_tf32")


def _reduced(kind: str) -> Setting:
    attr = f"allow_{kind}_reduced_precision_reduction"
    return Setting(f"torch.backends.cuda.matmul.{attr}", lambda: getattr(torch.backends.cuda.matmul, attr),
                   lambda value: setattr(torch.backends.cuda.matmul, attr, value))


SETTINGS = (
    Setting("torch.get_float32_matmul_precision()", torch.get_float32_matmul_precision,
            torch.set_float32_matmul_precision),
    *_precision_flags(),
    _reduced("fp16"),
    _reduced("bf16"),
)
EXACT = {"torch.get_float32_matmul_precision()": "highest"}
"""The exact value of each setting: "ieee" for the fp32_precision ones, False for the others
(the TF32 switches and reduced-precision reductions)."""


def _exact_value(setting: Setting):
    if setting.label in EXACT:
        return EXACT[setting.label]
    return "ieee" if setting.label.endswith("fp32_precision") else False


@contextlib.contextmanager
def exact_arithmetic():
    """Float32 matmuls and convolutions in full float32 (no TF32, no bf16, no reduced-precision
    reductions) inside the block. Yields ``(label, value before, value used)`` for each setting;
    everything is restored afterwards."""
    before = [(s, s.read()) for s in SETTINGS]
    try:
        for setting, _ in before:
            setting.write(_exact_value(setting))
        yield tuple((s.label, str(old), str(_exact_value(s))) for s, old in before)
    finally:
        for setting, old in reversed(before):
            setting.write(old)
