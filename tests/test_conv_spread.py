"""The end-to-end tolerance follows how far a model carries rounding (simulated rounding noise)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shapecheck.conv import IMPLEMENTATIONS
from shapecheck.conv.spread import SPREAD_SAFETY, _condition, _gradient_times, rounding_noise
from shapecheck.conv.tolerance import UNIT_ROUNDOFF, tolerance
from shapecheck.conv.verify import MODEL_ROW, verify_model


class BiasBeforeNorm(nn.Module):
    """Three convolutions whose bias of 300 the train-mode BatchNorm after each removes again:
    subtracting a batch mean of about 300 from values that spread by about 1 magnifies every
    relative rounding error some 300 times, as channels far from zero do in deep ResNets."""

    def __init__(self, depth=3, bias=300.0):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(depth))
        self.norms = nn.ModuleList(nn.BatchNorm2d(4) for _ in range(depth))
        for conv in self.convs:
            nn.init.constant_(conv.bias, bias)

    def forward(self, x):
        for conv, norm in zip(self.convs, self.norms):
            x = norm(conv(x))
        return x


def verify_bias_before_norm(impls, **kwargs):
    torch.manual_seed(0)
    return verify_model(BiasBeforeNorm(), [(2, 4, 6, 6)], impls, device="cpu", repeats=1, **kwargs)


def model_rows(report, mode):
    return [c for c in report.checks if c.layer == MODEL_ROW and c.mode == mode]


def test_a_model_that_magnifies_rounding_passes_where_the_depth_bound_alone_fails():
    report = verify_bias_before_norm(["im2col", "naive"], modes=("train",))
    rows = model_rows(report, "train")
    assert [c.status for c in rows] == ["pass"] * 4
    float32 = [c for c in rows if c.dtype == "float32"]
    # torch's own float32 run is far outside 8·u·√n: that bound alone fails correct code here
    assert all(c.torch_rel > 3 * tolerance("float32", c.reduction) for c in float32)
    assert all(c.max_rel <= c.tolerance for c in rows)


def test_eval_mode_without_batch_statistics_keeps_the_depth_bound():
    report = verify_bias_before_norm(["im2col"], modes=("eval",))
    for row in model_rows(report, "eval"):
        assert row.status == "pass"
        assert row.tolerance == pytest.approx(tolerance(row.dtype, row.reduction))


def test_a_planted_error_still_fails_on_a_model_that_magnifies_rounding(monkeypatch):
    good = IMPLEMENTATIONS["im2col"]
    monkeypatch.setitem(IMPLEMENTATIONS, "im2col", lambda *a, **k: good(*a, **k) * (1 + 1e-5))
    report = verify_bias_before_norm(["im2col"], modes=("train",), dtypes=("float32",))
    assert not report.ok
    assert report.divergence("im2col")[0].layer == "convs.0"


def test_a_wrong_whole_model_result_fails_although_the_tolerance_grew(monkeypatch):
    """An implementation right on each call alone but wrong in the model (here: the third call
    of every forward pass is 1e-3 off) fails the train-mode row."""
    good, calls = IMPLEMENTATIONS["im2col"], []

    def third_call_off(*a, **k):
        calls.append(1)
        out = good(*a, **k)
        return out * (1 + 1e-3) if len(calls) % 3 == 0 and torch.is_grad_enabled() else out

    monkeypatch.setitem(IMPLEMENTATIONS, "im2col", third_call_off)
    report = verify_bias_before_norm(["im2col"], modes=("train",), dtypes=("float64",))
    train = model_rows(report, "train")[0]
    assert train.status == "fail" and train.max_rel > train.tolerance


def test_the_rule_in_the_report_states_both_parts():
    report = verify_bias_before_norm(["naive"], modes=("eval",), dtypes=("float64",))
    assert "8 · u · √n" in report.rule and f"{SPREAD_SAFETY:g} × their spread" in report.rule


# -- the simulated rounding --------------------------------------------------------------------
def test_gradient_times_keeps_the_value_and_scales_first_and_second_order_gradients():
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    factor = torch.linspace(0.5, 1.5, 5, dtype=torch.float64)
    y = _gradient_times(x, factor)
    assert torch.equal(y.detach(), x.detach())
    (g,) = torch.autograd.grad((y ** 3).sum(), x, create_graph=True)
    assert torch.allclose(g, 3 * x ** 2 * factor)
    (h,) = torch.autograd.grad(g.sum(), x)  # through the map twice: y's own slope, then g's
    assert torch.allclose(h, 6 * x * factor ** 2)


def test_convolution_noise_has_the_size_of_its_reduction():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 16, 20, 20, generator=gen, dtype=torch.float64)
    w = torch.randn(32, 16, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    exact = F.conv2d(x, w, padding=1)
    with rounding_noise("float32", seed=0):
        noisy = F.conv2d(x, w, padding=1)
    u = UNIT_ROUNDOFF["float32"]
    deviation = (noisy - exact).detach()
    rms = lambda t: t.pow(2).mean().sqrt().item()  # noqa: E731
    assert rms(deviation) == pytest.approx(u * math.sqrt(16 * 9) * rms(exact), rel=0.05)
    cotangent = torch.randn(noisy.shape, generator=gen, dtype=torch.float64)
    (g_noisy,) = torch.autograd.grad(noisy, w, cotangent)
    (g_exact,) = torch.autograd.grad(exact, w, cotangent)
    assert 0 < (g_noisy - g_exact).abs().max() / g_exact.abs().max() < 1e-4


def test_normalization_noise_grows_with_the_mean_over_the_spread():
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    assert torch.allclose(_condition(x - x.mean((0, 2, 3), keepdim=True), (0, 2, 3)),
                          torch.ones(1, 3, 1, 1, dtype=torch.float64))
    assert (_condition(x + 500, (0, 2, 3)) > 400).all()


@pytest.mark.parametrize("norm, statistics", [
    (lambda x: F.batch_norm(x, None, None, training=True), True),
    (lambda x: F.batch_norm(x, torch.zeros(3, dtype=x.dtype), torch.ones(3, dtype=x.dtype)), False),
    (lambda x: F.group_norm(x, 3), True),
    (lambda x: F.instance_norm(x), True),
    (lambda x: F.layer_norm(x, x.shape[2:]), True),
])
def test_only_normalizations_by_the_inputs_own_statistics_get_gradient_noise(norm, statistics):
    x = (torch.randn(4, 3, 5, 5, dtype=torch.float64) + 100).requires_grad_()
    cotangent = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    (exact,) = torch.autograd.grad(norm(x), x, cotangent)
    with rounding_noise("float32", seed=0):
        out = norm(x)
    (noisy,) = torch.autograd.grad(out, x, cotangent)
    assert torch.equal(out.detach(), norm(x).detach())
    assert torch.equal(noisy, exact) != statistics


def test_linear_layers_get_noise_of_their_in_features():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 200, generator=gen, dtype=torch.float64)
    w = torch.randn(300, 200, generator=gen, dtype=torch.float64)
    exact = F.linear(x, w)
    with rounding_noise("float32", seed=0):
        noisy = F.linear(x, w)
    rms = lambda t: t.pow(2).mean().sqrt().item()  # noqa: E731
    assert rms(noisy - exact) == pytest.approx(UNIT_ROUNDOFF["float32"] * math.sqrt(200) * rms(exact), rel=0.05)


# -- training --------------------------------------------------------------------------------
def train_bias_before_norm(dtype="float64", depth=3):
    from shapecheck.conv.train import train_compare

    torch.manual_seed(0)
    return train_compare(BiasBeforeNorm(depth, bias=3000.0), [(2, 4, 6, 6)], "im2col", 5, "sgd", 0.05, dtype=dtype)


@pytest.mark.parametrize("dtype, depth", [("float64", 3), ("float32", 6)])
def test_training_a_model_that_magnifies_rounding_matches_where_the_depth_bound_alone_fails(dtype, depth):
    report = train_bias_before_norm(dtype, depth)
    assert report.ok
    # the depth bound: 5 steps, longest reduction 2 images x 36 positions, one per layer
    assert report.loss_rel > 5 * tolerance(dtype, 2 * 36 * depth)  # alone, it would call this divergence
    assert report.bound > report.loss_rel and report.weight_bound >= report.weight_rel


def test_training_with_a_planted_error_still_diverges_on_a_model_that_magnifies_rounding(monkeypatch):
    good = IMPLEMENTATIONS["im2col"]
    monkeypatch.setitem(IMPLEMENTATIONS, "im2col", lambda *a, **k: good(*a, **k) * (1 + 1e-6))
    report = train_bias_before_norm()
    assert not report.ok


def test_training_measures_weights_as_one_vector():
    """A parameter that is rounding noise (a BatchNorm bias whose shift the next train-mode
    BatchNorm removes: about 1e-18) is judged at the scale of all the weights."""
    from shapecheck.conv.train import _weights_apart

    ours, theirs = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    theirs.load_state_dict(ours.state_dict())
    with torch.no_grad():
        ours[1].bias.fill_(2e-18)
        theirs[1].bias.fill_(1e-18)
    worst, name = _weights_apart(ours, theirs)
    assert worst == pytest.approx(1e-18) and name == "1.bias"
