"""Training equivalence: train a model with torch's convolutions and with a from-scratch one.

Two copies of the model train for ``steps`` steps on the same fixed batch: seeded random
inputs and seeded random targets (class labels when the output is ``(N, classes)``, with
cross-entropy; otherwise a random tensor of the output's shape, with mean squared error). One
copy runs torch's convolutions, the other has every convolution call redirected to the
implementation (:func:`.census.redirect`). torch's generator is reseeded before each step, so
dropout draws the same masks in both. The two loss curves and the final weights are compared:

- loss: ``|loss_ours - loss_torch| / |loss_torch|`` at every step;
- weights: ``max|w_ours - w_torch|`` for each parameter after the last step, over the largest
  value of all parameters (the weights as one vector, as verify measures gradients);

and each must stay within the larger of ``steps * tolerance(dtype, n)`` (:mod:`.tolerance`),
``n`` being the longest reduction of the model's convolutions and linear layers times their
number (each step can add one end-to-end rounding error), and :data:`.spread.SPREAD_SAFETY`
times its spread: how far a third copy, trained with torch's convolutions under simulated
rounding of the dtype's size (:func:`.spread.rounding_noise`), ends up from torch's. A model
that magnifies rounding (train-mode BatchNorm over channels far from zero) has a wide spread;
one that does not keeps the first bound. Adam divides by the root of each gradient's running
square, so a gradient that should be zero (a bias before BatchNorm) turns rounding noise into
full steps; use SGD for such models.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import CheckpointError

from . import census, spread
from .tolerance import tolerance

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


@dataclass(frozen=True)
class TrainReport:
    model: str
    impl: str
    dtype: str
    optimizer: str
    lr: float
    losses_torch: tuple[float, ...]
    losses_ours: tuple[float, ...]
    loss_rel: float
    weight_rel: float
    worst_weight: str
    bound: float            # for the loss
    weight_bound: float
    note: str = ""
    swapped: bool = True    # False: the implementation refused every call, so torch's own ran

    @property
    def verdict(self) -> str:
        if not self.swapped:
            return "not applicable"
        return "same learning" if self.ok else "diverges"

    @property
    def ok(self) -> bool:
        return self.loss_rel <= self.bound and self.weight_rel <= self.weight_bound

    @property
    def steps(self) -> int:
        return len(self.losses_torch)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "verdict": self.verdict}


def train_compare(model: nn.Module, inputs, impl: str, steps: int, optimizer: str = "sgd", lr: float = 0.01,
                  dtype: str = "float32", device: str = "cpu", seed: int = 0, name: str | None = None) -> TrainReport:
    """Train ``model`` both ways (copies; ``model`` is not changed) and compare."""
    return train_compare_all(model, inputs, [impl], steps, optimizer, lr, dtype, device, seed, name)[0]


def train_compare_all(model: nn.Module, inputs, impls, steps: int, optimizer: str = "sgd", lr: float = 0.01,
                      dtype: str = "float32", device: str = "cpu", seed: int = 0,
                      name: str | None = None, progress=None) -> list[TrainReport]:
    """:func:`train_compare` for each of ``impls``; torch's copy and the noisy copy, and so the
    bounds, are trained once for all of them. Checkpointed blocks run as plain calls
    (:func:`.census.plain_checkpoints`); where they cannot, a model that recomputes its forward
    in the backward raises :class:`.verify.NothingToVerify`: the recomputation would run
    without the swap. ``progress`` is told which training is about to run."""
    from .verify import RECOMPUTES, NothingToVerify

    try:
        say = (lambda text: None) if progress is None else progress
        with census.plain_checkpoints():
            return _train_all(model, inputs, impls, steps, optimizer, lr, dtype, device, seed, name, say)
    except CheckpointError:
        raise NothingToVerify(f"not trained both ways: {RECOMPUTES}") from None


def _train_all(model, inputs, impls, steps, optimizer, lr, dtype, device, seed, name, say) -> list[TrainReport]:
    from .verify import NothingToVerify, _make_inputs, _model_reduction, copy_model

    torch_dtype = getattr(torch, dtype)
    base = copy_model(model).to(device=device, dtype=torch_dtype).train()
    args = _make_inputs(inputs, torch_dtype, torch.device(device), seed)
    calls = census.record(base, lambda: _no_grad(base, args))
    if not calls:
        raise NothingToVerify("nothing to verify: no convolution runs in the forward pass")
    run = _Run(args, _target(_first_float(_no_grad(base, args)), seed), steps, optimizer, lr, seed)
    theirs, noisy = copy_model(base), copy_model(base)
    label = f"{name or type(model).__name__}, {dtype}: {steps} steps"
    say(f"{label} with torch's convolutions")
    losses_torch = run.train(theirs)
    say(f"{label} with simulated rounding (the bounds)")
    with spread.rounding_noise(dtype, seed):
        losses_noisy = run.train(noisy)
    floor = steps * tolerance(dtype, _model_reduction(base, calls))
    bounds = (max(floor, spread.SPREAD_SAFETY * _curves_apart(losses_noisy, losses_torch)),
              max(floor, spread.SPREAD_SAFETY * _weights_apart(noisy, theirs)[0]))
    reports = []
    for impl in impls:
        ours = copy_model(base)
        say(f"{label} with {impl}")
        with census.redirect(ours, impl) as refused:
            losses_ours = run.train(ours)
        reports.append(TrainReport(name or type(model).__name__, impl, dtype, optimizer, lr, tuple(losses_torch),
                                   tuple(losses_ours), _curves_apart(losses_ours, losses_torch),
                                   *_weights_apart(ours, theirs), *bounds, _refusals(refused, len(calls)),
                                   len(refused) < len(calls)))
    return reports


@dataclass(frozen=True)
class _Run:
    """One training run's fixed batch, target and settings."""
    args: list
    target: torch.Tensor
    steps: int
    optimizer: str
    lr: float
    seed: int

    def train(self, model) -> list[float]:
        """The loss at each step, training ``model`` in place; torch's generator reseeded before
        each step, so that dropout draws the same masks in every copy."""
        opt = OPTIMIZERS[self.optimizer](model.parameters(), lr=self.lr)
        losses = []
        for step in range(self.steps):
            torch.manual_seed(self.seed + step)
            opt.zero_grad()
            loss = _loss(_first_float(model(*self.args)), self.target)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses


def _refusals(refused: dict, calls: int) -> str:
    """What ran torch's own convolution instead, in a report's words ("" when nothing did)."""
    if not refused:
        return ""
    if len(refused) == calls:
        return "not swapped anywhere: " + next(iter(refused.values()))
    return f"{len(refused)} of {calls} convolution calls ran torch's own (refused)"


def _target(out: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed + 7)
    if out.dim() == 2 and out.shape[1] > 1:
        return torch.randint(out.shape[1], (out.shape[0],), generator=gen).to(out.device)
    return torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.device, out.dtype)


def _loss(out, target):
    if target.dtype == torch.int64:
        return F.cross_entropy(out, target)
    return F.mse_loss(out, target)


def _curves_apart(ours, theirs) -> float:
    return max((_rel(a, b) for a, b in zip(ours, theirs)), default=0.0)


def _weights_apart(ours, theirs) -> tuple[float, str]:
    """The largest difference of any parameter over the largest value of all of them, and
    that parameter: the weights as one vector. A parameter whose gradient is zero but for
    rounding (a BatchNorm bias whose shift the next train-mode BatchNorm removes) stays near
    1e-18, and against its own size any rounding would be a 100 % difference."""
    pairs = [(key, a, b) for (key, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()) if b.numel()]
    scale = max((b.abs().max().item() for _, _, b in pairs), default=0.0)
    worst, name = 0.0, ""
    for key, a, b in pairs:
        rel = _scaled((a - b).abs().max().item(), scale)
        if rel >= worst:
            worst, name = rel, key
    return worst, name


def _rel(a: float, b: float) -> float:
    """|a - b| / |b|; infinite when either is not finite."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return _scaled(abs(a - b), abs(b))


def _scaled(diff: float, scale: float) -> float:
    if math.isnan(diff):
        return math.inf
    return diff / scale if scale else (0.0 if diff == 0 else math.inf)


def _no_grad(model, args):
    with torch.no_grad():
        return model(*args)


def _first_float(out):
    from .verify import _tensors

    return _tensors(out)[0]
