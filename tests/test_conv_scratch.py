"""Reused work buffers: what one convolution leaves in them never reaches another's result."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from shapecheck.conv import _scratch, im2col, release_work_buffers, shift_add, winograd

DOUBLE = torch.float64
REUSERS = {
    "im2col": im2col.conv2d,
    "shift_add": shift_add.conv2d,
    "winograd": winograd.conv2d,
}
LAYERS = [
    ((2, 16, 9, 9), (8, 16, 3, 3), {"padding": 1}),
    ((2, 32, 8, 8), (32, 8, 1, 1), {"groups": 4}),
    ((2, 16, 6, 5), (4, 16, 1, 1), {}),  # im2col's columns are the channels-last input copy itself
    ((1, 16, 12, 10), (16, 16, 3, 3), {"padding": 2, "dilation": 2}),
    ((3, 16, 7, 7), (16, 16, 3, 3), {}),
    ((2, 16, 9, 9), (16, 1, 3, 3), {"padding": 1, "groups": 16}),  # depthwise, blocked rows
    ((1, 8, 11, 6), (16, 1, 3, 3), {"padding": 2, "groups": 8}),
]


def _tensors(x_shape, w_shape, seed, grad=False):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(x_shape, generator=gen, dtype=DOUBLE, requires_grad=grad)
    w = torch.randn(w_shape, generator=gen, dtype=DOUBLE, requires_grad=grad)
    return x, w


def _layers(name, times=1):
    return [layer for layer in LAYERS * times if name != "winograd" or layer[1][-1] == 3]


@pytest.fixture(autouse=True)
def fresh_buffers():
    _scratch._local.__dict__.clear()
    yield
    _scratch._local.__dict__.clear()


@pytest.fixture
def no_grad():
    """Grad mode off, as inside an autograd Function's forward, where the convolutions run."""
    with torch.no_grad():
        yield


def test_while_autograd_records_every_buffer_is_fresh():
    like = torch.empty(0)
    first = _scratch.buffer("t", (4, 8), like)
    assert _scratch.buffer("t", (4, 8), like).data_ptr() != first.data_ptr()
    assert not getattr(_scratch._local, "buffers", {})


@pytest.mark.usefixtures("no_grad")
def test_a_reused_buffer_is_the_same_memory_and_a_large_one_is_not(monkeypatch):
    like = torch.empty(0)
    first = _scratch.buffer("t", (4, 8), like)
    assert _scratch.buffer("t", (2, 8), like).data_ptr() == first.data_ptr()
    assert _scratch.buffer("other", (4, 8), like).data_ptr() != first.data_ptr()
    assert _scratch.buffer("t", (4, 8), like.double()).dtype == DOUBLE
    monkeypatch.setattr(_scratch, "LIMIT", 64)
    big = _scratch.buffer("big", (32,), like)  # held, so that the next one cannot take its memory
    assert _scratch.buffer("big", (32,), like).data_ptr() != big.data_ptr()


@pytest.mark.usefixtures("no_grad")
def test_buffers_stop_being_kept_at_the_thread_total_and_can_be_released(monkeypatch):
    like = torch.empty(0)
    monkeypatch.setattr(_scratch, "TOTAL_LIMIT", 100 * like.element_size())
    kept = _scratch.buffer("a", (60,), like)
    assert _scratch.buffer("a", (60,), like).data_ptr() == kept.data_ptr()
    over = _scratch.buffer("b", (50,), like)
    assert _scratch.buffer("b", (50,), like).data_ptr() != over.data_ptr()
    assert _scratch.buffer("b", (40,), like).data_ptr() == _scratch.buffer("b", (40,), like).data_ptr()
    release_work_buffers()
    assert not _scratch._local.buffers


@pytest.mark.usefixtures("no_grad")
def test_each_thread_has_its_own_buffers():
    mine = _scratch.buffer("t", (16,), torch.empty(0)).data_ptr()
    theirs = []

    def other_thread():
        with torch.no_grad():  # grad mode is per thread
            theirs.append(_scratch.buffer("t", (16,), torch.empty(0)).data_ptr())

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert theirs[0] != mine


@pytest.mark.usefixtures("no_grad")
def test_padded_zeroes_the_border_of_a_dirty_buffer():
    _scratch.buffer("p", (2, 3, 8, 9), torch.empty(0)).fill_(7.0)
    x = torch.randn(2, 3, 5, 4)
    got = _scratch.padded("p", x, ((1, 2), (3, 2)))
    torch.testing.assert_close(got, F.pad(x, (3, 2, 1, 2)))
    _scratch.buffer("q", (2, 8, 9, 3), torch.empty(0)).fill_(7.0)
    last = _scratch.padded("q", x, ((1, 2), (3, 2)), channels_last=True)
    torch.testing.assert_close(last, F.pad(x, (3, 2, 1, 2)).movedim(1, -1))


@pytest.mark.parametrize("name", REUSERS)
def test_outputs_survive_the_next_call_and_padding_starts_from_zero(name):
    conv = REUSERS[name]
    outputs = []
    with torch.no_grad():
        for seed, (x_shape, w_shape, kwargs) in enumerate(_layers(name, 2)):
            x, w = _tensors(x_shape, w_shape, seed)
            outputs.append((conv(x, w, **kwargs), F.conv2d(x, w, **kwargs)))
    for got, want in outputs:  # every buffer has since been reused by the later layers
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", REUSERS)
def test_what_backward_saves_survives_other_layers_run_without_grad(name):
    conv = REUSERS[name]
    for seed, (x_shape, w_shape, kwargs) in enumerate(_layers(name)):
        x, w = _tensors(x_shape, w_shape, seed, grad=True)
        out = conv(x, w, **kwargs)
        with torch.no_grad():  # overwrite every work buffer with another layer's data
            for other_x, other_w, other_kwargs in _layers(name):
                conv(*_tensors(other_x, other_w, seed + 10), **other_kwargs)
        cotangent = torch.randn_like(out)
        got = torch.autograd.grad(out, (x, w), cotangent)
        want = torch.autograd.grad(F.conv2d(x, w, **kwargs), (x, w), cotangent)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", REUSERS)
def test_a_buffer_made_in_inference_mode_serves_a_later_ordinary_call(name):
    x, w = _tensors((2, 16, 8, 8), (16, 16, 3, 3), 0)
    with torch.inference_mode():
        first = REUSERS[name](x, w, padding=1)
    x, w = (t.requires_grad_() for t in _tensors((2, 16, 8, 8), (16, 16, 3, 3), 1))
    out = REUSERS[name](x, w, padding=1)
    torch.testing.assert_close(first, F.conv2d(*_tensors((2, 16, 8, 8), (16, 16, 3, 3), 0), padding=1))
    torch.testing.assert_close(out, F.conv2d(x, w, padding=1))
    out.sum().backward()


def test_fake_tensors_of_a_trace_are_never_kept():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        im2col.conv2d(torch.randn(2, 16, 8, 8), torch.randn(8, 16, 3, 3), padding=1)
    assert not getattr(_scratch._local, "buffers", {})


@pytest.mark.cuda
@pytest.mark.usefixtures("no_grad")
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_buffers_are_never_kept():
    like = torch.empty(0, device="cuda")
    assert _scratch.buffer("c", (64,), like).device.type == "cuda"
    assert not any(key[2].type == "cuda" for key in getattr(_scratch._local, "buffers", {}))


OUTPUT_CASES = [  # (implementation, x shape, w shape, kwargs): the layouts whose result used to be a view
    ("shift_add", (1, 16, 8, 8), (8, 16, 1, 1), {"stride": 2}),  # one image, a strided shortcut: no crop
    ("shift_add", (2, 8, 6, 6), (8, 1, 3, 3), {"padding": 1, "groups": 8}),  # depthwise rows
    ("im2col", (2, 16, 1, 1), (8, 16, 1, 1), {}),  # one position
    ("im2col", (2, 3, 6, 6), (4, 3, 3, 3), {"padding": 1}),  # few channels: (N, G, O/G, positions)
    ("winograd", (2, 4, 6, 6), (4, 4, 3, 3), {"padding": 1}),  # whole tiles: no crop
]


@pytest.mark.parametrize("name, x_shape, w_shape, kwargs", OUTPUT_CASES)
def test_the_output_is_its_own_tensor_that_can_be_changed_in_place(name, x_shape, w_shape, kwargs):
    """`out += shortcut` and `relu_(out)` on a convolution's output, as ResNet blocks do; a
    second call must not write into the first one's output."""
    conv = REUSERS[name]
    x, w = _tensors(x_shape, w_shape, 0, grad=True)
    out = conv(x, w, **kwargs)
    first = out.detach().clone()
    conv(*_tensors(x_shape, w_shape, 1), **kwargs)
    torch.testing.assert_close(out.detach(), first, rtol=0, atol=0)
    out += 1.0
    cotangent = torch.randn_like(out)
    got = torch.autograd.grad(out, (x, w), cotangent)
    want = torch.autograd.grad(F.conv2d(x, w, **kwargs) + 1.0, (x, w), cotangent)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
