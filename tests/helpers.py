"""Shared test helpers: load a model file with shapecheck's loader and run it in real torch."""

import os
import re

import pytest
import torch

from shapecheck.engine import discover, loader
from shapecheck.engine._compat import torch_version
from shapecheck.engine.session import with_real_weights

EXPECT = re.compile(r"#\s*expect:\s*([A-Z0-9, ]+)")

# Before torch 2.13 the symbolic meta kernels fix sizes to the example (pooling guards on its
# parity, attention on its length) and meta convolutions accept kernels larger than the input,
# so inference confirms the example size but not the whole set of accepted sizes.
exact_inference = pytest.mark.skipif(
    torch_version() < (2, 13), reason="the exact set of accepted input sizes needs torch >= 2.13")

# On torch 2.3 the symbolic trace loses the batch symbol after a MultiheadAttention or a
# TransformerEncoder, so a time-first layer after one is not reported (SC204 missed, never raised).
ATTENTION_BATCH_CASES = ("batch_first", "time_major")
attention_batch = pytest.mark.skipif(
    torch_version() < (2, 13), reason="the batch symbol after an attention layer is followed on torch >= 2.13")


def case_params(names_or_paths):
    """Parameters for case files (paths or stems), the attention cases marked `attention_batch`."""

    def stem(item):
        return os.path.splitext(os.path.basename(item))[0]

    return [pytest.param(item, marks=attention_batch) if stem(item) in ATTENTION_BATCH_CASES else item
            for item in names_or_paths]


def expected_codes(path: str) -> set[tuple[str, int]]:
    """(code, line) pairs from `# expect: SC101` comments."""
    found = set()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            match = EXPECT.search(line)
            if match:
                found |= {(code.strip(), number) for code in match.group(1).split(",") if code.strip()}
    return found


def load_classes(path: str) -> dict:
    """The file's model classes and their in-file input hints, without running its main block."""
    with open(path, encoding="utf-8") as handle:
        src = loader.parse(handle.read(), path)
    namespace = loader.load(src)
    return {spec.name: spec for spec in discover.find_models(src, namespace)}


def run_real(spec, inputs=None):
    """Build the model on CPU and run it on random tensors; returns the output."""
    inputs = inputs or spec.hint
    torch.manual_seed(0)
    model = spec.obj() if spec.kind == "class" else with_real_weights(spec.obj, "cpu")
    tensors = [torch.randint(0, 2, i.shape) if i.dtype == "int64" else torch.randn(i.shape) for i in inputs]
    with torch.no_grad():
        return model(*tensors)

