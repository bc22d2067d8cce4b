"""Kinks pinned to the reference's side: ReLU-like functions and max pooling follow a recorded run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shapecheck.conv import branches

PIECEWISE_CALLS = {
    "F.relu": lambda x: F.relu(x),
    "torch.relu": lambda x: torch.relu(x),
    "Tensor.relu": lambda x: x.relu(),
    "nn.ReLU(inplace)": lambda x: nn.ReLU(inplace=True)(x * 1),
    "Tensor.relu_": lambda x: (x * 1).relu_(),
    "nn.ReLU6": lambda x: nn.ReLU6()(x * 4),
    "F.relu6": lambda x: F.relu6(x * 4),
    "F.hardtanh": lambda x: F.hardtanh(x, -0.5, 0.5),
    "torch.clamp": lambda x: torch.clamp(x, -0.3, 0.4),
    "Tensor.clamp(min)": lambda x: x.clamp(min=0.1),
    "Tensor.clamp_": lambda x: (x * 1).clamp_(max=0.2),
    "torch.clamp_min": lambda x: torch.clamp_min(x, -0.2),
    "nn.LeakyReLU": lambda x: nn.LeakyReLU(0.2)(x),
    "nn.Hardswish(inplace)": lambda x: nn.Hardswish(inplace=True)(x * 5),
    "F.hardsigmoid": lambda x: F.hardsigmoid(x * 5),
}

ON_KINKS = [-3.0, -0.6, -0.5, -0.3, -0.2, 0.0, 0.1, 0.2, 0.4, 0.5, 0.6, 1.5, 3.0]
"""Every bound of PIECEWISE_CALLS (after their scaling of x)."""


def _derivatives(fn, x):
    """Output, first and second derivatives (all with graphs) of fn at x."""
    x = x.detach().requires_grad_()
    out = fn(x)
    cot = torch.linspace(-1, 1, out.numel(), dtype=x.dtype).view(out.shape)
    (g,) = torch.autograd.grad(out, x, cot, create_graph=True)
    if not g.requires_grad:  # piecewise linear: no second derivative
        return out.detach(), g.detach(), torch.zeros_like(x)
    try:
        (gg,) = torch.autograd.grad((g * g).sum(), x, allow_unused=True, materialize_grads=True)
    except RuntimeError as missing:  # torch has none for hardsigmoid; the pinned piece has
        assert "not implemented" in str(missing)
        return out.detach(), g.detach()
    return out.detach(), g.detach(), gg


@pytest.mark.parametrize("name", PIECEWISE_CALLS)
def test_following_a_run_of_the_same_values_changes_nothing(name):
    fn = PIECEWISE_CALLS[name]
    x = torch.randn(3, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x[0, :len(ON_KINKS)] = torch.tensor(ON_KINKS)  # the derivative on a kink is torch's choice
    plain = _derivatives(fn, x)
    with branches.recording() as recorded:
        reference = _derivatives(fn, x)
    assert len(recorded.decisions) == 1
    with branches.following(recorded) as followed:
        pinned = _derivatives(fn, x)
    assert followed.flipped == 0 and followed.lost_at is None
    for a, b in zip(reference, pinned):  # the same pieces, computed the same way
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(plain, pinned):  # torch's float64 hardsigmoid is off by 3e-8
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-12)


def test_a_relu_input_across_the_kink_takes_the_recorded_side_and_is_counted():
    reference = torch.tensor([1e-8, 2.0, -3.0], dtype=torch.float64)
    with branches.recording() as recorded:
        F.relu(reference)
    checked = torch.tensor([-1e-6, 2.0, -3.0], dtype=torch.float64, requires_grad=True)
    with branches.following(recorded) as followed:
        out = F.relu(checked)
    assert followed.flipped == 1
    assert out.tolist() == [-1e-6, 2.0, 0.0]  # the checked run's own value on the reference's piece
    (grad,) = torch.autograd.grad(out.sum(), checked)
    assert grad.tolist() == [1.0, 1.0, 0.0]
    assert "1 value(s)" in followed.summary()


def test_a_hardswish_across_its_kink_takes_the_recorded_piece_with_its_second_derivative():
    with branches.recording() as recorded:
        F.hardswish(torch.tensor([3.0 + 1e-9], dtype=torch.float64))  # above: the identity
    x = torch.tensor([3.0 - 1e-7], dtype=torch.float64, requires_grad=True)
    with branches.following(recorded) as followed:
        out = F.hardswish(x)
    (g,) = torch.autograd.grad(out, x, create_graph=True)
    assert followed.flipped == 1 and g.item() == 1.0  # the middle piece's slope there is 1 - 1e-7 / 3
    gg = torch.autograd.grad(g, x, materialize_grads=True)[0].item() if g.requires_grad else 0.0
    assert gg == 0.0  # the middle piece's second derivative is 1/3


def test_max_pooling_follows_the_recorded_winner_of_each_window():
    reference = torch.tensor([[[[1.0, 1.0 + 1e-9], [0.0, -1.0]]]], dtype=torch.float64)
    with branches.recording() as recorded:
        nn.MaxPool2d(2)(reference)
    checked = torch.tensor([[[[1.0 + 1e-7, 1.0], [0.0, -1.0]]]], dtype=torch.float64, requires_grad=True)
    with branches.following(recorded) as followed:
        out, indices = F.max_pool2d(checked, 2, return_indices=True)
    assert followed.flipped == 1 and indices.flatten().tolist() == [1]
    assert out.item() == 1.0
    (grad,) = torch.autograd.grad(out.sum(), checked)
    assert grad.flatten().tolist() == [0.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("pool", [
    lambda x: F.max_pool1d(x.flatten(2), 3, stride=2, padding=1),
    lambda x: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)(x),
    lambda x: F.max_pool3d(x[:, None], 2),
    lambda x: nn.AdaptiveMaxPool2d((2, 3))(x),
    lambda x: F.adaptive_max_pool2d_with_indices(x, 2)[0],
])
def test_every_max_pooling_agrees_with_torch_when_followed(pool):
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with branches.recording() as recorded:
        plain = _derivatives(pool, x)
    with branches.following(recorded) as followed:
        pinned = _derivatives(pool, x)
    assert followed.flipped == 0 and len(recorded.decisions) == 1
    for a, b in zip(plain, pinned):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_run_that_takes_another_path_is_not_pinned_from_there_on():
    x = torch.tensor([-1e-9, 1.0], dtype=torch.float64)
    with branches.recording() as recorded:
        F.relu(x)
        F.relu(x)
    with branches.following(recorded) as followed:
        F.relu(x)
        out = F.leaky_relu(torch.tensor([1e-9, 1.0], dtype=torch.float64))
    assert followed.lost_at == 1 and out.tolist() == [1e-9, 1.0]
    assert "after call 2" in followed.summary()


def test_tensor_bounds_integer_tensors_inputs_by_keyword_and_bad_calls_are_left_alone():
    x = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    with branches.recording() as recorded:
        torch.clamp(x, min=torch.zeros(2, dtype=torch.float64))
        torch.relu(torch.tensor([-1, 2]))
        torch.relu(input=x)
        with pytest.raises(TypeError):  # torch's own error, not one of ours
            F.max_pool2d(x[None, None], 2, nonsense=1)
    assert recorded.decisions == []
