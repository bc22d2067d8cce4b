"""Every from-scratch convolution under every autograd mode and in mixed precision.

First and second order gradients in float64 (``gradcheck``/``gradgradcheck`` in fast mode: a
random projection of the Jacobian against finite differences, which a wrong derivative fails
with probability one; the full Jacobians are the ``slow`` test), gradients with
``create_graph=True`` against torch's, ``no_grad`` and ``inference_mode``; then autocast and
half-precision inputs (dtype of the result and error against the float64 answer, compared with
torch's own error in the same dtype) and channels_last layouts.
"""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.autograd import gradcheck, gradgradcheck

from shapecheck.conv import IMPLEMENTATIONS, _depthwise, im2col, shift_add, transposed
from shapecheck.conv._args import normalize

NAMES = IMPLEMENTATIONS.names()
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, CUDA])]

# (x shape, weight shape, keyword arguments): each path of each implementation.
CASES = {
    "3x3 padded": ((2, 4, 6, 5), (3, 4, 3, 3), dict(padding=1)),
    "grouped": ((1, 4, 5, 6), (4, 2, 3, 3), dict(groups=2, padding=(1, 0))),
    "depthwise x2": ((1, 3, 5, 5), (6, 1, 3, 3), dict(groups=3, padding=1)),
    "1x1": ((2, 4, 4, 3), (3, 4, 1, 1), {}),
    "strided dilated": ((1, 2, 9, 8), (3, 2, 3, 2), dict(stride=2, dilation=(2, 1), padding=1)),
}


def conv_of(name):
    return importlib.import_module(f"shapecheck.conv.{name}").conv2d


def applies(name, case_name) -> bool:
    return name != "winograd" or case_name not in ("strided dilated", "1x1")


def leaves(x_shape, w_shape, dtype=torch.float64, device="cpu", seed=0):
    gen = torch.Generator().manual_seed(seed)
    make = lambda shape: torch.randn(shape, generator=gen, dtype=torch.float64).to(device, dtype)  # noqa: E731
    return [make(s).requires_grad_() for s in (x_shape, w_shape, (w_shape[0],))]


def all_pairs():
    return [pytest.param(n, c, id=f"{n}-{c}") for n in NAMES for c in CASES if applies(n, c)]


@pytest.mark.parametrize("name, case", all_pairs())
def test_gradcheck_and_gradgradcheck(name, case):
    x_shape, w_shape, kwargs = CASES[case]
    conv = conv_of(name)
    fn = lambda x, w, b: conv(x, w, b, **kwargs)  # noqa: E731
    inputs = leaves(x_shape, w_shape)
    assert gradcheck(fn, inputs, fast_mode=True)
    assert gradgradcheck(fn, inputs, fast_mode=True)


DEPTHWISE_CASES = {
    "3x3 padded, bias": ((2, 3, 6, 5), (3, 1, 3, 3), dict(padding=1, groups=3)),
    "strided dilated 3x2": ((1, 3, 9, 8), (3, 1, 3, 2), dict(stride=2, dilation=(2, 1), padding=1, groups=3)),
    "multiplier x2, 5x5": ((2, 2, 7, 7), (4, 1, 5, 5), dict(padding=2, groups=2)),
}


@pytest.mark.parametrize("block_rows", [1, 3, None], ids=["a block per row", "uneven blocks", "one block"])
@pytest.mark.parametrize("case", DEPTHWISE_CASES)
def test_depthwise_hand_written_backward_in_blocks(monkeypatch, case, block_rows):
    """The depthwise path takes rows in blocks: every blocking gives torch's gradients, and
    gradgradcheck (autograd's own backward under create_graph) stays right."""
    x_shape, w_shape, kwargs = DEPTHWISE_CASES[case]
    x, w, b = leaves(x_shape, w_shape)
    if block_rows is not None:
        args = normalize(x, w, kwargs.get("stride", 1), kwargs["padding"], kwargs.get("dilation", 1), kwargs["groups"])
        lay = shift_add.layout(x.shape[2:], args)
        monkeypatch.setattr(_depthwise, "BLOCK_BYTES", block_rows * 8 * (lay.phases * lay.block + lay.tail))
        monkeypatch.setattr(_depthwise, "WHOLE_BYTES", 0)
    fn = lambda x, w, b: shift_add.conv2d(x, w, b, **kwargs)  # noqa: E731
    out = fn(x, w, b)
    grad = torch.randn_like(out)
    want = torch.autograd.grad(F.conv2d(x, w, b, **kwargs), (x, w, b), grad)
    torch.testing.assert_close(out, F.conv2d(x, w, b, **kwargs), rtol=1e-12, atol=1e-12)
    for got, expected in zip(torch.autograd.grad(out, (x, w, b), grad), want):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert gradcheck(fn, (x, w, b), fast_mode=True)
    assert gradgradcheck(fn, (x, w, b), fast_mode=True)


def _flat_plan(x, w, **kwargs):
    args = normalize(x, w, kwargs.get("stride", 1), kwargs.get("padding", 0), kwargs.get("dilation", 1), x.shape[1])
    return _depthwise.flat_plan(x.shape[2:], shift_add.layout(x.shape[2:], args))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 7), w=st.integers(1, 7), k=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)), pad_h=st.integers(0, 4),
       same=st.booleans(), bias=st.booleans(), block_rows=st.sampled_from([1, 2, 5, None]))
def test_depthwise_flat_forward_is_torchs(h, w, k, dilation, pad_h, same, bias, block_rows):
    """The flat road (output rows as wide as the input's) against F.conv2d in float64, across
    kernel sizes, dilations, vertical paddings, even kernels ("same" pads one side more) and
    blockings; its taps read the image at flat offsets, so any slip reads a neighbouring row."""
    gen = torch.Generator().manual_seed(h * 100 + w * 10 + k[0])
    x = torch.randn(2, 3, h, w, dtype=torch.float64, generator=gen)
    weight = torch.randn(3, 1, *k, dtype=torch.float64, generator=gen)
    b = torch.randn(3, dtype=torch.float64, generator=gen) if bias else None
    if same:
        kwargs = dict(padding="same", dilation=dilation)
    else:
        kwargs = dict(padding=(pad_h, dilation[1] * (k[1] - 1) // 2), dilation=dilation)
    try:
        want = F.conv2d(x, weight, b, groups=3, **kwargs)
    except RuntimeError:  # an empty output: torch refuses it, and so does shift_add
        return
    with pytest.MonkeyPatch.context() as patch:
        if block_rows is not None:
            patch.setattr(_depthwise, "BLOCK_BYTES", block_rows * 8 * h * w)
            patch.setattr(_depthwise, "WHOLE_BYTES", 0)
        got = shift_add.conv2d(x, weight, b, groups=3, **kwargs)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_depthwise_flat_road_where_it_applies():
    x = torch.empty(2, 4, 8, 8)
    assert _flat_plan(x, torch.empty(4, 1, 3, 3), padding=1) is not None
    assert _flat_plan(x, torch.empty(4, 1, 5, 5), padding=2) is not None
    assert _flat_plan(x, torch.empty(4, 1, 3, 3), padding=(0, 1)) is not None  # rows narrower is fine
    assert _flat_plan(x, torch.empty(4, 1, 3, 3)) is None  # output rows narrower than the input's
    assert _flat_plan(x, torch.empty(4, 1, 3, 3), padding=1, stride=2) is None
    assert _flat_plan(x, torch.empty(4, 1, 7, 7), padding=3) is None  # six sideways shifts: copies cost more


def test_depthwise_flat_road_with_only_sideways_taps():
    """A 1x2 kernel dilated by 3 with "same" padding on a 2-wide image: one tap falls outside
    the image, the other shifts one column left, so no tap reads the image unshifted."""
    x, w = torch.randn(1, 2, 1, 2, dtype=torch.float64), torch.randn(2, 1, 1, 2, dtype=torch.float64)
    assert [dw for dw, _ in _flat_plan(x, w, padding="same", dilation=(1, 3))] == [-1]
    torch.testing.assert_close(shift_add.conv2d(x, w, padding="same", dilation=(1, 3), groups=2),
                               F.conv2d(x, w, padding="same", dilation=(1, 3), groups=2), rtol=1e-12, atol=1e-12)


def test_depthwise_flat_road_keeps_nan_and_inf_where_torch_does():
    """A NaN or infinity at a row's edge must not leak into the next row's outputs through a
    sideways tap (the copy's zeroed columns keep it out)."""
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    x[0, 0, 1, 0], x[0, 0, 3, 5], x[0, 1, 2, 5] = float("nan"), float("inf"), -float("inf")
    w = torch.randn(2, 1, 3, 3, dtype=torch.float64)
    want, got = F.conv2d(x, w, padding=1, groups=2), shift_add.conv2d(x, w, padding=1, groups=2)
    assert torch.equal(got.isnan(), want.isnan()) and torch.equal(got.isinf(), want.isinf())
    finite = want.isfinite()
    torch.testing.assert_close(got[finite], want[finite], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("needs", [(True, False), (False, True)], ids=["input only", "weight only"])
def test_depthwise_backward_of_one_input(needs):
    x, w, _ = leaves((2, 4, 6, 6), (4, 1, 3, 3))
    x.requires_grad_(needs[0])
    w.requires_grad_(needs[1])
    wanted = [t for t in (x, w) if t.requires_grad]
    out = shift_add.conv2d(x, w, None, padding=1, groups=4)
    got = torch.autograd.grad(out.sum(), wanted)
    want = torch.autograd.grad(F.conv2d(x, w, None, padding=1, groups=4).sum(), wanted)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shift_add", "winograd"])
def test_full_gradgradcheck_of_the_hand_written_backwards(name):
    fn = lambda x, w, b: conv_of(name)(x, w, b, padding=1)  # noqa: E731
    inputs = leaves((1, 2, 4, 4), (2, 2, 3, 3))
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


@pytest.mark.parametrize("case", CASES)
def test_im2col_columns_and_col2im_are_adjoint_to_every_order(case):
    """im2col's second-order path differentiates its columns; their backward is col2im and
    col2im's is the columns again, so each is checked to second order and against the other."""
    x_shape, w_shape, kwargs = CASES[case]
    x, w, _ = leaves(x_shape, w_shape)
    args = normalize(x, w, kwargs.get("stride", 1), kwargs.get("padding", 0), kwargs.get("dilation", 1),
                     kwargs.get("groups", 1))
    columns = lambda t: im2col._Columns.apply(t, args)  # noqa: E731
    back = lambda c: im2col._Col2im.apply(c, x.shape, args)  # noqa: E731
    c = torch.randn(columns(x).shape, dtype=torch.float64, requires_grad=True)
    for fn, inputs in ((columns, (x,)), (back, (c,))):
        assert gradcheck(fn, inputs) and gradgradcheck(fn, inputs)
    with torch.no_grad():  # <columns(x), c> = <x, col2im(c)>
        torch.testing.assert_close((columns(x) * c).sum(), (x * back(c)).sum(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("conv", [None, *NAMES], ids=lambda c: f"through {c}" if c else "direct")
def test_conv_transpose_gradcheck_and_gradgradcheck(conv):
    x, w, _ = leaves((1, 4, 4, 3), (4, 3, 3, 3))
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)  # groups * weight.shape[1] outputs
    inner = None if conv is None else conv_of(conv)
    # winograd needs stride 1 for the convolution it runs; the others get stride 2 as well
    stride = 1 if conv == "winograd" else 2
    fn = lambda x, w, b: transposed.conv_transpose2d(  # noqa: E731
        x, w, b, stride=stride, padding=1, output_padding=stride - 1, groups=2, conv=inner)
    assert gradcheck(fn, (x, w, b), fast_mode=True)
    assert gradgradcheck(fn, (x, w, b), fast_mode=True)


def gradient_penalty(conv, x, w, b, kwargs):
    """d ||dL/dw||^2 / d(x, w): the second-order term of WGAN-GP and MAML."""
    out = conv(x, w, b, **kwargs)
    (gw,) = torch.autograd.grad((out * out.detach().sin()).sum(), w, create_graph=True)
    return torch.autograd.grad(gw.square().sum(), (x, w), allow_unused=True, materialize_grads=True)


@pytest.mark.parametrize("name, case", all_pairs())
def test_create_graph_gives_torchs_second_order_gradients(name, case):
    x_shape, w_shape, kwargs = CASES[case]
    x, w, b = leaves(x_shape, w_shape)
    ours = gradient_penalty(conv_of(name), x, w, b, kwargs)
    theirs = gradient_penalty(F.conv2d, x, w, b, kwargs)
    for got, want in zip(ours, theirs):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
@pytest.mark.parametrize("name", NAMES)
def test_no_grad_and_inference_mode(name, mode):
    x, w, b = leaves((2, 4, 6, 5), (3, 4, 3, 3))
    with mode():
        got = conv_of(name)(x, w, b, padding=1)
        want = F.conv2d(x, w, b, padding=1)
    assert not got.requires_grad
    assert got.is_inference() == want.is_inference()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# -- mixed precision ------------------------------------------------------------------------
PRECISION_CASE = ((2, 16, 12, 12), (8, 16, 3, 3), dict(padding=1))
DEPTHWISE_7X7 = ((2, 8, 14, 14), (8, 1, 7, 7), dict(padding=3, groups=8))


def run_and_grads(conv, x, w, b, kwargs, seed=1):
    x, w, b = (t.detach().requires_grad_() for t in (x, w, b))
    out = conv(x, w, b, **kwargs)
    gen = torch.Generator().manual_seed(seed)
    cotangent = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.device, out.dtype)
    return (out, *torch.autograd.grad(out, (x, w, b), cotangent))


def rel_error(got, want) -> float:
    return ((got.double() - want).abs().max() / want.abs().max()).item()


def exact_of(x, w, b, kwargs):
    """The float64 answer for the problem that torch solves in the low-precision dtype."""
    return run_and_grads(F.conv2d, *(t.double() for t in (x, w, b)), kwargs)


def errors_vs_exact(conv, inputs, kwargs, context):
    with context():
        got = run_and_grads(conv, *inputs, kwargs)
    return got, [rel_error(g, e) for g, e in zip(got, exact_of(*inputs, kwargs))]


def assert_like_torch(name, inputs, kwargs, context, dtype):
    ours, our_err = errors_vs_exact(conv_of(name), inputs, kwargs, context)
    theirs, torch_err = errors_vs_exact(F.conv2d, inputs, kwargs, context)
    for what, a, b, mine, torch_own in zip(("output", "grad x", "grad w", "grad b"), ours, theirs,
                                           our_err, torch_err):
        assert a.dtype == b.dtype, what
        assert mine <= 2 * torch_own + 1e-7, f"{what}: {mine:.2e} vs torch's {torch_own:.2e}"
    assert ours[0].dtype == dtype


def autocast_on(device, dtype):
    return lambda: torch.autocast(device, dtype=dtype)


@pytest.mark.parametrize("device, dtype", [
    ("cpu", torch.bfloat16),
    pytest.param("cuda", torch.float16, marks=[pytest.mark.cuda, CUDA]),
    pytest.param("cuda", torch.bfloat16, marks=[pytest.mark.cuda, CUDA]),
])
@pytest.mark.parametrize("case", [PRECISION_CASE, DEPTHWISE_7X7], ids=["3x3", "depthwise 7x7"])
@pytest.mark.parametrize("name", NAMES)
def test_autocast_gives_torchs_dtype_and_error(name, case, device, dtype):
    x_shape, w_shape, kwargs = case
    if name == "winograd" and w_shape[-1] != 3:
        pytest.skip("winograd is 3x3 only")
    inputs = leaves(x_shape, w_shape, torch.float32, device)
    assert_like_torch(name, inputs, kwargs, autocast_on(device, dtype), dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("case", [PRECISION_CASE, DEPTHWISE_7X7], ids=["3x3", "depthwise 7x7"])
@pytest.mark.parametrize("name", NAMES)
def test_half_inputs_give_torchs_dtype_and_error(name, case, dtype, device):
    x_shape, w_shape, kwargs = case
    if name == "winograd" and w_shape[-1] != 3:
        pytest.skip("winograd is 3x3 only")
    inputs = leaves(x_shape, w_shape, dtype, device)
    from contextlib import nullcontext
    assert_like_torch(name, inputs, kwargs, nullcontext, dtype)


@pytest.mark.parametrize("layout", ["input", "weight", "both"])
@pytest.mark.parametrize("name", NAMES)
def test_channels_last_in_gives_channels_last_out(name, layout):
    x, w, b = (t.detach() for t in leaves((2, 4, 6, 5), (3, 4, 3, 3), torch.float32))
    if layout in ("input", "both"):
        x = x.to(memory_format=torch.channels_last)
    if layout in ("weight", "both"):
        w = w.to(memory_format=torch.channels_last)
    got, want = conv_of(name)(x, w, b, padding=1), F.conv2d(x, w, b, padding=1)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert got.stride() == want.stride()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_conv_transpose_under_autocast_gives_torchs_dtype():
    x, w, _ = (t.detach() for t in leaves((1, 4, 5, 5), (4, 3, 3, 3), torch.float32))
    b = torch.randn(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = transposed.conv_transpose2d(x, w, b, stride=2)
        want = F.conv_transpose2d(x, w, b, stride=2)
    assert got.dtype == want.dtype == torch.bfloat16
    assert rel_error(got, F.conv_transpose2d(x.double(), w.double(), b.double(), stride=2)) \
        <= 2 * rel_error(want, F.conv_transpose2d(x.double(), w.double(), b.double(), stride=2))


def test_depthwise_blocks_whole_up_to_whole_bytes(monkeypatch):
    monkeypatch.setattr(_depthwise, "WHOLE_BYTES", 1000)
    monkeypatch.setattr(_depthwise, "BLOCK_BYTES", 300)
    assert _depthwise._block_rows(10, 100) == 10  # 1000 bytes: one block
    assert _depthwise._block_rows(11, 100) == 3  # 1100 bytes: blocks of 300
    assert _depthwise._block_rows(11, 400) == 1  # a row larger than a block is a block
