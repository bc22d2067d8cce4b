"""engine.discover and engine.build: input shapes, config, --init values, models, building."""

import os
import textwrap

import pytest

from shapecheck.engine import build as build_mod
from shapecheck.engine import discover, loader
from shapecheck.engine.discover import InputSpec, MissingArguments
from shapecheck.errors import UsageError

CASES = os.path.join(os.path.dirname(__file__), "models", "loading", "loader_cases.py")


def loaded(tmp_path, text, name="model.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    src = loader.parse_file(str(path))
    return src, loader.load(src)


@pytest.mark.parametrize("text, shape, dtype", [
    ("16,1,32,32", (16, 1, 32, 32), "float32"),
    ("16x1x32x32", (16, 1, 32, 32), "float32"),
    ("(16, 1, 32, 32)", (16, 1, 32, 32), "float32"),
    (" 8 , 128 ", (8, 128), "float32"),
    ("16,20:int64", (16, 20), "int64"),
    ("16x20:long", (16, 20), "int64"),
    ("4,3:half", (4, 3), "float16"),
    ("4,3:double", (4, 3), "float64"),
    ("4:int", (4,), "int32"),
    ("4,2:torch.bfloat16", (4, 2), "bfloat16"),
    ("4,2:bool", (4, 2), "bool"),
])
def test_parse_input_flag(text, shape, dtype):
    assert discover.parse_input_flag(text) == InputSpec(shape, dtype)


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("16,,32", "'' is not a positive integer"),
    ("16,0,32", "'0' is not a positive integer"),
    ("16,a,32", "'a' is not a positive integer"),
    ("16,-1", "'-1' is not a positive integer"),
    ("16,20:int65", "unknown dtype 'int65'"),
])
def test_bad_input_flags_say_what_is_wrong(text, fragment):
    with pytest.raises(UsageError) as info:
        discover.parse_input_flag(text)
    assert fragment in str(info.value)


def test_input_spec_text_is_the_flag_form():
    assert InputSpec((16, 1, 32, 32)).text == "16,1,32,32"
    assert InputSpec((16, 20), "int64").text == "16,20:int64"


@pytest.mark.parametrize("text, expected", [
    ("input=(16, 1, 32, 32)", (InputSpec((16, 1, 32, 32)),)),
    ("input=[4, 10]", (InputSpec((4, 10)),)),
    ("input=16x1x32x32", (InputSpec((16, 1, 32, 32)),)),
    ('input=((8, 3, 64, 64), (8, 12, "int64"))',
     (InputSpec((8, 3, 64, 64)), InputSpec((8, 12), "int64"))),
    ("input=8x3x64x64; 8x12:int64", (InputSpec((8, 3, 64, 64)), InputSpec((8, 12), "int64"))),
    ("ignore[SC101]", None),
])
def test_parse_hint(text, expected):
    assert discover.parse_hint(text) == expected


def test_bad_hint_is_a_usage_error():
    with pytest.raises(UsageError) as info:
        discover.parse_hint("input=(16, 1.5, 32)")
    assert "positive integer" in str(info.value)


def test_hint_text_round_trips():
    one = (InputSpec((16, 1, 32, 32)),)
    two = (InputSpec((8, 3, 64, 64)), InputSpec((8, 12), "int64"))
    assert discover.hint_text(one) == "# shapecheck: input=(16, 1, 32, 32)"
    assert discover.hint_text(two) == '# shapecheck: input=((8, 3, 64, 64), (8, 12, "int64"))'
    for specs in (one, two):
        assert discover.parse_hint(discover.hint_text(specs).split(":", 1)[1]) == specs


def test_read_config_from_the_nearest_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""\
        [project]
        name = "x"

        [tool.shapecheck]
        inputs = { Net = [16, 1, 32, 32], Two = [[8, 3, 64, 64], [8, 12, "int64"]], "Flat" = "4x10" }
        """))
    (tmp_path / "models" / "deep").mkdir(parents=True)
    config = discover.read_config(str(tmp_path / "models" / "deep" / "m.py"))
    assert config == {
        "Net": (InputSpec((16, 1, 32, 32)),),
        "Two": (InputSpec((8, 3, 64, 64)), InputSpec((8, 12), "int64")),
        "Flat": (InputSpec((4, 10)),),
    }


def test_nearest_pyproject_without_the_table_gives_nothing(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.shapecheck]\ninputs = { Net = [2, 3] }\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text('[project]\nname = "sub"\n')
    assert discover.read_config(str(tmp_path / "sub" / "m.py")) == {}
    assert discover.read_config(str(tmp_path / "m.py")) == {"Net": (InputSpec((2, 3)),)}


@pytest.mark.parametrize("body, fragment", [
    ("[tool.shapecheck]\ninputs = { Net = [16, 0] }\n", "inputs.Net"),
    ("[tool.shapecheck]\ninputs = [1, 2]\n", "must be a table"),
    ("[tool.shapecheck\n", "cannot read it"),
])
def test_invalid_config_names_the_file(tmp_path, body, fragment):
    (tmp_path / "pyproject.toml").write_text(body)
    with pytest.raises(UsageError) as info:
        discover.read_config(str(tmp_path / "m.py"))
    assert str(tmp_path / "pyproject.toml") in str(info.value)
    assert fragment in str(info.value)


def test_parse_init_flags():
    values = discover.parse_init_flags(
        ["n_classes=10", "dims=(768, 4)", "p=0.5", "act=gelu", "name='x y'", "flag=True",
         "Net.depth=3", "none=None"])
    assert values == {"n_classes": 10, "dims": (768, 4), "p": 0.5, "act": "gelu",
                      "name": "x y", "flag": True, "Net.depth": 3, "none": None}


@pytest.mark.parametrize("item", ["n_classes", "=3", "1x=3", "dims=(768, 4", "a=b c"])
def test_bad_init_flags(item):
    with pytest.raises(UsageError) as info:
        discover.parse_init_flags([item])
    assert repr(item) in str(info.value)


class _Model:
    def __init__(self, n_in, n_classes, *, depth=2):
        pass


class _Open:
    def __init__(self, width, **extra):
        pass


def test_constructor_kwargs_names_missing_arguments_and_how_to_pass_them():
    with pytest.raises(MissingArguments) as info:
        discover.constructor_kwargs(_Model, {"n_in": 4})
    assert info.value.names == ["n_classes"] and info.value.cls_name == "_Model"
    assert "--init n_classes=" in str(info.value)
    with pytest.raises(MissingArguments) as info:
        discover.constructor_kwargs(_Model, {})
    assert info.value.names == ["n_in", "n_classes"]
    assert "--init n_in=VALUE --init n_classes=VALUE" in str(info.value)


def test_constructor_kwargs_accepts_scoped_and_rejects_unknown_names():
    assert discover.constructor_kwargs(
        _Model, {"n_in": 4, "_Model.n_classes": 3, "Other.depth": 9}) == {
            "n_in": 4, "n_classes": 3}
    with pytest.raises(UsageError) as info:
        discover.constructor_kwargs(_Model, {"n_in": 4, "n_classes": 3, "widht": 2})
    assert "widht" in str(info.value) and "n_in, n_classes, depth" in str(info.value)
    assert discover.constructor_kwargs(
        _Model, {"n_in": 4, "n_classes": 3, "widht": 2}, strict=False) == {
            "n_in": 4, "n_classes": 3}
    assert discover.constructor_kwargs(_Open, {"width": 1, "other": 2}) == {
        "width": 1, "other": 2}


def test_find_models_in_a_script(monkeypatch, tmp_path):
    monkeypatch.setenv("SHAPECHECK_TEST_MARKER", str(tmp_path / "ran"))
    src = loader.parse_file(CASES)
    specs = discover.find_models(src, loader.load(src))
    summary = [(s.name, s.line, s.kind, s.instance_of) for s in specs]
    assert summary == [
        ("Net", 31, "class", None), ("Head", 43, "class", None),
        ("model", 64, "object", "Net"), ("seq", 65, "object", None),
        ("mlp", 66, "object", None)]
    net = specs[0]
    assert net.hint == (InputSpec((16, 1, 28, 28)),) and net.hint_line == 30
    assert net.path == src.path
    assert "ConvBlock" not in [s.name for s in specs]  # imported, not defined here


def test_blocks_used_by_other_models_are_marked(tmp_path):
    src, ns = loaded(tmp_path, """\
        import torch.nn as nn

        class Basic(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = nn.Conv2d(c, c, 3)

        class Bottleneck(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = nn.Conv2d(c, c, 1)

        class ResNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.layer = nn.Sequential(Basic(8), Basic(8))

        class Wide(nn.Module):
            def __init__(self, block):
                super().__init__()
                self.layer = block(8)

        # shapecheck: input=4x8x5x5
        backbone = nn.Sequential(nn.Conv2d(8, 8, 3))
        full = nn.Sequential(backbone, nn.ReLU())
        wide = Wide(Bottleneck)
        """)
    specs = {s.name: s for s in discover.find_models(src, ns)}
    used = {name for name, s in specs.items() if s.is_used_by_other}
    assert used == {"Basic", "Bottleneck", "backbone"}
    assert specs["backbone"].hint == (InputSpec((4, 8, 5, 5)),)
    assert specs["wide"].instance_of == "Wide"


def test_a_bad_hint_is_kept_as_an_error_on_the_model(tmp_path):
    src, ns = loaded(tmp_path, """\
        import torch.nn as nn

        # shapecheck: input=(16, x, 32)
        class Net(nn.Module):
            pass
        """)
    (spec,) = discover.find_models(src, ns)
    assert spec.hint is None and spec.hint_line == 3
    assert "positive integer" in spec.hint_error


def test_build_on_meta_with_init_values(tmp_path):
    src, ns = loaded(tmp_path, """\
        import torch.nn as nn

        class Head(nn.Module):
            def __init__(self, n_in, n_out=3):
                super().__init__()
                self.fc = nn.Linear(n_in, n_out)
        """)
    (spec,) = discover.find_models(src, ns)
    model = build_mod.build(spec, {"n_in": 7})
    assert model.fc.weight.shape == (3, 7) and model.fc.weight.device.type == "meta"
    assert model.training
    with pytest.raises(MissingArguments):
        build_mod.build(spec, {})


def test_build_errors_point_at_the_constructor_line(tmp_path):
    src, ns = loaded(tmp_path, """\
        import torch.nn as nn

        class Broken(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
                self.extra = nn.Linear(4, "four")
        """)
    (spec,) = discover.find_models(src, ns)
    with pytest.raises(build_mod.BuildError) as info:
        build_mod.build(spec, {})
    assert info.value.line == 7
    assert "building Broken failed: TypeError" in info.value.message


def test_build_returns_top_level_objects_on_meta(tmp_path):
    src, ns = loaded(tmp_path, """\
        import torch.nn as nn
        model = nn.Linear(3, 2)
        """)
    (spec,) = discover.find_models(src, ns)
    assert build_mod.build(spec, {}) is ns["model"]
    assert ns["model"].weight.device.type == "meta"


def test_blocks_built_through_module_functions_are_marked(tmp_path):
    """`self.stages = make_stage(...)` where `make_stage` builds `Block` (through another helper)."""
    src, ns = loaded(tmp_path, """\
        import torch.nn as nn

        class Block(nn.Module):
            def __init__(self, c_in, c_out):
                super().__init__()
                self.conv = nn.Conv2d(c_in, c_out, 3)

        class Unused(nn.Module):
            def __init__(self, c):
                super().__init__()
                self.conv = nn.Conv2d(c, c, 3)

        def one(c_in, c_out):
            return Block(c_in, c_out)

        def make_stage(c_in, c_out, n):
            return nn.Sequential(*[one(c_in if i == 0 else c_out, c_out) for i in range(n)])

        def standalone():
            return Unused(3)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.stages = make_stage(3, 8, 2)
        """)
    specs = {s.name: s for s in discover.find_models(src, ns)}
    assert specs["Block"].is_used_by_other and not specs["Unused"].is_used_by_other
    assert not specs["Net"].is_used_by_other
