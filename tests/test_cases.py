"""Every model file under tests/models/cases and examples/: the findings are exactly the
`# expect:` lines, and real torch agrees (models without findings run)."""

import glob
import os

import pytest
import torch

from shapecheck import api
from shapecheck.diagnostics import Severity
from shapecheck.engine.discover import InputSpec

from conftest import CASES, EXAMPLES
from helpers import case_params, exact_inference, expected_codes, load_classes, run_real

CASE_FILES = sorted(glob.glob(os.path.join(CASES, "*.py")))


@pytest.mark.parametrize("path", case_params(CASE_FILES), ids=os.path.basename)
def test_findings_match_expectations(path):
    report = api.check_file(path)
    found = {(d.code, d.line) for d in report.diagnostics}
    assert found == expected_codes(path)


@pytest.mark.parametrize("path", CASE_FILES + sorted(glob.glob(os.path.join(EXAMPLES, "*.py"))), ids=os.path.basename)
def test_real_torch_agrees(path):
    """A model with no error runs in real torch with the recorded output shape; one with an
    error that torch raises on does raise."""
    report = api.check_file(path)
    specs = load_classes(path)
    for model in report.models:
        if not model.input_shapes or model.status.value != "checked":
            continue
        errors = [d for d in report.diagnostics if d.model == model.name and d.severity is Severity.ERROR]
        silent = {"SC202", "SC204", "SC205", "SC402"}
        if errors:
            if not {d.code for d in errors} & silent:  # torch raises; silent bugs run on
                with pytest.raises((RuntimeError, ValueError)):
                    run_real(specs[model.name], _inputs(model))
            continue
        out = run_real(specs[model.name], _inputs(model))
        outs = [out] if isinstance(out, torch.Tensor) else [t for t in out if isinstance(t, torch.Tensor)]
        assert tuple(tuple(o.shape) for o in outs[:1]) == tuple(model.output_shapes[:1])


def _inputs(model):
    return tuple(InputSpec(tuple(s), d) for s, d in zip(model.input_shapes, model.input_dtypes))


@exact_inference
def test_inferred_input_is_reported():
    report = api.check_file(os.path.join(CASES, "inferred_input.py"))
    model = report.models[0]
    assert (model.input_source, model.input_shapes) == ("inferred", ((8, 1, 28, 28),))
    assert model.accepted_inputs.startswith("H and W each from 26 to 29")
    assert report.diagnostics == ()


def test_a_stated_input_that_may_be_time_major_is_a_warning_with_advice():
    """(35, 20) tokens into an LSTM without batch_first, one output per step and sample: right
    if the input is time-major, so a warning whose fix is not applied."""
    report = api.check_file(os.path.join(CASES, "time_major.py"))
    found = {d.model: d for d in report.diagnostics}
    for name in ("WordModel", "LastStep"):
        d = found[name]
        assert (d.code, d.severity, d.fix.applicability.value) == ("SC207", Severity.WARNING, "display-only")
        assert "if it is the sequence (35 steps of a batch of 20), the input is time-major and right" in d.message
    assert found["LastStep"].notes[0].startswith("the output has 20 rows, one per index of dim 1")
    assert found["WordModel"].notes[0] == ("the output keeps both axes (35 and 20), so shapecheck cannot tell "
                                           "which is the batch")
