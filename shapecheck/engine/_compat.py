"""What differs between the torch releases shapecheck supports, in one place.

pyproject.toml accepts torch 2.3 and newer; ``make test-oldest`` runs the suite on 2.3.
Code elsewhere imports the names here instead of testing versions itself.
"""

from __future__ import annotations

import torch
from torch import nn

# From this release on, ``from_tensor`` can give sizes symbols when 0 and 1 are not
# specialised; before it, the storage offset 0 gets a positive symbol and torch then fails its
# own check that the offset is 0 ("AssertionError: False != True").
_FROM_TENSOR_UNSPECIALISED = (2, 13)


def torch_version() -> tuple[int, int]:
    """torch's (major, minor), e.g. (2, 3) for 2.3.1+cu121."""
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


class _AbsentRMSNorm(nn.Module):
    """Stands in for ``nn.RMSNorm`` (torch >= 2.4) in layer tables; no model holds one."""


RMSNorm: type[nn.Module] = getattr(nn, "RMSNorm", _AbsentRMSNorm)


def symbolic_tensor(mode, real: torch.Tensor, dynamic: list[bool]) -> torch.Tensor:
    """A fake copy of ``real`` under ``mode`` (which has a ShapeEnv), a symbol for each size
    marked in ``dynamic``."""
    from torch.fx.experimental.symbolic_shapes import DimDynamic, StatelessSymbolicContext

    if mode.shape_env.specialize_zero_one or torch_version() >= _FROM_TENSOR_UNSPECIALISED:
        dims = [DimDynamic.DYNAMIC if d else DimDynamic.STATIC for d in dynamic]
        return mode.from_tensor(real, symbolic_context=StatelessSymbolicContext(dynamic_sizes=dims))
    return _empty_with_symbols(mode, real, dynamic)


def _empty_with_symbols(mode, real: torch.Tensor, dynamic: list[bool]) -> torch.Tensor:
    """An empty fake tensor of symbolic sizes: its storage offset is the constant 0."""
    from torch._dynamo.source import ConstantSource
    from torch.fx.experimental.symbolic_shapes import DimDynamic

    env = mode.shape_env
    sizes = []
    for i, (size, symbolic) in enumerate(zip(real.shape, dynamic)):
        if symbolic:
            source = ConstantSource(f"input_size_{i}")
            symbol = env.create_symbol(size, source, dynamic_dim=DimDynamic.DYNAMIC)
            size = env.create_symintnode(symbol, hint=size, source=source)
        sizes.append(size)
    with mode:
        return torch.empty(sizes, dtype=real.dtype, device=real.device)


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` ("cpu", "cuda"); torch < 2.4 has one function
    per device instead of the device argument."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:
        if device_type == "cpu":
            return torch.is_autocast_cpu_enabled()
        return device_type == "cuda" and torch.is_autocast_enabled()


def autocast_dtype(device_type: str) -> torch.dtype:
    """The dtype autocast runs ``device_type``'s convolutions in (see ``autocast_enabled``)."""
    try:
        return torch.get_autocast_dtype(device_type)
    except AttributeError:
        return torch.get_autocast_cpu_dtype() if device_type == "cpu" else torch.get_autocast_gpu_dtype()


def math_attention():
    """A context in which ``F.scaled_dot_product_attention`` runs its math backend, whose
    backward is differentiable again (the fused CPU and GPU kernels' backwards are not)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])
