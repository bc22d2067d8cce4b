"""verify_model: passes on a real model, catches a wrong implementation, reports refusals plainly."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
from rich.console import Console
from torch import nn
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import CheckpointFunction, checkpoint

from shapecheck.conv import IMPLEMENTATIONS, NotApplicable, toeplitz
from shapecheck.conv.tolerance import tolerance
from shapecheck.conv.verify import MODEL_ROW, NothingToVerify, verify_model
from shapecheck.errors import UsageError
from shapecheck.render.verify_table import render_verify


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 5, stride=2, padding=2)
        self.norm = nn.BatchNorm2d(8)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.relu(self.norm(self.stem(x)))
        x = self.up(self.depthwise(x))
        return self.fc(x.mean((2, 3)))


def small_net() -> SmallNet:
    torch.manual_seed(0)
    return SmallNet()


def run(impls, **kwargs):
    return verify_model(small_net(), [(2, 3, 12, 12)], impls, device="cpu", repeats=1, **kwargs)


def rows(report, impl, dtype="float64"):
    """Rows by layer name (the model's eval-mode row under MODEL_ROW)."""
    return {c.layer: c for c in report.checks if c.impl == impl and c.dtype == dtype and c.mode != "train"}


def test_every_layer_and_the_whole_model_pass_in_both_dtypes_and_modes():
    report = run(["im2col"])
    assert report.ok
    assert report.impls == ("im2col",)
    for dtype in ("float64", "float32"):
        checks = [c for c in report.checks if c.dtype == dtype]
        assert [(c.layer, c.mode) for c in checks] == [
            ("stem", ""), ("depthwise", ""), ("up", ""), (MODEL_ROW, "eval"), (MODEL_ROW, "train")]
        assert all(c.status == "pass" and c.max_rel <= c.tolerance for c in checks)
        assert checks[0].kind == "Conv2d 5x5 s2x2" and checks[0].reduction > 0
        assert checks[3].kind == "3 convolution calls, eval mode" and checks[3].time_ratio > 0
    assert [(s.name, s.kind, s.calls, s.source) for s in report.sites] == [
        ("stem", "Conv2d 5x5 s2x2", 1, "torch layer"), ("depthwise", "Conv2d 3x3 g8", 1, "torch layer"),
        ("up", "ConvTranspose2d 2x2 s2x2", 1, "torch layer")]


def test_report_is_plain_data():
    report = run(["im2col"], dtypes=("float64",))
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["ok"] is True and data["device"] == "cpu" and data["inputs"] == [[2, 3, 12, 12]]

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return isinstance(value, (str, float, int, bool))

    assert plain(data)


def plant(monkeypatch, name, change):
    """Replace implementation ``name`` by ``change(good, x, weight, bias, *rest)``."""
    good = IMPLEMENTATIONS[name]

    def planted(x, weight, bias=None, *rest, **kwargs):
        return change(good, x, weight, bias, *rest, **kwargs)

    monkeypatch.setitem(IMPLEMENTATIONS, name, planted)


def test_a_planted_1e_5_relative_error_in_float32_fails(monkeypatch):
    """(a) The tolerance is u * sqrt(n) based, not torch's own error: 1e-5 is far outside it."""
    plant(monkeypatch, "im2col", lambda good, *a, **k: good(*a, **k) * (1 + 1e-5))
    report = run(["im2col"], dtypes=("float32",), modes=("eval",))
    checks = rows(report, "im2col", "float32")
    assert checks["stem"].status == "fail" and checks["stem"].max_rel == pytest.approx(1e-5, rel=0.05)
    assert checks["stem"].tolerance < 1e-5 and checks["stem"].reduction in (5 * 5 * 3, 2 * 6 * 6)
    first, worst = report.divergence("im2col")
    assert first.layer == "stem"
    # end to end the bound is looser (every layer's rounding adds up): the calls are what catch it
    assert checks[MODEL_ROW].tolerance > checks["stem"].tolerance


def test_a_wrong_gradient_is_caught_even_when_the_output_is_right(monkeypatch):
    def scaled_backward(good, *a, **k):
        out = good(*a, **k)
        return out + 1e-3 * (out - out.detach())  # same value, gradients scaled by 1.001

    plant(monkeypatch, "im2col", scaled_backward)
    checks = rows(run(["im2col"], dtypes=("float64",), modes=("eval",)), "im2col")
    assert checks["stem"].status == "fail"
    assert checks["stem"].worst.startswith("grad")
    assert checks["stem"].max_rel == pytest.approx(1e-3, rel=1e-6)


class _NoSecondOrder(torch.autograd.Function):
    """Right output and first-order gradients, computed without a graph (the old shift_add bug)."""

    @staticmethod
    def forward(ctx, x, weight, bias, conv):
        ctx.save_for_backward(x, weight, bias)
        ctx.conv = conv
        return conv(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        leaves = [t.detach().requires_grad_() for t in ctx.saved_tensors]
        with torch.enable_grad():
            out = ctx.conv(*leaves)
        return (*torch.autograd.grad(out, leaves, grad), None)


def test_a_wrong_double_backward_is_caught(monkeypatch):
    def no_graph(good, x, weight, bias, *rest, **kwargs):
        return _NoSecondOrder.apply(x, weight, bias, lambda x, w, b: good(x, w, b, *rest, **kwargs))

    plant(monkeypatch, "im2col", no_graph)
    checks = rows(run(["im2col"], dtypes=("float64",), modes=("eval",)), "im2col")
    assert checks["stem"].status == "fail"
    assert checks["stem"].worst.startswith("grad²")


class AttentionNet(nn.Module):
    """Patches by a strided convolution, then self-attention through torch's fused kernel."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 2, stride=2)
        self.qkv = nn.Linear(8, 24)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        q, k, v = self.qkv(tokens).view(x.shape[0], -1, 3, 2, 4).permute(2, 0, 3, 1, 4)
        mixed = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.head(mixed.transpose(1, 2).flatten(2).mean(1))


def test_a_model_with_attention_is_checked_to_second_order():
    """The fused attention kernels' backwards cannot be differentiated again; verify runs
    attention's math backend, so the whole model is still compared to second order."""
    torch.manual_seed(0)
    report = verify_model(AttentionNet(), [(2, 3, 8, 8)], ["im2col"], device="cpu", repeats=1, dtypes=("float64",))
    assert report.ok
    model_rows = [c for c in report.checks if c.layer == MODEL_ROW]
    assert len(model_rows) == 2 and not any("first-order" in c.note for c in model_rows)


class PrototypeNet(nn.Module):
    """Convolutional features scored by their distance to learned prototypes: torch.cdist's
    backward has no derivative in torch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.prototypes = nn.Parameter(torch.randn(2, 4))

    def forward(self, x):
        return -torch.cdist(self.conv(x).mean((2, 3)), self.prototypes)


def verify_prototype_net():
    torch.manual_seed(0)
    return verify_model(PrototypeNet(), [(2, 3, 6, 6)], ["im2col"], device="cpu", repeats=1, dtypes=("float64",))


def test_a_model_torch_cannot_differentiate_twice_is_compared_to_first_order_and_says_so():
    checks = rows(verify_prototype_net(), "im2col")
    model = checks[MODEL_ROW]
    assert model.status == "pass"
    assert model.note.startswith("output and first-order gradients only: torch has no second derivative here (")
    assert "_cdist_backward" in model.note


class _Square(torch.autograd.Function):
    """x², with a backward that torch runs without recording (``@once_differentiable``)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class OnceDifferentiableNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(_Square.apply(self.conv(x)).mean((2, 3)))


def test_a_once_differentiable_function_limits_the_model_to_first_order_and_says_so():
    """torch's second-order gradient of such a model silently lacks the terms through the
    Function (x² here: its second derivative, 2, never shows), so the model is compared to first
    order; the convolution call is still checked to second order on its own."""
    torch.manual_seed(0)
    report = verify_model(OnceDifferentiableNet(), [(2, 3, 6, 6)], ["im2col"], device="cpu", repeats=1,
                          dtypes=("float64",))
    checks = rows(report, "im2col")
    assert checks["conv"].status == "pass" and not checks["conv"].note
    model = checks[MODEL_ROW]
    assert model.status == "pass" and not model.worst.startswith("grad²")
    assert model.note.startswith("output and first-order gradients only: torch has no second derivative here (")
    assert "the backward of _Square is @once_differentiable" in model.note


def test_a_wrong_double_backward_is_still_caught_at_the_call_in_such_a_model(monkeypatch):
    def no_graph(good, x, weight, bias, *rest, **kwargs):
        return _NoSecondOrder.apply(x, weight, bias, lambda x, w, b: good(x, w, b, *rest, **kwargs))

    plant(monkeypatch, "im2col", no_graph)
    checks = rows(verify_prototype_net(), "im2col")
    assert checks["conv"].status == "fail" and checks["conv"].worst.startswith("grad²")
    assert checks[MODEL_ROW].status == "pass"


class HeadFirst(nn.Module):
    """The last layer is declared first: its bias comes before the body's parameters."""

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(8, 2, 1)
        self.body = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.head(torch.tanh(self.body(x)))


class WeightNormed(nn.Module):
    """weight_norm puts each weight's parameters after the layer's bias."""

    def __init__(self):
        super().__init__()
        self.conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(4, 4, 3))

    def forward(self, x):
        return self.conv(x)


@pytest.mark.parametrize(("model", "shape"), [(HeadFirst, (2, 3, 6, 6)), (WeightNormed, (2, 4, 9))])
def test_a_last_layers_constant_bias_gradient_does_not_change_the_second_order_check(model, shape):
    """The last layer's bias gradient is the sum of the cotangent: torch's carries no graph,
    the implementations' do. Before, the random combination then drew other coefficients for
    every later parameter, and correct implementations failed at 119 % (grad² head.weight)."""
    torch.manual_seed(0)
    report = verify_model(model(), [shape], ["im2col", "naive"], device="cpu", repeats=1, dtypes=("float64",),
                          modes=("eval",))
    assert report.ok, [(c.impl, c.layer, c.worst, c.max_rel) for c in report.checks if not c.ok]


class SpectralCritic(nn.Module):
    """The hook-based spectral_norm keeps the normalized weight as a plain, non-leaf attribute."""

    def __init__(self):
        super().__init__()
        self.conv = nn.utils.spectral_norm(nn.Conv2d(3, 4, 3, stride=2))
        self.fc = nn.utils.spectral_norm(nn.Linear(4, 1))

    def forward(self, x):
        return self.fc(nn.functional.leaky_relu(self.conv(x), 0.2).mean((2, 3)))


def test_spectral_norm_models_are_copied_and_checked():
    from shapecheck.conv.train import train_compare

    torch.manual_seed(0)
    critic = SpectralCritic()
    critic(torch.randn(2, 3, 8, 8))  # after a forward, copy.deepcopy refuses the module
    report = verify_model(critic, [(2, 3, 8, 8)], ["im2col"], device="cpu", repeats=1, dtypes=("float64",))
    assert report.ok and {c.layer for c in report.checks} == {"conv", MODEL_ROW}
    assert train_compare(critic, [(2, 3, 8, 8)], "im2col", 2, dtype="float64").ok


class Checkpointed(nn.Module):
    """Activation checkpointing: the backward runs the block's forward again."""

    def __init__(self, reentrant=False, sequential=False):
        super().__init__()
        self.reentrant, self.sequential = reentrant, sequential
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        if self.sequential:
            x = torch.utils.checkpoint.checkpoint_sequential(self.block, 2, x, use_reentrant=self.reentrant)
        else:
            x = checkpoint(self.block, x, use_reentrant=self.reentrant)
        return self.head(x.mean((2, 3)))


def checkpointed(**kwargs):
    torch.manual_seed(0)
    return Checkpointed(**kwargs)


@pytest.mark.parametrize("kind", [{}, {"reentrant": True}, {"sequential": True}], ids=["plain", "reentrant", "sequential"])
def test_a_checkpointed_model_is_compared_end_to_end(kind):
    report = verify_model(checkpointed(**kind), [(2, 3, 6, 6)], ["im2col"], device="cpu", repeats=1)
    assert report.ok
    model_rows = [c for c in report.checks if c.layer == MODEL_ROW]
    assert len(model_rows) == 4 and all(c.status == "pass" for c in model_rows)
    assert torch.utils.checkpoint.CheckpointFunction is CheckpointFunction  # torch's own again afterwards


def test_a_checkpointed_model_end_to_end_catches_a_planted_error(monkeypatch):
    """The error is planted in the checkpointed block's convolution only (4 input channels)."""
    plant(monkeypatch, "im2col", lambda good, x, w, b, *a, **k: good(x, w, b, *a, **k) + 1e-3 * (x.shape[1] == 4))
    report = verify_model(checkpointed(), [(2, 3, 6, 6)], ["im2col"], device="cpu", repeats=1,
                          dtypes=("float64",), modes=("train",))
    model_row = next(c for c in report.checks if c.layer == MODEL_ROW)
    assert model_row.status == "fail"


def test_a_checkpointed_model_trains_both_ways():
    from shapecheck.conv.train import train_compare

    assert train_compare(checkpointed(), [(2, 3, 6, 6)], "im2col", 2, dtype="float64").ok


def test_where_checkpoints_cannot_run_plainly_a_model_is_checked_call_by_call(monkeypatch):
    """A torch without the checkpoint parts that verify replaces: the recomputation runs
    without the swap, so the whole model is not compared and not trained, and says why."""
    from shapecheck.conv.train import train_compare

    monkeypatch.delattr(torch.utils.checkpoint, "CheckpointFunction")
    report = verify_model(checkpointed(), [(2, 3, 6, 6)], ["im2col"], device="cpu", repeats=1, dtypes=("float64",))
    checks = rows(report, "im2col")
    assert checks["stem"].status == checks["block.0"].status == "pass"
    model_rows = [c for c in report.checks if c.layer == MODEL_ROW]
    assert len(model_rows) == 2 and all(c.status == "not applicable" for c in model_rows)
    assert model_rows[0].note.startswith("not compared end to end: the model recomputes its forward in the backward")
    with pytest.raises(NothingToVerify, match="not trained both ways: the model recomputes"):
        train_compare(checkpointed(), [(2, 3, 6, 6)], "im2col", 2, dtype="float64")


class SqueezedNet(nn.Module):
    """A 3×3 convolution that leaves a 1×1 map on a 3×3 input, then BatchNorm."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.conv(x))).flatten(1))


@pytest.mark.parametrize("batch", [2, 4])
def test_a_train_mode_normalization_over_two_values_is_not_compared_end_to_end(batch):
    """A batch of two at a 1×1 map: BatchNorm's normalized values are ±1 whatever the input, and
    its gradients a residue that rounding decides; a batch of four is compared."""
    torch.manual_seed(0)
    report = verify_model(SqueezedNet(), [(batch, 3, 3, 3)], ["im2col"], device="cpu", repeats=1,
                          dtypes=("float64",))
    model_rows = {c.mode: c for c in report.checks if c.layer == MODEL_ROW}
    assert model_rows["eval"].status == "pass" and rows(report, "im2col")["conv"].status == "pass"
    if batch == 2:
        assert model_rows["train"].status == "not applicable"
        assert model_rows["train"].note.startswith(
            "not compared end to end: batch_norm of 2×4×1×1 takes its statistics over two values at this input")
    else:
        assert model_rows["train"].status == "pass"


def test_a_dropped_gradient_is_a_failure_row_not_a_crash(monkeypatch):
    """(b)"""
    plant(monkeypatch, "im2col", lambda good, x, w, b, *a, **k: good(x, w.detach(), b, *a, **k))
    report = run(["im2col"], dtypes=("float64",), modes=("eval",))
    checks = rows(report, "im2col")
    assert checks["stem"].status == "fail" and checks["stem"].max_rel == math.inf
    assert checks["stem"].worst == "grad weight (missing)"
    assert checks[MODEL_ROW].worst == "grad stem.weight (missing)"


def test_an_implementation_that_raises_is_an_error_row(monkeypatch):
    def crashes(*args, **kwargs):
        raise IndexError("tap out of range")

    monkeypatch.setitem(IMPLEMENTATIONS, "naive", crashes)
    checks = rows(run(["naive"], dtypes=("float64",), modes=("eval",)), "naive")
    assert checks["stem"].status == "error"
    assert checks["stem"].note == "IndexError: tap out of range"
    assert not checks["stem"].ok


def test_layers_an_implementation_refuses_are_not_applicable_not_failures(monkeypatch):
    monkeypatch.setattr(toeplitz, "MEMORY_BUDGET", 100_000)
    report = run(["toeplitz"], dtypes=("float64",), modes=("eval",))
    checks = rows(report, "toeplitz")
    # stem: 8 x 36 output rows by 3 x 144 input columns, 8 bytes each; "up" is refused too
    assert checks["stem"].status == "not applicable"
    assert checks["stem"].note.startswith("not swapped, because the Toeplitz matrix would be 995,328 bytes")
    assert checks["depthwise"].status == "pass"
    assert checks["up"].status == "not applicable"
    assert checks[MODEL_ROW].note == "2 of 3 calls ran torch's own (refused)"
    assert checks[MODEL_ROW].status == "pass"
    assert report.ok


def test_a_model_no_layer_accepts_is_not_applicable(monkeypatch):
    def refuses(*args, **kwargs):
        raise NotApplicable("only 7x7")

    monkeypatch.setitem(IMPLEMENTATIONS, "fft", refuses)
    report = verify_model(nn.Conv2d(1, 1, 3), [(1, 1, 5, 5)], ["fft"], device="cpu", repeats=1)
    assert [c.status for c in report.checks] == ["not applicable"] * 6
    assert report.ok


class Standardized(nn.Conv2d):
    """A user subclass with its own forward (weight standardization)."""

    def forward(self, x):
        w = self.weight - self.weight.mean((1, 2, 3), keepdim=True)
        return self._conv_forward(x, w, self.bias)


class Functional(nn.Module):
    """A convolution written as ``F.conv2d`` in ``forward``, and a layer called twice."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 2, 3, 3) / 4)
        self.shared = Standardized(4, 4, 3, padding=1)

    def forward(self, x):
        x = torch.nn.functional.conv2d(x, self.weight, padding=1)
        return self.shared(torch.relu(self.shared(x)))


def test_user_subclasses_function_calls_and_every_call_are_counted_and_checked(monkeypatch):
    """(c), (d) and every call: an error that only shows on inputs without negatives (the
    second call of ``shared``, after a relu) is found there."""
    torch.manual_seed(0)

    def wrong_on_non_negative(good, x, *a, **k):
        return good(x, *a, **k) * (1 + 1e-3 * bool(x.min() >= 0))

    plant(monkeypatch, "im2col", wrong_on_non_negative)
    report = verify_model(Functional(), [(1, 2, 6, 6)], ["im2col"], device="cpu", repeats=1,
                          dtypes=("float64",), modes=("eval",))
    assert [(s.name, s.kind, s.calls, s.source) for s in report.sites] == [
        ("F.conv2d in (model)", "F.conv2d 3x3", 1, "function call"),
        ("shared", "Standardized 3x3", 2, "user subclass")]
    checks = rows(report, "im2col")
    assert [checks[n].status for n in ("F.conv2d in (model)", "shared", "shared #2")] == ["pass", "pass", "fail"]
    assert report.divergence("im2col")[0].layer == "shared #2"


def test_a_model_without_convolutions_has_nothing_to_verify():
    """(e)"""
    with pytest.raises(NothingToVerify, match="nothing to verify"):
        verify_model(nn.Sequential(nn.Linear(3, 2)), [(2, 3)], ["im2col"], device="cpu")


def test_train_mode_compares_batchnorm_statistics(monkeypatch):
    """A constant offset before BatchNorm leaves the train-mode output alone; the running
    mean still shows it."""
    def offset_stem(good, x, weight, *a, **k):  # only the stem, which the BatchNorm follows
        return good(x, weight, *a, **k) + (1e-3 if weight.shape[1] == 3 else 0.0)

    plant(monkeypatch, "im2col", offset_stem)
    checks = [c for c in run(["im2col"], dtypes=("float64",)).checks if c.layer == MODEL_ROW]
    train = next(c for c in checks if c.mode == "train")
    assert train.status == "fail" and train.worst == "buffer norm.running_mean"


class ZeroMeanInput(nn.Module):
    """The second BatchNorm averages a bias-free 1x1 convolution of a normalized tensor: its
    running mean is zero but for rounding (as in MobileNetV2's blocks)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8)

    def forward(self, x):
        return self.bn2(self.conv2(self.bn1(self.conv1(x))))


def test_a_running_mean_that_is_zero_but_for_rounding_is_measured_on_its_input_spread():
    torch.manual_seed(0)
    report = verify_model(ZeroMeanInput(), [(4, 3, 8, 8)], ["im2col"], device="cpu", repeats=1)
    train = [c for c in report.checks if c.layer == MODEL_ROW and c.mode == "train"]
    assert [c.status for c in train] == ["pass", "pass"]
    assert all(c.torch_rel < c.tolerance for c in train if not math.isnan(c.torch_rel))


class OnTheKink(nn.Module):
    """relu(conv(x) - 1) where one position is 3 * float32(1/3) - 1 = 3e-8 exactly, and 0 in
    float32 whoever computes it (a single product rounds to 1.0)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.constant_(self.conv.weight, 1 / 3)

    def forward(self, x):
        return torch.relu(self.conv(x) - 1)


def test_a_value_on_a_relu_kink_takes_the_references_side_in_float32():
    pixels = torch.tensor([[[[3.0, 30.0], [6.0, 12.0]]]])
    report = verify_model(OnTheKink(), [pixels], ["naive", "im2col"], device="cpu", repeats=1,
                          dtypes=("float32",), modes=("eval",))
    model_rows = [c for c in report.checks if c.layer == MODEL_ROW]
    assert [c.status for c in model_rows] == ["pass", "pass"]
    assert all("1 value(s) within rounding of a ReLU/pooling kink" in c.note for c in model_rows)
    assert all(c.torch_rel < c.tolerance for c in model_rows)


def test_pinned_kinks_still_show_a_wrong_value(monkeypatch):
    plant(monkeypatch, "im2col", lambda good, *a, **k: good(*a, **k) * (1 + 1e-5))
    report = verify_model(OnTheKink(), [torch.tensor([[[[3.0, 30.0], [6.0, 12.0]]]])], ["im2col"],
                          device="cpu", repeats=1, dtypes=("float32",), modes=("eval",))
    assert [c.status for c in report.checks] == ["fail", "fail"]


def test_reduced_precision_matmul_is_switched_off_and_reported():
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        report = run(["im2col"], dtypes=("float32",), modes=("eval",))
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)
    settings = {label: (was, used) for label, was, used in report.precision}
    assert settings["torch.get_float32_matmul_precision()"] == ("medium", "highest")
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        assert settings["torch.backends.cudnn.conv.fp32_precision"][1] == "ieee"
    else:  # torch before the per-backend precision: the TF32 switches
        assert settings["torch.backends.cudnn.allow_tf32"][1] == "False"


def test_tolerances_follow_unit_roundoff_and_reduction_length():
    assert tolerance("float32", 576) == pytest.approx(8 * 2 ** -24 * 24)
    assert tolerance("float64", 9) == pytest.approx(8 * 2 ** -53 * 3)


def test_usage_errors():
    with pytest.raises(UsageError, match="unknown implementation 'magic'"):
        run(["magic"])
    with pytest.raises(UsageError, match="float16"):
        run(["naive"], dtypes=("float16",))
    with pytest.raises(UsageError, match="unknown device"):
        verify_model(small_net(), [(2, 3, 12, 12)], ["naive"], device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_asking_for_cuda_without_a_gpu_is_a_usage_error():
    with pytest.raises(UsageError, match="no CUDA device"):
        verify_model(small_net(), [(2, 3, 12, 12)], ["naive"], device="cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_verify_on_the_gpu():
    report = verify_model(small_net(), [(2, 3, 12, 12)], ["naive", "im2col"], device="cuda", repeats=1)
    assert report.device.startswith("cuda")
    assert report.ok, [c for c in report.checks if not c.ok]


def test_rendered_tables_show_each_implementation_and_verdict(monkeypatch):
    monkeypatch.setattr(toeplitz, "MEMORY_BUDGET", 100_000)
    report = run(["im2col", "toeplitz"], dtypes=("float64",))
    console = Console(file=io.StringIO(), width=220, color_system=None)
    render_verify(report, console)
    text = console.file.getvalue()
    assert "verify SmallNet on cpu at input 2×3×12×12" in text and "convolutions found" in text
    assert "tolerance = 8 · u · √n" in text and "restored afterwards" in text
    assert "im2col" in text and "toeplitz" in text
    assert "not applicable" in text and "not swapped, because the Toeplitz matrix" in text
    assert "2 of 3 calls ran torch's own (refused)" in text
    assert text.rstrip().endswith("all implementations match torch")


def test_a_narrow_terminal_gets_each_row_as_lines_with_every_number_whole():
    report = run(["im2col"], dtypes=("float32",), modes=("eval",))
    console = Console(file=io.StringIO(), width=80, color_system=None)
    render_verify(report, console)
    text = console.file.getvalue()
    assert "…" not in text and "┃ dtype" not in text
    stem = next(c for c in report.checks if c.layer == "stem")
    assert f"  float32 stem: Conv2d 5x5 s2x2, n = {stem.reduction}: pass" in text
    assert f"error {stem.max_rel:.2e} (abs {stem.max_abs:.2e}) against a" in text
    assert text.rstrip().endswith("all implementations match torch")


def test_rendered_summary_names_the_first_divergence_and_the_worst_tensor(monkeypatch):
    plant(monkeypatch, "im2col", lambda good, *a, **k: good(*a, **k) * (1 + 1e-5))
    report = run(["im2col"], dtypes=("float32",), modes=("eval",))
    console = Console(file=io.StringIO(), width=400, color_system=None)
    render_verify(report, console)
    lines = console.file.getvalue().rstrip().splitlines()
    assert lines[-2].startswith("im2col: first diverges at float32 stem (")
    assert "worst tensor: output 0 at float32 depthwise, error 1.0" in lines[-2]
    assert lines[-1] == "3 check(s) failed (im2col)"


def fake_loader(monkeypatch, inputs=((2, 3, 12, 12),)):
    from shapecheck import api
    from shapecheck.api import LoadedModel
    from shapecheck.engine.discover import InputSpec

    def load_models(path, inputs_flags, init, device):
        assert device == "cpu"
        return [LoadedModel(name="SmallNet", model=SmallNet(), inputs=tuple(InputSpec(s) for s in inputs)),
                LoadedModel(name="Block", model=nn.Conv2d(1, 1, 3), inputs=())]

    monkeypatch.setattr(api, "load_models", load_models, raising=False)


def run_cli(impls, fmt="text", device="cpu"):
    from shapecheck.frontends.verify_cmd import run_verify

    console = Console(file=io.StringIO(), width=200, color_system=None)
    code = run_verify("model.py", [], [], impls, device, fmt, console)
    return code, console.file.getvalue()


def test_verify_command_passes_and_names_skipped_models(monkeypatch):
    fake_loader(monkeypatch)
    code, text = run_cli("im2col")
    assert code == 0
    assert "skipped Block: no input shape known; pass --input" in text
    assert "verify SmallNet on cpu" in text


def test_verify_command_json_and_exit_1_on_a_mismatch(monkeypatch):
    fake_loader(monkeypatch)
    good = IMPLEMENTATIONS["im2col"]
    monkeypatch.setitem(IMPLEMENTATIONS, "im2col", lambda *a, **k: good(*a, **k) * 1.001)
    code, text = run_cli("im2col", fmt="json")
    assert code == 1
    data = json.loads(text)
    assert data["ok"] is False and data["skipped"][0]["model"] == "Block"
    statuses = {(c["dtype"], c["layer"]): c["status"] for c in data["reports"][0]["checks"]}
    assert statuses[("float64", "stem")] == "fail" and statuses[("float32", MODEL_ROW)] == "fail"


def test_verify_command_usage_errors_exit_2(monkeypatch, capsys):
    fake_loader(monkeypatch)
    assert run_cli("magic")[0] == 2
    assert "unknown implementation 'magic'" in capsys.readouterr().err
    fake_loader(monkeypatch, inputs=())
    assert run_cli("naive")[0] == 2
    assert "no model could be verified" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_verify_command_without_a_gpu_exits_2(monkeypatch, capsys):
    fake_loader(monkeypatch)
    assert run_cli("naive", device="cuda")[0] == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_verify_command_on_a_model_without_convolutions_exits_2(monkeypatch, capsys):
    from shapecheck import api
    from shapecheck.api import LoadedModel
    from shapecheck.engine.discover import InputSpec

    def load_models(path, inputs_flags, init, device):
        return [LoadedModel(name="Mlp", model=nn.Sequential(nn.Linear(3, 2)), inputs=(InputSpec((2, 3)),))]

    monkeypatch.setattr(api, "load_models", load_models, raising=False)
    assert run_cli("im2col")[0] == 2
    assert "Mlp: nothing to verify: no convolution runs in the forward pass" in capsys.readouterr().err


class TinyCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x):
        return self.fc(torch.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))


def train_tiny(impl, **kwargs):
    from shapecheck.conv.train import train_compare

    torch.manual_seed(0)
    return train_compare(TinyCnn(), [(4, 1, 8, 8)], impl, 5, lr=0.1, dtype="float64", **kwargs)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_with_a_correct_implementation_matches(optimizer):
    """(f) first half"""
    report = train_tiny("im2col", optimizer=optimizer)
    assert report.ok and report.steps == 5
    assert report.losses_torch[-1] < report.losses_torch[0]  # it learns
    # longest reduction: the weight gradient, 4 images x 64 positions; two layers
    assert report.loss_rel <= report.bound == 5 * tolerance("float64", 4 * 64 * 2)


def test_training_with_a_planted_bias_does_not_match(monkeypatch):
    """(f) second half: an output shifted by 1e-6 learns something else."""
    plant(monkeypatch, "im2col", lambda good, *a, **k: good(*a, **k) + 1e-6)
    report = train_tiny("im2col")
    assert not report.ok
    assert report.loss_rel > report.bound and report.weight_rel > report.bound


def test_training_several_implementations_trains_torch_and_the_noisy_copy_once(monkeypatch):
    """torch's copy and the noisy copy set the bounds, the same for every implementation."""
    from shapecheck.conv import train

    trained = []
    real = train._Run.train
    monkeypatch.setattr(train._Run, "train", lambda self, model: trained.append(model) or real(self, model))
    torch.manual_seed(0)
    good = train.train_compare_all(TinyCnn(), [(4, 1, 8, 8)], ["im2col", "shift_add", "naive"], 3, lr=0.1,
                                   dtype="float64")
    assert len(trained) == 2 + 3
    assert [r.impl for r in good] == ["im2col", "shift_add", "naive"] and all(r.ok for r in good)
    assert len({(r.losses_torch, r.bound, r.weight_bound) for r in good}) == 1
    plant(monkeypatch, "naive", lambda good, *a, **k: good(*a, **k) + 1e-6)
    torch.manual_seed(0)
    mixed = train.train_compare_all(TinyCnn(), [(4, 1, 8, 8)], ["im2col", "naive"], 3, lr=0.1, dtype="float64")
    assert [r.ok for r in mixed] == [True, False]


def test_training_an_implementation_that_refuses_every_call_is_not_applicable(monkeypatch):
    def refuses(*args, **kwargs):
        raise NotApplicable("only 3x3 stride-1 convolutions")

    monkeypatch.setitem(IMPLEMENTATIONS, "winograd", refuses)
    report = train_tiny("winograd")
    assert report.verdict == "not applicable" and report.ok and not report.swapped
    assert report.note == "not swapped anywhere: only 3x3 stride-1 convolutions"
    assert report.to_dict()["verdict"] == "not applicable"
    assert train_tiny("im2col").verdict == "same learning"


def test_verify_command_train_prints_the_curves(monkeypatch):
    from shapecheck import api
    from shapecheck.api import LoadedModel
    from shapecheck.engine.discover import InputSpec
    from shapecheck.frontends.verify_cmd import TrainOptions, run_verify

    def load_models(path, inputs_flags, init, device):
        torch.manual_seed(0)
        return [LoadedModel(name="TinyCnn", model=TinyCnn(), inputs=(InputSpec((4, 1, 8, 8)),))]

    monkeypatch.setattr(api, "load_models", load_models, raising=False)
    console = Console(file=io.StringIO(), width=200, color_system=None)
    code = run_verify("model.py", [], [], "im2col", "cpu", "text", console, TrainOptions(3, "sgd", 0.1))
    text = console.file.getvalue()
    assert code == 0
    assert "train TinyCnn: 3 steps of sgd (lr 0.1) in float64" in text
    assert "im2col: loss within" in text and text.rstrip().endswith("same learning")


def test_each_step_is_told_to_progress_before_it_runs():
    said = []
    run(["im2col"], progress=said.append)
    head = [s for s in said if s.startswith("SmallNet, float64:")]
    assert head[:5] == ["SmallNet, float64: finding the convolution calls",
                        "SmallNet, float64: torch's derivatives, call 1 of 3 (stem)",
                        "SmallNet, float64: im2col, call 1 of 3 (stem)",
                        "SmallNet, float64: torch's derivatives, call 2 of 3 (depthwise)",
                        "SmallNet, float64: im2col, call 2 of 3 (depthwise)"]
    assert "SmallNet, float64: torch's derivatives of the whole model, train mode" in said
    assert "SmallNet, float32: im2col, call 2 of 3 (depthwise)" in said
    assert said[-1] == "SmallNet, float32: im2col, the whole model, train mode"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_cli_shows_the_step_on_a_terminal_and_nothing_elsewhere(monkeypatch):
    from shapecheck.frontends import verify_cmd

    screen = _Terminal()
    with verify_cmd._status(screen) as progress:
        progress("SmallNet, float64: im2col, call 2 of 3 (depthwise)")
    assert "SmallNet, float64: im2col, call 2 of 3 (depthwise)" in screen.getvalue()
    pipe = io.StringIO()
    with verify_cmd._status(pipe) as progress:
        assert progress is None
    assert pipe.getvalue() == ""


def test_training_tells_progress_which_run_is_next(monkeypatch):
    from shapecheck.conv.train import train_compare_all

    torch.manual_seed(0)
    said = []
    train_compare_all(TinyCnn(), [(4, 1, 8, 8)], ["im2col", "naive"], 2, name="TinyCnn", progress=said.append)
    assert said == ["TinyCnn, float32: 2 steps with torch's convolutions",
                    "TinyCnn, float32: 2 steps with simulated rounding (the bounds)",
                    "TinyCnn, float32: 2 steps with im2col", "TinyCnn, float32: 2 steps with naive"]


def test_the_call_that_gave_the_results_is_timed(monkeypatch):
    """A derivatives run over the time budget is timed once: the run whose results are checked
    (each run calls the implementation once per convolution, 3 in SmallNet: 3 runs alone, then
    one of the whole model)."""
    from shapecheck.conv import verify

    monkeypatch.setattr(verify, "TIME_BUDGET", 0.0)
    calls = []
    good = IMPLEMENTATIONS["im2col"]
    monkeypatch.setitem(IMPLEMENTATIONS, "im2col", lambda *a, **k: calls.append(1) or good(*a, **k))
    report = verify_model(small_net(), [(2, 3, 12, 12)], ["im2col"], device="cpu", dtypes=("float64",),
                          modes=("eval",))
    assert report.ok and all(c.time_ratio > 0 for c in report.checks)
    assert len(calls) == 3 + 3


def test_autos_first_call_on_a_layer_is_not_a_timing():
    from shapecheck.conv.verify import _warm

    assert _warm("im2col", 2.0) == (2.0,) and _warm("auto", 2.0) == ()
