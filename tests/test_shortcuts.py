"""The shape-only shortcuts agree with torch: same shape, dtype and in-place identity where they
answer, and no answer (torch decides, with its own error) wherever torch would refuse."""

import warnings

import pytest
import torch
from hypothesis import example, given, settings, strategies as st
from torch.nn import functional as F

from shapecheck.engine.shortcuts import shortcut

DTYPES = (torch.float32, torch.float16, torch.int64)


def _torch(func, args, kwargs):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return func(*args, **kwargs), None
    except Exception as exc:  # noqa: BLE001 - any refusal of torch's
        return None, exc


def _agree(func, args, kwargs):
    quick = shortcut(func, args, kwargs)
    real, error = _torch(func, args, kwargs)
    if quick is None:
        return  # torch decides: nothing to compare
    assert error is None, f"the shortcut answered where torch refuses: {error}"
    assert quick.shape == real.shape and quick.dtype == real.dtype and quick.device == real.device
    assert (quick is args[0]) == (real is args[0])


def _meta(shape, dtype=torch.float32):
    return torch.empty(shape, device="meta", dtype=dtype)


shapes = st.lists(st.integers(0, 5), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(shape=shapes, channels=st.integers(1, 5), training=st.booleans(),
       with_stats=st.booleans(), with_affine=st.booleans(), dtype=st.sampled_from(DTYPES))
def test_batch_norm(shape, channels, training, with_stats, with_affine, dtype):
    x = _meta(shape, dtype)
    stats = [_meta((channels,), dtype), _meta((channels,), dtype)] if with_stats else [None, None]
    affine = [_meta((channels,), dtype), _meta((channels,), dtype)] if with_affine else [None, None]
    _agree(F.batch_norm, (x, *stats, *affine, training), {})


@settings(max_examples=150, deadline=None)
@given(shape=shapes, normalized=st.lists(st.integers(0, 5), min_size=1, max_size=3),
       with_affine=st.booleans(), dtype=st.sampled_from(DTYPES))
def test_layer_norm(shape, normalized, with_affine, dtype):
    x = _meta(shape, dtype)
    weight = _meta(tuple(normalized), dtype) if with_affine else None
    _agree(F.layer_norm, (x, tuple(normalized), weight, weight), {})


@settings(max_examples=150, deadline=None)
@given(shape=shapes, groups=st.integers(-1, 6), with_affine=st.booleans(), dtype=st.sampled_from(DTYPES))
def test_group_norm(shape, groups, with_affine, dtype):
    x = _meta(shape, dtype)
    channels = shape[1] if len(shape) > 1 else 1
    weight = _meta((channels,), dtype) if with_affine else None
    _agree(F.group_norm, (x, groups, weight, weight), {})


@settings(max_examples=150, deadline=None)
@given(shape=shapes, out=st.integers(0, 4), inner=st.integers(0, 5), with_bias=st.booleans(),
       bias_size=st.integers(0, 4), dtype=st.sampled_from(DTYPES), weight_dtype=st.sampled_from(DTYPES))
def test_linear(shape, out, inner, with_bias, bias_size, dtype, weight_dtype):
    weight = _meta((out, inner), weight_dtype)
    bias = _meta((bias_size,), weight_dtype) if with_bias else None
    _agree(F.linear, (_meta(shape, dtype), weight, bias), {})


@settings(max_examples=150, deadline=None)
@given(shape=shapes, pad=st.lists(st.integers(-4, 4), min_size=0, max_size=8),
       mode=st.sampled_from(["constant", "reflect", "replicate"]))
@example(shape=[0], pad=[1, -1], mode="constant")
@example(shape=[0, 0], pad=[0, 0, 0, 1], mode="constant")
def test_pad(shape, pad, mode):
    """Negative amounts cut first: [1, -1] on an empty axis is refused although its size is 0.
    torch before 2.4 refuses any padded axis that comes out empty ([0, 0] padded by [0, 0, 0, 1])."""
    _agree(F.pad, (_meta(shape), pad, mode), {})


def test_pad_with_symbolic_sizes():
    """A U-Net pads the upsampled map by the difference of two symbolic sizes: torch's kernel
    refuses symbolic amounts; the shortcut gives each padded size as an expression."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    from shapecheck.engine._compat import symbolic_tensor

    mode = FakeTensorMode(shape_env=ShapeEnv())
    x = symbolic_tensor(mode, torch.empty(2, 4, 10, 12), [True, False, True, True])
    with mode:
        small = x[:, :, ::2, ::2]
        diff_h, diff_w = x.shape[2] - small.shape[2], x.shape[3] - small.shape[3]
        padded = shortcut(F.pad, (small, [diff_w // 2, diff_w - diff_w // 2, diff_h // 2, diff_h - diff_h // 2]), {})
    assert padded is not None and padded.shape[:2] == (x.shape[0], 4)
    assert str(padded.shape[2]) == str(x.shape[2]) and str(padded.shape[3]) == str(x.shape[3])


@pytest.mark.parametrize("func", [F.relu, F.gelu, F.silu])
@pytest.mark.parametrize("inplace", [None, False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_activations(func, inplace, dtype):
    kwargs = {} if inplace is None or func is F.gelu else {"inplace": inplace}
    _agree(func, (_meta((2, 3, 4), dtype),), kwargs)


@pytest.mark.parametrize("p", [-0.1, 0.0, 0.5, 1.0, 1.5])
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (0, 3)])
def test_dropout(p, inplace, training, shape):
    _agree(F.dropout, (_meta(shape), p, training, inplace), {})


def test_no_answer_off_meta_or_for_other_ops():
    assert shortcut(F.relu, (torch.zeros(2),), {}) is None
    assert shortcut(F.conv2d, (_meta((2, 3, 4, 4)), _meta((4, 3, 1, 1))), {}) is None


def test_the_common_layers_take_the_shortcut():
    """A BatchNorm layer's call on meta is answered without torch's decomposition."""
    from shapecheck.engine import shortcuts

    x = _meta((8, 16, 5, 5))
    layer = torch.nn.BatchNorm2d(16, device="meta")
    args = (x, layer.running_mean, layer.running_var, layer.weight, layer.bias, True, 0.1, 1e-5)
    assert shortcuts.shortcut(F.batch_norm, args, {}) is not None


@settings(max_examples=120, deadline=None)
@given(rank=st.integers(1, 3), stride=st.integers(1, 3), dilation=st.integers(1, 3), extra=st.integers(0, 3))
def test_transposed_output_padding_is_refused_as_on_the_cpu(rank, stride, dilation, extra):
    """The meta kernel accepts what the CPU kernel refuses; the stand-in refuses it with the
    CPU's own words."""
    func = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]
    x, weight = torch.zeros((1, 2) + (5,) * rank), torch.zeros((2, 3) + (3,) * rank)
    args = (x, weight, None, stride, 0, extra, 1, dilation)
    _, cpu_error = _torch(func, args, {})
    if cpu_error is None:
        assert shortcut(func, args, {}) is None
        return
    from shapecheck.engine.usercode import StandInError

    with pytest.raises(StandInError) as refused:
        shortcut(func, (_meta(x.shape), _meta(weight.shape)) + args[2:], {})
    assert str(refused.value) == str(cpu_error)


@pytest.mark.parametrize("func, args, kwargs, real", [
    (torch.zeros, (3, 4), {}, True), (torch.zeros, ((3, 4),), {}, True), (torch.rand, (), {"size": (5,)}, True),
    (torch.randint, (0, 10, (4,)), {}, True), (torch.arange, (2, 11, 3), {}, True), (torch.eye, (4,), {}, True),
    (torch.zeros, (1 << 20,), {}, False),  # large: stays on the trace's device
    (torch.arange, (0, 1e9), {}, False), (torch.ones, (3,), {"device": "cuda"}, False),
    (torch.zeros_like, (torch.empty(3),), {}, False), (torch.full, ((2, 2), 1.0), {}, True),
])
def test_small_tensors_made_from_nothing_are_made_for_real(func, args, kwargs, real):
    from shapecheck.engine.symbolic import made_for_real

    found = made_for_real(func, args, kwargs)
    assert (found is not None) == real
    if real:
        assert found[1]["device"] == "cpu" and func(*found[0], **found[1]).device.type == "cpu"
