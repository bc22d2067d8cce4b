"""What differs between the torch releases shapecheck supports, in one place.

pyproject.toml accepts torch 2.3 and newer; ``make test-oldest`` runs the suite on 2.3.
Code elsewhere imports the names here instead of testing versions itself.
"""

from __future__ import annotations

import torch
from torch import nn


def torch_version() -> tuple[int, int]:
    """torch's (major, minor), e.g. (2, 3) for 2.3.1+cu121."""
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


class _AbsentRMSNorm(nn.Module):
    """Stands in for ``nn.RMSNorm`` (torch >= 2.4) in layer tables; no model holds one."""


RMSNorm: type[nn.Module] = getattr(nn, "RMSNorm", _AbsentRMSNorm)

