"""verify_model: passes on a real model, catches a wrong implementation, reports refusals plainly."""

from __future__ import annotations

import io
import json

import pytest
import torch
from rich.console import Console
from torch import nn

from shapecheck.conv import IMPLEMENTATIONS, NotApplicable, toeplitz
from shapecheck.conv.verify import MODEL_ROW, tolerance, verify_model
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
    return {c.layer: c for c in report.checks if c.impl == impl and c.dtype == dtype}


def test_every_layer_and_the_whole_model_pass_in_both_dtypes():
    report = run(["naive", "im2col"])
    assert report.ok
    assert report.impls == ("naive", "im2col")
    for impl in report.impls:
        for dtype in ("float64", "float32"):
            checks = rows(report, impl, dtype)
            assert list(checks) == ["stem", "depthwise", "up", MODEL_ROW]
            assert all(c.status == "pass" and c.max_rel <= c.tolerance for c in checks.values())
            assert checks["stem"].kernel == 5 and checks["stem"].kind == "Conv2d 5x5 s2x2"
            assert checks[MODEL_ROW].kind == "3 of 3 conv layers swapped"
            assert checks[MODEL_ROW].time_ratio > 0


def test_report_is_plain_data():
    report = run(["im2col"], dtypes=("float64",))
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["ok"] is True and data["device"] == "cpu"

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return isinstance(value, (str, float, int, bool))

    assert plain(data)


def test_a_wrong_forward_is_caught_as_a_mismatch(monkeypatch):
    good = IMPLEMENTATIONS["im2col"]

    def off_by_a_little(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        return good(x, weight, bias, stride, padding, dilation, groups) * (1 + 1e-6)

    monkeypatch.setitem(IMPLEMENTATIONS, "im2col", off_by_a_little)
    report = run(["im2col"])
    assert not report.ok
    checks = rows(report, "im2col")
    assert checks["stem"].status == "fail"
    assert checks["stem"].max_rel == pytest.approx(1e-6, rel=1e-3)
    assert checks[MODEL_ROW].status == "fail"


def test_a_wrong_gradient_is_caught_even_when_the_output_is_right(monkeypatch):
    good = IMPLEMENTATIONS["im2col"]

    def wrong_backward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        out = good(x, weight, bias, stride, padding, dilation, groups)
        return out + 1e-3 * (out - out.detach())  # same value, gradients scaled by 1.001

    monkeypatch.setitem(IMPLEMENTATIONS, "im2col", wrong_backward)
    checks = rows(run(["im2col"], dtypes=("float64",)), "im2col")
    assert checks["stem"].status == "fail"
    assert checks["stem"].worst.startswith("grad")
    assert checks["stem"].max_rel == pytest.approx(1e-3, rel=1e-6)


def test_an_implementation_that_raises_is_an_error_row(monkeypatch):
    def crashes(*args, **kwargs):
        raise IndexError("tap out of range")

    monkeypatch.setitem(IMPLEMENTATIONS, "naive", crashes)
    checks = rows(run(["naive"], dtypes=("float64",)), "naive")
    assert checks["stem"].status == "error"
    assert checks["stem"].note == "IndexError: tap out of range"
    assert not checks["stem"].ok


def test_layers_an_implementation_refuses_are_not_applicable_not_failures(monkeypatch):
    monkeypatch.setattr(toeplitz, "MEMORY_BUDGET", 100_000)
    report = run(["toeplitz"], dtypes=("float64",))
    checks = rows(report, "toeplitz")
    # stem: 8 x 36 output rows by 3 x 144 input columns, 8 bytes each; "up" is refused too
    assert checks["stem"].status == "not applicable"
    assert "995,328 bytes" in checks["stem"].note
    assert checks["depthwise"].status == "pass"
    assert checks["up"].status == "not applicable"
    assert checks[MODEL_ROW].kind == "1 of 3 conv layers swapped"
    assert checks[MODEL_ROW].status == "pass"
    assert report.ok


def test_a_model_no_layer_accepts_is_not_applicable(monkeypatch):
    def refuses(*args, **kwargs):
        raise NotApplicable("only 7x7")

    monkeypatch.setitem(IMPLEMENTATIONS, "fft", refuses)
    report = verify_model(nn.Conv2d(1, 1, 3), [(1, 1, 5, 5)], ["fft"], device="cpu", repeats=1)
    assert [c.status for c in report.checks] == ["not applicable"] * 4
    assert report.ok


def test_tolerances_follow_dtype_and_kernel_size():
    assert tolerance("float64", 31) == 1e-13
    assert [tolerance("float32", k) for k in (1, 7, 9, 31, 63)] == [1e-6, 1e-6, 1e-5, 1e-5, 1e-4]


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
    console = Console(file=io.StringIO(), width=200, color_system=None)
    render_verify(report, console)
    text = console.file.getvalue()
    assert "verify SmallNet on cpu" in text
    assert "im2col" in text and "toeplitz" in text
    assert "not applicable" in text and "995,328 bytes" in text
    assert "3 of 3 conv layers swapped" in text and "1 of 3 conv layers swapped" in text
    assert text.rstrip().endswith("all implementations match torch")


def fake_loader(monkeypatch, inputs=((2, 3, 12, 12),)):
    from types import SimpleNamespace

    from shapecheck import api
    from shapecheck.engine.discover import InputSpec

    def load_models(path, inputs_flags, init, device):
        assert device == "cpu"
        return [SimpleNamespace(name="SmallNet", model=SmallNet(), inputs=tuple(InputSpec(s) for s in inputs)),
                SimpleNamespace(name="Block", model=nn.Conv2d(1, 1, 3), inputs=())]

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
