"""Every from-scratch convolution equals torch's, forward and backward, in float64."""

from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shapecheck.conv import IMPLEMENTATIONS, NotApplicable
from shapecheck.conv import transposed
from shapecheck.conv.toeplitz import MEMORY_BUDGET, MatrixTooLarge

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TIGHT = dict(rtol=1e-11, atol=1e-12)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def implementation_module(name: str):
    """The module of a registered implementation; skips only if it is not written yet."""
    try:
        return importlib.import_module(IMPLEMENTATIONS[name].__module__)
    except ModuleNotFoundError as missing:
        if missing.name == f"shapecheck.conv.{name}":
            pytest.skip(f"implementation {name!r} does not exist yet")
        raise


def winograd_applies(case) -> bool:
    dims = len(case["weight"]) - 2
    return case["weight"][2:] == (3,) * dims and case["stride"] in (1, (1,) * dims)


def must_apply(name: str, case) -> bool:
    """Whether ``name`` has to accept this case (winograd refuses what is not 3x3, stride 1)."""
    return name != "winograd" or winograd_applies(case)


def maybe_int(draw, values: tuple[int, ...]):
    """Pass a tuple, or the int form when all entries agree and hypothesis says so."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return values


@st.composite
def conv_cases(draw, dims: int = 2):
    groups = draw(st.integers(1, 3))
    in_channels = groups * draw(st.integers(1, 2))
    out_channels = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]),
                             st.tuples(*[st.integers(0, 3)] * dims)))
    stride = (1,) * dims if padding == "same" else tuple(draw(st.integers(1, 3)) for _ in range(dims))
    pads = (0,) * dims if isinstance(padding, str) else padding
    sizes = []
    for k, d, p in zip(kernel, dilation, pads):
        needed = 1 if padding == "same" else max(1, d * (k - 1) + 1 - 2 * p)
        sizes.append(needed + draw(st.integers(0, 4 if dims < 3 else 2)))
    return dict(
        x=(draw(st.integers(1, 2)), in_channels, *sizes),
        weight=(out_channels, in_channels // groups, *kernel),
        bias=draw(st.booleans()),
        stride=maybe_int(draw, stride),
        padding=padding if isinstance(padding, str) else maybe_int(draw, padding),
        dilation=maybe_int(draw, dilation),
        groups=groups,
    )


def tensors(case, dtype=torch.float64, device="cpu", seed=0):
    gen = torch.Generator().manual_seed(seed)
    make = lambda shape: torch.randn(shape, generator=gen, dtype=torch.float64).to(device, dtype)  # noqa: E731
    bias_size = case["weight"][0] if "output_padding" not in case else case["weight"][1] * case["groups"]
    return make(case["x"]), make(case["weight"]), make((bias_size,)) if case["bias"] else None


def forward_and_grads(conv, case, dtype=torch.float64, device="cpu"):
    """Output and the gradients of input, weight (and bias) for a fixed random cotangent."""
    x, weight, bias = tensors(case, dtype, device)
    leaves = [t.requires_grad_() for t in (x, weight, bias) if t is not None]
    kwargs = {k: v for k, v in case.items() if k not in ("x", "weight", "bias")}
    out = conv(x, weight, bias, **kwargs)
    gen = torch.Generator().manual_seed(1)
    cotangent = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(device, dtype)
    return (out, *torch.autograd.grad(out, leaves, cotangent))


def assert_matches(ours, theirs, **tolerance):
    assert len(ours) == len(theirs)
    for what, a, b in zip(("output", "grad input", "grad weight", "grad bias"), ours, theirs):
        assert a.shape == b.shape, what
        assert a.dtype == b.dtype, what
        torch.testing.assert_close(a, b, **(tolerance or TIGHT), msg=lambda m: f"{what}: {m}")


def check_against_torch(name: str, case, dims: int):
    conv = getattr(implementation_module(name), f"conv{dims}d")
    expected = forward_and_grads(TORCH_CONV[dims], case)
    try:
        got = forward_and_grads(conv, case)
    except NotApplicable:
        assert not must_apply(name, case), f"{name} refused {case}"
        return
    assert_matches(got, expected)


@pytest.mark.parametrize("name", IMPLEMENTATIONS.names())
@PROPERTY
@given(case=conv_cases(dims=2))
def test_conv2d_equals_torch_forward_and_backward(name, case):
    check_against_torch(name, case, 2)


@pytest.mark.parametrize("name", ["naive", "im2col", "toeplitz"])
@pytest.mark.parametrize("dims", [1, 3])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_conv1d_and_conv3d_equal_torch(name, dims, data):
    check_against_torch(name, data.draw(conv_cases(dims=dims)), dims)


@pytest.mark.parametrize("name", IMPLEMENTATIONS.names())
def test_hard_cases_are_not_refused(name):
    """Depthwise with a channel multiplier, non-square even kernel with "same", every option at once."""
    cases = [
        dict(x=(2, 4, 9, 8), weight=(8, 1, 3, 3), bias=True, stride=1, padding=1, dilation=1, groups=4),
        dict(x=(1, 3, 7, 10), weight=(6, 3, 3, 3), bias=True, stride=1, padding="same", dilation=1, groups=1),
        dict(x=(2, 6, 11, 9), weight=(4, 3, 2, 4), bias=True, stride=1, padding="same", dilation=(2, 1), groups=2),
        dict(x=(2, 6, 13, 12), weight=(9, 2, 4, 3), bias=False, stride=(3, 2), padding=(2, 0),
             dilation=(1, 3), groups=3),
    ]
    for case in cases:
        check_against_torch(name, case, 2)


@pytest.mark.parametrize("name", IMPLEMENTATIONS.names())
@pytest.mark.parametrize("dtype, bound", [(torch.float32, 1e-5), (torch.bfloat16, 3e-2)])
def test_other_dtypes_keep_dtype_and_stay_close_to_exact(name, dtype, bound):
    """Low precision is compared with the float64 result, relative to its largest entry."""
    case = dict(x=(2, 4, 8, 8), weight=(6, 2, 3, 3), bias=True, stride=1, padding=1, dilation=1, groups=2)
    conv = implementation_module(name).conv2d
    exact = forward_and_grads(F.conv2d, case)
    for what, got, want in zip(("output", "grad input", "grad weight", "grad bias"),
                               forward_and_grads(conv, case, dtype), exact):
        assert got.dtype == dtype, what
        assert (got.double() - want).abs().max() <= bound * want.abs().max(), what


@pytest.mark.parametrize("name", IMPLEMENTATIONS.names())
def test_unbatched_input(name):
    x, weight, bias = torch.randn(3, 6, 7, dtype=torch.float64), torch.randn(4, 3, 3, 3, dtype=torch.float64), None
    out = implementation_module(name).conv2d(x, weight, bias, padding=1)
    torch.testing.assert_close(out, F.conv2d(x, weight, bias, padding=1), **TIGHT)


@pytest.mark.parametrize("name", IMPLEMENTATIONS.names())
def test_invalid_arguments_fail_like_torch(name):
    conv = implementation_module(name).conv2d
    x, weight = torch.randn(1, 3, 8, 8), torch.randn(4, 2, 3, 3)
    with pytest.raises(RuntimeError, match="expected input.*to have 2 channels, but got 3"):
        conv(x, weight)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        conv(torch.randn(1, 2, 8, 8), weight, stride=2, padding="same")
    with pytest.raises(RuntimeError, match="too small"):
        conv(torch.randn(1, 2, 2, 2), weight)


def test_toeplitz_refuses_a_matrix_over_budget_with_its_size():
    toeplitz = implementation_module("toeplitz")
    x, weight = torch.randn(1, 2, 8, 8, dtype=torch.float64), torch.randn(3, 2, 3, 3, dtype=torch.float64)
    # 3 output channels x 36 positions rows, 2 input channels x 64 positions columns, 8 bytes each
    with pytest.raises(MatrixTooLarge, match=r"110,592 bytes \(1 x 108 x 128\), over the budget of 100,000") as err:
        toeplitz.conv2d(x, weight, budget=100_000)
    assert err.value.nbytes == 110_592
    assert isinstance(err.value, NotApplicable)
    torch.testing.assert_close(toeplitz.conv2d(x, weight, budget=110_592), F.conv2d(x, weight), **TIGHT)


def test_toeplitz_default_budget_refuses_an_imagenet_layer_before_allocating():
    toeplitz = implementation_module("toeplitz")
    x, weight = torch.randn(1, 3, 224, 224), torch.randn(64, 3, 7, 7)
    with pytest.raises(MatrixTooLarge) as err:
        toeplitz.conv2d(x, weight, stride=2, padding=3)
    assert err.value.nbytes == 64 * 112 * 112 * 3 * 224 * 224 * 4
    assert err.value.budget == MEMORY_BUDGET


@st.composite
def transpose_cases(draw, dims: int = 2):
    groups = draw(st.integers(1, 3))
    in_channels = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, 3)) for _ in range(dims))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    sizes = tuple(draw(st.integers(1, 4 if dims < 3 else 3)) for _ in range(dims))
    assume(all((i - 1) * s - 2 * p + d * (k - 1) + op >= 0
               for i, s, p, d, k, op in zip(sizes, stride, padding, dilation, kernel, output_padding)))
    return dict(
        x=(draw(st.integers(1, 2)), in_channels, *sizes),
        weight=(in_channels, draw(st.integers(1, 2)), *kernel),
        bias=draw(st.booleans()),
        stride=maybe_int(draw, stride),
        padding=maybe_int(draw, padding),
        output_padding=maybe_int(draw, output_padding),
        groups=groups,
        dilation=maybe_int(draw, dilation),
    )


@pytest.mark.parametrize("dims", [1, 2, 3])
@PROPERTY
@given(data=st.data())
def test_conv_transpose_scatter_equals_torch(dims, data):
    case = data.draw(transpose_cases(dims))
    ours = forward_and_grads(getattr(transposed, f"conv_transpose{dims}d"), case)
    assert_matches(ours, forward_and_grads(TORCH_CONV_TRANSPOSE[dims], case))


@pytest.mark.parametrize("name", IMPLEMENTATIONS.names())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=transpose_cases(dims=2))
def test_conv_transpose_through_each_convolution_equals_torch(name, case):
    conv = implementation_module(name).conv2d
    expected = forward_and_grads(F.conv_transpose2d, case)
    try:
        got = forward_and_grads(lambda *a, **k: transposed.conv_transpose2d(*a, **k, conv=conv), case)
    except NotApplicable:
        # the inner convolution has stride 1 and the layer's dilation
        assert not must_apply(name, {**case, "stride": 1}), f"{name} refused {case}"
        return
    assert_matches(got, expected)


def test_conv_transpose_rejects_what_torch_rejects():
    x, weight = torch.randn(1, 2, 4, 4), torch.randn(2, 3, 3, 3)
    with pytest.raises(RuntimeError, match="output padding must be smaller than either stride or dilation"):
        transposed.conv_transpose2d(x, weight, stride=2, output_padding=2)
    with pytest.raises(RuntimeError, match="expected input.*to have 2 channels, but got 3"):
        transposed.conv_transpose2d(torch.randn(1, 3, 4, 4), weight)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", IMPLEMENTATIONS.names())
def test_cuda_conv2d_equals_torch_on_the_gpu(name):
    case = dict(x=(2, 6, 11, 9), weight=(4, 3, 3, 3), bias=True, stride=1, padding="same", dilation=1, groups=2)
    conv = implementation_module(name).conv2d
    got = forward_and_grads(conv, case, device="cuda")
    assert all(t.device.type == "cuda" for t in got)
    assert_matches(got, forward_and_grads(F.conv2d, case, device="cuda"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_conv_transpose_equals_torch_on_the_gpu():
    case = dict(x=(2, 4, 5, 6), weight=(4, 3, 3, 2), bias=True, stride=2, padding=1, output_padding=1,
                groups=2, dilation=1)
    got = forward_and_grads(transposed.conv_transpose2d, case, device="cuda")
    assert_matches(got, forward_and_grads(F.conv_transpose2d, case, device="cuda"))
