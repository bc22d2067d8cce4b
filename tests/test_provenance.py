"""Provenance: a finding on a layer argument sits where the user wrote the value, the notes give
the chain that led there, and --fix edits that value into a model that real torch runs."""

import os
import shutil
import textwrap

import pytest

from shapecheck import api
from shapecheck.config import Settings
from shapecheck.diagnostics import Applicability
from shapecheck.engine.provenance import Built, Frame, Link
from shapecheck.frontends.cli import main

from conftest import CASES
from helpers import load_classes, run_real

# file: (code, line of the span, the chain, the output shape of each model once fixed)
CHAINS = {
    "origin_helper_default.py": (
        "SC102", 17, "`stem.conv` in_channels=1 ← `cin` (line 8) ← `Block(in_ch, 32)` (line 19) "
        "← `in_ch=1` (line 17)",
        {"Net": (8, 10, 32, 32)}),
    "origin_call_site.py": (
        "SC102", 27, "`encoder.conv` in_channels=1 ← `channels` (line 8) ← `Encoder(in_ch)` (line 18) "
        "← `Classifier(1)` (line 27)", {"classifier": (4, 10)}),
    "origin_config.py": (
        "SC101", 9, "`ffn.up` in_features=48 ← `config.n_embd` (line 16) ← `FeedForward(config)` (line 26) "
        "← `Model(Config())` (line 34) ← `n_embd: int = 48` (line 9)", {"model": (4, 10, 2)}),
    "origin_loop.py": (
        "SC101", 5, "`body.0` in_features=24 ← `sizes[i]` (line 14) ← `sizes=SIZES` (line 10) "
        "← `SIZES = [24, 64, 32]` (line 5) ← `24` (line 5, item 0)", {"MLP": (4, 32), "Branches": (4, 24, 32, 32)}),
    "origin_constant.py": (
        "SC102", 4, "`features.0.0` in_channels=1 ← `cin` (line 8) ← `conv_block(IN_CHANNELS, 8)` (line 15) "
        "← `IN_CHANNELS = 1` (line 4)", {"Net": (2, 16, 28, 28)}),
}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_finding_at_the_written_value(name):
    code, line, chain, _ = CHAINS[name]
    report = api.check_file(os.path.join(CASES, name))
    found = next(d for d in report.diagnostics if d.code == code)
    assert found.line == line
    assert found.notes[0] == chain
    assert found.fix.applicability is Applicability.SAFE
    assert found.related[0].message.endswith("is built here")


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_fix_runs_in_torch(name, tmp_path):
    """The edits --fix writes (`fixed_source`) give a model that real torch runs, with the
    output shape the model was meant to have."""
    copy = tmp_path / name
    text, count = api.fixed_source(api.check_file(os.path.join(CASES, name)))
    copy.write_text(text)
    assert count == len(CHAINS[name][3])
    specs = load_classes(str(copy))
    for model, shape in CHAINS[name][3].items():
        assert tuple(run_real(specs[model]).shape) == shape


def test_fix_command_writes_the_outer_value(tmp_path, capsys):
    copy = tmp_path / "origin_helper_default.py"
    shutil.copy(os.path.join(CASES, copy.name), copy)
    assert main([str(copy), "--fix", "-q"]) == 0
    capsys.readouterr()
    assert "    def __init__(self, in_ch=3, n_classes=10):  # expect: SC102\n" in copy.read_text()
    assert "        self.conv = nn.Conv2d(cin, cout, 3, padding=1)\n" in copy.read_text()


def test_loop_variable_picks_its_item():
    report = api.check_file(os.path.join(CASES, "origin_loop.py"))
    branch = next(d for d in report.diagnostics if d.code == "SC102")
    assert (branch.span.line, branch.span.column, branch.span.end_column) == (27, 30, 32)
    assert branch.notes[0].endswith("← `for width in [16, 16, 24]` (line 27) ← `24` (line 27, item 2)")
    assert branch.fix.title == "Change `24` (line 27, item 2) to `16`"


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent(text))
    return str(path)


HELPER = """\
    import torch
    import torch.nn as nn


    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1)

        def forward(self, x):
            return self.conv(x)


    class Net(nn.Module):
        def __init__(self, in_ch):
            super().__init__()
            self.stem = Block(in_ch, 16)

        def forward(self, x):
            return self.stem(x)
"""


def test_call_site_in_a_function(tmp_path):
    """Built by `Net(in_ch=1)` inside a function that then runs it: the argument of that call."""
    path = _write(tmp_path, HELPER + """
    def main():
        model = Net(in_ch=1)
        return model(torch.randn(4, 3, 16, 16))
    """)
    found = api.check_file(path).diagnostics[0]
    assert (found.code, found.line, found.fix.applicability) == ("SC102", 23, Applicability.SAFE)
    assert found.notes[0].endswith("← `Block(in_ch, 16)` (line 17) ← `Net(in_ch=1)` (line 23)")
    assert found.fix.edits[0].new_text == "3"


def test_value_given_on_the_command_line_keeps_the_layer_span(tmp_path):
    """`--init in_ch=1`: nothing in the file holds the 1, so the finding stays at the layer's argument."""
    path = _write(tmp_path, HELPER.replace("    class Net", "    # shapecheck: input=(4, 3, 16, 16)\n    class Net"))
    found = api.check_file(path, settings=Settings(init=("in_ch=1",))).diagnostics[0]
    assert (found.code, found.line, found.span.column) == ("SC102", 8, 30)
    assert found.notes[0] == "`stem.conv` in_channels=1 ← `cin` (line 8) ← `Block(in_ch, 16)` (line 18)"


def test_config_class_defaults(tmp_path):
    """`Model(config)` built with the file's config class: the field default, though the call is shapecheck's."""
    path = _write(tmp_path, """\
    from dataclasses import dataclass

    import torch.nn as nn


    @dataclass
    class Config:
        width: int = 48


    # shapecheck: input=(4, 32)
    class Model(nn.Module):
        def __init__(self, config: Config):
            super().__init__()
            self.fc = nn.Linear(config.width, 2)

        def forward(self, x):
            return self.fc(x)
    """)
    found = api.check_file(path).diagnostics[0]
    assert (found.code, found.line, found.fix.edits[0].new_text) == ("SC101", 8, "32")
    assert found.notes[0] == ("`fc` in_features=48 ← `config.width` (line 15) ← `Model(config=Config())` "
                              "← `width: int = 48` (line 8)")


def test_comprehension_and_arithmetic(tmp_path):
    """A comprehension's loop variable is followed; a value computed with arithmetic is not."""
    path = _write(tmp_path, """\
    import torch.nn as nn


    # shapecheck: input=(4, 16)
    class Heads(nn.Module):
        def __init__(self, width=8):
            super().__init__()
            self.heads = nn.ModuleList([nn.Linear(d, 2) for d in (16, 12)])
            self.proj = nn.Linear(width * 3, 2)

        def forward(self, x):
            return [head(x) for head in self.heads] + [self.proj(x)]
    """)
    found = {d.fact("layer"): d for d in api.check_file(path).diagnostics}
    assert found["heads.1"].line == 8 and found["heads.1"].span.column == 66
    assert found["heads.1"].notes[0].endswith("← `for d in (16, 12)` (line 8) ← `12` (line 8, item 1)")
    assert (found["proj"].line, found["proj"].fact("arg_text")) == (9, "width * 3")  # as written
    assert not found["proj"].notes[0].startswith("`proj` in_features")


def test_helper_arithmetic_fixed_in_the_helper(tmp_path):
    """`c_in + 1` in a helper used twice: `c_in` held the right size in both uses, so one edit
    in the helper fixes both layers."""
    path = _write(tmp_path, """\
    import torch.nn as nn


    def double_conv(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in + 1, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


    # shapecheck: input=(2, 3, 32, 32)
    class Net(nn.Module):
        def __init__(self, base=8):
            super().__init__()
            self.a = double_conv(3, base)
            self.b = double_conv(base, base * 2)

        def forward(self, x):
            return self.b(self.a(x))
    """)
    report = api.check_file(path)
    assert [(d.code, d.line, d.fix.title, d.fix.applicability) for d in report.diagnostics] == [
        ("SC102", 5, "Change `c_in + 1` to `c_in` (3 here)", Applicability.SAFE),
        ("SC102", 5, "Change `c_in + 1` to `c_in` (8 here)", Applicability.SAFE)]
    text, count = api.fixed_source(report)
    assert count == 1 and "nn.Conv2d(c_in, c_out, 3, padding=1)" in text
    (tmp_path / "model.py").write_text(text)
    assert tuple(run_real(load_classes(path)["Net"]).shape) == (2, 16, 32, 32)


def test_shared_value_fixed_at_the_use(tmp_path):
    """A constant that other layers also use: changing it does not prove out, so the finding and
    its fix go back to the layer's own argument."""
    path = _write(tmp_path, """\
    import torch.nn as nn

    HIDDEN = 16


    # shapecheck: input=(4, 16)
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(HIDDEN, 8)
            self.b = nn.Linear(8, HIDDEN)
            self.c = nn.Linear(HIDDEN, 4)

        def forward(self, x):
            return self.c(self.b(self.a(x))[:, :12])
    """)
    found = api.check_file(path).diagnostics[0]
    assert (found.code, found.line, found.span.column, found.fix.applicability) == ("SC101", 12, 27, Applicability.SAFE)
    assert found.notes[0] == "`c` in_features=16 ← `HIDDEN` (line 12) ← `HIDDEN = 16` (line 3)"
    assert found.fix.edits[0].new_text == "12"


def test_subclass_passes_its_default_to_the_base(tmp_path):
    path = _write(tmp_path, """\
    import torch.nn as nn


    class ConvBase(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1)

        def forward(self, x):
            return self.conv(x)


    # shapecheck: input=(2, 3, 16, 16)
    class Gray(ConvBase):
        def __init__(self, channels=1):
            super().__init__(channels, 8)
    """)
    found = next(d for d in api.check_file(path).diagnostics if d.code == "SC102")
    assert (found.line, found.fix.edits[0].new_text, found.fix.applicability) == (15, "3", Applicability.SAFE)
    assert found.notes[0].endswith("← `super().__init__(channels, 8)` (line 16) ← `channels=1` (line 15)")


def test_recorded_sites_are_plain_data():
    built = Built((Frame("__init__", 5, (8, 8, 20, 54), (("cin", 1), ("sizes", (1, 2)))),
                   Frame("<module>", 1, (20, 20, 6, 13))), direct=True)
    assert Built.from_dict(built.to_dict()) == built
    assert str(Link("in_ch=1", 7)) == "`in_ch=1` (line 7)"
