"""The fast convolutions: Winograd's refusals, FFT lengths, auto's choices, the functional API."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from shapecheck.conv import IMPLEMENTATIONS, NotApplicable, fft, functional, im2col, shift_add, winograd
from shapecheck.conv._args import normalize
from shapecheck.conv.auto import REPEATS, choose

DOUBLE = torch.float64


def _pair(x_shape, w_shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(x_shape, generator=gen, dtype=DOUBLE, requires_grad=True)
    w = torch.randn(w_shape, generator=gen, dtype=DOUBLE, requires_grad=True)
    return x, w


def _assert_same_with_grads(conv, x, w, bias=None, **kwargs):
    ref = F.conv2d(x, w, bias, **kwargs)
    out = conv(x, w, bias, **kwargs)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ref)
    inputs = [x, w] + ([bias] if bias is not None else [])
    expected = torch.autograd.grad(ref, inputs, grad)
    got = torch.autograd.grad(out, inputs, grad)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs, words", [
    ({"stride": 2}, "stride (2, 2)"),
    ({"stride": (1, 2), "dilation": 2}, "stride (1, 2)"),
])
def test_winograd_refuses_strided(kwargs, words):
    x, w = _pair((1, 2, 9, 9), (3, 2, 3, 3))
    with pytest.raises(NotApplicable, match="needs a 3x3 kernel and stride 1") as info:
        winograd.conv2d(x, w, **kwargs)
    assert words in str(info.value)


@pytest.mark.parametrize("kwargs", [
    {"dilation": 2, "padding": 2},
    {"dilation": (3, 2), "padding": (1, 4)},
    {"dilation": (2, 1), "groups": 2},
    {"dilation": 2, "padding": "same"},
])
def test_winograd_dilated_through_the_input_phases(kwargs):
    x, w = _pair((2, 4, 11, 10), (6, 4 // kwargs.get("groups", 1), 3, 3))
    bias = torch.randn(6, dtype=DOUBLE, requires_grad=True)
    _assert_same_with_grads(winograd.conv2d, x, w, bias, **kwargs)
    conv = lambda x, w, b: winograd.conv2d(x, w, b, **kwargs)  # noqa: E731
    assert torch.autograd.gradgradcheck(conv, (x, w, bias), fast_mode=True)


@pytest.mark.parametrize("kernel", [(5, 5), (3, 1), (1, 3)])
def test_winograd_refuses_other_kernels(kernel):
    x, w = _pair((1, 2, 9, 9), (3, 2, *kernel))
    with pytest.raises(NotApplicable, match=f"got kernel {kernel[0]}x{kernel[1]}"):
        winograd.conv2d(x, w)


@pytest.mark.parametrize("size", [(3, 3), (4, 7), (9, 6), (10, 11)])
@pytest.mark.parametrize("padding", [0, 1, (3, 0), "same"])
def test_winograd_odd_sizes_and_padding(size, padding):
    x, w = _pair((2, 4, *size), (6, 2, 3, 3))
    bias = torch.randn(6, dtype=DOUBLE, requires_grad=True)
    _assert_same_with_grads(winograd.conv2d, x, w, bias, padding=padding, groups=2)


def test_winograd_depthwise_and_unbatched():
    x, w = _pair((5, 7, 8), (10, 1, 3, 3))
    torch.testing.assert_close(winograd.conv2d(x, w, padding=1, groups=5),
                               F.conv2d(x, w, padding=1, groups=5))


@pytest.mark.parametrize("n, expected", [
    (1, 1), (7, 7), (11, 12), (13, 14), (17, 18), (31, 32), (43, 45), (97, 98),
    (258, 270), (1000, 1000), (1001, 1008),
])
def test_fast_length(n, expected):
    assert fft.fast_length(n) == expected


def test_fast_length_is_smallest_7_smooth():
    def smooth(m):
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        return m == 1
    for n in range(1, 600):
        length = fft.fast_length(n)
        assert smooth(length) and not any(smooth(m) for m in range(n, length))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("kwargs", [
    {"stride": (2, 3), "dilation": (2, 1), "padding": (1, 2)},
    {"padding": "same", "dilation": 3},
    {"stride": 3, "groups": 2},
])
def test_fft_strided_and_dilated(kwargs):
    x, w = _pair((2, 4, 13, 12), (6, 4 // kwargs.get("groups", 1), 3, 4))
    _assert_same_with_grads(fft.conv2d, x, w, **kwargs)


def test_fft_half_precision_keeps_dtype():
    x, w = torch.randn(1, 2, 8, 8), torch.randn(3, 2, 3, 3)
    out = fft.conv2d(x.bfloat16(), w.bfloat16(), padding=1)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), F.conv2d(x, w, padding=1), rtol=0.05, atol=0.1)


@pytest.mark.parametrize("kwargs", [
    {"stride": 2, "padding": 3},
    {"stride": (3, 2), "dilation": (2, 3), "padding": (4, 1)},
    {"padding": "same", "dilation": 2, "groups": 2},
])
def test_shift_add_phase_buffer_round_trip(kwargs):
    x = torch.randn(2, 4, 11, 10, dtype=DOUBLE)
    w = torch.empty(4, 4 // kwargs.get("groups", 1), 3, 3)
    args = normalize(x, w, kwargs.get("stride", 1), kwargs["padding"], kwargs.get("dilation", 1),
                     kwargs.get("groups", 1))
    lay = shift_add.layout(x.shape[2:], args)
    for inside in (True, False):
        buf = shift_add.scatter(x, lay, batch_inside=inside)
        back = shift_add.gather(buf, x.shape, lay, batch_inside=inside)
        needed = [(o - 1) * s + (k - 1) * d + 1 - a
                  for o, s, k, d, (a, _) in zip(lay.out, args.stride, args.kernel, args.dilation, args.pads)]
        torch.testing.assert_close(back[:, :, : needed[0], : needed[1]], x[:, :, : needed[0], : needed[1]])


# The benchmark layers at reduced batch and size: (x shape, weight shape, kwargs, auto's choice).
BENCHMARK_LIKE = [
    ((4, 1, 32, 32), (6, 1, 3, 3), {}, "im2col"),
    ((1, 3, 40, 40), (8, 3, 7, 7), {"stride": 2, "padding": 3}, "im2col"),
    ((1, 16, 14, 14), (16, 16, 3, 3), {"padding": 1}, "winograd"),
    ((1, 48, 14, 14), (8, 48, 1, 1), {}, "shift_add"),
    ((1, 16, 14, 14), (32, 16, 3, 3), {"stride": 2, "padding": 1}, "im2col"),
    ((2, 16, 14, 14), (16, 1, 3, 3), {"padding": 1, "groups": 16}, "shift_add"),
    ((1, 3, 48, 48), (8, 3, 31, 31), {"padding": 15}, "fft"),
    ((1, 16, 14, 14), (16, 16, 3, 3), {"dilation": 2, "padding": 2}, "winograd"),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs, expected", BENCHMARK_LIKE)
def test_auto_choice_is_applicable_and_exact(x_shape, w_shape, kwargs, expected):
    x, w = _pair(x_shape, w_shape)
    args = normalize(x, w, kwargs.get("stride", 1), kwargs.get("padding", 0), kwargs.get("dilation", 1),
                     kwargs.get("groups", 1))
    name = choose(x_shape, w_shape, args, x.device)
    assert name == expected
    bias = torch.randn(w_shape[0], dtype=DOUBLE, requires_grad=True)
    _assert_same_with_grads(functional.conv2d, x, w, bias, **kwargs)
    _assert_same_with_grads(IMPLEMENTATIONS[name], x, w, bias, **kwargs)


@pytest.mark.parametrize("name", IMPLEMENTATIONS.names())
def test_functional_impl_names(name):
    x, w = _pair((2, 4, 7, 8), (6, 2, 3, 3))
    out = functional.conv2d(x, w, padding=1, groups=2, impl=name)
    torch.testing.assert_close(out, F.conv2d(x, w, padding=1, groups=2))


def test_functional_unknown_impl():
    x, w = _pair((1, 2, 5, 5), (2, 2, 3, 3))
    with pytest.raises(KeyError, match="unknown implementation 'winograd2'"):
        functional.conv2d(x, w, impl="winograd2")


@pytest.mark.parametrize("impl", ["auto", "shift_add", "fft", "winograd"])
def test_functional_unbatched_input(impl):
    x, w = _pair((3, 9, 8), (5, 3, 3, 3))
    out = functional.conv2d(x, w, padding=1, impl=impl)
    assert out.shape == (5, 9, 8)
    torch.testing.assert_close(out, F.conv2d(x, w, padding=1))


@pytest.mark.parametrize("impl", ["auto", "im2col", "naive"])
def test_functional_conv1d_and_conv3d(impl):
    x1, w1 = _pair((2, 4, 17), (6, 2, 5))
    torch.testing.assert_close(functional.conv1d(x1, w1, stride=2, groups=2, impl=impl),
                               F.conv1d(x1, w1, stride=2, groups=2))
    torch.testing.assert_close(functional.conv1d(x1[0], w1, padding="same", groups=2, impl=impl),
                               F.conv1d(x1[0], w1, padding="same", groups=2))
    x3, w3 = _pair((1, 2, 5, 6, 7), (3, 2, 3, 2, 3))
    torch.testing.assert_close(functional.conv3d(x3, w3, padding=1, dilation=(1, 2, 1), impl=impl),
                               F.conv3d(x3, w3, padding=1, dilation=(1, 2, 1)))


def test_functional_conv1d_refuses_2d_only_impl():
    x, w = _pair((1, 2, 9), (2, 2, 3))
    with pytest.raises(ValueError, match="conv1d is implemented by im2col and naive, not 'fft'"):
        functional.conv1d(x, w, impl="fft")


def test_functional_conv_transpose2d():
    x, w = _pair((2, 4, 5, 6), (4, 3, 3, 3))
    torch.testing.assert_close(
        functional.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2),
        F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=2))


@pytest.mark.parametrize("chunk_images", [1, 2, 5], ids=["an image a chunk", "uneven chunks", "one chunk"])
@pytest.mark.parametrize("groups, channels_last", [(1, False), (2, False), (1, True)],
                         ids=["one group", "two groups", "channels_last"])
def test_im2col_in_chunks_of_images(monkeypatch, chunk_images, groups, channels_last):
    """Channels-innermost columns are made a few images at a time, in the forward and again
    for the weight gradient; every chunking (the last one short, groups writing strided
    slices of the product, a channels_last result) gives torch's output and gradients."""
    x, w = (t.detach() for t in _pair((5, 32, 7, 6), (6, 32 // groups, 3, 3)))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    args = normalize(x, w, 2, 1, 1, groups)
    assert im2col.channels_innermost(x, args)
    per_image = math.prod(args.out_size(x.shape[2:])) * 32 * 9 * x.element_size()
    monkeypatch.setattr(im2col, "CHUNK_BYTES", chunk_images * per_image)
    monkeypatch.setattr(im2col, "WEIGHT_CHUNK_BYTES", chunk_images * per_image)
    chunks = list(im2col._image_chunks(x, args, im2col.CHUNK_BYTES))
    assert len(chunks) == -(-5 // chunk_images) and chunks[-1][1] == 5
    leaves = [t.requires_grad_() for t in (x, w)]
    out = im2col.conv2d(*leaves, stride=2, padding=1, groups=groups)
    want = F.conv2d(*leaves, stride=2, padding=1, groups=groups)
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
    assert out.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    cotangent = torch.randn(out.shape, dtype=out.dtype)
    got = torch.autograd.grad(out, leaves, cotangent)
    torch.testing.assert_close(got, torch.autograd.grad(want, leaves, cotangent), rtol=1e-12, atol=1e-12)


def test_im2col_saves_only_the_input_for_its_backward():
    """Columns kept for every layer until the backward would take taps/stride² times its
    activations; the input is what torch keeps too."""
    x, w = _pair((2, 16, 8, 8), (8, 16, 3, 3))
    out = im2col.conv2d(x, w, padding=1)
    saved = [t for t in out.grad_fn.saved_tensors if t is not None]
    assert sorted(t.numel() for t in saved) == sorted([x.numel(), w.numel()])


def test_shift_add_output_is_contiguous_for_view():
    x, w = torch.randn(2, 3, 12, 12), torch.randn(4, 3, 3, 3)
    for kwargs in ({"padding": 1}, {"stride": 2}, {}):
        assert shift_add.conv2d(x, w, **kwargs).is_contiguous()
    assert shift_add.conv2d(x, torch.randn(6, 1, 3, 3), groups=3).is_contiguous()


def test_implementations_lists_every_name_before_any_is_loaded():
    import subprocess
    import sys

    code = ("import sys; from shapecheck.conv import IMPLEMENTATIONS as I; "
            "print(list(I)); print(sorted(m for m in sys.modules if m.startswith('shapecheck.conv.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    names, loaded = out.splitlines()
    assert names == "['naive', 'shift_add', 'im2col', 'toeplitz', 'fft', 'winograd']"
    assert loaded == "['shapecheck.conv._args']"


class FakeClock:
    """A timer under which each implementation takes a set time per call."""

    def __init__(self, costs):
        self.now, self.costs, self.calls, self.order = 0.0, costs, {}, []

    def __call__(self):
        return self.now

    def wrap(self, monkeypatch, name):
        good = IMPLEMENTATIONS[name]

        def timed(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            self.order.append(name)
            self.now += self.costs[name]
            return good(*args, **kwargs)

        monkeypatch.setitem(IMPLEMENTATIONS, name, timed)


def tuner_with_costs(monkeypatch, costs, **kwargs):
    from shapecheck.conv.auto import Tuner

    clock = FakeClock(costs)
    for name in costs:
        clock.wrap(monkeypatch, name)
    return Tuner(timer=clock, **kwargs), clock


def test_auto_measures_once_per_layer_key_and_picks_the_fastest(monkeypatch):
    costs = {"im2col": 3.0, "shift_add": 1.0, "winograd": 2.0, "fft": 5.0, "toeplitz": 4.0}
    tuner, clock = tuner_with_costs(monkeypatch, costs)
    x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3)
    args = normalize(x, w, 1, 1, 1, 1)
    assert tuner.choose(x, w, (1, 1, 1, 1), args) == "shift_add"
    measured = dict(clock.calls)
    assert tuner.choose(x, w, (1, 1, 1, 1), args) == "shift_add"
    assert clock.calls == measured  # cached: nothing timed again
    # a warm-up, the interleaved rounds, and as many again against the rule's choice (winograd)
    assert measured["shift_add"] == 1 + 2 * REPEATS and measured["winograd"] == 1 + 2 * REPEATS
    assert measured["im2col"] == 1 + REPEATS
    assert measured["fft"] == 1  # fft's first run was over 4x the best
    bigger = torch.randn(2, 4, 8, 8)
    tuner.choose(bigger, w, (1, 1, 1, 1), normalize(bigger, w, 1, 1, 1, 1))
    assert len(tuner.choices) == 2


def test_auto_keeps_the_rule_when_a_second_set_of_rounds_does_not_confirm_another(monkeypatch):
    costs = {"im2col": 3.0, "shift_add": 2.05, "winograd": 2.0, "fft": 5.0, "toeplitz": 4.0}
    tuner, clock = tuner_with_costs(monkeypatch, costs)
    x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3)  # the rule says winograd
    wrapped = IMPLEMENTATIONS["winograd"]

    def loaded_at_first(*args, **kwargs):  # winograd's first rounds ran under load: 3x its time
        clock.now += 4.0 if clock.calls.get("winograd", 0) <= REPEATS else 0.0
        return wrapped(*args, **kwargs)

    monkeypatch.setitem(IMPLEMENTATIONS, "winograd", loaded_at_first)
    assert tuner.choose(x, w, (1, 1, 1, 1), normalize(x, w, 1, 1, 1, 1)) == "winograd"


def test_auto_rounds_rotate_so_no_candidate_always_follows_the_same_one(monkeypatch):
    costs = {"im2col": 1.0, "shift_add": 1.5, "winograd": 2.0, "fft": 2.5, "toeplitz": 9.0}
    tuner, clock = tuner_with_costs(monkeypatch, costs)
    x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3)
    assert tuner.choose(x, w, (1, 1, 1, 1), normalize(x, w, 1, 1, 1, 1)) == "im2col"
    # after the warm-up of each candidate (toeplitz, 9x the best, is dropped), before the
    # rounds that confirm im2col against the rule's winograd
    rounds = clock.order[5:5 + 4 * REPEATS]
    assert [rounds[i * 4] for i in range(4)] == ["im2col", "shift_add", "winograd", "fft"]
    pairs = [(a, b) for a, b in zip(rounds, rounds[1:])]
    assert {("fft", "im2col"), ("im2col", "shift_add"), ("shift_add", "im2col"), ("im2col", "fft")} <= set(pairs)
    assert max(pairs.count((a, "im2col")) for a in costs) <= len(rounds) // 4 // 2 + 1  # no usual predecessor
    assert len(clock.order) == 5 + 4 * REPEATS + 2 * REPEATS


def test_auto_key_holds_layout_grad_dtype_and_threads():
    from shapecheck.conv.auto import layer_key

    x, w = torch.randn(2, 4, 8, 8), torch.randn(4, 4, 3, 3)
    conv_args = (1, 1, 1, 1)
    keys = {layer_key(x, w, conv_args, False), layer_key(x, w, conv_args, True),
            layer_key(x.to(memory_format=torch.channels_last), w, conv_args, False),
            layer_key(x.double(), w.double(), conv_args, False)}
    assert len(keys) == 4
    assert layer_key(x, w, conv_args, True) == (
        f"cpu|threads={torch.get_num_threads()}|float32|grad=1|contiguous|x=[2, 4, 8, 8]|w=[4, 4, 3, 3]"
        "|stride=1|padding=1|dilation=1|groups=1")


def test_auto_choices_survive_in_the_disk_cache(monkeypatch, tmp_path):
    costs = {"im2col": 1.0, "shift_add": 2.0, "winograd": 2.0, "fft": 2.0, "toeplitz": 2.0}
    path = str(tmp_path / "choices.json")
    tuner, _ = tuner_with_costs(monkeypatch, costs, path=path)
    x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3)
    args = normalize(x, w, 1, 1, 1, 1)
    assert tuner.choose(x, w, (1, 1, 1, 1), args) == "im2col"
    later, clock = tuner_with_costs(monkeypatch, {**costs, "im2col": 9.0}, path=path)
    assert later.choose(x, w, (1, 1, 1, 1), args) == "im2col"
    assert clock.calls == {}


def test_auto_without_measuring_follows_the_rule(monkeypatch):
    tuner, clock = tuner_with_costs(monkeypatch, {"im2col": 1.0, "shift_add": 9.0}, measure=False)
    x, w = torch.randn(1, 16, 8, 8), torch.randn(16, 1, 3, 3)
    args = normalize(x, w, 1, 1, 1, 16)
    assert tuner.choose(x, w, (1, 1, 1, 16), args) == "shift_add" == choose(x.shape, w.shape, args, x.device)
    assert clock.calls == {}
    meta = torch.empty(1, 16, 8, 8, device="meta")
    assert tuner.measure is False and tuner.choose(meta, w.to("meta"), (1, 1, 1, 16), args) == "shift_add"


def test_auto_lookup_answers_a_measured_layer_without_normalising(monkeypatch):
    from shapecheck.conv import auto

    tuner, clock = tuner_with_costs(monkeypatch, {"im2col": 3.0, "shift_add": 1.0, "winograd": 2.0,
                                                  "fft": 5.0, "toeplitz": 4.0})
    x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3)
    assert tuner.lookup(x, w, (1, 1, 1, 1)) == "shift_add"
    measured = dict(clock.calls)
    with monkeypatch.context() as patched:
        patched.setattr(auto, "normalize", None)  # a call that normalised again would fail
        patched.setattr(auto, "layer_key", None)
        assert tuner.lookup(x, w, (1, 1, 1, 1)) == "shift_add"
    assert clock.calls == measured
    assert tuner.lookup(x, w, ([1, 1], 1, 1, 1)) == "shift_add"  # a list: the long way, same key
    assert tuner.lookup(x.requires_grad_(), w, (1, 1, 1, 1)) == "shift_add"  # training: measured anew
    assert clock.calls["shift_add"] > measured["shift_add"]
    before = clock.calls["shift_add"]
    tuner.choices.clear()
    assert tuner.lookup(x.detach(), w, (1, 1, 1, 1)) == "shift_add"  # forgotten choices are measured again
    assert clock.calls["shift_add"] == before + measured["shift_add"]
    tuner.measure = False
    assert tuner.lookup(x.detach(), w, (1, 1, 1, 1)) == choose(x.shape, w.shape, normalize(x, w, 1, 1, 1, 1), x.device)


def test_auto_under_autocast_and_channels_last_is_torchs():
    x = torch.randn(2, 8, 9, 9).to(memory_format=torch.channels_last)
    w = torch.randn(16, 8, 3, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, ref = functional.conv2d(x, w, padding=1), F.conv2d(x, w, padding=1)
    assert out.dtype == ref.dtype == torch.bfloat16
    assert out.stride() == ref.stride()
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=5e-2)


@pytest.mark.parametrize("winograd_cost, expected", [(1.04, "winograd"), (1.06, "shift_add")])
def test_auto_keeps_the_rules_choice_within_the_margin(monkeypatch, winograd_cost, expected):
    costs = {"im2col": 3.0, "shift_add": 1.0, "winograd": winograd_cost, "fft": 5.0, "toeplitz": 4.0}
    tuner, _ = tuner_with_costs(monkeypatch, costs)
    x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3)
    args = normalize(x, w, 1, 1, 1, 1)
    assert choose(x.shape, w.shape, args, x.device) == "winograd"
    assert tuner.choose(x, w, (1, 1, 1, 1), args) == expected


def test_functional_calls_a_wrapped_implementation_whole(monkeypatch):
    import functools

    good, calls = IMPLEMENTATIONS["im2col"], []

    @functools.wraps(good)
    def counted(*args, **kwargs):
        calls.append(args[0].shape)
        return good(*args, **kwargs)

    monkeypatch.setitem(IMPLEMENTATIONS, "im2col", counted)
    x, w = _pair((3, 9, 8), (5, 3, 3, 3))
    torch.testing.assert_close(functional.conv2d(x, w, padding=1, impl="im2col"), F.conv2d(x, w, padding=1))
    assert calls == [(1, 3, 9, 8)]  # inside the functional's entry: batched already
