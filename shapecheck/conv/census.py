"""Find every convolution a model runs, and run from-scratch ones in their place.

Convolutions are counted where they happen: a :class:`~torch.overrides.TorchFunctionMode` sees
each call of ``F.conv1d/2d/3d`` and ``F.conv_transpose1d/2d/3d`` (the same objects as
``torch.conv2d`` and friends), whoever makes it: ``nn.Conv2d`` and the other torch layers, user
subclasses of them, and ``F.conv2d`` written in a ``forward``. Forward pre/post hooks on every
submodule say which module made the call, so each call is named after its layer.

:class:`Redirect` is the same mode turned into a swap: every call runs the from-scratch
implementation instead, or torch's own when the implementation refuses the configuration.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn
from torch.overrides import TorchFunctionMode

from ._args import NotApplicable

# torch function -> (transposed?, spatial dimensions)
CONV_FUNCTIONS = {
    F.conv1d: (False, 1), F.conv2d: (False, 2), F.conv3d: (False, 3),
    F.conv_transpose1d: (True, 1), F.conv_transpose2d: (True, 2), F.conv_transpose3d: (True, 3),
}
_PARAMETERS = {
    False: ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    True: ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"),
}
TORCH_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


@dataclass
class ConvCall:
    """One convolution call seen during a forward pass, with its (detached) arguments."""

    function: object
    owner: str          # qualified name of the module whose forward made the call ("" = the model)
    owner_class: str
    layer: bool         # the owner is an nn.Conv*/nn.ConvTranspose* (or a subclass of one)
    subclass: bool      # ... defined by the user rather than torch
    index: int          # how many convolutions the owner made before this one
    arguments: dict = field(repr=False)
    out_shape: tuple[int, ...] = ()

    @property
    def transposed(self) -> bool:
        return CONV_FUNCTIONS[self.function][0]

    @property
    def dims(self) -> int:
        return CONV_FUNCTIONS[self.function][1]

    @property
    def site(self) -> str:
        """Where the call is made: the layer's name, or "F.conv2d in block" for a function call."""
        if self.layer:
            return self.owner
        return f"F.{self.function.__name__} in {self.owner or '(model)'}"

    @property
    def name(self) -> str:
        return self.site if self.index == 0 else f"{self.site} #{self.index + 1}"

    def kind(self) -> str:
        """"Conv2d 3x3 s2 g4"-style description (the class is the user's for a subclass)."""
        a = self.arguments
        base = self.owner_class if self.layer else f"F.{self.function.__name__}"
        parts = [base, "x".join(map(str, a["weight"].shape[2:]))]
        for label, key in (("s", "stride"), ("d", "dilation")):
            values = a.get(key, 1)
            values = (values,) if isinstance(values, int) else tuple(values)
            if any(v != 1 for v in values):
                parts.append(label + "x".join(map(str, values)))
        if a.get("groups", 1) != 1:
            parts.append(f"g{a['groups']}")
        return " ".join(parts)


def bind(function, args, kwargs) -> dict:
    """The call's arguments by name, as ``F.conv*`` reads them."""
    names = _PARAMETERS[CONV_FUNCTIONS[function][0]]
    bound = dict(zip(names, args))
    bound.update(kwargs or {})
    return bound


def from_scratch(impl: str, transposed: bool, dims: int):
    """The from-scratch function ``impl`` uses for this kind of call; NotApplicable when none."""
    from . import transposed as transposed_module
    from .modules import conv_function

    if not transposed:
        return conv_function(impl, dims)
    conv = None if impl == "auto" else conv_function(impl, dims)
    fn = getattr(transposed_module, f"conv_transpose{dims}d")
    return fn if conv is None else _with_conv(fn, conv)


def _with_conv(fn, conv):
    def through(*args, **kwargs):
        return fn(*args, **kwargs, conv=conv)
    return through


def call_from_scratch(impl: str, call_function, arguments: dict):
    """Run the from-scratch version of one call (raises NotApplicable if ``impl`` refuses it)."""
    transposed, dims = CONV_FUNCTIONS[call_function]
    fn = from_scratch(impl, transposed, dims)
    args = dict(arguments)
    return fn(args.pop("input"), **args)


class _Owners:
    """A stack of the modules whose forward is running, kept by hooks on every submodule."""

    def __init__(self, model: nn.Module):
        self.stack = [("", model)]
        self.counts: dict[str, int] = {}
        self.handles = [model.register_forward_pre_hook(self._restart)]
        for name, module in model.named_modules():
            if name:
                self.handles.append(module.register_forward_pre_hook(self._enter(name)))
                self.handles.append(module.register_forward_hook(self._leave, always_call=True))

    def _restart(self, module, args):
        """A new forward pass of the model: calls are numbered from the first again."""
        self.counts.clear()

    def _enter(self, name):
        def hook(module, args):
            self.stack.append((name, module))
        return hook

    def _leave(self, module, args, output):
        self.stack.pop()

    def close(self):
        for handle in self.handles:
            handle.remove()

    def describe(self, function, arguments) -> ConvCall:
        name, module = self.stack[-1]
        index = self.counts.get(name, 0)
        self.counts[name] = index + 1
        layer = isinstance(module, TORCH_LAYERS)
        subclass = layer and type(module).__module__.split(".")[0] not in ("torch", "shapecheck")
        detached = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in arguments.items()}
        return ConvCall(function, name, type(module).__name__, layer, subclass, index, detached)


class _Watch(TorchFunctionMode):
    def __init__(self, owners: _Owners, on_call):
        super().__init__()
        self.owners, self.on_call = owners, on_call

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in CONV_FUNCTIONS:
            return self.on_call(func, args, kwargs, self.owners)
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _watching(model, on_call):
    owners = _Owners(model)
    try:
        with _Watch(owners, on_call):
            yield owners
    finally:
        owners.close()


def record(model: nn.Module, run) -> list[ConvCall]:
    """Every convolution call made while ``run()`` runs ``model``, in order."""
    calls = []

    def on_call(func, args, kwargs, owners):
        call = owners.describe(func, bind(func, args, kwargs))
        out = func(*args, **(kwargs or {}))
        call.out_shape = tuple(out.shape)
        calls.append(call)
        return out

    with _watching(model, on_call):
        run()
    return calls


@contextlib.contextmanager
def redirect(model: nn.Module, impl: str):
    """Run ``impl`` in place of every convolution call while the block runs ``model``.

    Yields a dict: call name -> the reason torch's own convolution ran instead (the
    implementation refused it), empty when every call was swapped.
    """
    refused: dict[str, str] = {}

    def on_call(func, args, kwargs, owners):
        arguments = bind(func, args, kwargs)
        call = owners.describe(func, {})
        try:
            return call_from_scratch(impl, func, arguments)
        except NotApplicable as refusal:
            refused[call.name] = str(refusal)
            return func(*args, **(kwargs or {}))

    with _watching(model, on_call):
        yield refused



_CHECKPOINT_PARTS = ("CheckpointFunction", "_checkpoint_without_reentrant_generator")


class _PlainCall:
    """Stands in for ``torch.utils.checkpoint.CheckpointFunction``: the function, called."""

    @staticmethod
    def apply(function, _preserve_rng_state, *args):
        return function(*args)


def _no_recomputation(*_args, **_kwargs):
    """Stands in for the generator that sets up a non-reentrant checkpoint: nothing before the
    function runs, nothing after."""
    yield


@contextlib.contextmanager
def plain_checkpoints():
    """While the block runs, ``torch.utils.checkpoint.checkpoint`` (reentrant or not, and
    ``checkpoint_sequential``) calls its function plainly and keeps its activations.

    A checkpointed block runs its forward again during the backward, and function modes do
    not see that run: its convolutions would be torch's own and its kinks unpinned. The plain
    call gives the same values and derivatives; checkpointing only trades memory for the second
    run. Where this torch lacks the parts it replaces, nothing changes (a recomputation then
    raises ``CheckpointError`` in a run that pins kinks)."""
    module = torch.utils.checkpoint
    if not all(hasattr(module, part) for part in _CHECKPOINT_PARTS):
        yield
        return
    saved = {part: getattr(module, part) for part in _CHECKPOINT_PARTS}
    module.CheckpointFunction, module._checkpoint_without_reentrant_generator = _PlainCall, _no_recomputation
    try:
        yield
    finally:
        for part, value in saved.items():
            setattr(module, part, value)
