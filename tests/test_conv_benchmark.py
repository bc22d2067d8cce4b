"""benchmarks/conv.py runs end to end on a small layer, on the CPU and (where there is one) the GPU."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "conv.py"


@pytest.fixture
def bench(monkeypatch):
    spec = importlib.util.spec_from_file_location("conv_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def _tables(bench, capsys, device):
    threads = torch.get_num_threads()
    try:
        assert bench.main(["--quick", "--layers", "LeNet conv1", "--device", device]) == 0
    finally:
        torch.set_num_threads(threads)
    return capsys.readouterr().out


def test_the_benchmark_prints_every_table_on_the_cpu(bench, capsys):
    out = _tables(bench, capsys, "cpu")
    for title in ("## Forward time / F.conv2d (NCHW fp32, 2 threads", "## Backward", "## Throughput",
                  "## Where the time goes", "Full fp32 on both sides"):
        assert title in out
    assert "| LeNet conv1 |" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_a_gpu_exits_2(bench, capsys):
    assert bench.main(["--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_benchmark_runs_on_the_gpu(bench, capsys):
    out = _tables(bench, capsys, "cuda")
    assert torch.cuda.get_device_name() in out and "| LeNet conv1 |" in out
    assert bench.DEVICE.type == "cuda"


def test_the_memory_benchmark_measures_each_training_step_in_a_process_of_its_own(capsys):
    spec = importlib.util.spec_from_file_location("conv_memory_benchmark", SCRIPT.with_name("conv_memory.py"))
    memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(memory)
    out = memory._resnet18()(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert memory.main(["train", "--impls", "torch,im2col", "--batch", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| torch") or
            line.startswith("| im2col")]
    assert [r.split(" | ")[0] for r in rows] == ["| torch", "| im2col"]
    assert all(float(r.split(" | ")[2].rstrip(" |")) > 0 for r in rows)  # seconds per step
