"""Build a model found by `discover` on the meta device (no parameter memory).

The model is returned in training mode, as torch constructs it: the tracer decides whether to
call `.eval()` (BatchNorm in training mode rejects a batch of one sample per channel).
"""

from __future__ import annotations

import functools
import inspect

from shapecheck.engine.discover import ModelSpec, constructor_kwargs
from shapecheck.engine.loader import user_line


class BuildError(Exception):
    """The user's constructor raised. `line`: the innermost line of the user's file in the
    traceback (None when the failure happened outside it); `exception`: the original."""

    def __init__(self, message: str, line: int | None = None,
                 exception: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.exception = exception


def build(spec: ModelSpec, init: dict | None = None, device: str = "meta",
          strict: bool = True):
    """Instantiate `spec` under `torch.device(device)`, or return its top-level object
    (moved to `device` when some of its tensors live elsewhere).

    Raises MissingArguments / UsageError (from `constructor_kwargs`) and BuildError.
    """
    import torch

    if spec.kind == "object":
        return on_device(spec.obj, device)
    kwargs = constructor_kwargs(spec.obj, init or {}, strict)
    args, kwargs = _positional_only(spec.obj, kwargs)
    from shapecheck.engine.usercode import call_user, reraise_if_ours

    try:
        with building(device):
            model = call_user(spec.obj, *args, **kwargs)
        return on_device(model, device)
    except Exception as exc:
        reraise_if_ours(exc)
        message = f"building {spec.name} failed: {type(exc).__name__}: {exc}"
        raise BuildError(message, user_line(exc, spec.path), exc) from exc


_SMALL = 65536  # elements: a table of rates or indices, not a weight
_VALUE_FACTORIES = ("linspace", "logspace", "arange", "zeros", "ones", "full", "empty", "tensor", "eye")


def building(device: str):
    """The context a model is built in: ``torch.device(device)``; on meta, small tensors the
    user's code makes from nothing (``torch.linspace(0, 0.1, depth)`` for stochastic-depth
    rates) are real CPU tensors, so that ``.item()`` and ``.tolist()`` read their values. They
    join the meta tensors where the two meet, and the built model is moved onto meta."""
    import contextlib

    import torch

    if device != "meta":
        return torch.device(device)
    stack = contextlib.ExitStack()
    stack.enter_context(torch.device(device))
    stack.enter_context(_small_values_mode()())
    return stack


@functools.cache
def _small_values_mode() -> type:
    import os
    import sys

    import torch
    from torch.overrides import TorchFunctionMode

    from .symbolic import onto_trace_device
    from .usercode import call_user

    factories = {getattr(torch, name) for name in _VALUE_FACTORIES}
    fill = torch.Tensor.uniform_
    library = (os.path.dirname(torch.__file__), os.path.dirname(os.path.dirname(__file__)))

    class SmallValuesOnCpu(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is fill and _fills_nothing(args, kwargs, torch):
                return args[0]
            if func in factories and kwargs.get("device") is None:
                made = call_user(func, *args, **kwargs)
                caller = sys._getframe(1).f_code.co_filename
                if made.numel() <= _SMALL and not caller.startswith(library):
                    return call_user(func, *args, **{**kwargs, "device": "cpu"})
                return made
            if kwargs.get("device") is None:  # a device the code names is where it is made, as before
                args, kwargs = onto_trace_device(args, kwargs, "meta")
            return call_user(func, *args, **kwargs)

    return SmallValuesOnCpu


def _fills_nothing(args, kwargs: dict, torch) -> bool:
    """A random fill of a meta tensor (a layer's initial weights): there are no values to fill,
    and on meta it cannot fail outside grad mode, so the tensor stands as it is (torch's meta
    kernel for it is slow Python)."""
    if not args or type(args[0]) not in (torch.Tensor, torch.nn.Parameter) or torch.is_grad_enabled():
        return False
    plain = all(type(a) in (int, float) for a in args[1:]) and all(v is None for v in kwargs.values())
    return plain and args[0].is_meta and not args[0].is_inference()


def on_device(model, device: str):
    """`model`, moved onto `device` when some of its tensors live elsewhere (outside `building`:
    a move made inside it would keep its small CPU tensors where they are)."""
    tensors = list(model.parameters()) + list(model.buffers())
    if all(t.device.type == device for t in tensors):
        return model
    return model.to(device)


def _positional_only(cls: type, kwargs: dict) -> tuple[list, dict]:
    """Values of positional-only parameters must be passed by position."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return [], kwargs
    args = []
    rest = dict(kwargs)
    for name, param in params.items():
        if param.kind is not param.POSITIONAL_ONLY or name not in rest:
            break
        args.append(rest.pop(name))
    return args, rest
