"""Drop-in modules and swap: same parameters, same state dict, same results as torch's layers."""

from __future__ import annotations

import importlib

import pytest
import torch
from torch import nn

from shapecheck.conv import IMPLEMENTATIONS, modules
from shapecheck.conv.swap import conv_layers, swap, swapped, unswap

TIGHT = dict(rtol=1e-11, atol=1e-12)


def available(name: str) -> str:
    try:
        importlib.import_module(IMPLEMENTATIONS[name].__module__)
    except ModuleNotFoundError as missing:
        if missing.name == f"shapecheck.conv.{name}":
            pytest.skip(f"implementation {name!r} does not exist yet")
        raise
    return name


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
        )
        self.up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.head = nn.Conv1d(4, 2, 3, padding=1, padding_mode="circular")
        self.fc = nn.Linear(2 * 12, 3)

    def forward(self, x):
        x = self.up(self.features(x))
        return self.fc(self.head(x.mean(2)).flatten(1))


def make_net() -> Net:
    torch.manual_seed(0)
    return Net().double()


def image() -> torch.Tensor:
    return torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_swap_reports_each_replaced_layer_and_keeps_the_same_parameter_tensors():
    net = make_net()
    before = {k: v for k, v in net.state_dict(keep_vars=True).items()}
    replaced = swap(net, "im2col")
    assert replaced == [("features.0", "Conv2d"), ("features.2", "Conv2d"),
                        ("up", "ConvTranspose2d"), ("head", "Conv1d")]
    after = net.state_dict(keep_vars=True)
    assert list(after) == list(before)
    assert all(after[k] is before[k] for k in before)
    assert isinstance(net.features[0], modules.Conv2d) and isinstance(net.features[0], nn.Conv2d)
    assert net.up.impl == "im2col"


@pytest.mark.parametrize("name", IMPLEMENTATIONS.names())
def test_swapped_model_computes_what_torch_computes(name):
    net = make_net()
    x = image()
    expected = net(x)
    with swapped(net, available(name), only=["features.0", "features.2", "up"]):
        torch.testing.assert_close(net(x), expected, **TIGHT)


def test_unswap_restores_torch_classes_and_results():
    net = make_net()
    x = image()
    expected = net(x)
    swap(net, "naive")
    assert unswap(net) == [("features.0", "naive"), ("features.2", "naive"), ("up", "naive"), ("head", "naive")]
    assert [type(layer) for _, layer in conv_layers(net)] == [nn.Conv2d, nn.Conv2d, nn.ConvTranspose2d, nn.Conv1d]
    assert not hasattr(net.up, "impl")
    assert torch.equal(net(x), expected)


def test_swapped_restores_even_when_the_block_raises():
    net = make_net()
    with pytest.raises(RuntimeError, match="boom"), swapped(net, "naive"):
        raise RuntimeError("boom")
    assert type(net.features[0]) is nn.Conv2d


def test_user_subclasses_of_torch_layers_are_left_alone():
    class StandardisedConv(nn.Conv2d):
        def forward(self, x):
            w = self.weight - self.weight.mean()
            return self._conv_forward(x, w, self.bias)

    model = nn.Sequential(StandardisedConv(3, 4, 3), nn.Conv2d(4, 4, 1))
    assert swap(model, "naive") == [("1", "Conv2d")]
    assert type(model[0]) is StandardisedConv


def test_swapping_again_changes_the_implementation():
    net = make_net()
    swap(net, "naive")
    assert swap(net, "toeplitz")[0] == ("features.0", "Conv2d")
    assert {layer.impl for _, layer in conv_layers(net)} == {"toeplitz"}


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("torch_cls, ours, shape", [
    (nn.Conv1d, modules.Conv1d, (2, 4, 9)),
    (nn.Conv2d, modules.Conv2d, (2, 4, 7, 6)),
    (nn.Conv3d, modules.Conv3d, (1, 4, 5, 4, 6)),
])
def test_drop_in_modules_share_constructor_state_dict_and_results(torch_cls, ours, shape, padding_mode):
    torch.manual_seed(0)
    theirs = torch_cls(4, 6, 3, stride=1, padding=2, dilation=2, groups=2, padding_mode=padding_mode).double()
    mine = ours(4, 6, 3, stride=1, padding=2, dilation=2, groups=2, padding_mode=padding_mode, impl="im2col").double()
    assert list(mine.state_dict()) == list(theirs.state_dict())
    mine.load_state_dict(theirs.state_dict())
    x = torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(mine(x), theirs(x), **TIGHT)


@pytest.mark.parametrize("impl", ["auto", "naive", "im2col", "toeplitz"])
def test_drop_in_conv_transpose_honours_output_size(impl):
    torch.manual_seed(0)
    theirs = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2).double()
    mine = modules.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2, impl=impl).double()
    mine.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 4, 5, 4, dtype=torch.float64)
    out = mine(x, output_size=[10, 8])
    assert out.shape == (2, 6, 10, 8)
    torch.testing.assert_close(out, theirs(x, output_size=[10, 8]), **TIGHT)


@pytest.mark.parametrize("impl", ["auto", "im2col"])
@pytest.mark.parametrize("torch_cls, ours, shape, size", [
    (nn.ConvTranspose1d, modules.ConvTranspose1d, (2, 4, 5), [10]),
    (nn.ConvTranspose3d, modules.ConvTranspose3d, (1, 4, 3, 4, 2), [6, 8, 4]),
])
def test_conv_transpose_1d_and_3d_are_swapped_and_match_torch(torch_cls, ours, shape, size, impl):
    torch.manual_seed(0)
    net = nn.Sequential(torch_cls(4, 6, 3, stride=2, padding=1, groups=2)).double()
    x = torch.randn(shape, dtype=torch.float64)
    want = net[0](x, output_size=size)
    assert swap(net, impl) == [("0", torch_cls.__name__)]
    assert type(net[0]) is ours
    torch.testing.assert_close(net[0](x, output_size=size), want, **TIGHT)


def test_drop_in_conv2d_auto_matches_torch():
    try:
        importlib.import_module("shapecheck.conv.functional")
    except ModuleNotFoundError:
        pytest.skip("shapecheck.conv.functional does not exist yet")
    torch.manual_seed(0)
    theirs = nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=1).double()
    mine = modules.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=1).double()
    mine.load_state_dict(theirs.state_dict())
    assert mine.impl == "auto"
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    torch.testing.assert_close(mine(x), theirs(x), **TIGHT)


def test_repr_names_the_implementation():
    assert "impl='toeplitz'" in repr(modules.Conv2d(1, 1, 3, impl="toeplitz"))
