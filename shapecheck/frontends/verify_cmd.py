"""``shapecheck verify FILE``: the file's models, every convolution swapped, compared with torch.

The models are loaded by :func:`shapecheck.api.load_models` under the main command's rules
(no training code runs; inputs from ``--input``, an in-file hint, the project config or an
example call) and built on CPU after seeding torch's generator, so their weights are
reproducible random values. Exit status: 0 all checks pass, 1 a mismatch, 2 a usage error.
"""

from __future__ import annotations

import json
import sys

from .. import api
from ..errors import UsageError
from ..render.verify_table import render_verify

SEED = 0


def run_verify(path: str, inputs: list[str], init: list[str], impls: str, device: str, fmt: str,
               console) -> int:
    try:
        reports, skipped = _verify_file(path, inputs, init, impls, device)
    except UsageError as exc:
        print(f"shapecheck: error: {exc}", file=sys.stderr)
        return 2
    if fmt == "json":
        data = {"path": path, "ok": all(r.ok for r in reports), "reports": [r.to_dict() for r in reports],
                "skipped": [{"model": name, "reason": reason} for name, reason in skipped]}
        console.out(json.dumps(data, indent=2), highlight=False)
    else:
        for name, reason in skipped:
            console.print(f"[yellow]skipped {name}[/]: {reason}")
        for report in reports:
            render_verify(report, console)
    return 0 if all(r.ok for r in reports) else 1


def _verify_file(path, inputs, init, impls, device):
    """(one VerifyReport per model, (name, reason) for each model that could not be verified)."""
    import torch

    from ..conv import IMPLEMENTATIONS
    from ..conv.verify import resolve_device, verify_model

    names = IMPLEMENTATIONS.names() if impls == "all" else [n.strip() for n in impls.split(",") if n.strip()]
    resolve_device(device)  # fail on a missing GPU before loading anything
    torch.manual_seed(SEED)
    loaded = api.load_models(path, inputs, init, "cpu")
    reports, skipped = [], []
    for found in loaded:
        if not found.inputs:
            skipped.append((found.name, "no input shape known; pass --input, e.g. --input 16,1,32,32"))
            continue
        args = [_input(spec, torch) for spec in found.inputs]
        _runs_in_torch(found, args, path, torch)
        reports.append(verify_model(found.model, args, names, device, seed=SEED, name=found.name))
    if not reports:
        raise UsageError(f"{path}: no model could be verified"
                         + "".join(f"\n  {name}: {reason}" for name, reason in skipped))
    return reports, skipped


def _runs_in_torch(found, args, path, torch) -> None:
    """The model must run in torch itself before its convolutions can be compared."""
    tensors = [torch.randn(a) if isinstance(a, tuple) else a for a in args]
    try:
        with torch.no_grad():
            found.model.eval()(*tensors)
    except Exception as exc:  # the user's model fails in torch: a shape bug, not a mismatch
        shapes = ", ".join("×".join(map(str, t.shape)) for t in tensors)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"{found.name} does not run in torch at input {shapes}: {first}\n"
                         f"  run `shapecheck {path}` to find and fix the shape bug first") from None


def _input(spec, torch):
    """A shape for floating inputs (verify makes them per dtype); zeros for integer ones, which
    are valid indices for any embedding."""
    dtype = getattr(torch, spec.dtype)
    if dtype.is_floating_point:
        return tuple(spec.shape)
    return torch.zeros(spec.shape, dtype=dtype)
