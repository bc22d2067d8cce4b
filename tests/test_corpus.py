"""The clean corpus: common architectures written the way users write them. shapecheck must
report nothing on any of them, check every model, and agree with real torch on each output."""

import glob
import os

import pytest
import torch

from shapecheck.api import check_file, load_models

from conftest import ROOT

CORPUS = sorted(glob.glob(os.path.join(ROOT, "tests", "corpus", "*.py")))


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: os.path.basename(p)[:-3])
def test_no_finding_and_the_output_torch_gives(path):
    report = check_file(path)
    assert [(d.code, d.line, d.message) for d in report.diagnostics] == []
    checked = [m for m in report.models if m.status.value == "checked"]
    blocks = [m for m in report.models if m.reason == "checked as part of the models that use it"]
    assert checked and len(checked) + len(blocks) == len(report.models)
    built = {found.name: found for found in load_models(path)}
    for result in checked:
        found = built[result.name]
        inputs = [_tensor(spec) for spec in found.inputs]
        with torch.no_grad():
            out = found.model.eval()(*inputs)
        outputs = out if isinstance(out, tuple) else (out,)
        assert tuple(tuple(o.shape) for o in outputs) == result.output_shapes, result.name


def _tensor(spec):
    dtype = getattr(torch, spec.dtype)
    if dtype.is_floating_point:
        return torch.randn(spec.shape, dtype=dtype)
    return torch.ones(spec.shape, dtype=dtype)  # a valid index for every vocabulary
