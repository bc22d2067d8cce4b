"""An ERROR is a shape problem shown at an input the model is meant to take. What the check
could not supply (an input, a None default that callers replace, a value from code it does
not run) or a size it only guessed is a note, never an error."""

import os

import torch

from shapecheck import api
from shapecheck.diagnostics import Severity

from conftest import CASES
from helpers import load_classes


def _found(name):
    report = api.check_file(os.path.join(CASES, name))
    return report, [(d.code, d.severity, d.line, d.model) for d in report.diagnostics]


def test_values_the_check_could_not_supply_are_notes():
    report, found = _found("unsupplied_values.py")
    assert found == [("SC904", Severity.INFO, 12, "SharedTrunk"), ("SC903", Severity.INFO, 20, "Conditional"),
                     ("SC903", Severity.INFO, 31, "Masked")]
    shared, needs_labels, mask = report.diagnostics
    assert shared.message == ("`SharedTrunk` needs the constructor argument `shared_block`: its default None is "
                              "used at line 12 (`self.shared_block`), so the check stopped there")
    assert needs_labels.message == ("`Conditional` was not checked: its forward needs an input for `labels`, "
                                    "and none is known")
    assert needs_labels.notes[0] == ("add `# shapecheck: input=((8, 3, 28, 28), (8, ...))` on the line before "
                                     "the class, with the real sizes in place of `...`")
    assert mask.message.startswith("`Masked` needs an input for `mask`: its default None is used at line 31")
    assert [m.status.value for m in report.models] == ["not_checked", "not_checked", "partial"]


def test_a_hint_with_too_few_inputs_names_the_missing_one(tmp_path):
    source = ("import torch.nn as nn\n\n\n# shapecheck: input=(2, 3, 8, 8)\nclass Pair(nn.Module):\n"
              "    def __init__(self):\n        super().__init__()\n        self.conv = nn.Conv2d(3, 4, 3)\n\n"
              "    def forward(self, a, b):\n        return self.conv(a) - self.conv(b)\n")
    (d,) = api.check_source(source, str(tmp_path / "pair.py")).diagnostics
    assert (d.code, d.severity, d.line) == ("SC903", Severity.INFO, 10)
    assert "input=((2, 3, 8, 8), (2, ...))" in d.notes[0]


def test_tensors_made_on_the_cpu_in_forward_join_the_trace():
    report, found = _found("tensors_made_in_forward.py")
    assert found == [("SC906", Severity.INFO, 40, "Untraceable")]
    assert report.diagnostics[0].message == (
        "the check stopped at line 40: `OFFSET` is set at line 4 by top-level code that shapecheck does not run "
        "(it runs only definitions, imports and constants)")
    status = {m.name: (m.status.value, m.output_shapes) for m in report.models}
    assert status["Factories"] == ("checked", ((2, 8, 16, 16),))
    assert status["Positions"][0] == "checked"


def test_a_size_only_guessed_is_no_error():
    """Inference tried its usual sizes and each failed: not proof that no size fits (24×24 does)."""
    report, found = _found("guessed_sizes.py")
    assert found == [("SC903", Severity.INFO, 4, "OddSizeOnly")]
    assert "fails at every size tried" in report.diagnostics[0].message
    (model,) = report.models
    assert (model.status.value, model.accepted_inputs) == ("not_checked", "not determined")
    spec = load_classes(os.path.join(CASES, "guessed_sizes.py"))["OddSizeOnly"]
    assert spec.obj()(torch.randn(2, 3, 24, 24)).shape == (2, 10)


def test_no_size_fits_is_still_an_error_when_proven():
    _, found = _found("no_input_fits.py")
    assert ("SC130", Severity.ERROR, 4, "Net") in found


def test_helpers_built_at_top_level_are_not_models(tmp_path):
    source = ("import torch.nn as nn\n\ncriterion = nn.CrossEntropyLoss(label_smoothing=0.1)\n"
              "act = nn.ReLU()\nskip = nn.Identity()\npool = nn.MaxPool2d(2)\nhead = nn.Linear(10, 2)\n\n"
              "# shapecheck: input=(2, 4, 8, 8)\nchecked_pool = nn.MaxPool2d(2)\n")
    report = api.check_source(source, str(tmp_path / "train.py"))
    assert [(m.name, m.status.value) for m in report.models] == [("head", "checked"), ("checked_pool", "checked")]
    assert report.diagnostics == ()


def test_constructors_read_the_values_of_small_tensors_they_make():
    report, found = _found("values_in_init.py")
    assert found == []
    (model,) = report.models
    assert model.status.value == "checked" and model.output_shapes == ((8, 3),)
