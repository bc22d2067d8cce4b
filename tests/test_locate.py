"""engine.locate: the exact spans of layer constructors, their arguments, and forward ops."""

import os

import pytest

from shapecheck.diagnostics import Span
from shapecheck.engine import discover, loader, locate

PATH = os.path.join(os.path.dirname(__file__), "models", "loading", "locate_cases.py")


@pytest.fixture(scope="module")
def case():
    src = loader.parse_file(PATH)
    ns = loader.load(src)
    specs = {spec.name: spec for spec in discover.find_models(src, ns)}
    return src, ns, specs


def span_of_text(src, text, line=None):
    """Span of the first occurrence of single-line `text` (on `line` if given)."""
    for number, content in enumerate(src.lines, 1):
        if (line is None or number == line) and text in content:
            column = content.index(text)
            return Span(src.path, number, column, number, column + len(text))
    raise AssertionError(f"{text!r} not found")


def args_of(site):
    return [(a.name, a.position, a.text) for a in site.args]


def test_attribute_layer_with_positional_arguments(case):
    src, ns, specs = case
    site = locate.layer_site(src, ns["LeNet"](), "conv1", specs["LeNet"])
    assert site.span == span_of_text(src, "nn.Conv2d(1, 6, 5)")
    assert site.func_span == span_of_text(src, "nn.Conv2d", site.span.line)
    assert site.func == "nn.Conv2d"
    assert args_of(site) == [("in_channels", 0, "1"), ("out_channels", 1, "6"),
                             ("kernel_size", 2, "5")]
    assert site.arg("out_channels").span == span_of_text(src, "6", site.span.line)


def test_multi_line_call_and_product_argument(case):
    src, ns, specs = case
    site = locate.layer_site(src, ns["LeNet"](), "fc1", specs["LeNet"])
    first = span_of_text(src, "nn.Linear(")
    last = span_of_text(src, "16 * 5 * 5, 120)")
    assert site.span == Span(src.path, first.line, first.column, last.line, last.end_column)
    in_features = site.arg("in_features")
    assert (in_features.position, in_features.text) == (0, "16 * 5 * 5")
    assert in_features.span == span_of_text(src, "16 * 5 * 5", last.line)


def test_annotated_assignment_and_keyword_arguments(case):
    src, ns, specs = case
    site = locate.layer_site(src, ns["LeNet"](), "fc2", specs["LeNet"])
    assert site.span == span_of_text(src, "nn.Linear(in_features=120, out_features=84)")
    assert args_of(site) == [("in_features", None, "120"), ("out_features", None, "84")]
    assert site.arg("in_features").span == span_of_text(src, "120", site.span.line)


@pytest.mark.parametrize("qualname, code, line_text", [
    ("features.0", "nn.Conv2d(6, 16, kernel_size=5)", "nn.Conv2d(6, 16"),
    ("features.2", "nn.MaxPool2d(2)", "nn.MaxPool2d(2)"),
    ("named.norm", "nn.BatchNorm1d(84)", '("norm"'),
    ("named.act", "nn.ReLU()", '("act"'),
    ("heads.1", "nn.Linear(84, 2)", "self.heads ="),
    ("blocks.2", "nn.LayerNorm(84)", "self.blocks ="),
    ("extra", "nn.Dropout(0.5)", "add_module"),
])
def test_container_elements_and_registered_modules(case, qualname, code, line_text):
    src, ns, specs = case
    site = locate.layer_site(src, ns["LeNet"](), qualname, specs["LeNet"])
    line = span_of_text(src, line_text).line
    assert site.span == span_of_text(src, code, line)
    assert locate.text_of(src, site.node) == code


def test_sequential_argument_names(case):
    src, ns, specs = case
    model = ns["LeNet"]()
    assert args_of(locate.layer_site(src, model, "features.0", specs["LeNet"])) == [
        ("in_channels", 0, "6"), ("out_channels", 1, "16"), ("kernel_size", None, "5")]
    assert args_of(locate.layer_site(src, model, "blocks.0", specs["LeNet"])) == [
        ("normalized_shape", 0, "84")]


def test_layers_of_a_block_built_by_a_helper_method(case):
    src, ns, specs = case
    resnet = ns["resnet"]
    conv2 = locate.layer_site(src, resnet, "layer1.1.conv2", specs["resnet"])
    assert conv2.span == span_of_text(src, "nn.Conv2d(planes, planes, 3, 1, 1, bias=False)")
    assert args_of(conv2) == [("in_channels", 0, "planes"), ("out_channels", 1, "planes"),
                              ("kernel_size", 2, "3"), ("stride", 3, "1"), ("padding", 4, "1"),
                              ("bias", None, "False")]
    first = locate.layer_site(src, resnet, "layer1.0", specs["resnet"])
    assert first.span == span_of_text(src, "block(self.inplanes, planes, 2)")
    assert args_of(first)[0] == ("inplanes", 0, "self.inplanes")
    later = locate.layer_site(src, resnet, "layer1.2", specs["resnet"])
    assert later.span == span_of_text(src, "block(planes, planes)")


def test_a_helper_function_call_is_the_site_with_the_helpers_parameter_names(case):
    src, ns, specs = case
    site = locate.layer_site(src, ns["resnet"], "layer1.0.conv1", specs["resnet"])
    assert site.span == span_of_text(src, "conv3x3(inplanes, planes, stride)")
    assert args_of(site) == [("in_planes", 0, "inplanes"), ("out_planes", 1, "planes"),
                             ("stride", 2, "stride")]


def test_layers_appended_in_a_loop_of_a_builder_function(case):
    src, ns, specs = case
    resnet = ns["resnet"]
    conv = "nn.Conv2d(in_channels, v, kernel_size=3, padding=1)"
    for qualname in ("vgg.0", "vgg.3"):
        assert locate.layer_site(src, resnet, qualname, specs["resnet"]).span == span_of_text(
            src, conv)
    pool = locate.layer_site(src, resnet, "vgg.2", specs["resnet"])
    assert pool.span == span_of_text(src, "nn.MaxPool2d(kernel_size=2, stride=2)")


def test_top_level_sequential_object(case):
    src, ns, specs = case
    model = ns["model"]
    assert locate.layer_site(src, model, "0", specs["model"]).span == span_of_text(
        src, "nn.Linear(4, 8)")
    last = locate.layer_site(src, model, "2", specs["model"])
    assert last.span == span_of_text(src, "nn.Linear(8, 2)")
    assert args_of(last) == [("in_features", 0, "8"), ("out_features", 1, "2")]


def test_unknown_layers_have_no_site(case):
    src, ns, specs = case
    assert locate.layer_site(src, ns["LeNet"](), "nope", specs["LeNet"]) is None
    assert locate.layer_site(src, ns["LeNet"](), "", specs["LeNet"]) is None


def test_op_site_view(case):
    src, _, _ = case
    line = span_of_text(src, "x.view(-1, 16 * 5 * 5)").line
    site = locate.op_site(src, line, ("view", "reshape"))
    assert site.span == span_of_text(src, "x.view(-1, 16 * 5 * 5)")
    assert site.func == "x.view"
    assert args_of(site) == [(None, 0, "-1"), (None, 1, "16 * 5 * 5")]
    assert site.args[1].span == span_of_text(src, "16 * 5 * 5", line)


def test_op_site_cat_with_keyword(case):
    src, _, _ = case
    line = span_of_text(src, "torch.cat([a, b], dim=1)").line
    site = locate.op_site(src, line, ("cat", "concat", "concatenate"))
    assert site.span == span_of_text(src, "torch.cat([a, b], dim=1)")
    assert args_of(site) == [(None, 0, "[a, b]"), ("dim", None, "1")]
    assert locate.op_site(src, line, ("view",)) is None


def test_op_site_picks_the_first_match_on_the_line():
    src = loader.parse("y = x.view(2, -1).view(-1, 4)\nz = f(\n    x.view(8))\n", "m.py")
    first = locate.op_site(src, 1, ("view",))
    assert locate.text_of(src, first.node) == "x.view(2, -1).view(-1, 4)"
    inner = locate.op_site(src, 3, ("view",))
    assert inner.span == Span("m.py", 3, 4, 3, 13)


def test_call_site_of_a_layer_in_forward(case):
    src, _, _ = case
    line = span_of_text(src, "x = self.fc2(self.fc1(x))").line
    assert locate.call_site_at(src, line, "fc1").span == span_of_text(src, "self.fc1(x)")
    assert locate.call_site_at(src, line, "fc2").span == span_of_text(
        src, "self.fc2(self.fc1(x))")
    heads = span_of_text(src, "self.heads[1](x)")
    assert locate.call_site_at(src, heads.line, "heads.1").span == heads
    assert locate.call_site_at(src, line, "conv1") is None


def test_index_is_built_once_per_file(case):
    src, ns, specs = case
    locate.op_site(src, 1, ("view",))
    index = src.cache["locate"]
    locate.layer_site(src, ns["LeNet"](), "fc1", specs["LeNet"])
    assert src.cache["locate"] is index
