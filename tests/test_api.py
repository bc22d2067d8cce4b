"""The Python API: check a model object, a file or source text; repeated calls leak nothing."""

import os
import sys

import torch
import torch.nn as nn

import shapecheck
from shapecheck.diagnostics import Severity

from conftest import CASES, EXAMPLES


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8 * 30 * 30, 4)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


def test_check_model_object_with_shapes_and_tensors():
    report = shapecheck.check(Small(), (2, 3, 32, 32))
    assert report.ok and report.models[0].output_shapes == ((2, 4),)
    report = shapecheck.check(Small(), torch.randn(2, 3, 28, 28))
    assert not report.ok
    (d,) = report.diagnostics
    assert (d.code, d.severity, d.fact("expected"), d.fact("actual")) == ("SC101", Severity.ERROR, 7200, 5408)
    assert d.line == Small.__init__.__code__.co_firstlineno + 3  # the nn.Linear line in this file


def test_check_model_keeps_the_users_model_intact():
    model = Small()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    shapecheck.check(model, (2, 3, 32, 32))
    assert "forward" not in vars(model.fc) and "forward" not in vars(model.conv)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 4)


def test_check_file_and_source_agree():
    path = os.path.join(EXAMPLES, "lenet_bug.py")
    by_file = shapecheck.check_file(path)
    by_source = shapecheck.check_source(open(path).read(), path)
    assert [(d.code, d.line, d.message) for d in by_file.diagnostics] == [
        (d.code, d.line, d.message) for d in by_source.diagnostics]
    assert by_file.to_json() == by_source.to_json()


def test_repeated_checks_leave_no_state_behind():
    path = os.path.join(CASES, "unet_skip.py")
    shapecheck.check_file(path)
    modules, paths = set(sys.modules), list(sys.path)
    for _ in range(3):
        report = shapecheck.check_file(path)
        assert [d.code for d in report.diagnostics] == ["SC301"]
    assert set(sys.modules) - modules == set() and sys.path == paths


def test_pyproject_config_and_precedence(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.shapecheck]\ninputs = { Net = [4, 1, 28, 28] }\n')
    model = tmp_path / "m.py"
    model.write_text(open(os.path.join(EXAMPLES, "lenet.py")).read().replace(
        "# shapecheck: input=(16, 1, 32, 32)\n", ""))
    report = shapecheck.check_file(str(model))
    assert (report.models[0].input_source, report.models[0].input_shapes) == ("config", ((4, 1, 28, 28),))
    report = shapecheck.check_file(str(model), inputs=["2,1,32,32"])
    assert (report.models[0].input_source, report.models[0].input_shapes) == ("cli", ((2, 1, 32, 32),))
    hinted = tmp_path / "h.py"
    hinted.write_text(open(os.path.join(EXAMPLES, "lenet.py")).read())
    assert shapecheck.check_file(str(hinted)).models[0].input_source == "hint"


def test_example_in_main_block_is_read_not_run(tmp_path):
    model = tmp_path / "ex.py"
    marker = tmp_path / "ran.txt"
    model.write_text(open(os.path.join(EXAMPLES, "lenet.py")).read().replace(
        "# shapecheck: input=(16, 1, 32, 32)\n", "") + (
        "\n\nif __name__ == '__main__':\n"
        f"    open({str(marker)!r}, 'w').write('ran')\n"
        "    net = Net()\n"
        "    out = net(torch.randn(4, 1, 32, 32))\n"))
    report = shapecheck.check_file(str(model))
    assert (report.models[0].input_source, report.models[0].input_shapes) == ("example", ((4, 1, 32, 32),))
    assert report.ok and not marker.exists()
