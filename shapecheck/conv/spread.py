"""How far a model carries rounding: the end-to-end part of verify's tolerance.

One convolution rounds by about ``u * sqrt(n)`` (:mod:`.tolerance`). Through a whole model
those errors add up, and some layers multiply them: a BatchNorm in train mode divides each
channel by its batch's standard deviation, so a channel whose values sit far from zero
relative to their spread turns a small relative error into a large one. Such channels pile up
with depth. On pytorch-cifar's ResNets with a batch of two, in train mode, torch's own float32
output is 1.6e-6 from the float64 answer at 34 layers and 7.3e-5 at 101; in eval mode it is
near 2e-7 at every depth. No formula in the depth alone follows that.

So the reference run is repeated with simulated rounding at every convolution and linear
layer, and at every normalization by its input's own statistics:

- a convolution's or linear layer's output gets noise of ``u * sqrt(k*k*C_in/groups)``
  times the output's root mean square, times a standard normal draw per element;
- the gradient reaching that output is multiplied, element by element, by
  ``1 + u * sqrt(k*k*C_out/groups) * r`` (``r`` standard normal). The map is linear, so the
  second-order gradients pass through it too. A linear layer's ``n`` are its in and out
  features;
- the gradient reaching the input of a BatchNorm in train mode, an InstanceNorm, a GroupNorm
  or a LayerNorm is multiplied by ``1 + u * kappa * r``, where ``kappa`` is the root mean
  square over the standard deviation of the values it normalizes together. In float32 such a
  layer computes ``x - mean`` with an error of about ``u * |x|``, ``kappa`` times the
  error relative to the result; its backward then sums terms carrying that error, so the
  gradient of a bias before it, exactly zero, comes out as rounding noise of that size.

How far the end-to-end tensors then move from the reference, measured as verify measures
errors, is their *spread*: the largest such error over each kind (the outputs, the gradients,
the second-order gradients, the buffers), since the error of one small tensor, a bias of four
values, is a single random draw that may come out near zero. It is computed in float64 with
a seeded generator and with the reference's kinks pinned (:mod:`.branches`), so nothing in it
depends on how torch rounds in the checked dtype. A whole-model tensor passes at the larger
of ``8 * u * sqrt(n)`` (``n`` the longest reduction times the number of layers) and
:data:`SPREAD_SAFETY` times its spread: the first covers rounding the noise leaves out
(activations, pooling, additions), the second what the model magnifies.

On pytorch-cifar's ResNet18, 50 and 101 and MobileNetV2 (batch 2), torch's own float32
errors are 0.10 to 0.32 of the spread in train mode, and 0.01 to 0.37 in eval mode (where
the depth bound is the larger by far).
"""

from __future__ import annotations

import contextlib
import inspect
import math

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from . import census
from .tolerance import UNIT_ROUNDOFF

SPREAD_SAFETY = 2.0
"""Multiple of the spread an end-to-end tensor may be off by."""

RULE = ("whole-model tensors: the larger of that (n = longest reduction × number of layers) and "
        f"{SPREAD_SAFETY:g} × their spread (how far simulated rounding of u·√n at every convolution, "
        "linear layer and normalization by its input's own statistics moves them)")


def _draw(like: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(like.shape, generator=gen, dtype=torch.float64).to(like.device, like.dtype)


def _gradient_times(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``x`` itself, whose gradient arrives multiplied by ``factor`` (a linear map, so
    second-order gradients go through it too)."""
    return x * factor + (x * (1 - factor)).detach()


def _reductions(func, args, kwargs) -> tuple[int, int]:
    """Products summed into each output value, and into each value of the input's gradient."""
    if func is F.linear:
        w = args[1] if len(args) > 1 else kwargs["weight"]
        return w.shape[-1], w.shape[0] if w.dim() == 2 else 1
    arguments = census.bind(func, args, kwargs)
    w, groups = arguments["weight"], arguments.get("groups", 1)
    taps = math.prod(w.shape[2:])
    if census.CONV_FUNCTIONS[func][0]:  # transposed: weight is (C_in, C_out / groups, k...)
        return taps * w.shape[0] // groups, taps * w.shape[1]
    return taps * w.shape[1], taps * w.shape[0] // groups


def _noisy_product(out: torch.Tensor, reductions: tuple[int, int], u: float, gen) -> torch.Tensor:
    forward = u * math.sqrt(reductions[0]) * out.detach().pow(2).mean().sqrt() * _draw(out, gen)
    return _gradient_times(out, 1 + u * math.sqrt(reductions[1]) * _draw(out, gen)) + forward


def _condition(x: torch.Tensor, dims) -> torch.Tensor:
    """How much subtracting the mean over ``dims`` magnifies relative errors: the root mean
    square over the standard deviation (1 for a zero-mean input), broadcastable to ``x``."""
    x = x.detach()
    spread = x.var(dims, unbiased=False, keepdim=True).sqrt()
    size = x.pow(2).mean(dims, keepdim=True).sqrt()
    return torch.where(spread > 0, size / spread.clamp_min(torch.finfo(x.dtype).tiny), torch.ones_like(size))


def _statistics(x: torch.Tensor, dims) -> tuple[torch.Tensor, int]:
    """Normalizing ``x`` over ``dims``: its :func:`_condition` and how many values each
    statistic is taken over."""
    return _condition(x, dims), math.prod(x.shape[d] for d in dims)


def _group_statistics(x: torch.Tensor, groups: int) -> tuple[torch.Tensor, int]:
    grouped = x.unflatten(1, (groups, -1))
    condition, count = _statistics(grouped, tuple(range(2, grouped.dim())))
    return condition.expand(grouped.shape).flatten(1, 2), count


# normalization -> bound arguments -> (the condition of its statistics, values per statistic);
# None: it uses stored ones
_NORMALIZATIONS = {
    F.batch_norm: lambda a: _statistics(a["input"], (0, *range(2, a["input"].dim())))
    if a.get("training", False) else None,
    F.instance_norm: lambda a: _statistics(a["input"], tuple(range(2, a["input"].dim())))
    if a.get("use_input_stats", True) else None,
    F.group_norm: lambda a: _group_statistics(a["input"], a["num_groups"]),
    F.layer_norm: lambda a: _statistics(a["input"], tuple(range(-len(tuple(a["normalized_shape"])), 0))),
}


class _Noise(TorchFunctionMode):
    def __init__(self, u: float, gen: torch.Generator):
        super().__init__()
        self.u, self.gen = u, gen
        self.too_few: list[str] = []  # normalizations by their own statistics over two values

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in census.CONV_FUNCTIONS or func is F.linear:
            return _noisy_product(func(*args, **kwargs), _reductions(func, args, kwargs), self.u, self.gen)
        if func in _NORMALIZATIONS:
            bound = inspect.signature(func).bind(*args, **kwargs).arguments
            statistics = _NORMALIZATIONS[func](bound)
            if statistics is not None:
                (condition, count), x = statistics, bound["input"]
                if count <= 2:
                    self.too_few.append(f"{func.__name__} of {'×'.join(map(str, x.shape))}")
                bound["input"] = _gradient_times(x, 1 + self.u * condition * _draw(x, self.gen))
                return func(**bound)
        return func(*args, **kwargs)


@contextlib.contextmanager
def rounding_noise(dtype: str, seed: int):
    """Simulated rounding of ``dtype``'s size at every convolution, linear layer and
    normalization call made in the block (run in float64). Yields a list that names each
    normalization by its input's own statistics taken over two values only (a batch of two at
    a 1×1 feature map in train mode): there the normalized values are ±1 whatever the input,
    the backward's terms cancel to a residue of about ``eps / var`` of their size, and how far
    rounding moves that residue is more than this simulation covers."""
    with _Noise(UNIT_ROUNDOFF[dtype], torch.Generator().manual_seed(seed + 2)) as noise:
        yield noise.too_few
