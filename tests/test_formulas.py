"""The shape formulas agree with torch, explain themselves, and answer the inverse questions.

Forward formulas are checked against torch on meta tensors (no memory, no compute), convolutions
on tiny CPU tensors (the meta kernels of torch < 2.13 return an empty output where CPU refuses): for
random sizes, kernels, strides, paddings and dilations the formula's value is torch's
output size, and torch refuses the configuration exactly when the formula reports a problem.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from shapecheck.engine.formulas import (
    Derivation,
    adaptive_out,
    chain_out,
    describe_sizes,
    min_input_sizes,
    sizes_without_drops,
    spatial_formulas,
    conv_input_range,
    conv_min_input,
    conv_out,
    conv_transpose_out,
    explain_layer,
    factor_text,
    inputs_for_output,
    padding_for_min_size,
    padding_for_output,
    pool_input_range,
    pool_out,
    same_padding,
    unfold_blocks,
    upsample_out,
)
from shapecheck.engine.layers import expected_input, functional_params, layer_params

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # costlier torch calls

sizes = st.integers(1, 40)
kernels = st.integers(1, 7)
strides = st.integers(1, 4)
paddings = st.integers(0, 4)
dilations = st.integers(1, 3)


def meta(*shape):
    return torch.empty(*shape, device="meta")


def cpu(*shape):
    return torch.zeros(*shape)


def torch_size(call):
    """The output's spatial sizes, or None when torch refuses the call."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tuple(call().shape[2:])
    except (RuntimeError, ValueError):
        return None


def agrees(derivations: list[Derivation], torch_result) -> bool:
    if torch_result is None:
        return any(not d.ok for d in derivations)
    return all(d.ok for d in derivations) and tuple(d.value for d in derivations) == torch_result


# ---------------------------------------------------------------- forward formulas vs torch


@FAST
@given(sizes, kernels, strides, paddings, dilations)
def test_conv1d_matches_torch(n, k, s, p, d):
    got = conv_out(n, k, s, p, d)
    expected = torch_size(lambda: F.conv1d(cpu(1, 1, n), cpu(1, 1, k), stride=s, padding=p, dilation=d))
    assert agrees([got], expected)
    assert (expected is None) == (got.value < 1)


@FAST
@given(sizes, sizes, kernels, kernels, strides, strides, paddings, dilations)
def test_conv2d_matches_torch_with_distinct_height_and_width(h, w, kh, kw, sh, sw, p, d):
    got = [conv_out(h, kh, sh, p, d, "H"), conv_out(w, kw, sw, p, d, "W")]
    weight = cpu(1, 1, kh, kw)
    expected = torch_size(lambda: F.conv2d(cpu(1, 1, h, w), weight, stride=(sh, sw), padding=p, dilation=d))
    assert agrees(got, expected)


@FAST
@given(sizes, kernels, dilations)
def test_same_padding_keeps_the_size_like_torch(n, k, d):
    before, after = same_padding(k, d)
    got = conv_out(n, k, 1, (before, after), d)
    expected = torch_size(lambda: F.conv1d(meta(1, 1, n), meta(1, 1, k), padding="same", dilation=d))
    assert got.value == n and expected == (n,)
    assert after - before in (0, 1)


@FAST
@given(sizes, kernels, strides, paddings, st.integers(0, 3), dilations)
def test_conv_transpose1d_matches_torch(n, k, s, p, op, d):
    # On CPU: the meta kernel does not check that output_padding < max(stride, dilation).
    got = conv_transpose_out(n, k, s, p, op, d)
    expected = torch_size(lambda: F.conv_transpose1d(
        torch.zeros(1, 1, n), torch.zeros(1, 1, k), stride=s, padding=p, output_padding=op, dilation=d))
    assert agrees([got], expected)


@FAST
@given(sizes, kernels, st.one_of(st.none(), strides), paddings, dilations, st.booleans())
def test_max_pool1d_matches_torch(n, k, s, p, d, ceil):
    got = pool_out(n, k, s, p, d, ceil)
    expected = torch_size(lambda: F.max_pool1d(meta(1, 1, n), k, s, p, d, ceil_mode=ceil))
    assert agrees([got], expected)


@FAST
@given(sizes, kernels, st.one_of(st.none(), strides), paddings, st.booleans())
def test_avg_pool1d_matches_torch(n, k, s, p, ceil):
    got = pool_out(n, k, s, p, 1, ceil)
    expected = torch_size(lambda: F.avg_pool1d(meta(1, 1, n), k, s, p, ceil_mode=ceil))
    assert agrees([got], expected)


@FAST
@given(sizes, sizes, kernels, kernels, strides, strides, st.integers(0, 2), st.booleans())
def test_max_pool2d_matches_torch_with_distinct_height_and_width(h, w, kh, kw, sh, sw, p, ceil):
    got = [pool_out(h, kh, sh, p, 1, ceil, "H"), pool_out(w, kw, sw, p, 1, ceil, "W")]
    expected = torch_size(lambda: F.max_pool2d(meta(1, 1, h, w), (kh, kw), (sh, sw), p, ceil_mode=ceil))
    assert agrees(got, expected)


@FEWER
@given(sizes, sizes, kernels, kernels, strides, paddings, dilations)
def test_unfold_blocks_match_torch(h, w, kh, kw, s, p, d):
    got = [unfold_blocks(h, kh, s, p, d, "H"), unfold_blocks(w, kw, s, p, d, "W")]
    try:
        out = F.unfold(meta(1, 2, h, w), (kh, kw), dilation=d, padding=p, stride=s)
        expected = out.shape[2]
    except RuntimeError:
        expected = None
    if expected is None:
        assert any(not g.ok for g in got)
    else:
        assert all(g.ok for g in got) and got[0].value * got[1].value == expected


@FAST
@given(st.integers(1, 50), st.floats(0.05, 4.0, allow_nan=False))
def test_upsample_matches_torch(n, scale):
    got = upsample_out(n, scale)
    expected = torch_size(lambda: F.interpolate(meta(1, 1, n), scale_factor=scale))
    assert agrees([got], expected)


@FAST
@given(st.integers(1, 30), st.integers(1, 30))
def test_adaptive_pool_gives_the_requested_size(n, target):
    got = adaptive_out(n, target)
    assert (got.value,) == torch_size(lambda: F.adaptive_avg_pool1d(meta(1, 1, n), target))


# ---------------------------------------------------------------- the floor and what it drops


def dropped_by_torch(n, k, s, p, d):
    """Input positions after the last window: where the gradient of torch's last output ends.

    The input is padded by hand so that padding positions have gradients too.
    """
    x = torch.ones(1, 1, n + 2 * p, dtype=torch.float64, requires_grad=True)
    out = F.conv1d(x, torch.ones(1, 1, k, dtype=torch.float64), stride=s, dilation=d)
    out[0, 0, -1].backward()
    last_tap = int(x.grad[0, 0].nonzero().max())
    return max(0, p + n - 1 - last_tap)


@FEWER
@given(sizes, kernels, strides, paddings, dilations)
def test_dropped_counts_the_rows_no_window_reaches(n, k, s, p, d):
    got = conv_out(n, k, s, p, d)
    assume(got.ok)
    assert got.dropped == dropped_by_torch(n, k, s, p, d)
    assert ("does not divide evenly" in " ".join(got.steps)) == (got.dropped > 0)
    if got.dropped:
        assert f"drops {got.dropped} row" in got.note


def test_pool_on_13_drops_one_row():
    result = pool_out(13, 2, dim="H", label="pool2")
    assert result.value == 6 and result.dropped == 1
    assert result.steps[-1] == "13 does not divide evenly by 2: ⌊13/2⌋ drops 1 row"
    assert result.note == "13→6 (drops 1 row)"


def test_dropped_names_columns_steps_and_slices():
    assert pool_out(13, 2, dim="W").note == "13→6 (drops 1 column)"
    assert pool_out(7, 2, dim="L").note == "7→3 (drops 1 step)"
    assert pool_out(11, 4, dim="D").note == "11→2 (drops 3 slices)"


# ---------------------------------------------------------------- step text


def test_lenet_chain_explains_every_size():
    shape = (16, 1, 32, 32)
    layers = [
        ("conv1", "Conv2d", {"in_channels": 1, "out_channels": 6, "kernel_size": 3}),
        ("pool1", "MaxPool2d", {"kernel_size": 2}),
        ("conv2", "Conv2d", {"in_channels": 6, "out_channels": 16, "kernel_size": 3}),
        ("pool2", "MaxPool2d", {"kernel_size": 2}),
        ("flatten", "Flatten", {}),
    ]
    notes, steps = [], []
    for label, op, params in layers:
        result = explain_layer(op, params, shape, label)
        shape = result.out_shape
        notes.append(result.note)
        steps.extend(result.steps)
    assert shape == (16, 576)
    assert notes == [
        "H: ⌊(32−3)/1⌋+1 = 30, W: same",
        "H: 30→15, W: same",
        "H: ⌊(15−3)/1⌋+1 = 13, W: same",
        "H: 13→6 (drops 1 row), W: same",
        "16×6×6 = 576",
    ]
    assert steps == [
        "conv1: H = ⌊(32 + 2·0 − 1·(3−1) − 1)/1⌋ + 1 = 30",
        "conv1: W = 30, as for H",
        "pool1: H = ⌊(30 + 2·0 − 1·(2−1) − 1)/2⌋ + 1 = 15",
        "pool1: W = 15, as for H",
        "conv2: H = ⌊(15 + 2·0 − 1·(3−1) − 1)/1⌋ + 1 = 13",
        "conv2: W = 13, as for H",
        "pool2: H = ⌊(13 + 2·0 − 1·(2−1) − 1)/2⌋ + 1 = 6",
        "13 does not divide evenly by 2: ⌊13/2⌋ drops 1 row",
        "pool2: W = 6, as for H; drops 1 column",
        "flatten: dims 1..3 flatten to 16×6×6 = 576",
    ]


def test_kernel_larger_than_the_input_is_explained():
    result = conv_out(3, 5, padding=0, label="conv3")
    assert result.value == -1 and not result.ok
    assert result.steps == (
        "conv3: H = ⌊(3 + 2·0 − 1·(5−1) − 1)/1⌋ + 1 = -1",
        "the kernel (5) is larger than the input (3): no window fits",
        "it fits an input of at least 5 rows, or this input with padding 1 on each side",
    )
    pool = pool_out(1, 4, dim="W")
    assert pool.steps[-1] == "it fits an input of at least 4 columns, or this input with padding 2 on each side"
    assert pool_out(1, 5, ceil_mode=True, stride=2).steps[-1] == "with ceil_mode it fits an input of at least 4 rows"
    dilated = conv_out(4, 3, padding=1, dilation=3)
    assert dilated.problem == ("the kernel (effective size 3·(3−1)+1 = 7) is larger than "
                               "the padded input (4 + 2·1 = 6)")


def test_uneven_same_padding_and_ceil_mode_steps():
    assert conv_out(8, 4, padding=(1, 2), label="c").steps == ("c: H = ⌊(8 + 1 + 2 − 1·(4−1) − 1)/1⌋ + 1 = 8",)
    ceil = pool_out(4, 2, 3, ceil_mode=True, label="p")
    assert ceil.value == 2
    assert ceil.steps == ("p: H = ⌈(4 + 2·0 − 1·(2−1) − 1)/3⌉ + 1 = 2",
                          "stride 3 is larger than the kernel (2): 1 row between windows is skipped",
                          "ceil_mode: the last window runs 1 row past the end")
    dropped_window = pool_out(5, 2, 2, padding=1, ceil_mode=True, label="p")
    assert dropped_window.value == 3
    assert dropped_window.steps[1] == ("the last window would start at position 6, past the input and its "
                                       "left padding (5 + 1), so ceil_mode does not count it: H = 3")


def test_transposed_adaptive_and_upsample_steps():
    assert conv_transpose_out(15, 3, 2, 1, 1, label="up").steps == ("up: H = (15−1)·2 − 2·1 + 1·(3−1) + 1 + 1 = 30",)
    assert conv_transpose_out(4, 3, 2, 0, 2).problem == (
        "output_padding 2 must be smaller than the stride (2) or the dilation (1)")
    assert adaptive_out(13, 6, label="avg").steps == (
        "avg: H = 6 (set by output_size)", "13 does not divide evenly into 6: each output row pools 3 rows, "
        "and neighbouring windows overlap")
    assert adaptive_out(5, 3, dim="W").steps[1] == (
        "5 does not divide evenly into 3: each output column pools 2 to 3 columns, and neighbouring windows overlap")
    assert adaptive_out(12, 6).steps[1] == "each output row pools 2 rows"
    assert upsample_out(13, 1.5, label="up").steps == (
        "up: H = ⌊13 × 1.5⌋ = 19", "13 × 1.5 = 19.5 is not a whole number: the fraction is dropped")


def test_factor_text():
    assert factor_text((16, 6, 6)) == "16×6×6 = 576"
    assert factor_text((576,)) == "576"
    assert factor_text(()) == "1"
    assert factor_text(("C", 6, 6)) == "C×6×6"


# ---------------------------------------------------------------- inverse questions


@FAST
@given(st.integers(1, 20), kernels, strides, paddings, dilations)
def test_conv_input_range_is_exactly_the_sizes_that_give_the_target(target, k, s, p, d):
    found = conv_input_range(target, k, s, p, d)
    for n in found:
        assert conv_out(n, k, s, p, d).value == target
    for n in (found.start - 1, found.stop):
        if n >= 1 and found:
            assert conv_out(n, k, s, p, d).value != target
    assert found == inputs_for_output(lambda n: conv_out(n, k, s, p, d), target, 1, 500)


@FAST
@given(st.integers(1, 20), kernels, st.one_of(st.none(), strides), st.integers(0, 3), st.booleans())
def test_pool_input_range_matches_the_forward_formula(target, k, s, p, ceil):
    assume(p <= k // 2)
    found = pool_input_range(target, k, s, p, 1, ceil)
    brute = [n for n in range(1, 200) if pool_out(n, k, s, p, 1, ceil).value == target]
    assert list(found) == brute


@FAST
@given(kernels, paddings, dilations)
def test_conv_min_input_is_the_smallest_size_that_works(k, p, d):
    smallest = conv_min_input(k, 1, p, d)
    assert conv_out(smallest, k, 1, p, d).ok
    if smallest > 1:
        assert not conv_out(smallest - 1, k, 1, p, d).ok


@FAST
@given(sizes, kernels, strides, dilations, st.integers(1, 10))
def test_padding_for_min_size_is_the_smallest_that_reaches_it(n, k, s, d, wanted):
    p = padding_for_min_size(n, k, s, d, wanted)
    assert conv_out(n, k, s, p, d).value >= wanted
    if p > 0:
        assert conv_out(n, k, s, p - 1, d).value < wanted


@FAST
@given(sizes, st.integers(1, 40), kernels, strides, dilations)
def test_padding_for_output_finds_an_exact_padding_or_none_exists(n, target, k, s, d):
    p = padding_for_output(n, target, k, s, d)
    exact = [q for q in range(0, 200) if conv_out(n, k, s, q, d).value == target]
    assert p == (exact[0] if exact else None)


def test_padding_for_output_respects_the_pooling_limit():
    assert padding_for_output(3, 3, 5, 1, 1) == 2
    assert padding_for_output(2, 3, 5, 1, 1, max_padding=2) is None


@FEWER
@given(st.integers(1, 6), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2), st.booleans(), st.booleans())
def test_min_input_sizes_is_the_smallest_input_torch_accepts(k, s, p, d, ceil, is_pool):
    assume(not is_pool or p <= k // 2)
    if is_pool:
        op, params = "max_pool1d", {"kernel_size": k, "stride": s, "padding": p, "dilation": d, "ceil_mode": ceil}
        run = lambda n: F.max_pool1d(meta(1, 1, n), k, s, p, d, ceil_mode=ceil)  # noqa: E731
    else:
        op, params = "conv1d", {"kernel_size": (k,), "stride": s, "padding": p, "dilation": d}
        run = lambda n: F.conv1d(cpu(1, 1, n), cpu(1, 1, k), stride=s, padding=p, dilation=d)  # noqa: E731
    accepted = [n for n in range(1, 20) if torch_size(lambda: run(n)) is not None]
    assert min_input_sizes(op, params) == (accepted[0],)


def lenet_stages(kernel=3):
    return [lambda n: conv_out(n, kernel, label="conv1"), lambda n: pool_out(n, 2, label="pool1"),
            lambda n: conv_out(n, kernel, label="conv2"), lambda n: pool_out(n, 2, label="pool2")]


def test_chain_explains_lenet_and_finds_the_inputs_for_a_linear_layer():
    chain = chain_out(32, lenet_stages())
    assert chain.value == 6 and chain.dropped == 1
    assert chain.note == "32→30→15→13→6 (drops 1 row)"
    assert "13 does not divide evenly by 2: ⌊13/2⌋ drops 1 row" in chain.steps
    # fc1 = Linear(16 * 5 * 5, ...) needs H = W = 5 after pool2
    assert inputs_for_output(lambda n: chain_out(n, lenet_stages()), 5) == range(26, 30)
    failed = chain_out(8, lenet_stages())
    assert not failed.ok and failed.formula == "8→6→3→1→0"


def test_unet_skip_sizes_are_the_multiples_of_sixteen():
    down = [lambda n: conv_out(n, 3, padding=1), lambda n: pool_out(n, 2)] * 4
    sizes = sizes_without_drops(down, 1, 100)
    assert sizes == [16, 32, 48, 64, 80, 96]
    assert describe_sizes(sizes) == "multiples of 16 (16, 32, 48, 64, …)"


def test_strided_conv_encoder_sizes_are_those_the_strides_divide():
    down = [lambda n: conv_out(n, 3, padding=1), lambda n: conv_out(n, 3, stride=2, padding=1)] * 2
    assert sizes_without_drops(down, 1, 20) == list(range(1, 21))  # no floor ever cuts
    assert chain_out(33, down).uneven and not chain_out(32, down).uneven  # 33→17→9, 32→16→8
    assert sizes_without_drops(down, 1, 20, divided=True) == [4, 8, 12, 16, 20]
    pools = [lambda n: pool_out(n, 2)] * 2
    assert sizes_without_drops(pools, 1, 20, divided=True) == sizes_without_drops(pools, 1, 20)


def test_describe_sizes():
    assert describe_sizes([26, 27, 28, 29]) == "26 to 29"
    assert describe_sizes([7]) == "7"
    assert describe_sizes([]) == "no size"
    assert describe_sizes([12, 28, 44]) == "12 + multiples of 16 (12, 28, 44)"
    assert describe_sizes([3, 5, 11]) == "3, 5, 11"


def test_spatial_formulas_per_dimension():
    height, width = spatial_formulas("Conv2d", {"kernel_size": (3, 5), "stride": 2, "padding": "valid"}, label="c")
    assert (height(13).value, width(13).value) == (6, 5)
    assert width(13).steps[0] == "c: W = ⌊(13 + 2·0 − 1·(5−1) − 1)/2⌋ + 1 = 5"
    assert len(spatial_formulas("interpolate", {"scale_factor": 2.0}, ndim=3)) == 3
    assert spatial_formulas("Linear", {"out_features": 3}) is None
    assert min_input_sizes("Conv2d", {"kernel_size": 5, "padding": 1}) == (3, 3)
    assert min_input_sizes("MaxPool2d", {"kernel_size": 2, "padding": 3}) == (None, None)


# ---------------------------------------------------------------- whole layers vs torch

CASES = [
    (nn.Conv2d(3, 8, 3, stride=2, padding=1), (2, 3, 17, 12)),
    (nn.Conv2d(3, 8, (4, 2), padding="same", dilation=(1, 2)), (2, 3, 9, 10)),
    (nn.Conv2d(3, 8, 3), (3, 9, 11)),
    (nn.Conv1d(4, 6, 5, stride=3, dilation=2), (2, 4, 40)),
    (nn.Conv3d(2, 4, (1, 3, 3), stride=(1, 2, 2)), (1, 2, 5, 13, 14)),
    (nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1), (2, 8, 7, 5)),
    (nn.ConvTranspose1d(8, 4, 4, stride=2), (8, 9)),
    (nn.ConvTranspose3d(2, 2, 2, stride=2), (1, 2, 3, 4, 5)),
    (nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 13, 10)),
    (nn.MaxPool1d(2), (3, 7)),
    (nn.MaxPool3d(2, dilation=2), (1, 1, 6, 7, 8)),
    (nn.AvgPool2d((2, 3)), (2, 3, 13, 11)),
    (nn.AvgPool1d(3, 2, 1, ceil_mode=True), (2, 3, 10)),
    (nn.AvgPool3d(2, ceil_mode=True), (1, 2, 5, 5, 5)),
    (nn.AdaptiveAvgPool2d((5, None)), (2, 3, 13, 7)),
    (nn.AdaptiveMaxPool1d(4), (2, 3, 9)),
    (nn.AdaptiveAvgPool3d(1), (1, 2, 3, 4, 5)),
    (nn.Upsample(scale_factor=2), (2, 3, 7, 5)),
    (nn.Upsample(size=(9, 4)), (2, 3, 7, 5)),
    (nn.Upsample(scale_factor=(1.5, 0.5)), (2, 3, 7, 5)),
    (nn.Unfold(3, padding=1, stride=2), (2, 3, 9, 8)),
    (nn.Unfold((2, 3)), (3, 6, 6)),
    (nn.Flatten(), (2, 16, 6, 6)),
    (nn.Flatten(0, 1), (2, 16, 6)),
    (nn.Linear(12, 5), (2, 7, 12)),
    (nn.BatchNorm2d(3), (2, 3, 5, 5)),
    (nn.GroupNorm(2, 4), (2, 4, 5)),
    (nn.LayerNorm([5, 6]), (2, 4, 5, 6)),
    (nn.Embedding(10, 3), (2, 7)),
    (nn.LSTM(6, 4, bidirectional=True, batch_first=True), (2, 7, 6)),
    (nn.GRU(6, 4), (7, 6)),
    (nn.LSTM(6, 4, proj_size=2), (7, 2, 6)),
    (nn.ReLU(), (2, 3)),
    (nn.Dropout2d(), (2, 3, 4, 4)),
]


@pytest.mark.parametrize(("module", "shape"), CASES, ids=[f"{type(m).__name__}-{s}" for m, s in CASES])
def test_explain_layer_matches_torch(module, shape):
    op, params = layer_params(module)
    result = explain_layer(op, params, shape, "layer")
    dtype = torch.long if isinstance(module, nn.Embedding) else torch.float32
    with torch.device("meta"):
        out = module.to("meta")(torch.empty(shape, dtype=dtype))
    out = out[0] if isinstance(out, tuple) else out
    assert result.out_shape == tuple(out.shape)
    assert result.problem == ""


FUNCTIONAL = [
    (F.conv2d, lambda x: (x, meta(6, 3, 5, 5)), {"stride": 2, "padding": 1}),
    (F.conv1d, lambda x: (x[:, :, 0], meta(6, 1, 3)), {"groups": 3}),
    (F.conv_transpose2d, lambda x: (x, meta(3, 2, 3, 3), None, 2), {"output_padding": 1}),
    (F.max_pool2d, lambda x: (x, 2), {}),
    (torch.max_pool2d, lambda x: (x, 3, 2, 1), {"ceil_mode": True}),
    (F.avg_pool2d, lambda x: (x, 3), {"stride": 2}),
    (F.adaptive_avg_pool2d, lambda x: (x, (4, 2)), {}),
    (F.adaptive_max_pool2d, lambda x: (x, 1), {}),
    (F.interpolate, lambda x: (x,), {"scale_factor": 1.5}),
    (F.interpolate, lambda x: (x, (20, 3)), {}),
    (F.unfold, lambda x: (x, 2), {"stride": 2}),
    (torch.flatten, lambda x: (x, 1), {}),
    (torch.Tensor.flatten, lambda x: (x,), {}),
    ("flatten", lambda x: (x, 2), {}),
    (F.linear, lambda x: (x, meta(5, 13)), {}),
]


@pytest.mark.parametrize(("func", "make_args", "kwargs"), FUNCTIONAL,
                         ids=[getattr(f, "__name__", str(f)) for f, _, _ in FUNCTIONAL])
def test_explain_functional_call_matches_torch(func, make_args, kwargs):
    x = meta(2, 3, 13, 13)
    args = make_args(x)
    op, params = functional_params(func, args, kwargs)
    call = getattr(torch.Tensor, func) if isinstance(func, str) else func
    expected = tuple(call(*args, **kwargs).shape)
    assert explain_layer(op, params, tuple(args[0].shape), op).out_shape == expected


# ---------------------------------------------------------------- problems explain_layer reports


def test_linear_mismatch_keeps_the_intended_output():
    result = explain_layer("Linear", {"in_features": 400, "out_features": 120}, ("N", 576), "fc1")
    assert result.out_shape == ("N", 120)
    assert result.problem == "fc1 expects 400 input features (in_features) but the last dimension is 576"


def test_conv_channel_mismatch_and_wrong_rank():
    wrong = explain_layer("Conv2d", {"in_channels": 1, "out_channels": 6, "kernel_size": 3}, (16, 3, 32, 32), "c")
    assert wrong.out_shape == (16, 6, 30, 30)
    assert wrong.problem == "c expects 1 input channels (in_channels) but gets 3"
    rank = explain_layer("Conv2d", {"kernel_size": 3}, (16, 400), "c")
    assert rank.out_shape is None
    assert rank.problem == "c expects a 3-d (C, H, W) or 4-d (N, C, H, W) input, got 2-d (16, 400)"


def test_kernel_too_large_for_the_layer_gives_no_shape():
    result = explain_layer("Conv2d", {"kernel_size": 5, "out_channels": 8}, (1, 4, 3, 3), "conv3")
    assert result.out_shape is None
    assert result.problem == "H, W: the kernel (5) is larger than the input (3)"


def test_norm_layer_mismatches():
    bn = explain_layer("BatchNorm2d", {"num_features": 32}, (8, 16, 4, 4), "bn")
    assert bn.out_shape == (8, 16, 4, 4)
    assert bn.problem == "bn expects 32 channels (num_features) but dimension 1 is 16"
    ln = explain_layer("LayerNorm", {"normalized_shape": (8,)}, (2, 5, 6), "ln")
    assert ln.problem == "ln normalizes over (8,) (normalized_shape) but the input ends in (6,)"
    quiet = explain_layer("InstanceNorm2d", {"num_features": 4, "affine": False}, (2, 3, 5, 5), "inorm")
    assert quiet.problem == ""


def test_symbolic_batch_passes_through_and_unknown_ops_are_not_explained():
    assert explain_layer("MaxPool2d", {"kernel_size": 2}, ("N", 3, 8, 8)).out_shape == ("N", 3, 4, 4)
    assert explain_layer("flatten", {"start_dim": 0, "end_dim": -1}, ("N", 3, 4)).out_shape == ("N*12",)
    assert explain_layer("MyBlock", {}, (1, 2)) is None
    assert explain_layer("Conv2d", {"kernel_size": 3}, (1, 2, "H", 8)) is None


# ---------------------------------------------------------------- torch modules as plain data


def test_layer_params_reads_modules():
    class MyConv(nn.Conv2d):
        pass

    assert layer_params(MyConv(1, 6, 3)) == ("Conv2d", {
        "in_channels": 1, "out_channels": 6, "kernel_size": (3, 3), "stride": (1, 1), "padding": (0, 0),
        "dilation": (1, 1), "groups": 1})
    assert layer_params(nn.MaxPool2d(2)) == ("MaxPool2d", {
        "kernel_size": 2, "stride": 2, "padding": 0, "dilation": 1, "ceil_mode": False})
    assert layer_params(nn.Linear(400, 120)) == ("Linear", {"in_features": 400, "out_features": 120})
    assert layer_params(nn.GELU()) == ("GELU", {"same_shape": True})
    assert layer_params(nn.LazyLinear(10)) == ("LazyLinear", {"out_features": 10})
    assert layer_params(nn.Sequential()) is None
    assert layer_params(nn.GLU()) is None


def test_functional_params_binds_positional_and_keyword_arguments():
    x = meta(2, 3, 8, 8)
    assert functional_params(F.conv2d, (x, meta(6, 1, 3, 3), None, 2), {"groups": 3}) == ("conv2d", {
        "stride": 2, "padding": 0, "dilation": 1, "groups": 3, "kernel_size": (3, 3),
        "in_channels": 3, "out_channels": 6})
    assert functional_params(F.max_pool2d, (x, 2), {"ceil_mode": True}) == ("max_pool2d", {
        "kernel_size": 2, "stride": None, "padding": 0, "dilation": 1, "ceil_mode": True})
    assert functional_params(torch.relu, (x,), {}) is None
    assert functional_params(F.max_pool2d, (x,), {"bogus": 1}) is None


def test_expected_input_table():
    assert expected_input(nn.Linear(400, 120)) == {"param": "in_features", "size": 400, "dim": -1, "ranks": None}
    conv = nn.Conv2d(3, 6, 3)
    assert expected_input(conv) == {"param": "in_channels", "size": 3, "dim": 1, "ranks": (3, 4)}
    assert expected_input(conv, rank=3)["dim"] == 0
    assert expected_input(nn.BatchNorm1d(8)) == {"param": "num_features", "size": 8, "dim": 1, "ranks": (2, 3)}
    assert expected_input(nn.GroupNorm(4, 32))["groups"] == 4
    assert expected_input(nn.LayerNorm([5, 6]))["dims"] == (-2, -1)
    assert expected_input(nn.LSTM(10, 20, batch_first=True)) == {
        "param": "input_size", "size": 10, "dim": -1, "ranks": (2, 3), "batch_first": True}
    assert expected_input(nn.Embedding(100, 8))["dtype"] == "integer"
    assert expected_input(nn.MultiheadAttention(16, 2))["size"] == 16
    assert expected_input(nn.InstanceNorm2d(4))["warn_only"] is True
    assert expected_input(nn.LazyLinear(4)) is None
    assert expected_input(nn.ReLU()) is None


needs_rmsnorm = pytest.mark.skipif(not hasattr(nn, "RMSNorm"), reason="nn.RMSNorm is new in torch 2.4")


@needs_rmsnorm
def test_rmsnorm_declares_its_trailing_dimensions():
    norm = nn.RMSNorm([5, 6])
    assert expected_input(norm) == {"param": "normalized_shape", "size": (5, 6), "dim": None, "ranks": None,
                                    "dims": (-2, -1)}
    op, params = layer_params(norm)
    assert (op, params) == ("RMSNorm", {"normalized_shape": (5, 6)})
    assert explain_layer(op, params, (2, 4, 5, 6), "norm").out_shape == (2, 4, 5, 6)


@needs_rmsnorm
def test_rmsnorm_of_the_wrong_size_is_found(tmp_path):
    from shapecheck import api

    source = ("import torch.nn as nn\n\n\n# shapecheck: input=(8, 20, 32)\nclass Net(nn.Module):\n"
              "    def __init__(self):\n        super().__init__()\n        self.norm = nn.RMSNorm(64)\n\n"
              "    def forward(self, x):\n        return self.norm(x)\n")
    report = api.check_source(source, str(tmp_path / "net.py"))
    assert [(d.code, d.line) for d in report.diagnostics] == [("SC103", 8)]


@FAST
@given(st.lists(st.integers(1, 5), min_size=0, max_size=4), st.integers(-4, 3), st.integers(-4, 3))
def test_flatten_matches_torch(shape, start, end):
    try:
        expected = tuple(torch.flatten(torch.empty(tuple(shape), device="meta"), start, end).shape)
    except (IndexError, RuntimeError):
        expected = None
    result = explain_layer("flatten", {"start_dim": start, "end_dim": end}, tuple(shape), "flat")
    assert result.out_shape == expected
    assert (result.problem != "") == (expected is None)


def test_parameter_lengths_that_do_not_fit_the_input_are_problems():
    result = explain_layer("Upsample", {"size": (4, 5, 6)}, (1, 2, 3, 3), "up")
    assert result.out_shape is None
    assert result.problem == "expected 1 or 2 values for 2 spatial dimensions, got (4, 5, 6)"
    assert explain_layer("Upsample", {"size": None, "scale_factor": None}, (1, 2, 3), "up").problem == (
        "L: either size or scale_factor must be given")
    assert explain_layer("Conv2d", {"out_channels": 3}, (1, 2, 3, 3), "lazy") is None
